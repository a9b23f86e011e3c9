package outputs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	mp4build "github.com/jitstream/jitstream/internal/build/mp4"
	"github.com/jitstream/jitstream/internal/delivery"
	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/transcode"
	"github.com/jitstream/jitstream/internal/vfile"
)

// Rendition files. With a transcoder (SetRenditions), every asset with
// video has, beside its consolidated MP4, one MP4 per transcoded rendition
// of its first video track (transcode.Renditions of the ladder), named
// like the consolidated file with the rendition's name added:
//
//	ID.480p.mp4   the 480p rendition's video and the asset's first audio
//	              track (its samples as stored)
//
// The video is the transcoder's: segment n of the file is the rendition's
// segment n, the same bytes that HLS and DASH serve (the same cache, see
// transcode.CachePrefix), so a rendition already watched over HLS downloads
// at once, and a download leaves the rendition cached for the players.
//
// A rendition file has two forms:
//
//   - While some segment of the rendition is not in the transcoder's cache,
//     GET answers a fragmented MP4 that plays while it downloads (Stream):
//     200 without Content-Length (chunked), Accept-Ranges: none,
//     Cache-Control: no-store, no ETag or Last-Modified, and a Range
//     header is ignored (the whole body, 200), as nginx does for a
//     response whose length it does not know: 416 would claim the range
//     cannot be satisfied, and a client resuming from an offset gets the
//     whole file rather than bytes of another encoding. The body is an init
//     segment (the rendition's video trak and the audio trak), then, for
//     each segment n, the rendition's fragment n (transcoded now if
//     needed, the next ones prefetched) and the audio fragment of segment
//     n, sequence numbers counting up from 1, each written and flushed as
//     soon as it is ready. Open, which returns virtual files only, fails
//     with ErrIncomplete: WebDAV (internal/dav, whose clients want sizes)
//     answers 404 for it.
//   - Once every segment (and the init segment) is cached, the file is an
//     ordinary virtual file like the consolidated MP4: a progressive MP4
//     (moov first) whose video samples are byte ranges of the cached
//     segment objects, with an exact size, ETag and Last-Modified (of the
//     newest segment object), byte ranges and pacing. It is built once
//     (reading the moof of each segment object) and cached. WebDAV does
//     not list rendition files, but answers PROPFIND, GET and HEAD of a
//     complete one by its name.
//
// Eviction. The transcoder's cache deletes the least recently used
// segments beyond its budget, maybe segments that a cached progressive
// file reads. Every Open of such a file marks its segment objects recently
// used (transcode.Transcoder.Touch: a file being downloaded is evicted
// last) and checks that they are all still there with their sizes; when
// one is gone (or was made again), the cached file is dropped and the
// request gets the fragmented form, which transcodes what is missing. An
// object evicted during a response (a long paced download while other
// renditions fill the cache) fails that response cleanly, as any missing
// stored piece does (httpserve: 500 before the status line on the local
// store, which opens the objects first, else a truncated body and a
// warning in the log); the client's next request then gets the fragmented
// form. The segment boundaries are those of media.DefaultSegmentDuration,
// the streams' default, so that both share the cache.
//
// Names. ID.480p.mp4 is the 480p rendition of ID: an asset id holds no
// '.', so the name is never another asset's file, and a signed link to
// asset ID grants it (internal/auth reads the asset of a file name up to
// its first '.').

// KindRendition is the kind of rendition files.
const KindRendition Kind = "rendition"

// ErrIncomplete is returned (wrapped) by Open for a rendition file whose
// segments are not all transcoded yet: it has no size, so it is not a
// virtual file; OpenDelivery returns its Stream. It wraps ErrNotFound.
var ErrIncomplete = fmt.Errorf("%w: rendition not transcoded whole yet (it streams as a fragmented MP4 without size)", ErrNotFound)

// RenditionOptions configure the rendition files (SetRenditions).
type RenditionOptions struct {
	// Transcoder makes the renditions; nil offers none.
	Transcoder *transcode.Transcoder
	// Ladder is the renditions' ladder: transcode.DefaultLadder() when
	// nil.
	Ladder []transcode.Rung
	// Logger receives the failures of builds and streams: slog.Default()
	// when nil.
	Logger *slog.Logger
}

// SetRenditions offers the rendition files of opt's transcoder in the
// file-system view. Call it before serving, not concurrently with other
// methods.
func (o *Outputs) SetRenditions(opt RenditionOptions) {
	if opt.Ladder == nil {
		opt.Ladder = transcode.DefaultLadder()
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	o.rend = opt
}

// renditionSegments is the segment duration of the renditions: the
// streams' default (streams.Options.SegmentDuration), so that a rendition
// file and the HLS and DASH renditions share the transcoder's cache.
const renditionSegments = media.DefaultSegmentDuration

// rendition is a rendition file, resolved.
type rendition struct {
	a     *library.Asset
	ix    *media.Index
	src   transcode.Source
	r     transcode.Rendition
	audio *media.Track // nil without audio
	name  string       // the file's name
}

// key is the cache key of the complete file.
func (t *rendition) key() string {
	return fmt.Sprintf("%s/%s/%s/rendition/%s/complete", t.a.User, t.a.ID, t.a.Rev, t.r.ID())
}

// splitRendition splits the stem of a rendition file's name, "ID.480p",
// into the asset id and the rendition's name.
func splitRendition(stem string) (id, name string, ok bool) {
	i := strings.LastIndexByte(stem, '.')
	if i <= 0 || i == len(stem)-1 {
		return "", "", false
	}
	return stem[:i], stem[i+1:], true
}

// renditionName is the file name of rendition r of asset id.
func renditionName(id string, r transcode.Rendition) string {
	return id + "." + r.Name + SuffixConsolidated
}

// renditionsOf returns the renditions offered for ix: none without a
// transcoder or video.
func (o *Outputs) renditionsOf(ix *media.Index) []transcode.Rendition {
	if o.rend.Transcoder == nil || ix.Video() == nil {
		return nil
	}
	return transcode.Renditions(o.rend.Ladder, ix.Video())
}

// newRendition resolves rendition r of asset a (index ix).
func (o *Outputs) newRendition(a *library.Asset, ix *media.Index, r transcode.Rendition) *rendition {
	v := ix.Video()
	return &rendition{a: a, ix: ix, r: r, audio: ix.Audio(), name: renditionName(a.ID, r),
		src: transcode.Source{
			// The key of internal/streams for the whole asset, so that
			// both share the cache.
			Key:   a.User + "/" + a.ID + "/" + a.Rev + "/",
			Index: ix, Track: v, Segments: ix.Segments(renditionSegments), Store: o.lib.Store(),
		}}
}

// resolveRendition resolves stem ("ID.480p", not an asset's id) to a
// rendition file: ok is false when it names none (no transcoder, no such
// asset), else err tells what is wrong (an asset without that rendition).
func (o *Outputs) resolveRendition(ctx context.Context, user, stem string) (t *rendition, ok bool, err error) {
	id, name, ok := splitRendition(stem)
	if o.rend.Transcoder == nil || !ok {
		return nil, false, nil
	}
	a, err := o.lib.Asset(ctx, user, id)
	if errors.Is(err, library.ErrUnknownAsset) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, err
	}
	ix, err := o.lib.Index(ctx, a)
	if err != nil {
		return nil, true, err
	}
	rs := o.renditionsOf(ix)
	names := make([]string, len(rs))
	for i, r := range rs {
		if r.Name == name {
			return o.newRendition(a, ix, r), true, nil
		}
		names[i] = r.Name
	}
	if len(rs) == 0 {
		return nil, true, fmt.Errorf("%w: %s%s: asset %s has no transcoded renditions", ErrNotFound, stem, SuffixConsolidated, id)
	}
	return nil, true, fmt.Errorf("%w: %s%s: asset %s has no rendition %q (it has %s)", ErrNotFound, stem, SuffixConsolidated,
		id, name, strings.Join(names, ", "))
}

// openRendition opens rendition file t: its complete form when every
// segment is cached, else its Stream.
func (o *Outputs) openRendition(ctx context.Context, t *rendition, q url.Values) (*vfile.File, *Stream, error) {
	for _, p := range []string{"start", "end", "rate", "pos"} {
		if q.Has(p) {
			return nil, nil, fmt.Errorf("%w: %s is a rendition file, which takes no %s (clips and trick play are of %s%s)",
				ErrBadQuery, t.name, p, t.a.ID, SuffixConsolidated)
		}
	}
	if f, ok := o.files.Get(t.key()); ok {
		objs := renditionObjects(f)
		if o.rend.Transcoder.Touch(ctx, objs) && o.stillStored(ctx, t, objs) {
			return f, nil, nil
		}
		// A segment was evicted (or made again): the file is no more.
		o.files.Remove(t.key())
		o.setVerified(t.key(), time.Time{})
		o.rend.Logger.Info("outputs: rendition file dropped: a segment left the transcoder's cache", "user", t.a.User, "file", t.name)
	}
	f, cr, err := o.complete(ctx, t)
	if err != nil {
		return nil, nil, err
	}
	if f != nil {
		return f, nil, nil
	}
	return nil, &Stream{Name: t.name, o: o, t: t, cached: cr.Count()}, nil
}

// complete returns rendition file t in its complete form, from the cache
// or built, or, when some segment is not cached, nil and what is cached.
// A complete file that cannot be built (an object evicted meanwhile) is
// logged and reported as not complete.
func (o *Outputs) complete(ctx context.Context, t *rendition) (*vfile.File, *transcode.CachedRendition, error) {
	if f, ok := o.files.Get(t.key()); ok {
		return f, nil, nil
	}
	cr, err := o.rend.Transcoder.Objects(ctx, t.src, t.r)
	if err != nil {
		return nil, nil, err
	}
	if !cr.Complete() {
		return nil, cr, nil
	}
	f, err := o.cached(ctx, t.key(), func() (*vfile.File, error) {
		f, err := o.buildComplete(ctx, t, cr)
		if err == nil {
			o.setVerified(t.key(), time.Now())
		}
		return f, err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, err
		}
		o.rend.Logger.Warn("outputs: rendition file not built, streamed instead", "user", t.a.User, "file", t.name, "err", err)
		return nil, cr, nil
	}
	return f, cr, nil
}

// verifyInterval is how often, at most, the segment objects of a complete
// rendition file being opened are checked to be in the store (one List):
// Touch sees what this node's cache evicted at once, this what other
// nodes sharing the store evicted.
var verifyInterval = 10 * time.Second

// stillStored reports whether the objects objs of rendition file t are
// all in the store with their sizes, checking with one List when they
// were not found there within verifyInterval. A store that cannot list
// gets the benefit of the doubt (the response then fails if they are
// gone).
func (o *Outputs) stillStored(ctx context.Context, t *rendition, objs []transcode.SegmentObject) bool {
	key := t.key()
	o.mu.Lock()
	last, ok := o.verified[key]
	o.mu.Unlock()
	if ok && time.Since(last) < verifyInterval {
		return true
	}
	cr, err := o.rend.Transcoder.Objects(ctx, t.src, t.r)
	if err != nil {
		return true
	}
	have := make(map[string]int64, len(cr.Segments))
	for _, s := range cr.Segments {
		have[s.Key] = s.Size
	}
	for _, obj := range objs {
		if size, ok := have[obj.Key]; !ok || size != obj.Size {
			return false
		}
	}
	o.setVerified(key, time.Now())
	return true
}

// setVerified records when the objects of the complete file key were
// found in the store; the zero time forgets it.
func (o *Outputs) setVerified(key string, t time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if t.IsZero() {
		delete(o.verified, key)
		return
	}
	if o.verified == nil || len(o.verified) >= 4096 {
		o.verified = map[string]time.Time{} // files dropped from the cache leave theirs
	}
	o.verified[key] = t
}

// renditionObjects returns the transcoder's objects that f reads: its
// stored pieces under transcode.CachePrefix, each object's size being the
// end of its last piece (the samples fill a segment's mdat, which ends the
// object: buildComplete checks it).
func renditionObjects(f *vfile.File) []transcode.SegmentObject {
	var out []transcode.SegmentObject
	at := map[string]int{}
	for _, p := range f.Pieces {
		if !p.IsStored() || !strings.HasPrefix(p.Object, transcode.CachePrefix) {
			continue
		}
		i, ok := at[p.Object]
		if !ok {
			i = len(out)
			at[p.Object] = i
			out = append(out, transcode.SegmentObject{Key: p.Object})
		}
		out[i].Size = max(out[i].Size, p.Off+p.Len)
	}
	return out
}

// renditionVideo returns the video track of rendition file t: the source
// track with the rendition's size, codec and sample entry, and samples
// (which the caller sets).
func renditionVideo(t *rendition, entry []byte) *media.Track {
	v := *t.src.Track
	v.Format, v.Codec = "avc1", t.r.Codec
	v.Width, v.Height = uint32(t.r.Width), uint32(t.r.Height)
	v.TkhdWidth, v.TkhdHeight = uint32(t.r.Width)<<16, uint32(t.r.Height)<<16
	v.SampleEntries = [][]byte{entry}
	v.Rendition = ""
	v.Samples = media.Samples{}
	return &v
}

// trackSpan returns the samples [first, end) of track tr in segment seg of
// ix, by the rule of mp4build.MediaSegment.
func trackSpan(ix *media.Index, tr *media.Track, seg media.Segment) (first, end int) {
	ref := ix.Reference()
	first = tr.Find(media.Rescale(seg.Start, ref.Timescale, tr.Timescale))
	end = tr.Samples.Len()
	if seg.End < ref.Duration() {
		end = tr.Find(media.Rescale(seg.End, ref.Timescale, tr.Timescale))
	}
	return first, max(first, end)
}

// buildComplete builds the progressive MP4 of rendition file t, every
// object of which cr says is cached. Its index has one chapter per
// segment object (the video samples of segment n, at their offsets in the
// object) followed by the chapters of the audio samples of segment n (in
// the originals), so that the file's media is interleaved segment by
// segment.
func (o *Outputs) buildComplete(ctx context.Context, t *rendition, cr *transcode.CachedRendition) (*vfile.File, error) {
	init, ok := o.rend.Transcoder.CachedInit(ctx, t.src, t.r)
	if !ok {
		return nil, fmt.Errorf("outputs: %s: the init segment is no longer cached", t.name)
	}
	entry, err := transcode.InitSampleEntry(init)
	if err != nil {
		return nil, fmt.Errorf("outputs: %s: %w", t.name, err)
	}
	ref := t.ix.Reference()
	src := t.src.Track
	v := renditionVideo(t, entry)
	vs := &v.Samples
	var as *media.Samples // the audio track's, as stored
	if t.audio != nil {
		as = &t.audio.Samples
	}
	var (
		chapters       []media.Chapter
		vStart, aStart []int
		aDesc          []uint32
		vN, aN         int
		anyCTO, nonKey bool
	)
	lastDesc := uint32(1)
	if as != nil && len(as.ChapterDesc) > 0 {
		lastDesc = as.ChapterDesc[0]
	}
	add := func(ch media.Chapter, vAdd, aAdd int, desc uint32) {
		chapters = append(chapters, ch)
		vStart, aStart, aDesc = append(vStart, vN), append(aStart, aN), append(aDesc, desc)
		vN, aN = vN+vAdd, aN+aAdd
	}
	ids := []string{"rendition", t.a.Rev, t.r.ID()}
	for n, seg := range t.src.Segments {
		obj := cr.Segments[n]
		fr, err := o.readFragment(ctx, init, obj)
		if err != nil {
			return nil, fmt.Errorf("outputs: %s: segment %d: %w", t.name, n, err)
		}
		first, end := trackSpan(t.ix, src, seg)
		s := &fr.Tracks[0].Samples
		switch {
		case s.Len() != end-first:
			return nil, fmt.Errorf("outputs: %s: segment %d (%s) has %d samples, the source's %d", t.name, n, obj.Key, s.Len(), end-first)
		case fr.BaseTime[0] != src.Samples.DTS[first]:
			return nil, fmt.Errorf("outputs: %s: segment %d (%s) starts at %d, the source's at %d", t.name, n, obj.Key, fr.BaseTime[0], src.Samples.DTS[first])
		}
		var last int64
		for i := range s.Len() {
			last = max(last, s.Offset[i]+int64(s.Size[i]))
			anyCTO = anyCTO || s.CompOffset(i) != 0
			nonKey = nonKey || !s.IsSync(i)
			vs.Offset = append(vs.Offset, s.Offset[i])
			vs.Size = append(vs.Size, s.Size[i])
			vs.Dur = append(vs.Dur, s.Dur[i])
			vs.CTO = append(vs.CTO, s.CompOffset(i))
			vs.Sync = append(vs.Sync, s.IsSync(i))
		}
		if last != obj.Size {
			return nil, fmt.Errorf("outputs: %s: segment %d (%s): samples end at %d, the object at %d", t.name, n, obj.Key, last, obj.Size)
		}
		start := time.Duration(float64(seg.Start) / float64(ref.Timescale) * float64(time.Second))
		dur := time.Duration(float64(seg.End-seg.Start) / float64(ref.Timescale) * float64(time.Second))
		add(media.Chapter{Object: obj.Key, Name: fmt.Sprintf("%s segment %d", t.r.Name, n), Size: obj.Size, Start: start, Duration: dur},
			s.Len(), 0, lastDesc)
		ids = append(ids, obj.Key, strconv.FormatInt(obj.Size, 10), strconv.FormatInt(obj.ModTime.UnixNano(), 10))
		if as == nil {
			continue
		}
		// The audio of the segment, one chapter per original it lies in.
		i, end := trackSpan(t.ix, t.audio, seg)
		if i != aN {
			return nil, fmt.Errorf("outputs: %s: segment %d: audio samples from %d, want %d", t.name, n, i, aN)
		}
		c := 0
		for i < end {
			for i >= as.ChapterStart[c+1] {
				c++
			}
			j := min(end, as.ChapterStart[c+1])
			lastDesc = as.ChapterDesc[c]
			ch := t.ix.Chapters[c]
			add(media.Chapter{Object: ch.Object, Name: ch.Name, Size: ch.Size, Start: start, Duration: dur}, 0, j-i, lastDesc)
			i = j
		}
	}
	vStart, aStart = append(vStart, vN), append(aStart, aN)
	if !anyCTO {
		vs.CTO = nil
	}
	if !nonKey {
		vs.Sync = nil
	}
	vs.ChapterStart = vStart
	vs.ChapterDesc = make([]uint32, len(chapters))
	for i := range vs.ChapterDesc {
		vs.ChapterDesc[i] = 1
	}
	vs.Derive()
	tracks := []*media.Track{v}
	if as != nil {
		if aN != as.Len() {
			return nil, fmt.Errorf("outputs: %s: the segments hold %d audio samples of %d", t.name, aN, as.Len())
		}
		a := *t.audio
		a.Samples = *as
		a.Samples.ChapterStart, a.Samples.ChapterDesc = aStart, aDesc
		tracks = append(tracks, &a)
		slices.SortFunc(tracks, func(x, y *media.Track) int { return int(x.ID) - int(y.ID) })
	}
	ix := &media.Index{Created: t.ix.Created, Chapters: chapters, Tracks: tracks}
	f, err := mp4build.Progressive(ix, mp4build.Selection{Identity: vfile.ETag(ids...)})
	if err != nil {
		return nil, fmt.Errorf("outputs: %s: %w", t.name, err)
	}
	f.Name = t.name
	f.ModTime = t.a.Ingested
	if m := cr.ModTime(); m.After(f.ModTime) {
		f.ModTime = m
	}
	return f, nil
}

// headBytes is how much of a segment object is read first to parse it:
// its moof (a few KiB) and the mdat's header.
const headBytes = 64 << 10

// readFragment reads the samples of the segment object obj (a moof and its
// mdat), with the rendition's init segment. Only the boxes are read: the
// bytes after them are zeros for the parser, which never looks at them.
func (o *Outputs) readFragment(ctx context.Context, init []byte, obj transcode.SegmentObject) (*media.Fragment, error) {
	st := o.lib.Store()
	n := min(obj.Size, headBytes)
	head, err := vfile.ReadRange(ctx, st, obj.Key, 0, n)
	if err != nil {
		return nil, err
	}
	if len(head) >= 8 && string(head[4:8]) == "moof" {
		// The moof and a large mdat header.
		if need := min(obj.Size, int64(binary.BigEndian.Uint32(head))+16); need > n {
			if head, err = vfile.ReadRange(ctx, st, obj.Key, 0, need); err != nil {
				return nil, err
			}
		}
	}
	frag := make([]byte, obj.Size)
	copy(frag, head)
	fr, err := media.FragmentSamples(ctx, init, frag)
	if err != nil {
		return nil, err
	}
	if len(fr.Tracks) != 1 || fr.Tracks[0].Samples.Len() == 0 || fr.BaseTime[0] < 0 {
		return nil, fmt.Errorf("%s: want one track with samples and a decode time, have %d tracks", obj.Key, len(fr.Tracks))
	}
	return fr, nil
}

// renditionEntries lists the rendition files of asset a: with their sizes
// when complete (built now if needed), else with size 0 and a note.
func (o *Outputs) renditionEntries(ctx context.Context, a *library.Asset) ([]Entry, error) {
	if o.rend.Transcoder == nil {
		return nil, nil
	}
	ix, err := o.lib.Index(ctx, a)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, r := range o.renditionsOf(ix) {
		t := o.newRendition(a, ix, r)
		e := Entry{Name: t.name, Kind: KindRendition, ModTime: a.Ingested, Asset: a.ID, URL: FilesURL(a.User, t.name), Rendition: r.Name}
		f, cr, err := o.complete(ctx, t)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, err
			}
			e.Note = "the transcoder's cache cannot be read: " + err.Error()
		case f != nil:
			e.Size, e.ModTime = f.Size, f.ModTime
		default:
			e.Note = fmt.Sprintf("transcoding: %d of %d segments ready; until all are, it downloads as a fragmented MP4 without size",
				cr.Count(), len(cr.Segments))
		}
		out = append(out, e)
	}
	return out, nil
}

// Stream is a rendition file whose segments are not all transcoded yet:
// Serve sends it as a fragmented MP4 while they are (see the rendition
// files above).
type Stream struct {
	// Name is the file's name.
	Name   string
	o      *Outputs
	t      *rendition
	cached int // segments cached when it was opened
}

// StreamOptions configure Stream.Serve.
type StreamOptions struct {
	// Delivery, if not nil, counts the download against the server's
	// bandwidth budget as a progressive file (503 when it does not fit).
	// It is not paced (no fast start or throttling): the transcoder
	// makes it at about real time, and its size is not known beforehand.
	Delivery *delivery.Controller
	// Fail answers an error before the status line; nil answers 500.
	Fail func(w http.ResponseWriter, r *http.Request, err error)
	// Logger receives the end of responses that failed: nil discards.
	Logger *slog.Logger
}

// Serve answers r with the stream: GET and HEAD only (405 otherwise); a
// HEAD gets the header without transcoding anything. Before the status
// line, an error is answered as JSON: 503 with Retry-After when no ffmpeg
// slot freed up for the init segment (transcode.ErrBusy) or the budget
// is short, 502 when ffmpeg failed, else through opt.Fail. Once the body
// has begun, a segment that finds the transcoder busy waits for the
// Retry-After the transcoder tells and tries again; any other failure
// aborts the response (no final chunk, so the client sees a truncated
// transfer) and is logged.
func (s *Stream) Serve(w http.ResponseWriter, r *http.Request, opt StreamOptions) {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpserve.Error(w, http.StatusMethodNotAllowed, "method not allowed", r.Method+" is not allowed; use GET or HEAD")
		return
	}
	h := w.Header()
	h.Set("Content-Type", mp4build.ContentType)
	h.Set("Cache-Control", "no-store")
	h.Set("Accept-Ranges", "none")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	ctx := r.Context()
	init, err := s.initSegment(ctx)
	if err != nil {
		s.fail(w, r, opt, err)
		return
	}
	var pacer *delivery.Session
	if opt.Delivery != nil {
		if pacer, err = opt.Delivery.Start(s.estimate(), delivery.Params{Kind: delivery.Progressive}); err != nil {
			opt.Delivery.Refuse(w, err)
			return
		}
		if pacer != nil {
			defer pacer.Close()
		}
	}
	w.WriteHeader(http.StatusOK)
	sw := &streamWriter{w: w, rc: http.NewResponseController(w), d: httpserve.DefaultWriteIdleTimeout}
	if pacer != nil {
		sw.pacer = pacer
	}
	began := time.Now()
	err = s.body(ctx, sw, init, log)
	gone := err != nil && (ctx.Err() != nil || errors.Is(err, context.Canceled))
	if pacer != nil {
		pacer.EndBody(err, gone)
	}
	switch {
	case err == nil:
		log.Info("outputs: rendition streamed", "file", s.Name, "bytes", sw.off, "took", time.Since(began).Round(time.Millisecond),
			"segments_cached_before", s.cached)
	case gone:
		log.Debug("outputs: rendition stream: client gone", "file", s.Name, "bytes", sw.off, "err", err)
	default:
		log.Warn("outputs: rendition stream aborted", "file", s.Name, "bytes", sw.off, "err", err)
		// Ends the response without its final chunk: the client sees a
		// truncated transfer, not a short file.
		panic(http.ErrAbortHandler)
	}
}

// fail answers err, found before the status line.
func (s *Stream) fail(w http.ResponseWriter, r *http.Request, opt StreamOptions, err error) {
	w.Header().Del("Accept-Ranges")
	if d, ok := transcode.RetryAfter(err); ok {
		w.Header().Set("Retry-After", strconv.Itoa(max(int(d.Round(time.Second)/time.Second), 1)))
		httpserve.Error(w, http.StatusServiceUnavailable, "too many transcodes at once", err.Error())
		return
	}
	var fe *transcode.FFmpegError
	if errors.As(err, &fe) {
		httpserve.Error(w, http.StatusBadGateway, "transcoding failed", err.Error())
		return
	}
	if opt.Fail != nil {
		opt.Fail(w, r, err)
		return
	}
	httpserve.Error(w, http.StatusInternalServerError, "internal error", err.Error())
}

// estimate is a stand-in for the file, for the budget: the rendition's
// bit rate and the audio's over the asset's duration.
func (s *Stream) estimate() *vfile.File {
	t := s.t
	d := t.ix.Duration().Seconds()
	rate := t.r.VideoBitrate
	if t.audio != nil {
		rate += t.audio.Bitrate()
	}
	size := max(int64(float64(rate)*d/8), 1)
	return &vfile.File{Name: s.Name, ContentType: mp4build.ContentType, Size: size,
		Timeline: vfile.Timeline{{Off: 0, Time: 0}, {Off: size, Time: d}}}
}

// initSegment returns the stream's init segment: the rendition's video
// trak (the transcoder's sample entry, transcoding segment 0 if needed)
// and the audio trak, in mp4build's fragmented layout.
func (s *Stream) initSegment(ctx context.Context) ([]byte, error) {
	t := s.t
	vinit, err := s.o.rend.Transcoder.Init(ctx, t.src, t.r)
	if err != nil {
		return nil, fmt.Errorf("outputs: %s: %w", s.Name, err)
	}
	entry, err := transcode.InitSampleEntry(vinit)
	if err != nil {
		return nil, fmt.Errorf("outputs: %s: %w", s.Name, err)
	}
	v := renditionVideo(t, entry)
	v.Samples = t.src.Track.Samples
	v.Samples.ChapterDesc = make([]uint32, len(t.ix.Chapters))
	for i := range v.Samples.ChapterDesc {
		v.Samples.ChapterDesc[i] = 1
	}
	ix := *t.ix
	ix.Tracks = slices.Clone(ix.Tracks)
	for i, tr := range ix.Tracks {
		if tr == t.src.Track {
			ix.Tracks[i] = v
		}
	}
	tracks := []*media.Track{v}
	if t.audio != nil {
		tracks = append(tracks, t.audio)
		slices.SortFunc(tracks, func(x, y *media.Track) int { return int(x.ID) - int(y.ID) })
	}
	b, err := mp4build.InitSegment(&ix, tracks)
	if err != nil {
		return nil, fmt.Errorf("outputs: %s: %w", s.Name, err)
	}
	return b, nil
}

// body writes the init segment, then each segment's video and audio
// fragments.
func (s *Stream) body(ctx context.Context, sw *streamWriter, init []byte, log *slog.Logger) error {
	t := s.t
	tc := s.o.rend.Transcoder
	if err := sw.write(ctx, init); err != nil {
		return err
	}
	if err := sw.flush(); err != nil {
		return err
	}
	seq := uint32(0)
	for n, seg := range t.src.Segments {
		frag, err := s.segment(ctx, n, log)
		if err != nil {
			return err
		}
		tc.Prefetch(t.src, t.r, n)
		seq++
		hdr, err := withSequence(frag, seq)
		if err != nil {
			return fmt.Errorf("outputs: %s: segment %d: %w", s.Name, n, err)
		}
		if err := sw.write(ctx, hdr); err != nil {
			return err
		}
		if err := sw.write(ctx, frag[len(hdr):]); err != nil {
			return err
		}
		if t.audio != nil {
			if first, end := trackSpan(t.ix, t.audio, seg); end > first {
				seq++
				if err := s.audioFragment(ctx, sw, seg, seq); err != nil {
					return err
				}
			}
		}
		if err := sw.flush(); err != nil {
			return err
		}
	}
	return nil
}

// segment returns segment n of the rendition, waiting and trying again
// while the transcoder is busy.
func (s *Stream) segment(ctx context.Context, n int, log *slog.Logger) ([]byte, error) {
	t := s.t
	for {
		b, err := s.o.rend.Transcoder.Segment(ctx, t.src, t.r, n)
		d, busy := transcode.RetryAfter(err)
		if !busy {
			if err != nil {
				return nil, fmt.Errorf("outputs: %s: segment %d: %w", s.Name, n, err)
			}
			return b, nil
		}
		log.Debug("outputs: rendition stream waits for the transcoder", "file", s.Name, "segment", n, "retry_after", d)
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-timer.C:
		}
	}
}

// audioFragment writes the audio fragment of segment seg, sequence number
// seq, its samples read from the store.
func (s *Stream) audioFragment(ctx context.Context, sw *streamWriter, seg media.Segment, seq uint32) error {
	t := s.t
	var b vfile.Builder
	if err := mp4build.MediaSegment(&b, t.ix, []*media.Track{t.audio}, seg, seq); err != nil {
		return fmt.Errorf("outputs: %s: %w", s.Name, err)
	}
	st := s.o.lib.Store()
	for _, p := range b.File("", "", time.Time{}, "").Pieces {
		data := p.Data
		if p.IsStored() {
			var err error
			if data, err = vfile.ReadRange(ctx, st, p.Object, p.Off, p.Len); err != nil {
				return fmt.Errorf("outputs: %s: audio: %w", s.Name, err)
			}
		}
		if err := sw.write(ctx, data); err != nil {
			return err
		}
	}
	return nil
}

// mfhdEnd is the end of the sequence number in a fragment that begins
// with a moof whose first child is its mfhd (as the transcoder writes
// them): moof header (8), mfhd header (8), version and flags (4), number.
const mfhdEnd = 24

// withSequence returns the first mfhdEnd bytes of the fragment frag (a
// moof starting with its mfhd) with the sequence number seq, to be
// followed by frag[mfhdEnd:]; frag itself, shared with other callers of
// the transcoder, is left alone.
func withSequence(frag []byte, seq uint32) ([]byte, error) {
	if len(frag) < mfhdEnd || string(frag[4:8]) != "moof" || string(frag[12:16]) != "mfhd" ||
		binary.BigEndian.Uint32(frag[8:12]) != 16 {
		return nil, errors.New("fragment does not begin with a moof and its mfhd")
	}
	hdr := slices.Clone(frag[:mfhdEnd])
	binary.BigEndian.PutUint32(hdr[20:], seq)
	return hdr, nil
}

// streamWriter writes a body of unknown length: through the delivery
// session's pacer (the budget), each write under a write deadline like
// httpserve's (a client that stops reading is dropped), none while
// waiting for the transcoder.
type streamWriter struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	d     time.Duration
	pacer httpserve.Pacer
	off   int64 // bytes written
	noDL  bool  // the writer cannot set deadlines
}

// arm sets the write deadline for a write of n bytes (0: clears it).
func (sw *streamWriter) arm(n int) {
	if sw.noDL {
		return
	}
	var t time.Time
	if n > 0 {
		t = time.Now().Add(sw.d * time.Duration((n+httpserve.WriteChunk-1)/httpserve.WriteChunk))
	}
	if err := sw.rc.SetWriteDeadline(t); err != nil {
		sw.noDL = true
	}
}

// write writes p, in writes of at most httpserve.MaxWrite bytes, each as
// large as the pacer allows.
func (sw *streamWriter) write(ctx context.Context, p []byte) error {
	for len(p) > 0 {
		k := min(len(p), httpserve.MaxWrite)
		if sw.pacer != nil {
			m, err := sw.pacer.Next(ctx, sw.off, int64(k))
			if err != nil {
				return err
			}
			k = int(min(max(m, 1), int64(k)))
		}
		sw.arm(k)
		m, err := sw.w.Write(p[:k])
		sw.off += int64(m)
		if err != nil {
			return fmt.Errorf("outputs: write: %w", err)
		}
		p = p[k:]
	}
	return nil
}

// flush sends what is buffered, then clears the write deadline: waiting
// for the next segment may take longer than it.
func (sw *streamWriter) flush() error {
	sw.arm(httpserve.WriteChunk)
	err := sw.rc.Flush()
	sw.arm(0)
	if err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("outputs: flush: %w", err)
	}
	return nil
}
