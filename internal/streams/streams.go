// Package streams serves an asset's adaptive streams, built at request time
// from its media index: HLS (fMP4 and MPEG-TS, with I-frame playlists),
// MPEG-DASH (with a trick-mode adaptation set) and Smooth Streaming, plus the
// per-asset entry URL that picks a delivery for the client.
//
// URLs, below /streams/{user}/{asset}/ where asset is an asset id, or an id
// and a clip "ID,START-END" (seconds):
//
//	hls/master.m3u8                 fMP4 master playlist (audio as its own rendition)
//	hls/{track}/index.m3u8          media playlist of one track ("v1", "a2": kind letter + track id)
//	hls/{track}/iframes.m3u8        I-frame playlist (byte ranges into the fMP4 segments)
//	hls/{track}/init.mp4, {n}.m4s   CMAF init and media segments
//	hls/ts/master.m3u8, index.m3u8  MPEG-TS master and media playlist (audio and video muxed)
//	hls/ts/{n}.ts, iframes.m3u8     TS segments and their I-frame playlist
//	dash/manifest.mpd               static MPD
//	dash/{track}/init.mp4, {n}.m4s  CMAF segments; dash/trick/{track}/... keyframes only
//	smooth/Manifest                 Smooth Streaming client manifest
//	smooth/QualityLevels({bitrate})/Fragments({type}={time})
//	thumbs/{t}.jpg, {w}/{t}.jpg     picture at t seconds, 320 or w (160, 320, 640) pixels wide (with a
//	                                transcoder); thumbs/{t}.jpg?w={w} is thumbs/{w}/{t}.jpg
//	thumbs/sprite-{k}.jpg           thumbnail sprite sheet k; thumbs/thumbnails.vtt its WebVTT track (see thumbs.go)
//
// Every URL in a manifest is relative, so that a manifest reached through a
// signed link (/s/{exp}.{sig}/streams/..., see internal/auth) leads to
// segments through the same link; the entry URL redirects within it too.
//
// Every format uses the same segment boundaries (media.Index.Segments). The
// same URL always gives the same bytes (asset ids are never reused), so
// segments are served as immutable.
//
// With a delivery controller (Options.Delivery), media segments count
// against the server's bandwidth budget (kind delivery.Segment, or
// delivery.Trick for the DASH trick-mode segments) and are paced when the
// controller paces segments; master manifests (HLS fMP4 and MPEG-TS, DASH,
// Smooth) built while the budget is short leave out the variants that no
// longer fit, or are answered 503 when none fits, and are never cached.
package streams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jitstream/jitstream/internal/apierr"
	mp4build "github.com/jitstream/jitstream/internal/build/mp4"
	"github.com/jitstream/jitstream/internal/delivery"
	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/lru"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/spool"
	"github.com/jitstream/jitstream/internal/transcode"
	"github.com/jitstream/jitstream/internal/vfile"
)

// buildVersion changes whenever any builder's output may change, so that
// ETags never name two different bodies.
const buildVersion = "streams-1/" + mp4build.Version

// Cache-Control values.
const (
	CacheImmutable = "public, max-age=31536000, immutable"
	CacheManifest  = "public, max-age=300"
)

// ErrNotFound is returned (wrapped) for stream URLs naming nothing: unknown
// segment numbers, tracks, bit rates or times.
var ErrNotFound = errors.New("no such stream resource")

// Options configures a Handler.
type Options struct {
	Logger *slog.Logger
	// SegmentDuration is the target segment duration (default 4 s).
	SegmentDuration time.Duration
	// CacheBytes bounds the built files kept (manifests, moofs, TS
	// segments), in memory or spooled; default 256 MiB.
	CacheBytes int64
	// Spool, if not nil, holds the built segments kept, which are then
	// sent with sendfile(2) (see keep); nil keeps them in memory.
	Spool *spool.Spool
	// Delivery, if not nil, paces segments (when configured to) and keeps
	// the server's bandwidth budget: segments count against it, and master
	// manifests built while it is short leave out the variants that do not
	// fit (see budgetShort).
	Delivery *delivery.Controller
	// Transcoder, if not nil, makes the transcoded renditions of Ladder
	// that the manifests offer beside each asset's own tracks (see
	// renditions.go).
	Transcoder *transcode.Transcoder
	// Ladder is the renditions' ladder (transcode.DefaultLadder when
	// nil), for each asset's first video track (transcode.Renditions).
	Ladder []transcode.Rung
}

// Handler serves streams.
type Handler struct {
	lib   *library.Library
	log   *slog.Logger
	opt   Options
	files *lru.Cache[string, *vfile.File]
	clips *lru.Cache[string, *asset]
}

// New returns a Handler over lib.
func New(lib *library.Library, opt Options) *Handler {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.SegmentDuration <= 0 {
		opt.SegmentDuration = media.DefaultSegmentDuration
	}
	if opt.CacheBytes <= 0 {
		opt.CacheBytes = 256 << 20
	}
	return &Handler{lib: lib, log: opt.Logger, opt: opt,
		files: lru.New[string, *vfile.File](opt.CacheBytes),
		clips: lru.New[string, *asset](64 << 20)}
}

// Mux is where Register mounts the routes: an *http.ServeMux, or a
// wrapper that adds to each handler (authentication).
type Mux interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// Register mounts the handler's routes on mux.
func (h *Handler) Register(mux Mux) {
	mux.HandleFunc("GET /streams/{user}/{asset}/{path...}", h.serveStream)
	mux.HandleFunc("GET /play/{user}/{id}", h.play)
}

// asset is an asset (or a clip of it) ready for building streams.
type asset struct {
	meta *library.Asset
	ix   *media.Index
	segs []media.Segment
	key  string // cache key prefix: user/id/rev/clip
	// rends are the transcoded renditions offered (Options.Transcoder),
	// and mix the manifest index: ix, with a track per rendition (see
	// withRenditions).
	rends []transcode.Rendition
	mix   *media.Index
	trickState
	// rates are the tracks' bit rates by ID (see bitrates).
	ratesOnce sync.Once
	rates     map[uint32]int64
	// info is what Info tells of it, made once.
	infoOnce sync.Once
	info     *Info
	infoErr  error
}

// load resolves the {asset} path element: "ID" or "ID,START-END".
func (h *Handler) load(ctx context.Context, user, name string) (*asset, error) {
	id, clip, hasClip := strings.Cut(name, ",")
	a, err := h.lib.Asset(ctx, user, id)
	if err != nil {
		return nil, err
	}
	key := a.User + "/" + a.ID + "/" + a.Rev + "/" + clip
	if c, ok := h.clips.Get(key); ok {
		return c, nil
	}
	ix, err := h.lib.Index(ctx, a)
	if err != nil {
		return nil, err
	}
	if hasClip {
		start, end, err := parseClip(clip)
		if err != nil {
			return nil, err
		}
		if ix, err = media.Clip(ix, start, end); err != nil {
			return nil, err
		}
	}
	c := &asset{meta: a, ix: ix, segs: ix.Segments(h.opt.SegmentDuration), key: key, mix: ix}
	if h.opt.Transcoder != nil && ix.Video() != nil {
		ladder := h.opt.Ladder
		if ladder == nil {
			ladder = transcode.DefaultLadder()
		}
		c.rends = transcode.Renditions(ladder, ix.Video())
		c.mix = withRenditions(ix, ix.Video(), c.rends)
	}
	if h.opt.Transcoder != nil {
		c.mix = withAudio(ix, c.mix, c.segs)
	}
	cost := int64(len(c.segs)*16 + 1024)
	if len(c.rends) > 0 {
		cost += int64((len(c.rends)*4 + 8) * ix.Video().Samples.Len()) // renditionTrack's Size each, their shared Offset
	}
	if hasClip {
		cost += int64(len(ix.Tracks)) * 256
	}
	h.clips.Add(key, c, cost)
	return c, nil
}

// maxClipNumber bounds the length of each number of a clip (as
// outputs.MaxParamLen does for the query's start and end).
const maxClipNumber = 32

// parseClip reads "START-END" in seconds; END may be empty (to the end).
func parseClip(s string) (start, end time.Duration, err error) {
	if len(s) > 2*maxClipNumber+1 {
		return 0, 0, fmt.Errorf("%w: a clip of %d characters is not START-END in seconds", ErrBadClip, len(s))
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("%w: clip %q is not START-END in seconds", ErrBadClip, s)
	}
	parse := func(v string) (time.Duration, error) {
		if v == "" {
			return 0, nil
		}
		if len(v) > maxClipNumber {
			return 0, fmt.Errorf("%w: a clip time has %d characters, more than %d", ErrBadClip, len(v), maxClipNumber)
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 1e7 || f != f {
			return 0, fmt.Errorf("%w: %q is not a number of seconds", ErrBadClip, v)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	if start, err = parse(a); err != nil {
		return 0, 0, err
	}
	if end, err = parse(b); err != nil {
		return 0, 0, err
	}
	if end != 0 && end <= start {
		return 0, 0, fmt.Errorf("%w: end %v is not after start %v", ErrBadClip, end, start)
	}
	return start, end, nil
}

// ErrBadClip is returned (wrapped) for a malformed clip in a stream URL.
var ErrBadClip = errors.New("bad clip")

// serveStream serves one resource under /streams/{user}/{asset}/.
func (h *Handler) serveStream(w http.ResponseWriter, r *http.Request) {
	path := r.PathValue("path")
	// thumbs/{t}.jpg?w=W is thumbs/{W}/{t}.jpg (the path names the
	// cached file).
	if width := r.URL.Query().Get("w"); width != "" && strings.Count(path, "/") == 1 &&
		strings.HasPrefix(path, "thumbs/") && strings.HasSuffix(path, ".jpg") && !strings.HasPrefix(path, "thumbs/sprite-") {
		path = "thumbs/" + width + "/" + strings.TrimPrefix(path, "thumbs/")
	}
	h.serve(w, r, r.PathValue("user"), r.PathValue("asset"), path, "")
}

// serve serves path of the asset (or clip) name of user; cacheControl, if
// not empty, replaces the resource's own.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, user, name, path, cacheControl string) {
	ctx := r.Context()
	a, err := h.load(ctx, user, name)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	key := a.key + "/" + path
	cc := CacheImmutable
	if isManifest(path) {
		cc = CacheManifest
	}
	if cacheControl != "" {
		cc = cacheControl
	}
	o := httpserve.Options{CacheControl: cc, Logger: h.log}
	if isMaster(path) && len(a.rends) > 0 {
		// A player that reads the master may switch to any rendition.
		h.opt.Transcoder.PrefetchInits(h.source(a), a.rends)
	}
	if isMaster(path) {
		exclude, err := h.budgetShort(a, path)
		if err != nil {
			h.opt.Delivery.Refuse(w, err)
			return
		}
		if exclude != nil {
			// Built for the budget of the moment: neither kept here nor
			// by HTTP caches.
			f, err := h.buildMaster(a, path, exclude)
			if err != nil {
				h.fail(w, r, err)
				return
			}
			f.ModTime = a.meta.Ingested
			f.ETag = vfile.ETag(buildVersion, key, "exclude", fmt.Sprint(exclude))
			o.CacheControl = "no-store"
			httpserve.ServeFileWith(w, r, h.lib.Store(), f, o)
			return
		}
	}
	f, ok := h.files.Get(key)
	if !ok {
		if f, err = h.build(ctx, a, path); err != nil {
			h.fail(w, r, err)
			return
		}
		f.ModTime = a.meta.Ingested
		if f.ETag == "" {
			f.ETag = vfile.ETag(buildVersion, key)
		}
		if f, err = keep(ctx, h.lib.Store(), h.opt.Spool, h.log, f); err != nil {
			h.fail(w, r, err)
			return
		}
		h.files.Add(key, f, cost(f))
	}
	if kind, ok := segmentKind(path); ok {
		h.opt.Delivery.Serve(w, r, h.lib.Store(), f, delivery.Params{Kind: kind, Pace: h.opt.Delivery.Paces(delivery.Segment)}, o)
		return
	}
	httpserve.ServeFileWith(w, r, h.lib.Store(), f, o)
}

// segmentKind tells whether path names a media segment (CMAF, TS or Smooth
// fragment), which counts against the budget, and its delivery kind:
// delivery.Trick for the DASH trick-mode segments.
func segmentKind(path string) (delivery.Kind, bool) {
	switch {
	case strings.HasPrefix(path, "dash/trick/") && strings.HasSuffix(path, ".m4s"):
		return delivery.Trick, true
	case strings.HasSuffix(path, ".m4s"), strings.HasSuffix(path, ".ts"),
		strings.HasPrefix(path, "smooth/") && strings.Contains(path, "/Fragments("):
		return delivery.Segment, true
	}
	return 0, false
}

func isManifest(path string) bool {
	return strings.HasSuffix(path, ".m3u8") || strings.HasSuffix(path, ".mpd") || strings.HasSuffix(path, "/Manifest")
}

func cost(f *vfile.File) int64 {
	n := int64(len(f.Pieces))*48 + 256 + f.Timeline.Bytes()
	for _, p := range f.Pieces {
		n += int64(len(p.Data))
		if p.IsSource() {
			n += p.Len // on disk, in the page cache
		}
	}
	return n
}

// fail answers an error as JSON with a status for its kind.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := http.StatusInternalServerError, "internal error"
	if st, m, ok := apierr.Store(err); ok {
		status, msg = st, m
	}
	switch {
	case errors.Is(err, library.ErrUnknownUser):
		status, msg = http.StatusNotFound, "unknown user"
	case errors.Is(err, library.ErrUnknownAsset):
		status, msg = http.StatusNotFound, "unknown asset"
	case errors.Is(err, ErrNotFound):
		status, msg = http.StatusNotFound, "not found"
	case errors.Is(err, ErrBadClip):
		status, msg = http.StatusBadRequest, "bad clip"
	case errors.Is(err, media.ErrRange):
		status, msg = http.StatusNotFound, "clip range outside the recording"
	case errors.Is(err, ErrUnsupportedFormat):
		status, msg = http.StatusNotFound, "format not available for this asset"
	case errors.Is(err, transcode.ErrNoSegment):
		status, msg = http.StatusNotFound, "not found"
	case errors.Is(err, transcode.ErrBusy):
		status, msg = http.StatusServiceUnavailable, "too many transcodes at once"
		if d, ok := transcode.RetryAfter(err); ok {
			w.Header().Set("Retry-After", strconv.Itoa(max(int(d.Round(time.Second)/time.Second), 1)))
		}
	}
	var fe *transcode.FFmpegError
	if errors.As(err, &fe) {
		status, msg = http.StatusBadGateway, "transcoding failed"
	}
	if status >= 500 {
		h.log.Error("stream request failed", "path", r.URL.Path, "err", err)
	}
	httpserve.Error(w, status, msg, err.Error())
}

// ErrUnsupportedFormat is returned (wrapped) when an asset cannot be
// delivered in a format (e.g. H.265 in Smooth Streaming).
var ErrUnsupportedFormat = errors.New("format not available")

func notFound(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNotFound, fmt.Sprintf(format, args...))
}
