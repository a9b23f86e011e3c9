package playlist

import (
	"fmt"
	"slices"
	"time"
)

// The rules that Sessions.Check enforces, and the progress and beacons
// that Sessions.Delivered records, on a decoded Session.

// Float slops of progress.
const (
	// completeSlop is how much of an item's duration may be missing from
	// its delivered spans for it to count as complete (segment times are
	// rounded).
	completeSlop = 0.05
	// mergeGap: delivered spans closer than this are merged.
	mergeGap = 0.001
	// thresholdSlop absorbs rounding when comparing covered with a
	// fraction of a duration.
	thresholdSlop = 1e-6
)

// frontier returns the end of the delivered span starting at 0 (within
// mergeGap), or 0.
func (p *ItemProgress) frontier() float64 {
	if len(p.Delivered) == 0 || p.Delivered[0][0] > mergeGap {
		return 0
	}
	return p.Delivered[0][1]
}

// covered returns the total of the delivered spans in seconds.
func (p *ItemProgress) covered() float64 {
	var c float64
	for _, s := range p.Delivered {
		c += s[1] - s[0]
	}
	return c
}

// complete reports whether the item of duration d was delivered to its
// end (within completeSlop).
func (p *ItemProgress) complete(d float64) bool {
	return !p.FirstByte.IsZero() && p.covered() >= d-completeSlop
}

// reached reports whether at least frac of duration d was delivered.
func (p *ItemProgress) reached(frac, d float64) bool {
	return p.covered() >= frac*d-thresholdSlop
}

// skipAllowed reports whether the rules' SkipAfterPercent lets the viewer
// skip forward in or past an item of duration d delivered as p.
func skipAllowed(r Rules, p *ItemProgress, d float64) bool {
	return r.SkipAfterPercent > 0 && p.reached(float64(r.SkipAfterPercent)/100, d)
}

// noForward reports whether the rules forbid skipping forward.
func noForward(r Rules) bool { return r.NoSkipForward || r.NoSeek }

// noBackward reports whether the rules forbid going back.
func noBackward(r Rules) bool { return r.NoSkipBackward || r.NoSeek }

// addSpan merges [a, b), clipped to [0, d], into the sorted, merged spans
// and returns them. Spans closer than mergeGap are merged.
func addSpan(spans [][2]float64, a, b, d float64) [][2]float64 {
	a, b = max(a, 0), min(b, d)
	if b <= a {
		return spans
	}
	out := make([][2]float64, 0, len(spans)+1)
	i := 0
	for ; i < len(spans) && spans[i][1]+mergeGap < a; i++ {
		out = append(out, spans[i])
	}
	for ; i < len(spans) && spans[i][0] <= b+mergeGap; i++ {
		a, b = min(a, spans[i][0]), max(b, spans[i][1])
	}
	out = append(out, [2]float64{a, b})
	return append(out, spans[i:]...)
}

// durationOf converts seconds to a time.Duration.
func durationOf(sec float64) time.Duration {
	return time.Duration(sec * float64(time.Second))
}

// refusal returns a refusal for the reason format, args.
func refusal(format string, args ...any) Decision {
	return Decision{Reason: fmt.Sprintf(format, args...)}
}

// decide applies the rules to request r (already validated) at time now.
func (s *Session) decide(r Request, now time.Time, lookahead float64, tolerance time.Duration) Decision {
	var wait time.Time
	var waitReason string
	// Steps 1 and 2: the items before r.Item.
	for j := range r.Item {
		it := &s.Timeline.Items[j]
		p := &s.Progress[j]
		if it.Kind == Ad {
			if !p.complete(it.Duration) {
				return refusal("%s has not been played (%s of its %s delivered)", s.position(j), fmtSeconds(p.covered()), fmtSeconds(it.Duration))
			}
			release := p.FirstByte.Add(durationOf(it.Duration) - tolerance)
			if now.Before(release) && release.After(wait) {
				wait = release
				waitReason = fmt.Sprintf("%s is still playing: what follows it is available from %s", s.position(j), release.UTC().Format(time.RFC3339Nano))
			}
			continue
		}
		if noForward(it.Rules) && !p.complete(it.Duration) && !skipAllowed(it.Rules, p, it.Duration) {
			msg := fmt.Sprintf("%s has not been played to its end (%s of its %s delivered) and its rules forbid skipping it", s.position(j), fmtSeconds(p.covered()), fmtSeconds(it.Duration))
			if it.Rules.SkipAfterPercent > 0 {
				msg += fmt.Sprintf(" before %d%% of it was played", it.Rules.SkipAfterPercent)
			}
			return Decision{Reason: msg}
		}
	}
	// Step 3: within the item.
	if r.Primary {
		it := &s.Timeline.Items[r.Item]
		p := &s.Progress[r.Item]
		f := p.frontier()
		if r.Start > f+lookahead && noForward(it.Rules) && !skipAllowed(it.Rules, p, it.Duration) {
			msg := fmt.Sprintf("%s forbids skipping forward: %s requested, played to %s", s.position(r.Item), fmtSeconds(r.Start), fmtSeconds(f))
			if it.Rules.SkipAfterPercent > 0 {
				msg += fmt.Sprintf(" (skipping is allowed once %d%% was played)", it.Rules.SkipAfterPercent)
			}
			return Decision{Reason: msg}
		}
		if r.End <= f-lookahead && noBackward(it.Rules) {
			return refusal("%s forbids going back: %s requested, played to %s", s.position(r.Item), fmtSeconds(r.Start), fmtSeconds(f))
		}
	}
	if !wait.IsZero() {
		return Decision{Wait: wait, Reason: waitReason}
	}
	return Decision{Allow: true}
}

// Beacon events of an ad, in the order they are reached.
const (
	EventImpression    = "impression"
	EventFirstQuartile = "first_quartile"
	EventMidpoint      = "midpoint"
	EventThirdQuartile = "third_quartile"
	EventComplete      = "complete"
)

// adEvents are the beacon events of an ad with the fraction of its
// duration delivered that reaches each (complete: see complete).
var adEvents = [...]struct {
	name string
	frac float64
}{
	{EventImpression, 0},
	{EventFirstQuartile, 0.25},
	{EventMidpoint, 0.5},
	{EventThirdQuartile, 0.75},
	{EventComplete, 1},
}

// record applies the delivery of r at time now to the session's progress
// and, when beacons is true and the item is an ad, returns the beacon
// events that it reaches and that were not sent yet, in order, recording
// them as sent.
func (s *Session) record(r Request, now time.Time, beacons bool) []string {
	it := &s.Timeline.Items[r.Item]
	p := &s.Progress[r.Item]
	if r.Primary {
		p.Delivered = addSpan(p.Delivered, r.Start, r.End, it.Duration)
	}
	if p.FirstByte.IsZero() {
		p.FirstByte = now.UTC()
	}
	if !beacons || it.Kind != Ad {
		return nil
	}
	complete := p.complete(it.Duration)
	var events []string
	for _, ev := range adEvents {
		reached := complete || (ev.name != EventComplete && p.reached(ev.frac, it.Duration))
		if !reached {
			break // later events need more
		}
		if !slices.Contains(p.Beacons, ev.name) {
			events = append(events, ev.name)
			p.Beacons = append(p.Beacons, ev.name)
		}
	}
	return events
}
