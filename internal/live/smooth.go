package live

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/jitstream/jitstream/internal/build/smooth"
	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/vfile"
)

// Live Smooth Streaming (MS-SSTR) output, below /live/{user}/{name}/smooth/:
//
//	Manifest                                   the client manifest
//	QualityLevels({bitrate})/Fragments({type}={t})     a fragment
//	QualityLevels({bitrate})/FragmentInfo({type}={t})  its moof only (MS-SSTR 2.2.4,
//	                                           FragmentMetadataResponse), which
//	                                           dash.js polls while paused or seeking
//
// # Manifest
//
// While the view that the query asks for (see view: a sliding window,
// ?dvr=SECONDS, default 30 s; ?dvr=0 or ?type=event: from the start;
// ?vbegin=, ?vend=: a time-shift range) goes on, the manifest is live:
// IsLive="TRUE", Duration="0", LookaheadCount (SmoothLookahead) and
// DVRWindowLength (the window in the manifest TimeScale, 10 MHz; 0 when
// there is none, which MS-SSTR reads as unbounded). There is one
// StreamIndex per kind (video, audio), whose QualityLevels are the
// representations of that kind and whose c elements are the fragments of
// its first representation in the view (a window of at least three
// fragment durations, like the MPD), each with t and d in the
// StreamIndex's TimeScale, the track's own timescale. Fragments that never
// arrived are left out (the next c element has its own t). Once the view
// is complete (the stream has ended, or reached vend) the manifest is an
// on-demand one over it: no IsLive, LookaheadCount or DVRWindowLength,
// Duration set, the same times. dash.js (MssParser) plays such a manifest
// as static content whose timeline starts late ("delinearization"); a
// live client that loaded the manifest before the end keeps its URLs,
// which go on working.
//
// # Timeline
//
// Smooth times are the times of the stream's timeline (the decode times
// of its first encoder session; later sessions, after a reconnect, follow
// on, see Epoch) shifted by the stream's start (State.Start) since the
// Unix epoch, in each StreamIndex's timescale (the timescale of its first
// representation's first session; fragments of a session in another
// timescale are left out): absolute times, as MS-SSTR calls them. The
// shift is rounded down to a tick of each timescale, so tracks stay
// aligned to within a tick and no fragment looks available before it
// arrived. It matters to dash.js, which gives a live Smooth presentation
// an availabilityStartTime of 1970 and so reckons its distance to the
// live edge as the wall clock minus the playback position. Manifest t,
// fragment URLs, tfdt, tfxd and tfrf use these times.
//
// # Fragments
//
// A fragment is the stored CMAF fragment whose Smooth start time is t:
// its moof, decoded and re-encoded with mp4ff (tfdt set to the Smooth
// time; a tfxd box with the fragment's time and duration; a tfrf box with
// the time and duration of the fragments of the representation stored
// after it, at most SmoothLookahead of them, as the state has them when
// the request is answered; trun data offsets moved to the new moof), then
// the stored bytes from its mdat to the end, as a piece of the stored
// object (never copied). Boxes before the moof (styp, sidx, prft, emsg)
// and between moof and mdat are dropped. A stored fragment with more than
// one moof/mdat pair is refused.
//
// While live, every fragment carries a tfrf box, with fewer entries (none
// at the live edge) when fewer fragments follow yet: dash.js reports a
// fatal error for a live fragment without one. dash.js learns the next
// fragment only from the first tfrf entry, so a fragment requested before
// its successor exists would stall it; the answer for a fragment without
// a successor therefore waits (smoothWaitFor: at most one and a half
// fragment durations, or until the request is cancelled) for one to be
// stored, then answers with what it has.
//
// # Caching
//
// A fragment whose tfrf is final, because the SmoothLookahead fragments
// with the next sequence numbers follow it or the stream has ended, is
// immutable (CacheSegment). Any other one would change once more
// fragments arrive and gets a max-age of one second (SmoothCacheEdge).
// The manifest is cached like the HLS and DASH manifests (half a fragment
// duration).

// Live Smooth Streaming parameters.
const (
	// SmoothLookahead is the LookaheadCount of live manifests: the number
	// of following fragments that a fragment's tfrf box names.
	SmoothLookahead = 2
	// SmoothCacheEdge is the Cache-Control of a fragment whose tfrf box
	// may still grow.
	SmoothCacheEdge = "public, max-age=1"
	// maxMoofBytes bounds the moof of a stored fragment.
	maxMoofBytes = 16 << 20
	// maxInitBytes bounds a stored init segment.
	maxInitBytes = 4 << 20
	// smoothPoll is how often the answer for a fragment at the live edge
	// looks for its successor.
	smoothPoll = 100 * time.Millisecond
)

// registerSmooth mounts the live Smooth Streaming routes on mux.
func (s *Service) registerSmooth(mux Mux) {
	mux.HandleFunc("GET /live/{user}/{name}/smooth/{path...}", s.serveSmooth)
}

// serveSmooth answers a request below smooth/: the manifest or a fragment.
func (s *Service) serveSmooth(w http.ResponseWriter, r *http.Request) {
	p := r.PathValue("path")
	if p == "Manifest" {
		s.serveSmoothManifest(w, r)
		return
	}
	info := false
	if a, b, ok := strings.Cut(p, ")/FragmentInfo("); ok {
		p, info = a+")/Fragments("+b, true
	}
	bitrate, typ, start, err := smooth.ParseFragmentPath(p)
	if err != nil {
		s.failPlayback(w, r, fmt.Errorf("%w: %w", errNoStream, err))
		return
	}
	s.serveSmoothFragment(w, r, bitrate, typ, start, info)
}

func (s *Service) serveSmoothManifest(w http.ResponseWriter, r *http.Request) {
	st, v, ok := s.manifestState(w, r)
	if !ok {
		return
	}
	b, err := s.smoothManifest(r.Context(), st, v)
	if err != nil {
		s.failPlayback(w, r, err)
		return
	}
	s.serveManifest(w, r, st, "Manifest", smooth.ManifestContentType, b)
}

// The client manifest (MS-SSTR 2.2.2), attributes in field order.
type smoothMediaXML struct {
	XMLName         xml.Name                `xml:"SmoothStreamingMedia"`
	MajorVersion    int                     `xml:",attr"`
	MinorVersion    int                     `xml:",attr"`
	TimeScale       int64                   `xml:",attr"`
	Duration        int64                   `xml:",attr"`
	IsLive          string                  `xml:",attr,omitempty"`
	LookaheadCount  *int                    `xml:",attr"`
	DVRWindowLength *int64                  `xml:",attr"`
	Streams         []smooth.StreamIndexXML `xml:"StreamIndex"`
}

// smoothChunk is a stored fragment on the Smooth timeline of its
// representation.
type smoothChunk struct {
	t, d int64 // Smooth time and duration, in the StreamIndex timescale
	frag Frag
	// gapAfter is set when a fragment numbered right after it is missing
	// (it may still arrive).
	gapAfter bool
}

// smoothTimeline is a representation's fragments on the Smooth timeline
// (see Timeline): the stored fragments of entries(r) whose epoch has the
// timescale ts of the first one (an epoch in another timescale cannot
// join a StreamIndex's timeline and is left out).
type smoothTimeline struct {
	ts     uint32
	chunks []smoothChunk
}

// smoothOffset is the Smooth time of the stream's timeline's 0 in
// timescale ts: start, the stream's start, since the Unix epoch, rounded
// down to a tick of ts (0 for a start before the epoch).
func smoothOffset(start time.Time, ts uint32) int64 {
	if start.IsZero() || start.Unix() < 0 {
		return 0
	}
	// Nanoseconds times ts stays below 2^63.
	return start.Unix()*int64(ts) + int64(start.Nanosecond())*int64(ts)/int64(time.Second)
}

// smoothTimelineOf places r's fragments on the Smooth timeline of st.
func smoothTimelineOf(st *State, r *Rep) smoothTimeline {
	es := entries(r)
	if len(es) == 0 {
		return smoothTimeline{}
	}
	tl := smoothTimeline{ts: es[0].ts}
	off := smoothOffset(st.Start, tl.ts)
	k := 0 // r.Frags and es are both in (epoch, seq) order
	for _, e := range es {
		if e.gap {
			if n := len(tl.chunks); n > 0 {
				tl.chunks[n-1].gapAfter = true
			}
			continue
		}
		for k < len(r.Frags) && (r.Frags[k].Epoch != e.epoch || r.Frags[k].Seq != e.seq) {
			k++
		}
		if k == len(r.Frags) {
			break
		}
		if e.ts != tl.ts {
			continue
		}
		// e.start is (t + the epoch's offset) / ts: an integer in ts.
		t := off + int64(math.Round(e.start*float64(tl.ts)))
		tl.chunks = append(tl.chunks, smoothChunk{t: t, d: e.d, frag: r.Frags[k]})
	}
	return tl
}

// find returns the index of the chunk whose Smooth start time is t.
func (tl smoothTimeline) find(t uint64) (int, bool) {
	if t > math.MaxInt64 {
		return 0, false
	}
	return slices.BinarySearchFunc(tl.chunks, int64(t), func(c smoothChunk, t int64) int { return cmp.Compare(c.t, t) })
}

// final reports whether the tfrf of chunk i can no longer change: the
// SmoothLookahead fragments numbered after it follow it, or the stream
// has ended.
func (tl smoothTimeline) final(st *State, i int) bool {
	if st.Ended {
		return true
	}
	if i+SmoothLookahead >= len(tl.chunks) {
		return false
	}
	for _, c := range tl.chunks[i : i+SmoothLookahead] {
		if c.gapAfter {
			return false
		}
	}
	return true
}

// bitrate is the bit rate that names a representation in the manifest
// and in fragment URLs: that of its first fragment, which stays the same
// while the stream goes on (Rep.Bandwidth, a maximum, grows), at least 1.
func (tl smoothTimeline) bitrate() int64 {
	if len(tl.chunks) == 0 || tl.chunks[0].d <= 0 {
		return 1
	}
	c := tl.chunks[0]
	return max(c.frag.Size*8*int64(tl.ts)/c.d, 1)
}

// smoothManifest is the Smooth client manifest of st in view v; see the
// Manifest section above.
func (s *Service) smoothManifest(ctx context.Context, st *State, v view) ([]byte, error) {
	doc := smoothMediaXML{MajorVersion: 2, MinorVersion: 2, TimeScale: smooth.ManifestTimeScale}
	minWindow := 3 * st.fragDuration()
	// The view is complete when every StreamIndex's is (see view.pick).
	complete := true
	for _, kind := range []media.Kind{media.KindVideo, media.KindAudio} {
		reps := st.playable(kind)
		if len(reps) == 0 {
			continue
		}
		typ := string(kind)
		tls := make([]smoothTimeline, len(reps))
		for i, r := range reps {
			tls[i] = smoothTimelineOf(st, r)
		}
		si := smooth.StreamIndexXML{Type: typ, Name: typ, QualityLevels: len(reps), TimeScale: tls[0].ts,
			URL: "QualityLevels({bitrate})/Fragments(" + typ + "={start time})"}
		for i, r := range reps {
			l, err := s.smoothLevel(ctx, r)
			if err != nil {
				return nil, err
			}
			ql := smooth.QualityLevelXML{Index: i, Bitrate: tls[i].bitrate(), FourCC: l.FourCC, CodecPrivateData: l.CodecPrivateData,
				SamplingRate: l.SamplingRate, Channels: l.Channels, BitsPerSample: l.BitsPerSample, PacketSize: l.PacketSize, AudioTag: l.AudioTag}
			if kind == media.KindVideo {
				ql.MaxWidth, ql.MaxHeight = r.Width, r.Height
				si.MaxWidth, si.MaxHeight = max(si.MaxWidth, r.Width), max(si.MaxHeight, r.Height)
			}
			si.Levels = append(si.Levels, ql)
		}
		si.DisplayWidth, si.DisplayHeight = si.MaxWidth, si.MaxHeight
		// The first representation's chunks in the view.
		tl := tls[0]
		off := smoothOffset(st.Start, tl.ts)
		spans := make([]span, len(tl.chunks))
		for k, c := range tl.chunks {
			spans[k] = span{float64(c.t-off) / float64(tl.ts), float64(c.t+c.d-off) / float64(tl.ts)}
		}
		i, j, c := v.pick(st, spans, minWindow)
		if i >= j {
			continue
		}
		complete = complete && c
		cs := tl.chunks[i:j]
		for _, c := range cs {
			si.C = append(si.C, smooth.ChunkXML{T: c.t, D: c.d})
		}
		si.Chunks = len(si.C)
		doc.Duration = max(doc.Duration, media.Rescale(cs[len(cs)-1].t+cs[len(cs)-1].d-cs[0].t, tl.ts, smooth.ManifestTimeScale))
		doc.Streams = append(doc.Streams, si)
	}
	if len(doc.Streams) == 0 {
		return nil, fmt.Errorf("%w: %s/%s has no fragment in the requested time range (yet)", errNoStream, st.User, st.Name)
	}
	if !complete {
		w := int64(0)
		if v.dvr > 0 {
			w = int64(max(v.dvr, minWindow) * smooth.ManifestTimeScale)
		}
		la := SmoothLookahead
		doc.IsLive, doc.LookaheadCount, doc.DVRWindowLength, doc.Duration = "TRUE", &la, &w, 0
	}
	out, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("live: encode the Smooth manifest of %s/%s: %w", st.User, st.Name, err)
	}
	return append(append([]byte(xml.Header), out...), '\n'), nil
}

// smoothLevel reads the init segment of r and describes its codec.
func (s *Service) smoothLevel(ctx context.Context, r *Rep) (smooth.Level, error) {
	b, err := readObject(ctx, s.lib.Store(), r.Init, maxInitBytes)
	if err != nil {
		return smooth.Level{}, fmt.Errorf("live: init segment of %s: %w", r.Name, err)
	}
	f, err := mp4.DecodeFile(bytes.NewReader(b))
	if err != nil {
		return smooth.Level{}, fmt.Errorf("live: decode the init segment of %s: %w", r.Name, err)
	}
	if f.Init == nil || f.Init.Moov == nil || f.Init.Moov.Trak == nil || f.Init.Moov.Trak.Mdia == nil ||
		f.Init.Moov.Trak.Mdia.Minf == nil || f.Init.Moov.Trak.Mdia.Minf.Stbl == nil ||
		f.Init.Moov.Trak.Mdia.Minf.Stbl.Stsd == nil || len(f.Init.Moov.Trak.Mdia.Minf.Stbl.Stsd.Children) == 0 {
		return smooth.Level{}, fmt.Errorf("live: init segment of %s has no sample description", r.Name)
	}
	var entry bytes.Buffer
	if err := f.Init.Moov.Trak.Mdia.Minf.Stbl.Stsd.Children[0].Encode(&entry); err != nil {
		return smooth.Level{}, fmt.Errorf("live: sample entry of %s: %w", r.Name, err)
	}
	t := &media.Track{ID: 1, Kind: media.Kind(r.Kind), Codec: r.Codec, Timescale: r.Timescale,
		Width: r.Width, Height: r.Height, Channels: r.Channels, SampleEntries: [][]byte{entry.Bytes()}}
	l, err := smooth.Describe(t)
	if err != nil {
		return smooth.Level{}, fmt.Errorf("live: representation %s: %w", r.Name, err)
	}
	return l, nil
}

// readObject reads the object key, at most limit bytes.
func readObject(ctx context.Context, st store.Store, key string, limit int64) ([]byte, error) {
	rc, err := st.Get(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", key, limit)
	}
	return b, nil
}

// smoothFrag finds the representation of kind typ named by bitrate and
// the index of its fragment whose Smooth start time is start.
func smoothFrag(st *State, bitrate int64, typ string, start uint64) (*Rep, smoothTimeline, int, error) {
	for _, r := range st.playable(media.Kind(typ)) {
		tl := smoothTimelineOf(st, r)
		if tl.bitrate() != bitrate {
			continue
		}
		i, ok := tl.find(start)
		if !ok {
			return nil, tl, 0, fmt.Errorf("%w: no %s fragment at %d of quality level %d", errNoStream, typ, start, bitrate)
		}
		return r, tl, i, nil
	}
	return nil, smoothTimeline{}, 0, fmt.Errorf("%w: no %s quality level %d", errNoStream, typ, bitrate)
}

// smoothWaitFor is how long the answer for a fragment without a
// successor waits for one: one and a half fragment durations.
func smoothWaitFor(st *State) time.Duration {
	return time.Duration(1.5 * st.fragDuration() * float64(time.Second))
}

// serveSmoothFragment answers a fragment (or, for info, its moof only).
func (s *Service) serveSmoothFragment(w http.ResponseWriter, r *http.Request, bitrate int64, typ string, start uint64, info bool) {
	ctx := r.Context()
	user, name := r.PathValue("user"), r.PathValue("name")
	st, err := s.State(ctx, user, name)
	if err != nil {
		s.failPlayback(w, r, err)
		return
	}
	rep, tl, i, err := smoothFrag(st, bitrate, typ, start)
	if err != nil {
		s.failPlayback(w, r, err)
		return
	}
	// At the live edge, wait a while for the successor (see Fragments).
	if !st.Ended && i == len(tl.chunks)-1 {
		deadline := time.Now().Add(smoothWaitFor(st))
		tick := time.NewTicker(smoothPoll)
		defer tick.Stop()
		for time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			next, err := s.State(ctx, user, name)
			if err != nil {
				s.failPlayback(w, r, err)
				return
			}
			nr := next.rep(rep.Name)
			if nr == nil {
				continue
			}
			ntl := smoothTimelineOf(next, nr)
			if j, ok := ntl.find(start); ok && (next.Ended || j < len(ntl.chunks)-1) {
				st, tl, i = next, ntl, j
				break
			}
		}
	}
	c := tl.chunks[i]
	followers := tl.chunks[i+1 : min(i+1+SmoothLookahead, len(tl.chunks))]
	moof, mdatOff, err := smoothMoof(ctx, s.lib.Store(), c, followers)
	if err != nil {
		s.failPlayback(w, r, fmt.Errorf("live: Smooth fragment %d of %s/%s %s: %w", c.frag.Seq, user, name, rep.Name, err))
		return
	}
	pieces := []vfile.Piece{vfile.Bytes(moof)}
	if !info {
		pieces = append(pieces, vfile.Stored(c.frag.Key, mdatOff, c.frag.Size-mdatOff))
	}
	ctype := "video/mp4"
	if rep.Kind == string(media.KindAudio) {
		ctype = "audio/mp4"
	}
	cc := SmoothCacheEdge
	if tl.final(st, i) {
		cc = CacheSegment
	}
	file := vfile.New("Fragments", ctype, time.Time{},
		vfile.ETag("live smooth", c.frag.Key, strconv.FormatBool(info), string(moof)), pieces)
	httpserve.ServeFileWith(w, r, s.lib.Store(), file, httpserve.Options{CacheControl: cc, Logger: s.log})
}

// errFragmentLayout is a stored fragment that cannot be served as a
// Smooth fragment.
var errFragmentLayout = errors.New("unsupported fragment layout")

// smoothMoof reads the boxes of stored fragment f up to its mdat and
// returns its moof rewritten for Smooth Streaming (see Fragments), whose
// time offset is off, with a tfrf naming followers, and the offset of the
// mdat in the stored object, from which the rest is served as stored.
func smoothMoof(ctx context.Context, st store.Store, c smoothChunk, followers []smoothChunk) ([]byte, int64, error) {
	f := c.frag
	rc, err := st.Get(ctx, f.Key, 0, f.Size)
	if err != nil {
		return nil, 0, err
	}
	defer rc.Close()
	br := bufio.NewReader(rc)
	var (
		moofBytes []byte
		moofOff   int64 = -1
		pos       int64
		hdr       [16]byte
	)
	for {
		if _, err := io.ReadFull(br, hdr[:8]); err != nil {
			return nil, 0, fmt.Errorf("%w: box at %d: %w", errFragmentLayout, pos, err)
		}
		size, hl := int64(binary.BigEndian.Uint32(hdr[:4])), int64(8)
		typ := string(hdr[4:8])
		switch size {
		case 1:
			if _, err := io.ReadFull(br, hdr[8:16]); err != nil {
				return nil, 0, fmt.Errorf("%w: box at %d: %w", errFragmentLayout, pos, err)
			}
			size, hl = int64(binary.BigEndian.Uint64(hdr[8:16])), 16
		case 0:
			size = f.Size - pos
		}
		if size < hl || pos+size > f.Size {
			return nil, 0, fmt.Errorf("%w: %s box of %d bytes at %d in %d", errFragmentLayout, typ, size, pos, f.Size)
		}
		if typ == "mdat" {
			if moofOff < 0 {
				return nil, 0, fmt.Errorf("%w: mdat before a moof", errFragmentLayout)
			}
			if pos+size != f.Size {
				return nil, 0, fmt.Errorf("%w: more boxes after the first mdat (several moof/mdat pairs?)", errFragmentLayout)
			}
			b, err := rewriteMoof(moofBytes, moofOff, pos, hl, c, followers)
			return b, pos, err
		}
		if typ == "moof" {
			if moofOff >= 0 {
				return nil, 0, fmt.Errorf("%w: two moof boxes before an mdat", errFragmentLayout)
			}
			if size > maxMoofBytes {
				return nil, 0, fmt.Errorf("%w: moof of %d bytes", errFragmentLayout, size)
			}
			moofBytes = make([]byte, size)
			copy(moofBytes, hdr[:hl])
			if _, err := io.ReadFull(br, moofBytes[hl:]); err != nil {
				return nil, 0, fmt.Errorf("read the moof: %w", err)
			}
			moofOff = pos
		} else if _, err := br.Discard(int(size - hl)); err != nil {
			return nil, 0, fmt.Errorf("%w: skip %s: %w", errFragmentLayout, typ, err)
		}
		pos += size
	}
}

// rewriteMoof re-encodes the moof b (at moofOff in the stored object,
// whose mdat is at mdatOff with a header of mdatHdr bytes) as the moof of
// the Smooth fragment of chunk c, whose tfrf names followers (see
// smooth.RewriteCMAF).
func rewriteMoof(b []byte, moofOff, mdatOff, mdatHdr int64, c smoothChunk, followers []smoothChunk) ([]byte, error) {
	la := make([]smooth.Lookahead, len(followers))
	for k, n := range followers {
		la[k] = smooth.Lookahead{T: uint64(n.t), D: uint64(n.d)}
	}
	l := smooth.CMAFLayout{MoofOff: moofOff, MoofSize: int64(len(b)), MdatOff: mdatOff, MdatHdr: mdatHdr, Size: c.frag.Size}
	return smooth.RewriteCMAF(b, l, uint64(c.t), uint64(c.d), 0, la)
}
