package playlist

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// wantDecision is the expected decision of a step: allowed, a wait until a time
// (seconds after sessT0), or a refusal whose reason contains a text.
type wantDecision struct {
	allow  bool
	wait   float64
	reason string
}

func wantAllow() wantDecision                { return wantDecision{allow: true} }
func wantWait(sec float64) wantDecision      { return wantDecision{wait: sec} }
func wantRefused(reason string) wantDecision { return wantDecision{reason: reason} }
func videoReq(item int, a, b float64) *Request {
	return &Request{Item: item, Start: a, End: b, Primary: true}
}
func audioReq(item int, a, b float64) *Request { return &Request{Item: item, Start: a, End: b} }

// enforceStep sets the clock to at (seconds after sessT0), records the deliveries
// do, then, if check is set, checks it.
type enforceStep struct {
	at    float64
	do    []Request
	check *Request
	want  wantDecision
}

// deliverStep is a step that delivers reqs at time at.
func deliverStep(at float64, reqs ...[]Request) enforceStep {
	var all []Request
	for _, r := range reqs {
		all = append(all, r...)
	}
	return enforceStep{at: at, do: all}
}

// checkStep is a step that checks r at time at.
func checkStep(at float64, r *Request, w wantDecision) enforceStep {
	return enforceStep{at: at, check: r, want: w}
}

func TestEnforceRules(t *testing.T) {
	t.Parallel()
	srv := sessionRedis(t)
	twoAds := &Timeline{Items: []Item{
		{Kind: Ad, Asset: "a1", Duration: 10, Rules: DefaultAdRules, Slot: PreRoll},
		{Kind: Ad, Asset: "a2", Duration: 10, Rules: DefaultAdRules, Slot: PreRoll},
		{Kind: Content, Asset: "movie", Duration: 60},
	}}
	withRules := func(r Rules) *Timeline {
		return &Timeline{Items: []Item{
			{Kind: Content, Asset: "movie", Duration: 60, Rules: r},
			{Kind: Content, Asset: "credits", Duration: 20},
		}}
	}
	adThenNoSeek := &Timeline{Items: []Item{
		{Kind: Ad, Asset: "ad", Duration: 10, Rules: DefaultAdRules, Slot: PreRoll},
		{Kind: Content, Asset: "movie", Duration: 60, Rules: Rules{NoSeek: true}},
		{Kind: Content, Asset: "credits", Duration: 20},
	}}
	longAd := &Timeline{Items: []Item{
		{Kind: Ad, Asset: "ad", Duration: 30, Rules: DefaultAdRules, Slot: PreRoll},
		{Kind: Ad, Asset: "skippable", Duration: 30, Rules: Rules{}, Slot: PreRoll},
	}}

	tests := []struct {
		name  string
		tl    *Timeline
		opt   SessionOptions
		steps []enforceStep
	}{
		{
			name: "bumper, pre-roll, content, mid-roll, content, post-roll in order",
			tl:   adTimeline(),
			steps: []enforceStep{
				checkStep(0, videoReq(0, 0, 2), wantAllow()),
				checkStep(0, videoReq(1, 0, 5), wantRefused("the item at position 1 has not been played to its end (0 s of its 4 s delivered) and its rules forbid skipping it")),
				deliverStep(0, segments(0, 0, 4, 2)),
				checkStep(4, videoReq(1, 0, 5), wantAllow()),
				deliverStep(4, segments(1, 0, 5, 5)),
				deliverStep(9, segments(1, 5, 10, 5)),
				checkStep(9, videoReq(2, 0, 4), wantRefused("the ad at position 2 (slot pre) has not been played (10 s of its 15 s delivered)")),
				deliverStep(14, segments(1, 10, 15, 5)),
				checkStep(14, videoReq(2, 0, 4), wantWait(17)), // first byte at 4 + 15 - 2
				checkStep(16.999, videoReq(2, 0, 4), wantWait(17)),
				checkStep(17, videoReq(2, 0, 4), wantAllow()),
				checkStep(17, videoReq(2, 40, 44), wantAllow()), // the content has no rules
				deliverStep(20, segments(2, 0, 60, 4)),
				checkStep(80, videoReq(3, 0, 5), wantAllow()),
				checkStep(80, videoReq(4, 0, 4), wantRefused("the ad at position 4 (slot mid@60) has not been played")),
				checkStep(80, audioReq(4, 0, 4), wantRefused("the ad at position 4 (slot mid@60) has not been played")),
				checkStep(80, videoReq(5, 0, 5), wantRefused("the ad at position 4 (slot mid@60)")),
				deliverStep(80, segments(3, 0, 10, 5)),
				checkStep(85, videoReq(4, 0, 4), wantWait(88)),
				checkStep(88, videoReq(4, 0, 4), wantAllow()),
				checkStep(88, videoReq(5, 0, 5), wantAllow()), // item 4 has no rules
				deliverStep(90, segments(4, 0, 40, 4)),
				deliverStep(130, segments(5, 0, 20, 5)),
				checkStep(130, videoReq(0, 0, 2), wantAllow()), // items after are not looked at
			},
		},
		{
			name: "content past an unplayed ad is refused",
			tl:   adTimeline(),
			steps: []enforceStep{
				checkStep(0, videoReq(2, 0, 4), wantRefused("the item at position 1 has not been played to its end")), // the bumper first
				deliverStep(0, segments(0, 0, 4, 2)),
				checkStep(0, videoReq(2, 0, 4), wantRefused("the ad at position 2 (slot pre) has not been played (0 s of its 15 s delivered)")),
				checkStep(0, audioReq(2, 0, 4), wantRefused("the ad at position 2 (slot pre) has not been played")),
				checkStep(0, videoReq(4, 0, 4), wantRefused("position 2 (slot pre)")), // the first ad is named
				deliverStep(0, segments(1, 0, 10, 5), segments(1, 12, 15, 3)),         // a hole
				checkStep(100, videoReq(2, 0, 4), wantRefused("the ad at position 2 (slot pre) has not been played (13 s of its 15 s delivered)")),
				deliverStep(100, segments(1, 10, 12, 2)),
				checkStep(100, videoReq(2, 0, 4), wantAllow()),
			},
		},
		{
			name: "an ad fetched faster than its duration holds back what follows",
			tl:   adTimeline(),
			steps: []enforceStep{
				deliverStep(0, segments(0, 0, 4, 2)),
				deliverStep(10, segments(1, 0, 15, 5)),
				checkStep(10, videoReq(2, 0, 4), wantWait(23)),
				checkStep(10, audioReq(2, 0, 4), wantWait(23)),
				checkStep(22.999, videoReq(2, 0, 4), wantWait(23)),
				checkStep(23, videoReq(2, 0, 4), wantAllow()),
				checkStep(23, audioReq(2, 0, 4), wantAllow()),
			},
		},
		{
			name: "tolerance",
			tl:   adTimeline(),
			opt:  SessionOptions{Tolerance: 5 * time.Second},
			steps: []enforceStep{
				deliverStep(0, segments(0, 0, 4, 2)),
				deliverStep(10, segments(1, 0, 15, 5)),
				checkStep(10, videoReq(2, 0, 4), wantWait(20)),
				checkStep(19.5, videoReq(2, 0, 4), wantWait(20)),
				checkStep(20, videoReq(2, 0, 4), wantAllow()),
			},
		},
		{
			name: "the wait is the latest of the ads'",
			tl:   twoAds,
			steps: []enforceStep{
				deliverStep(0, segments(0, 0, 10, 5)),
				checkStep(1, videoReq(1, 0, 5), wantWait(8)), // the second ad waits for the first
				deliverStep(5, segments(1, 0, 10, 5)),
				checkStep(6, videoReq(2, 0, 4), wantWait(13)),
				checkStep(8, videoReq(2, 0, 4), wantWait(13)),
				checkStep(13, videoReq(2, 0, 4), wantAllow()),
			},
		},
		{
			name: "a refusal wins over a wait",
			tl:   adThenNoSeek,
			steps: []enforceStep{
				deliverStep(0, segments(0, 0, 10, 5)),
				checkStep(1, videoReq(1, 0, 4), wantWait(8)),
				checkStep(1, videoReq(1, 40, 44), wantRefused("the item at position 2 forbids skipping forward")),
				checkStep(1, videoReq(2, 0, 4), wantRefused("the item at position 2 has not been played to its end")),
			},
		},
		{
			name: "skip after 50%",
			tl:   withRules(Rules{NoSkipForward: true, SkipAfterPercent: 50}),
			steps: []enforceStep{
				checkStep(0, videoReq(1, 0, 4), wantRefused("the item at position 1 has not been played to its end (0 s of its 60 s delivered) and its rules forbid skipping it before 50% of it was played")),
				checkStep(0, videoReq(0, 12, 16), wantAllow()), // within the lookahead
				checkStep(0, videoReq(0, 12.5, 16), wantRefused("the item at position 1 forbids skipping forward: 12.5 s requested, played to 0 s (skipping is allowed once 50% was played)")),
				deliverStep(1, segments(0, 0, 24, 4)),
				checkStep(2, videoReq(0, 36, 40), wantAllow()),
				checkStep(2, videoReq(0, 40, 44), wantRefused("forbids skipping forward")),
				checkStep(2, audioReq(0, 40, 44), wantAllow()), // audio is not checked within the item
				checkStep(2, videoReq(1, 0, 4), wantRefused("has not been played to its end")),
				checkStep(2, audioReq(1, 0, 4), wantRefused("has not been played to its end")),
				checkStep(2, videoReq(0, 0, 4), wantAllow()),                   // going back is allowed
				deliverStep(3, segments(0, 24, 28, 4), segments(0, 40, 42, 2)), // 30 s in two spans
				checkStep(4, videoReq(0, 50, 54), wantAllow()),
				checkStep(4, videoReq(1, 0, 4), wantAllow()),
			},
		},
		{
			name: "no skip forward without a percent",
			tl:   withRules(Rules{NoSkipForward: true}),
			steps: []enforceStep{
				deliverStep(0, segments(0, 0, 40, 4)),
				checkStep(1, videoReq(0, 56, 60), wantRefused("forbids skipping forward: 56 s requested, played to 40 s")),
				checkStep(1, videoReq(0, 0, 4), wantAllow()),
				checkStep(1, videoReq(1, 0, 4), wantRefused("has not been played to its end (40 s of its 60 s delivered)")),
				deliverStep(2, segments(0, 40, 59.96, 4)), // within 50 ms of the end: complete
				checkStep(3, videoReq(1, 0, 4), wantAllow()),
			},
		},
		{
			name: "no skip backward",
			tl:   withRules(Rules{NoSkipBackward: true}),
			steps: []enforceStep{
				deliverStep(0, segments(0, 0, 40, 4)),
				checkStep(1, videoReq(0, 10, 14), wantRefused("the item at position 1 forbids going back: 10 s requested, played to 40 s")),
				checkStep(1, videoReq(0, 24, 28), wantRefused("forbids going back")), // ends 12 s before the frontier
				checkStep(1, videoReq(0, 26, 30), wantAllow()),                       // a re-request of recent segments
				checkStep(1, videoReq(0, 36, 40), wantAllow()),
				checkStep(1, videoReq(0, 56, 60), wantAllow()), // forward is fine
				checkStep(1, audioReq(0, 0, 4), wantAllow()),   // audio is not checked within the item
				checkStep(1, videoReq(1, 0, 4), wantAllow()),   // nor is leaving it
			},
		},
		{
			name: "no seek",
			tl:   withRules(Rules{NoSeek: true}),
			steps: []enforceStep{
				deliverStep(0, segments(0, 0, 20, 4)),
				checkStep(1, videoReq(0, 40, 44), wantRefused("forbids skipping forward")),
				checkStep(1, videoReq(0, 0, 4), wantRefused("forbids going back")),
				checkStep(1, videoReq(0, 20, 24), wantAllow()),
				checkStep(1, videoReq(0, 28, 32), wantAllow()), // within the lookahead
				checkStep(1, videoReq(0, 4, 8), wantRefused("forbids going back")),
				checkStep(1, videoReq(0, 8, 12), wantAllow()),
				checkStep(1, videoReq(1, 0, 4), wantRefused("the item at position 1 has not been played to its end")),
			},
		},
		{
			name: "lookahead option",
			tl:   withRules(Rules{NoSeek: true}),
			opt:  SessionOptions{Lookahead: 4},
			steps: []enforceStep{
				deliverStep(0, segments(0, 0, 20, 4)),
				checkStep(1, videoReq(0, 24, 28), wantAllow()),
				checkStep(1, videoReq(0, 28, 32), wantRefused("forbids skipping forward")),
				checkStep(1, videoReq(0, 16, 20), wantAllow()),
				checkStep(1, videoReq(0, 12, 16), wantRefused("forbids going back")),
			},
		},
		{
			name: "non-primary requests",
			tl:   adThenNoSeek,
			steps: []enforceStep{
				checkStep(0, audioReq(1, 0, 4), wantRefused("the ad at position 1 (slot pre) has not been played")),
				deliverStep(0, []Request{{Item: 0, Start: 0, End: 10}}), // the ad's audio: no progress
				checkStep(20, audioReq(1, 0, 4), wantRefused("the ad at position 1 (slot pre) has not been played (0 s of its 10 s delivered)")),
				deliverStep(20, segments(0, 0, 10, 5)),
				checkStep(20, audioReq(1, 0, 4), wantAllow()), // released from the first byte, of the audio
				checkStep(20, audioReq(1, 40, 44), wantAllow()),
				checkStep(20, videoReq(1, 40, 44), wantRefused("forbids skipping forward")),
				deliverStep(20, []Request{{Item: 1, Start: 0, End: 60}}), // audio of all the content
				checkStep(21, audioReq(2, 0, 4), wantRefused("the item at position 2 has not been played to its end (0 s of its 60 s delivered)")),
				checkStep(21, videoReq(1, 16, 20), wantRefused("forbids skipping forward")),
			},
		},
		{
			name: "an ad's own rules",
			tl:   longAd,
			steps: []enforceStep{
				checkStep(0, videoReq(0, 20, 25), wantRefused("the ad at position 1 (slot pre) forbids skipping forward")),
				checkStep(0, videoReq(0, 10, 15), wantAllow()),
				deliverStep(0, segments(0, 0, 30, 5)),
				checkStep(0, videoReq(1, 20, 25), wantWait(28)), // no rules: the jump is fine, the wait is not
				checkStep(30, videoReq(1, 20, 25), wantAllow()),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			forEachState(t, srv, func(t *testing.T, env *stateEnv) {
				s := env.sessions(t, tt.opt)
				sess := createSession(t, s, tt.tl)
				for i, st := range tt.steps {
					env.clock.At(st.at)
					deliverAll(t, s, sess.ID, st.do...)
					if st.check == nil {
						continue
					}
					d, err := s.Check(t.Context(), sess.ID, *st.check)
					if err != nil {
						t.Fatalf("step %d: Check(%+v): %v", i, *st.check, err)
					}
					checkDecisionStep(t, i, *st.check, d, st.want)
				}
			})
		})
	}
}

// checkDecisionStep compares decision d of request r with w.
func checkDecisionStep(t *testing.T, i int, r Request, d Decision, w wantDecision) {
	t.Helper()
	switch {
	case w.allow:
		if !d.Allow || !d.Wait.IsZero() {
			t.Errorf("step %d: %+v: %+v, want allowed", i, r, d)
		}
	case w.wait != 0:
		at := sessT0.Add(durationOf(w.wait))
		if d.Allow || !d.Wait.Equal(at) || d.Reason == "" {
			t.Errorf("step %d: %+v: %+v, want a wait until %v (%v s)", i, r, d, at, w.wait)
		}
	default:
		if d.Allow || !d.Wait.IsZero() || !strings.Contains(d.Reason, w.reason) {
			t.Errorf("step %d: %+v: %+v, want refused with %q", i, r, d, w.reason)
		}
	}
}

func TestEnforceAddSpan(t *testing.T) {
	t.Parallel()
	type span = [2]float64
	tests := []struct {
		name string
		in   []span
		a, b float64
		want []span
	}{
		{"first", nil, 0, 4, []span{{0, 4}}},
		{"empty", nil, 3, 3, nil},
		{"before", []span{{10, 12}}, 0, 4, []span{{0, 4}, {10, 12}}},
		{"after", []span{{0, 4}}, 10, 12, []span{{0, 4}, {10, 12}}},
		{"between", []span{{0, 4}, {20, 24}}, 10, 12, []span{{0, 4}, {10, 12}, {20, 24}}},
		{"adjacent", []span{{0, 4}}, 4, 8, []span{{0, 8}}},
		{"adjacent before", []span{{4, 8}}, 0, 4, []span{{0, 8}}},
		{"gap under 1 ms", []span{{0, 4}}, 4.0009, 8, []span{{0, 8}}},
		{"gap over 1 ms", []span{{0, 4}}, 4.002, 8, []span{{0, 4}, {4.002, 8}}},
		{"overlap", []span{{0, 4}}, 2, 6, []span{{0, 6}}},
		{"inside", []span{{0, 10}}, 2, 6, []span{{0, 10}}},
		{"bridges", []span{{0, 4}, {8, 12}, {16, 20}, {30, 32}}, 3, 17, []span{{0, 20}, {30, 32}}},
		{"covers all", []span{{1, 2}, {3, 4}}, 0, 50, []span{{0, 50}}},
		{"clipped", []span{{0, 4}}, 55, 70, []span{{0, 4}, {55, 60}}},
		{"beyond", []span{{0, 4}}, 60, 70, []span{{0, 4}}},
	}
	for _, tt := range tests {
		got := addSpan(append([]span(nil), tt.in...), tt.a, tt.b, 60)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: addSpan(%v, %v, %v) = %v, want %v", tt.name, tt.in, tt.a, tt.b, got, tt.want)
		}
	}
}
