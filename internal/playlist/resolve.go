package playlist

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
)

// Source gives Resolve what it needs of the library.
type Source interface {
	// Playlist returns playlist id of user (for nested entries); a missing
	// one is an error wrapping ErrNotFound.
	Playlist(ctx context.Context, user, id string) (*Playlist, error)
	// Clip describes the asset's clip [start, end) in seconds (end 0 = to
	// the end): its duration and the start times of its media segments
	// relative to the clip's start (first 0, ascending), as the streams of
	// the clip are cut.
	Clip(ctx context.Context, user, asset string, start, end float64) (ClipInfo, error)
}

// ClipInfo describes a clip of an asset (see Source.Clip).
type ClipInfo struct {
	// Duration is the clip's duration in seconds.
	Duration float64
	// Segments are the start times of the clip's media segments in
	// seconds from the clip's start: the first 0, ascending, each before
	// Duration. Empty is taken as one segment, [0].
	Segments []float64
}

// eps is the tolerance, in seconds, with which a mid-roll's time meets a
// segment boundary: the program times it is compared with are sums of
// durations, which carry float noise.
const eps = 1e-6

// maxVisits bounds the entries Resolve goes through, nested playlists
// included, so that entries producing no items (ad slots left empty for
// the viewer, empty nested playlists) cannot make it run for long.
const maxVisits = 20 * MaxItems

// Resolve resolves p for the viewer v into a Timeline, choosing ads with
// pick (which returns a number in [0, n); nil is PickRandom()).
//
// Entries are taken in order:
//
//   - An asset entry becomes a Content item, its Start and End those of
//     the entry, its Duration that of src.Clip.
//   - A nested playlist (of p.User, fetched with src.Playlist) is resolved
//     in place, recursively, its own ad slots included; nesting is at most
//     MaxDepth deep (p is depth 1) and a cycle is an error. Its mid-roll
//     slots are placed on its own program timeline (At seconds into its own
//     content), before its items take their place in the parent.
//   - A pre- or post-roll slot is played where it stands: its ads follow
//     the items before it. A mid-roll slot is taken out of the order and
//     placed At seconds into the playlist's program (its content items, in
//     order): the content item playing then is split at its first segment
//     boundary at or after At, the slot going between the two parts (their
//     Start and End absolute times in the asset, their Durations adding
//     up); at a boundary that is an item's start (At 0 included) the slot
//     goes before that item, after any ads already placed before it; past
//     the program's end (or in the last segment of the last content item),
//     it goes right after the last content item, before the ads that follow
//     it. Mid-rolls are placed in the order of At, two at the same place in
//     the order of the entries. A further split of a part split already
//     uses that part's own segments, from src.Clip of the part.
//
// An ad slot takes its ads from its first pool whose targeting matches v
// (Matches), else from its Default: Count of them (default 1), drawn with
// pick without repetition while the pool has enough (then in rounds, never
// the same ad twice in a row when the pool has two or more). Ads are drawn
// slot by slot in the order of the entries, nested ones in place, so that a
// deterministic pick gives the same timeline. Each ad is an Ad item whose
// Rules are the slot entry's Rules, else DefaultAdRules, and whose Slot is
// "pre", "post" or "mid@<At>" (At formatted as in stream URLs,
// strconv.FormatFloat(At, 'f', -1, 64)), prefixed with "p:<id>/" for each
// nested playlist it is in, outermost first: "p:intro/pre",
// "p:show/p:part2/mid@60".
//
// Rules: a content item has its entry's Rules (none: the zero Rules). A
// nested playlist entry's Rules go to those of the content items it
// produces whose own entry had none (the nearest enclosing entry with Rules
// wins); ads keep their slot's rules or DefaultAdRules, so that an
// enclosing entry cannot make ads skippable.
//
// Errors wrap ErrInvalid for a definition that cannot be resolved (a cycle,
// too deep a nesting, a nested playlist that does not exist, more than
// MaxItems items, no items at all for v), naming the entry at fault with
// its path ("p:intro/entries[2].playlist: ..."); errors of src are
// returned wrapped, with the entry they are for.
func Resolve(ctx context.Context, src Source, p *Playlist, v Viewer, pick func(n int) int) (*Timeline, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if p.User == "" {
		return nil, invalid("user", "missing")
	}
	if pick == nil {
		pick = PickRandom()
	}
	r := &resolver{ctx: ctx, src: src, user: p.User, v: v, pick: pick,
		playlists: map[string]*Playlist{}, clips: map[clipKey]ClipInfo{}}
	top := p.ID
	if top == "" {
		top = "(this playlist)"
	}
	seq, err := r.playlist(p, "", []string{top})
	if err != nil {
		return nil, err
	}
	tl := &Timeline{Items: make([]Item, 0, r.items)}
	for _, e := range seq {
		tl.Items = append(tl.Items, e.before...)
		tl.Items = append(tl.Items, e.item)
		tl.Items = append(tl.Items, e.after...)
	}
	if len(tl.Items) == 0 {
		return nil, fmt.Errorf("%w: nothing to play for this viewer: no content, and no ads for the viewer", ErrInvalid)
	}
	return tl, nil
}

// resolver is the state of one Resolve.
type resolver struct {
	ctx    context.Context
	src    Source
	user   string
	v      Viewer
	pick   func(int) int
	items  int // items made so far (they are never dropped)
	visits int // entries gone through

	playlists map[string]*Playlist // nested playlists fetched
	clips     map[clipKey]ClipInfo // clips described
}

type clipKey struct {
	asset      string
	start, end float64
}

// elem is an item of a playlist being resolved, with what placing
// mid-rolls needs.
type elem struct {
	item Item
	// ownRules: a content item's rules came from its entry or an enclosing
	// nested playlist entry; enclosing entries' Rules no longer apply.
	ownRules bool
	// segs are a content item's segment starts, relative to it, when
	// known (segsKnown); else src.Clip of the item gives them.
	segs      []float64
	segsKnown bool
	// before and after are ads placed right before and after a content
	// item by mid-rolls.
	before, after []Item
}

// midSlot is a mid-roll slot waiting to be placed.
type midSlot struct {
	at  float64
	ads []Item
}

// playlist resolves p, at path (its slot prefix, "" for the top one), on
// the nesting stack of playlist ids (p's last).
func (r *resolver) playlist(p *Playlist, path string, stack []string) ([]elem, error) {
	var seq []elem
	var mids []midSlot
	for i := range p.Entries {
		e := &p.Entries[i]
		loc := fmt.Sprintf("%sentries[%d]", path, i)
		if err := r.ctx.Err(); err != nil {
			return nil, fmt.Errorf("playlist: resolving %s: %w", loc, err)
		}
		if r.visits++; r.visits > maxVisits {
			return nil, fmt.Errorf("%w: %s: the playlist expands to more than %d entries with its nested playlists", ErrInvalid, loc, maxVisits)
		}
		switch {
		case e.Asset != "":
			ci, err := r.clip(loc, e.Asset, e.Start, e.End)
			if err != nil {
				return nil, err
			}
			if err := r.count(loc, 1); err != nil {
				return nil, err
			}
			it := Item{Kind: Content, Asset: e.Asset, Start: e.Start, End: e.End, Duration: ci.Duration}
			if e.Rules != nil {
				it.Rules = *e.Rules
			}
			seq = append(seq, elem{item: it, ownRules: e.Rules != nil, segs: ci.Segments, segsKnown: true})
		case e.Playlist != "":
			sub, err := r.nested(loc, e.Playlist, path, stack)
			if err != nil {
				return nil, err
			}
			if e.Rules != nil {
				for k := range sub {
					if sub[k].item.Kind == Content && !sub[k].ownRules {
						sub[k].item.Rules, sub[k].ownRules = *e.Rules, true
					}
				}
			}
			seq = append(seq, sub...)
		case e.Ad != nil:
			ads, err := r.slot(loc, path, e)
			if err != nil {
				return nil, err
			}
			if e.Ad.Position == MidRoll {
				mids = append(mids, midSlot{at: e.Ad.At, ads: ads})
				continue
			}
			for _, a := range ads {
				seq = append(seq, elem{item: a})
			}
		}
	}
	slices.SortStableFunc(mids, func(a, b midSlot) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		}
		return 0
	})
	for _, m := range mids {
		var err error
		if seq, err = r.place(seq, m, path); err != nil {
			return nil, err
		}
	}
	return seq, nil
}

// nested resolves the nested playlist id of the entry at loc.
func (r *resolver) nested(loc, id, path string, stack []string) ([]elem, error) {
	if i := slices.Index(stack, id); i >= 0 {
		cycle := append(slices.Clone(stack[i:]), id)
		return nil, fmt.Errorf("%w: %s.playlist: playlists nest in a cycle: %s", ErrInvalid, loc, strings.Join(cycle, " -> "))
	}
	if len(stack)+1 > MaxDepth {
		return nil, fmt.Errorf("%w: %s.playlist: playlists nest deeper than %d: %s -> %s", ErrInvalid, loc, MaxDepth, strings.Join(stack, " -> "), id)
	}
	child, ok := r.playlists[id]
	if !ok {
		var err error
		child, err = r.src.Playlist(r.ctx, r.user, id)
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: %s.playlist: there is no playlist %q", ErrInvalid, loc, id)
		}
		if err != nil {
			return nil, fmt.Errorf("playlist: %s: nested playlist %q: %w", loc, id, err)
		}
		if err := child.validate(path + "p:" + id + "/"); err != nil {
			return nil, err
		}
		if child.User != "" && child.User != r.user || child.ID != "" && child.ID != id {
			return nil, fmt.Errorf("playlist: %s: the source answered playlist %s/%s for %s/%s", loc, child.User, child.ID, r.user, id)
		}
		r.playlists[id] = child
	}
	return r.playlist(child, path+"p:"+id+"/", append(slices.Clip(stack), id))
}

// slot chooses the ads of the ad slot entry e at loc, as Ad items.
func (r *resolver) slot(loc, path string, e *Entry) ([]Item, error) {
	a := e.Ad
	ads := a.Default
	for _, p := range a.Pools {
		if p.When.Matches(r.v) {
			ads = p.Ads
			break
		}
	}
	if len(ads) == 0 {
		return nil, nil
	}
	n := a.Count
	if n == 0 {
		n = 1
	}
	idx, err := choose(n, len(ads), r.pick)
	if err != nil {
		return nil, fmt.Errorf("playlist: %s.ad: %w", loc, err)
	}
	if err := r.count(loc, n); err != nil {
		return nil, err
	}
	rules := DefaultAdRules
	if e.Rules != nil {
		rules = *e.Rules
	}
	name := path + a.Position
	if a.Position == MidRoll {
		name += "@" + fmtTime(a.At)
	}
	out := make([]Item, 0, n)
	for _, k := range idx {
		ad := ads[k]
		ci, err := r.clip(loc+".ad", ad.Asset, ad.Start, ad.End)
		if err != nil {
			return nil, err
		}
		out = append(out, Item{Kind: Ad, Asset: ad.Asset, Start: ad.Start, End: ad.End, Duration: ci.Duration, Rules: rules, Slot: name})
	}
	return out, nil
}

// place places the mid-roll m in seq, the items of the playlist at path.
func (r *resolver) place(seq []elem, m midSlot, path string) ([]elem, error) {
	t0 := 0.0 // program time of the start of seq[k]
	last := -1
	for k := range seq {
		c := &seq[k]
		if c.item.Kind != Content {
			continue
		}
		last = k
		d := c.item.Duration
		if m.at <= t0+eps {
			c.before = append(c.before, m.ads...)
			return seq, nil
		}
		if m.at < t0+d {
			if !c.segsKnown {
				ci, err := r.clip(path+"mid@"+fmtTime(m.at), c.item.Asset, c.item.Start, c.item.End)
				if err != nil {
					return nil, err
				}
				c.segs, c.segsKnown = ci.Segments, true
			}
			for j, b := range c.segs {
				if b <= 0 || b >= d {
					continue
				}
				if t0+b >= m.at-eps {
					if err := r.count(path+"mid@"+fmtTime(m.at), 1); err != nil {
						return nil, err
					}
					first, second := *c, *c
					first.item.End = c.item.Start + b
					first.item.Duration = b
					first.segs, first.after = c.segs[:j:j], nil
					second.item.Start = c.item.Start + b
					second.item.Duration = d - b
					second.segs, second.segsKnown = nil, false
					second.before = slices.Clone(m.ads)
					seq[k] = first
					return slices.Insert(seq, k+1, second), nil
				}
			}
		}
		t0 += d
	}
	if last < 0 {
		// No content: the ads go at the end.
		for _, a := range m.ads {
			seq = append(seq, elem{item: a})
		}
		return seq, nil
	}
	seq[last].after = append(seq[last].after, m.ads...)
	return seq, nil
}

// clip describes the clip [start, end) of asset, for the entry at loc,
// and checks what the source says.
func (r *resolver) clip(loc, asset string, start, end float64) (ClipInfo, error) {
	key := clipKey{asset, start, end}
	if ci, ok := r.clips[key]; ok {
		return ci, nil
	}
	ci, err := r.src.Clip(r.ctx, r.user, asset, start, end)
	if err != nil {
		return ClipInfo{}, fmt.Errorf("playlist: %s: asset %q%s: %w", loc, asset, clipRange(start, end), err)
	}
	if err := ci.check(); err != nil {
		return ClipInfo{}, fmt.Errorf("playlist: %s: asset %q%s: the source's clip: %w", loc, asset, clipRange(start, end), err)
	}
	if len(ci.Segments) == 0 {
		ci.Segments = []float64{0}
	}
	r.clips[key] = ci
	return ci, nil
}

// clipRange describes a clip for errors: "" for a whole asset.
func clipRange(start, end float64) string {
	if start == 0 && end == 0 {
		return ""
	}
	if end == 0 {
		return fmt.Sprintf(" from %ss", fmtTime(start))
	}
	return fmt.Sprintf(" %ss-%ss", fmtTime(start), fmtTime(end))
}

// check checks that ci is as Source.Clip promises.
func (ci ClipInfo) check() error {
	if !(ci.Duration > 0) || math.IsInf(ci.Duration, 0) {
		return fmt.Errorf("duration %v", ci.Duration)
	}
	for i, s := range ci.Segments {
		switch {
		case i == 0 && s != 0:
			return fmt.Errorf("first segment at %v, not 0", s)
		case i > 0 && !(s > ci.Segments[i-1]):
			return fmt.Errorf("segment %d at %v, not after %v", i, s, ci.Segments[i-1])
		case !(s < ci.Duration):
			return fmt.Errorf("segment %d at %v, not before the end %v", i, s, ci.Duration)
		}
	}
	return nil
}

// count counts n more items, made for the entry at loc.
func (r *resolver) count(loc string, n int) error {
	if r.items += n; r.items > MaxItems {
		return fmt.Errorf("%w: %s: the timeline has more than %d items", ErrInvalid, loc, MaxItems)
	}
	return nil
}

// choose draws n of m ads with pick: without repetition while there are
// enough, then in further rounds, each without repetition and not starting
// with the ad that ended the round before (when m > 1).
func choose(n, m int, pick func(int) int) ([]int, error) {
	idx := make([]int, m)
	for i := range idx {
		idx[i] = i
	}
	out := make([]int, 0, n)
	for len(out) < n {
		// A round: idx[:avail] are the ads not drawn in it yet.
		for avail := m; avail > 0 && len(out) < n; avail-- {
			lim := avail
			if avail == m && len(out) > 0 && m > 1 {
				// Keep the previous ad out of the first draw of the round.
				j := slices.Index(idx, out[len(out)-1])
				idx[j], idx[m-1] = idx[m-1], idx[j]
				lim = m - 1
			}
			k := pick(lim)
			if k < 0 || k >= lim {
				return nil, fmt.Errorf("pick(%d) returned %d", lim, k)
			}
			out = append(out, idx[k])
			idx[k], idx[avail-1] = idx[avail-1], idx[k]
		}
	}
	return out, nil
}

// Matches reports whether the viewer v matches t: every list given holds
// v's value (ignoring case; Language holds v's primary language subtag,
// "de" for "de-CH"), every Profile field given holds v's value of it (the
// field names match exactly, the values ignoring case), and, with Hours,
// v.Time is within them (UTC; a zero Time is within none). An empty value
// of v matches no list that is given.
func (t *Targeting) Matches(v Viewer) bool {
	lang, _, _ := strings.Cut(v.Language, "-")
	lang, _, _ = strings.Cut(lang, "_")
	if !inList(t.Country, v.Country) || !inList(t.Language, lang) || !inList(t.Device, v.Device) {
		return false
	}
	for f, vs := range t.Profile {
		val, ok := v.Profile[f]
		if !ok || !inList(vs, val) {
			return false
		}
	}
	if h := t.Hours; h != nil {
		if v.Time.IsZero() {
			return false
		}
		hour := v.Time.UTC().Hour()
		if h.From < h.To {
			return h.From <= hour && hour < h.To
		}
		return hour >= h.From || hour < h.To
	}
	return true
}

// inList reports whether list is empty or holds s, ignoring case; an
// empty s is in no list that is not empty.
func inList(list []string, s string) bool {
	if len(list) == 0 {
		return true
	}
	if s == "" {
		return false
	}
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// PickRandom returns a pick function for Resolve drawing at random, from
// a ChaCha8 generator seeded by crypto/rand. It is safe for concurrent use.
func PickRandom() func(int) int {
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // never fails (crypto/rand panics instead)
	return pickFrom(rand.NewChaCha8(seed))
}

// PickSeeded returns a pick function for Resolve whose draws are
// determined by seed (a ChaCha8 generator keyed by its SHA-256): the same
// seed gives the same draws, on every node and across releases (the
// reduction to [0, n) is done here, not by math/rand). For tests and
// reproducible decisions. It is safe for concurrent use.
func PickSeeded(seed string) func(int) int {
	return pickFrom(rand.NewChaCha8(sha256.Sum256([]byte(seed))))
}

// pickFrom returns a pick function drawing from src: uniform in [0, n)
// (Lemire's multiply-and-reject), 0 for n <= 1.
func pickFrom(src *rand.ChaCha8) func(int) int {
	var mu sync.Mutex
	return func(n int) int {
		if n <= 1 {
			return 0
		}
		mu.Lock()
		defer mu.Unlock()
		un := uint64(n)
		hi, lo := bits.Mul64(src.Uint64(), un)
		if lo < un {
			thresh := -un % un
			for lo < thresh {
				hi, lo = bits.Mul64(src.Uint64(), un)
			}
		}
		return int(hi)
	}
}
