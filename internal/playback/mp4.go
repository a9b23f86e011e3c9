package playback

// One progressive MP4 per session: the session's items stitched into one
// file (media.Concat, mp4build.Progressive), served with byte ranges like
// any file, the playlist's rules enforced on the bytes as they go out.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	mp4build "github.com/jitstream/jitstream/internal/build/mp4"
	"github.com/jitstream/jitstream/internal/delivery"
	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/internal/lru"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/playlist"
	"github.com/jitstream/jitstream/internal/vfile"
)

// stitchVersion is mixed into the identity (and so the ETag) of stitched
// files; bump it when the bytes stitched for the same items change.
const stitchVersion = "session-mp4-1"

// stitchCacheBytes bounds the stitched files kept (their generated boxes
// and timelines; the media stays in the store).
const stitchCacheBytes = 64 << 20

// recordStep is how much media of a content item, in seconds, a response
// sends between two records of its delivery; an ad's is recorded at each
// quarter of it too (its beacons follow the bytes).
const recordStep = 10.0

// errRefused is returned (wrapped, see refusal) when the playlist's rules stop a
// stitched file in the middle of its body.
var errRefused = errors.New("refused by the playlist")

// stitchCache keeps stitched files by the identity of their items: the
// sessions with the same items share one. The zero value is ready.
type stitchCache struct {
	once sync.Once
	c    *lru.Cache[string, *stitched]
}

func (sc *stitchCache) get() *lru.Cache[string, *stitched] {
	sc.once.Do(func() { sc.c = lru.New[string, *stitched](stitchCacheBytes) })
	return sc.c
}

// stitched is a session's items as one progressive MP4, and where each
// item lies in it.
type stitched struct {
	f *vfile.File
	// bounds[k] is the file offset of item k's first byte, bounds[n] the
	// file's size; the bytes before bounds[0] (ftyp, moov, the mdat
	// header) hold no media.
	bounds []int64
	// at[k] is the media time of bounds[k] on the file's timeline.
	at []float64
	// durs are the items' durations in seconds.
	durs []float64
}

// item returns the item holding byte off (at or after bounds[0]).
func (s *stitched) item(off int64) int {
	n := len(s.durs)
	return min(sort.Search(n, func(i int) bool { return s.bounds[i+1] > off }), n-1)
}

// time returns the time, in seconds from the start of item k, of byte off
// of the file: 0 at or before the item's first byte, its duration at or
// after its end, in between by the file's timeline, scaled so that the
// item's bytes span exactly its duration.
func (s *stitched) time(k int, off int64) float64 {
	a, b, d := s.bounds[k], s.bounds[k+1], s.durs[k]
	switch {
	case off <= a:
		return 0
	case off >= b:
		return d
	}
	var x float64
	if ta, tb := s.at[k], s.at[k+1]; tb > ta {
		x = (s.f.Timeline.Time(off) - ta) / (tb - ta) * d
	} else {
		x = float64(off-a) / float64(b-a) * d
	}
	return min(max(x, 0), d)
}

// cost is what s holds in memory, for the cache.
func (s *stitched) cost() int64 {
	n := int64(len(s.f.Pieces))*48 + 512 + s.f.Timeline.Bytes() + int64(len(s.bounds))*24
	for _, p := range s.f.Pieces {
		n += int64(len(p.Data))
	}
	return n
}

// stitch returns the stitched file of session s's items, from the cache
// or built: the first video track and first audio track of each item, one
// after the other.
func (h *Handler) stitch(ctx context.Context, s *playlist.Session) (*stitched, error) {
	items := s.Timeline.Items
	parts := make([]*media.Index, len(items))
	// The identity names the items and the stored objects they are cut
	// from (whose keys change with every ingest of an asset).
	var id strings.Builder
	id.WriteString(stitchVersion + "\x00" + s.User)
	for i, it := range items {
		name := clipName(it.Asset, it.Start, it.End)
		ix, err := h.st.ClipIndex(ctx, s.User, name)
		if err != nil {
			return nil, fmt.Errorf("playback: item %d of session %s: %w", i, s.ID, err)
		}
		parts[i] = ix
		id.WriteString("\x00" + name)
		for _, c := range ix.Chapters {
			id.WriteString("|" + c.Object + ":" + strconv.FormatInt(c.Size, 10))
		}
	}
	identity := id.String()
	key := vfile.ETag(identity)
	cache := h.stitched.get()
	if st, ok := cache.Get(key); ok {
		return st, nil
	}
	ix, err := media.Concat(parts)
	if errors.Is(err, media.ErrUnsupported) {
		return nil, fmt.Errorf("%w: session %s: %v", errBadPath, s.ID, err)
	}
	if err != nil {
		return nil, fmt.Errorf("playback: stitching session %s: %w", s.ID, err)
	}
	f, err := mp4build.Progressive(ix, mp4build.Selection{Identity: identity})
	if err != nil {
		return nil, fmt.Errorf("playback: stitching session %s: %w", s.ID, err)
	}
	payload, err := mp4build.ChapterPayload(ix)
	if err != nil {
		return nil, fmt.Errorf("playback: stitching session %s: %w", s.ID, err)
	}
	f.Name = "video.mp4"
	st := &stitched{f: f, bounds: make([]int64, len(items)+1), at: make([]float64, len(items)+1), durs: make([]float64, len(items))}
	base := f.Size - payload[len(payload)-1]
	chapter := 0 // the first chapter of part k (Concat keeps the parts' chapters in order)
	for k, p := range parts {
		st.bounds[k] = base + payload[chapter]
		st.durs[k] = items[k].Duration
		chapter += len(p.Chapters)
	}
	st.bounds[len(items)] = f.Size
	for k, b := range st.bounds {
		st.at[k] = f.Timeline.Time(b)
	}
	cache.Add(key, st, st.cost())
	return st, nil
}

// mp4 serves the session's items as one progressive MP4, with byte
// ranges. Before the body, the first item span the response holds is
// checked against the playlist's rules (and waited for, as a segment is:
// a refusal is a 403); while the body goes out, a pacer checks each item
// before its first byte (waiting for an ad's release, aborting the body on
// a refusal) and records what was delivered as the bytes advance.
func (h *Handler) mp4(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sid := r.PathValue("sid")
	s, err := h.opt.Sessions.Get(ctx, sid)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	st, err := h.stitch(ctx, s)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	o := httpserve.Options{CacheControl: cachePrivate, Logger: h.log}
	if ranges := httpserve.BodyRanges(r, st.f, o); len(ranges) > 0 {
		p := &mp4Pacer{h: h, ctx: ctx, sid: sid, st: st, items: s.Timeline.Items, ranges: ranges, checked: -1, cur: -1, pos: -1}
		if off := max(ranges[0][0], st.bounds[0]); off < ranges[0][1] {
			k := st.item(off)
			if !h.allowed(w, r, sid, p.request(k, off)) {
				return
			}
			p.checked = k
		}
		o.Pacer = p
	}
	// A progressive file like any other: fast start, then paced, within
	// the bandwidth budget.
	d := h.opt.Delivery
	r.SetPathValue("user", s.User) // for the delivery log
	d.Serve(w, r, h.st.Store(), st.f, delivery.Params{Kind: delivery.Progressive, Pace: d.Paces(delivery.Progressive)}, o)
}

// mp4Pacer enforces the playlist's rules on the body of a stitched file
// and records its delivery (an httpserve.Pacer and BodyEnder). It lets the
// body go in chunks of at most httpserve.MaxWrite bytes, never across the
// start of an item.
type mp4Pacer struct {
	h   *Handler
	ctx context.Context
	sid string
	st  *stitched
	// items are the session's (the stitched file, shared by the
	// sessions with the same media, does not know which are ads).
	items  []playlist.Item
	ranges [][2]int64 // the body's
	// checked is the item checked before the body, not checked again at
	// its first byte; -1 when none.
	checked int
	// cur is the item being sent (-1: none); from is where, in it, the
	// bytes not recorded yet begin; next is where to record them; written
	// whether something of this span was recorded.
	cur     int
	from    float64
	next    float64
	written bool
	// pos is the end of the last chunk allowed (-1 before the first);
	// last is its start: the bytes before it were written.
	pos, last int64
}

// Next implements httpserve.Pacer.
func (p *mp4Pacer) Next(ctx context.Context, off, n int64) (int64, error) {
	if p.pos >= 0 && off != p.pos {
		// The next part of a multipart body: the last chunk was written.
		p.record(p.pos)
		p.cur = -1
	}
	p.last = off
	n = min(n, httpserve.MaxWrite)
	st := p.st
	if off < st.bounds[0] {
		n = min(n, st.bounds[0]-off)
		p.pos = off + n
		return n, nil
	}
	k := st.item(off)
	if k != p.cur {
		if p.cur >= 0 {
			p.record(off) // to the end of the item before
		}
		if k != p.checked {
			if err := p.h.admit(ctx, p.sid, p.request(k, off)); err != nil {
				if errors.Is(err, errRefused) {
					p.h.log.Info("playback: stitched MP4 stopped by the playlist", "session", p.sid, "item", k, "err", err)
				}
				return 0, err
			}
		}
		p.checked = -1
		p.cur, p.from, p.written = k, st.time(k, off), false
		p.next = p.from + p.step(k)
	} else if t := st.time(k, off); t >= p.next || (!p.written && p.items[k].Kind == playlist.Ad) {
		// An ad's first chunk is recorded as soon as it was written: its
		// release counts from its first byte.
		p.record(off)
	}
	n = min(n, st.bounds[k+1]-off)
	p.pos = off + n
	return n, nil
}

// EndBody implements httpserve.BodyEnder: it records the bytes of the
// item being sent that were written.
func (p *mp4Pacer) EndBody(err error, clientGone bool) {
	if p.pos < 0 {
		return
	}
	if err == nil {
		p.record(p.pos)
	} else {
		p.record(p.last) // the last chunk may not have gone out whole
	}
}

// step is how much media of item k is sent between two records.
func (p *mp4Pacer) step(k int) float64 {
	if p.items[k].Kind == playlist.Ad {
		return min(recordStep, p.st.durs[k]/4)
	}
	return recordStep
}

// request is the span of item k that the body holds from byte off: to the
// end of the range holding off, or of the item.
func (p *mp4Pacer) request(k int, off int64) playlist.Request {
	end := p.st.bounds[k+1]
	for _, rg := range p.ranges {
		if rg[0] <= off && off < rg[1] {
			end = min(end, rg[1])
			break
		}
	}
	return playlist.Request{Item: k, Start: p.st.time(k, off), End: p.st.time(k, end), Primary: true}
}

// record records the delivery of the current item's bytes up to off (not
// included) that were not recorded yet.
func (p *mp4Pacer) record(off int64) {
	if p.cur < 0 {
		return
	}
	to := p.st.time(p.cur, off)
	if to <= p.from && p.written {
		return
	}
	to = max(to, p.from)
	req := playlist.Request{Item: p.cur, Start: p.from, End: to, Primary: true}
	// The response may be over: its context may be done.
	if err := p.h.opt.Sessions.Delivered(context.WithoutCancel(p.ctx), p.sid, req); err != nil {
		p.h.log.Warn("playback: record a delivery", "session", p.sid, "item", p.cur, "err", err)
	}
	p.from, p.written = to, true
	p.next = to + p.step(p.cur)
}
