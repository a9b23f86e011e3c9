// Package outputs maps a user's library onto a static-looking file system of
// virtual files: for every asset its consolidated MP4, its fragmented MP4,
// its original chapters, clips of any time range and, with a transcoder,
// an MP4 of each transcoded rendition (renditions.go). Built files are
// cached.
package outputs

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	mp4build "github.com/jitstream/jitstream/internal/build/mp4"
	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/lru"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/urls"
	"github.com/jitstream/jitstream/internal/vfile"
)

// Kind names an output.
type Kind string

// Output kinds.
const (
	KindConsolidated Kind = "consolidated"
	KindFMP4         Kind = "fmp4"
	KindOriginal     Kind = "original"
	KindClip         Kind = "clip"
)

// Suffixes of the generated files after the asset id.
const (
	SuffixConsolidated = urls.SuffixConsolidated
	SuffixFMP4         = urls.SuffixFMP4
)

// ErrNotFound is returned (wrapped) for paths naming no file.
var ErrNotFound = errors.New("no such file")

// ErrBadQuery is returned (wrapped) for malformed clip parameters.
var ErrBadQuery = errors.New("bad query")

// Outputs builds virtual files for a library.
type Outputs struct {
	lib   *library.Library
	files *lru.Cache[string, *vfile.File]

	// building holds the builds in progress by cache key: concurrent
	// requests for a file not yet cached wait for one build and share its
	// result, instead of each building (and, for as long as its response
	// lasts, holding) a copy of its own.
	mu       sync.Mutex
	building map[string]*building

	// rend configures the rendition files (SetRenditions); without a
	// transcoder there are none. verified holds, by cache key, when the
	// segment objects of a complete rendition file were last found in
	// the store (under mu).
	rend     RenditionOptions
	verified map[string]time.Time
}

// building is a build in progress (see Outputs.cached).
type building struct {
	done chan struct{}
	f    *vfile.File
	err  error
}

// cached returns the file cached under key, or builds it with build and
// caches it. Concurrent calls for the same key share one build; a caller
// whose build was cut short by the builder's context (not its own) builds
// again.
func (o *Outputs) cached(ctx context.Context, key string, build func() (*vfile.File, error)) (*vfile.File, error) {
	for {
		if f, ok := o.files.Get(key); ok {
			return f, nil
		}
		o.mu.Lock()
		if b, ok := o.building[key]; ok {
			o.mu.Unlock()
			select {
			case <-b.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if b.err != nil && (errors.Is(b.err, context.Canceled) || errors.Is(b.err, context.DeadlineExceeded)) && ctx.Err() == nil {
				continue // the builder's request went away; ours did not
			}
			return b.f, b.err
		}
		if f, ok := o.files.Get(key); ok { // cached while we took the lock
			o.mu.Unlock()
			return f, nil
		}
		b := &building{done: make(chan struct{}), err: errors.New("outputs: build failed")}
		if o.building == nil {
			o.building = make(map[string]*building)
		}
		o.building[key] = b
		o.mu.Unlock()
		func() {
			defer func() {
				o.mu.Lock()
				delete(o.building, key)
				o.mu.Unlock()
				close(b.done)
			}()
			b.f, b.err = build()
			if b.err == nil {
				o.files.Add(key, b.f, generatedBytes(b.f))
			}
		}()
		return b.f, b.err
	}
}

// New returns Outputs over lib, caching built files up to cacheBytes of
// generated data.
func New(lib *library.Library, cacheBytes int64) *Outputs {
	if cacheBytes <= 0 {
		cacheBytes = 128 << 20
	}
	return &Outputs{lib: lib, files: lru.New[string, *vfile.File](cacheBytes)}
}

// Library is the underlying library.
func (o *Outputs) Library() *library.Library { return o.lib }

// Entry is one file of the file-system view.
type Entry struct {
	Name    string    `json:"name"` // path relative to the user's root
	Kind    Kind      `json:"kind"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"modified"`
	Asset   string    `json:"asset"`
	URL     string    `json:"url"`
	// Rendition is the name of a rendition file's rendition ("480p").
	Rendition string `json:"rendition,omitempty"`
	// Note, when set, says why the file has no size yet (Size is 0): a
	// rendition being transcoded, which downloads meanwhile as a
	// fragmented MP4 without size.
	Note string `json:"note,omitempty"`
}

// FilesURL is the URL path of a file in user's file-system view.
func FilesURL(user, name string) string { return urls.File(user, name) }

// URLs names every output of an asset by kind, as the API returns it.
func URLs(a *library.Asset) map[string]any {
	names := make([]string, len(a.Chapters))
	for i, c := range a.Chapters {
		names[i] = c.Name
	}
	return urls.Asset(a.User, a.ID, names)
}

// Entries lists every file of one asset.
func (o *Outputs) Entries(ctx context.Context, a *library.Asset) ([]Entry, error) {
	var out []Entry
	for _, k := range []struct {
		suffix string
		kind   Kind
	}{{SuffixConsolidated, KindConsolidated}, {SuffixFMP4, KindFMP4}} {
		name := a.ID + k.suffix
		f, err := o.Open(ctx, a.User, name, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, Entry{Name: name, Kind: k.kind, Size: f.Size, ModTime: f.ModTime, Asset: a.ID, URL: FilesURL(a.User, name)})
	}
	rends, err := o.renditionEntries(ctx, a)
	if err != nil {
		return nil, err
	}
	out = append(out, rends...)
	// An example clip: the first ten seconds (any range works, see URLs).
	clip := url.Values{"start": {"0"}, "end": {"10"}}
	name := a.ID + SuffixConsolidated + "?" + clip.Encode()
	f, err := o.Open(ctx, a.User, a.ID+SuffixConsolidated, clip)
	if err == nil {
		out = append(out, Entry{Name: name, Kind: KindClip, Size: f.Size, ModTime: f.ModTime, Asset: a.ID,
			URL: FilesURL(a.User, a.ID+SuffixConsolidated) + "?" + clip.Encode()})
	}
	for _, c := range a.Chapters {
		name := a.ID + "/" + c.Name
		out = append(out, Entry{Name: name, Kind: KindOriginal, Size: c.Size, ModTime: a.Ingested, Asset: a.ID, URL: FilesURL(a.User, name)})
	}
	return out, nil
}

// List lists every file of a user's library.
func (o *Outputs) List(ctx context.Context, user string) ([]Entry, error) {
	assets, err := o.lib.Assets(ctx, user)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, a := range assets {
		es, err := o.Entries(ctx, a)
		if err != nil {
			return nil, fmt.Errorf("outputs: list %s: %w", a.ID, err)
		}
		out = append(out, es...)
	}
	return out, nil
}

// Open resolves name (a path relative to the user's root, unescaped) with
// its query to a virtual file. A query with rate asks for trick play (see
// OpenDelivery, which also says how to pace the file). A rendition file
// not transcoded whole yet is no virtual file: Open fails with an error
// wrapping ErrIncomplete (OpenDelivery returns its Stream).
func (o *Outputs) Open(ctx context.Context, user, name string, q url.Values) (*vfile.File, error) {
	if id, frag, ok := trickTarget(name, q); ok {
		f, _, err := o.openTrick(ctx, user, name, id, frag, q)
		return f, err
	}
	f, st, err := o.open(ctx, user, name, q)
	if err == nil && st != nil {
		return nil, fmt.Errorf("%w: %s", ErrIncomplete, name)
	}
	return f, err
}

// open is Open without trick play: a virtual file, or the stream of a
// rendition file not transcoded whole yet.
func (o *Outputs) open(ctx context.Context, user, name string, q url.Values) (*vfile.File, *Stream, error) {
	if id, file, ok := strings.Cut(name, "/"); ok {
		a, err := o.lib.Asset(ctx, user, id)
		if err != nil {
			return nil, nil, err
		}
		for i, c := range a.Chapters {
			if c.Name == file {
				f, err := o.original(ctx, a, i)
				return f, nil, err
			}
		}
		return nil, nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	var frag bool
	id, ok := strings.CutSuffix(name, SuffixFMP4)
	if ok {
		frag = true
	} else if id, ok = strings.CutSuffix(name, SuffixConsolidated); !ok {
		return nil, nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	sel, err := ParseSelection(q)
	if err != nil {
		return nil, nil, err
	}
	a, err := o.lib.Asset(ctx, user, id)
	if err != nil {
		if !frag && errors.Is(err, library.ErrUnknownAsset) {
			// No asset id: maybe ID.rendition.
			if t, ok, rerr := o.resolveRendition(ctx, user, id); ok {
				if rerr != nil {
					return nil, nil, rerr
				}
				return o.openRendition(ctx, t, q)
			}
		}
		return nil, nil, err
	}
	key := fmt.Sprintf("%s/%s/%s/%t/%d/%d", a.User, a.ID, a.Rev, frag, sel.Start, sel.End)
	f, err := o.cached(ctx, key, func() (*vfile.File, error) {
		ix, err := o.lib.Index(ctx, a)
		if err != nil {
			return nil, err
		}
		var f *vfile.File
		if frag {
			f, err = mp4build.Fragmented(ix, sel)
		} else {
			f, err = mp4build.Progressive(ix, sel)
		}
		if err != nil {
			return nil, err
		}
		f.Name = path.Base(name)
		f.ModTime = a.Ingested
		return f, nil
	})
	return f, nil, err
}

// original returns chapter c of asset a, byte-exact, with its timeline
// (OriginalTimeline).
func (o *Outputs) original(ctx context.Context, a *library.Asset, c int) (*vfile.File, error) {
	key := fmt.Sprintf("%s/%s/%s/original/%d", a.User, a.ID, a.Rev, c)
	if f, ok := o.files.Get(key); ok {
		return f, nil
	}
	ch := a.Chapters[c]
	f := vfile.New(ch.Name, contentType(ch.Name), a.Ingested, vfile.ETag("original", ch.Object, strconv.FormatInt(ch.Size, 10)),
		[]vfile.Piece{vfile.Stored(ch.Object, 0, ch.Size)})
	ix, err := o.lib.Index(ctx, a)
	if err != nil {
		// The original is served all the same, byte-exact, without
		// timeline (so unpaced), and not cached: the next request tries
		// the index again.
		return f, nil
	}
	if c < len(ix.Chapters) && ix.Chapters[c].Object == ch.Object {
		f.Timeline = OriginalTimeline(ix, c, ch.Size)
	}
	o.files.Add(key, f, generatedBytes(f))
	return f, nil
}

// OriginalTimeline is the timeline of chapter c of ix, an original file of
// size bytes: the offsets of its samples in the file (from the index) and
// their decode times relative to the track's first sample in the chapter,
// one point per vfile.TimelineStep of media; the last point is the file's
// end at the chapter's duration.
func OriginalTimeline(ix *media.Index, c int, size int64) vfile.Timeline {
	dur := ix.Chapters[c].Duration.Seconds()
	step := vfile.TimelineStep(dur)
	var pts []vfile.TimePoint
	for _, t := range ix.Tracks {
		s := &t.Samples
		if c+1 >= len(s.ChapterStart) || t.Timescale == 0 {
			continue
		}
		lo, hi := s.ChapterStart[c], s.ChapterStart[c+1]
		last := math.Inf(-1)
		for i := lo; i < hi; i++ {
			tm := float64(s.DTS[i]-s.DTS[lo]) / float64(t.Timescale)
			if tm-last < step/2 {
				continue
			}
			last = tm
			pts = append(pts, vfile.TimePoint{Off: s.Offset[i], Time: tm})
		}
		if hi > lo {
			dur = max(dur, float64(s.DTS[hi]-s.DTS[lo])/float64(t.Timescale))
		}
	}
	if len(pts) == 0 {
		return nil
	}
	pts = append(pts, vfile.TimePoint{Off: size, Time: dur})
	return vfile.CompactTimeline(pts, step)
}

// Forget drops cached files of an asset (after deletion).
func (o *Outputs) Forget(user, id string) {
	prefix := user + "/" + id + "/"
	o.files.RemoveIf(func(k string) bool { return strings.HasPrefix(k, prefix) })
}

func generatedBytes(f *vfile.File) int64 {
	n := int64(len(f.Pieces))*48 + f.Timeline.Bytes()
	for _, p := range f.Pieces {
		n += int64(len(p.Data))
	}
	return n
}

// MaxParamLen bounds the length of the numeric query parameters (start,
// end, pos, rate): longer values are refused (ErrBadQuery) without being
// parsed or quoted back.
const MaxParamLen = 32

// maxSeconds is the largest time accepted in a query, in seconds (about
// 115 days; a time.Duration holds about 292 years).
const maxSeconds = 1e7

// parseSeconds reads the query parameter name, whose value v is a
// number of seconds from 0 to maxSeconds.
func parseSeconds(name, v string) (float64, error) {
	if len(v) > MaxParamLen {
		return 0, fmt.Errorf("%w: %s has %d characters, more than %d", ErrBadQuery, name, len(v), MaxParamLen)
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > maxSeconds {
		return 0, fmt.Errorf("%w: %s=%q is not a number of seconds from 0 to %g", ErrBadQuery, name, v, maxSeconds)
	}
	return f, nil
}

// ParseSelection reads the clip parameters start and end (seconds) from q.
func ParseSelection(q url.Values) (mp4build.Selection, error) {
	var sel mp4build.Selection
	for _, p := range []struct {
		name string
		dst  *time.Duration
	}{{"start", &sel.Start}, {"end", &sel.End}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		f, err := parseSeconds(p.name, v)
		if err != nil {
			return sel, err
		}
		*p.dst = time.Duration(f * float64(time.Second))
	}
	if sel.End != 0 && sel.End <= sel.Start {
		return sel, fmt.Errorf("%w: end (%v) must be after start (%v)", ErrBadQuery, sel.End, sel.Start)
	}
	return sel, nil
}

func contentType(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".mov":
		return "video/quicktime"
	case ".m4a":
		return "audio/mp4"
	default:
		return "video/mp4"
	}
}

// Describe summarises an asset for the API and the CLI.
type Describe struct {
	*library.Asset
	Duration float64        `json:"duration"`
	Size     int64          `json:"size"`
	Bitrate  int64          `json:"bitrate"`
	Segments int            `json:"segments"`
	Tracks   []TrackInfo    `json:"tracks"`
	URLs     map[string]any `json:"urls"`
}

// TrackInfo summarises a track.
type TrackInfo struct {
	ID         uint32  `json:"id"`
	Kind       string  `json:"kind"`
	Codec      string  `json:"codec"`
	Format     string  `json:"format"`
	Language   string  `json:"language"`
	Timescale  uint32  `json:"timescale"`
	Duration   float64 `json:"duration"`
	Bitrate    int64   `json:"bitrate"`
	Samples    int     `json:"samples"`
	Width      uint32  `json:"width,omitempty"`
	Height     uint32  `json:"height,omitempty"`
	SampleRate uint32  `json:"sample_rate,omitempty"`
	Channels   uint16  `json:"channels,omitempty"`
}

// Describe loads the asset's index and summarises it.
func (o *Outputs) Describe(ctx context.Context, a *library.Asset) (*Describe, error) {
	ix, err := o.lib.Index(ctx, a)
	if err != nil {
		return nil, err
	}
	return DescribeIndex(a, ix), nil
}

// DescribeIndex summarises an asset given its index.
func DescribeIndex(a *library.Asset, ix *media.Index) *Describe {
	d := &Describe{Asset: a, Duration: ix.Duration().Seconds(), Size: ix.Size(), Bitrate: ix.Bitrate(),
		Segments: len(ix.Segments(media.DefaultSegmentDuration)), URLs: URLs(a)}
	for _, t := range ix.Tracks {
		d.Tracks = append(d.Tracks, TrackInfo{ID: t.ID, Kind: string(t.Kind), Codec: t.Codec, Format: t.Format, Language: t.Language,
			Timescale: t.Timescale, Duration: t.Seconds(t.Duration()), Bitrate: t.Bitrate(), Samples: t.Samples.Len(),
			Width: t.Width, Height: t.Height, SampleRate: t.SampleRate, Channels: t.Channels})
	}
	return d
}
