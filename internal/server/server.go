// Package server wires jitstream's HTTP routes: the file-system view of each
// user's library, the JSON API, uploads, the watch page, and the
// observability endpoints: GET /metrics (Prometheus, see internal/metrics)
// and GET /healthz (the server and its store answer). With Options.Auth,
// every user's routes ask for that user's token or a signed link (see
// auth.go).
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/jitstream/jitstream/internal/apierr"
	"github.com/jitstream/jitstream/internal/auth"
	mp4build "github.com/jitstream/jitstream/internal/build/mp4"
	"github.com/jitstream/jitstream/internal/dav"
	"github.com/jitstream/jitstream/internal/delivery"
	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/live"
	"github.com/jitstream/jitstream/internal/metrics"
	"github.com/jitstream/jitstream/internal/outputs"
	"github.com/jitstream/jitstream/internal/playback"
	"github.com/jitstream/jitstream/internal/playlist"
	"github.com/jitstream/jitstream/internal/spool"
	"github.com/jitstream/jitstream/internal/state"
	"github.com/jitstream/jitstream/internal/streams"
	"github.com/jitstream/jitstream/internal/transcode"
	"github.com/jitstream/jitstream/internal/tusupload"
	"github.com/jitstream/jitstream/internal/webapp"
)

// Options configures the server.
type Options struct {
	Logger *slog.Logger
	// MaxUploadBytes bounds one upload request; 0 means no bound.
	MaxUploadBytes int64
	// Debug mounts /debug/heap and the pprof handlers under /debug/pprof/.
	Debug bool
	// Delivery, if not nil, paces the progressive files of /files/ (fast
	// start and throttling), and the segments of streams when configured
	// to, within its bandwidth budget. Nil serves everything at full
	// speed. Its sessions are logged with Logger (start at debug level,
	// end at info level) and its statistics are in /metrics.
	Delivery *delivery.Controller
	// Uploads, if not nil, serves resumable (tus) uploads at
	// /api/v1/users/{user}/uploads/; its expiry sweep is the caller's to run.
	Uploads *tusupload.Service
	// Auth, if not nil, turns access control on: tokens for every user's
	// routes, signed links for playback (see auth.go). Nil serves
	// everything to everyone.
	Auth *auth.Auth
	// Spool, if not nil, holds the built segments of streams that are
	// kept, which are then sent with sendfile(2); nil keeps them in memory.
	Spool *spool.Spool
	// State is the state shared by the nodes: the sessions of server-side
	// playlists live there, and the deployment's secret is created under
	// its lock. Nil keeps sessions in this process's memory.
	State state.State
	// Beacons, if not nil, receives the ad beacons of playlist sessions.
	Beacons *playlist.Beacons
	// Live, if not nil, takes live streams pushed to PUT
	// /live/{user}/{key}/{file} (see internal/live; the stream key,
	// derived from the deployment's secret, authenticates), and serves
	// them while they are pushed (to any node) at GET
	// /live/{user}/{name}/hls/... and .../dash/..., behind the user's
	// token when the server has Auth; its idle sweep is the caller's to
	// run.
	Live *live.Service
	// Transcoder, if not nil, makes the transcoded renditions of Ladder
	// that every asset's manifests offer (see internal/streams and
	// internal/transcode), and the rendition files of the file-system
	// view (outputs.SetRenditions on the server's Outputs).
	Transcoder *transcode.Transcoder
	// Ladder is the renditions' ladder (transcode.DefaultLadder when nil).
	Ladder []transcode.Rung
}

// Server is jitstream's HTTP handler.
type Server struct {
	out     *outputs.Outputs
	lib     *library.Library
	log     *slog.Logger
	opt     Options
	mux     *http.ServeMux
	metrics *metrics.Metrics
	recs    recorders
}

// New returns the handler serving out, with its own metrics registry.
func New(out *outputs.Outputs, opt Options) *Server {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	// Tokens and link signatures never reach the logs.
	opt.Logger = slog.New(auth.NewRedactingHandler(opt.Logger.Handler()))
	s := &Server{out: out, lib: out.Library(), log: opt.Logger, opt: opt, mux: http.NewServeMux(),
		metrics: metrics.New(opt.Delivery)}
	if opt.Transcoder != nil {
		s.metrics.AddTranscoder(opt.Transcoder)
		// ID.480p.mp4 and the like in the file-system view.
		out.SetRenditions(outputs.RenditionOptions{Transcoder: opt.Transcoder, Ladder: opt.Ladder, Logger: opt.Logger})
	}
	s.routes()
	sh := streams.New(s.lib, streams.Options{Logger: opt.Logger, Delivery: opt.Delivery, Spool: opt.Spool,
		Transcoder: opt.Transcoder, Ladder: opt.Ladder})
	sh.Register(guardedMux{s})
	s.playback(sh)
	dav.New(s.out, dav.Options{Logger: opt.Logger, ServeFiles: s.serveFiles, Fail: s.fail, MaxUploadBytes: opt.MaxUploadBytes}).Register(guardedMux{s})
	return s
}

// playback mounts the server-side playlists and their sessions (see
// internal/playback) over the streams of sh.
func (s *Server) playback(sh *streams.Handler) {
	shared := s.opt.State
	if shared == nil {
		shared = state.NewMemory()
	}
	st := s.lib.Store()
	playback.New(sh, playback.Options{
		Logger:    s.log,
		Playlists: playlist.NewStore(st),
		Sessions:  playlist.NewSessions(shared, playlist.SessionOptions{Beacons: s.opt.Beacons}),
		Secret: func(ctx context.Context) ([]byte, error) {
			return auth.LoadSecret(ctx, st, s.opt.State)
		},
		Delivery: s.opt.Delivery,
	}).Register(apiMux{s}, s.mux)
}

// apiMux mounts routes of other packages behind the guard of the API
// (the user's token).
type apiMux struct{ s *Server }

// HandleFunc implements playback.Mux.
func (m apiMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.s.mux.HandleFunc(pattern, m.s.guard(routeAPI, h))
}

func (s *Server) routes() {
	m := s.mux
	// The web app (internal/webapp); / sends browsers there.
	m.HandleFunc("GET /{$}", webapp.RedirectBrowsers(s.home))
	m.Handle("GET "+webapp.Prefix, webapp.New(webapp.Options{Logger: s.log}))
	m.HandleFunc("GET /api/v1/whoami", s.guard(routeDebug, s.apiWhoami)) // any valid token
	m.HandleFunc("POST /api/v1/signout", s.apiSignout)
	m.HandleFunc("GET /healthz", s.healthz)
	m.Handle("GET /metrics", s.metrics.Handler())
	m.HandleFunc("GET /files/{user}/{$}", s.guard(routeFiles, s.file))
	m.HandleFunc("GET /files/{user}/{path...}", s.guard(routeFiles, s.file))
	m.HandleFunc("GET /watch/{user}/{id}", s.guard(routeWatch, s.watch))
	m.HandleFunc("GET /api/v1/users/{user}/assets", s.guard(routeAPI, s.apiList))
	m.HandleFunc("POST /api/v1/users/{user}/assets", s.guard(routeAPI, s.apiUpload))
	m.HandleFunc("GET /api/v1/users/{user}/assets/{id}", s.guard(routeAPI, s.apiAsset))
	m.HandleFunc("DELETE /api/v1/users/{user}/assets/{id}", s.guard(routeAPI, s.apiDelete))
	if s.opt.Auth != nil {
		m.HandleFunc("POST /api/v1/users/{user}/assets/{id}/links", s.guard(routeAPI, s.apiLink))
	}
	if s.opt.Uploads != nil {
		m.HandleFunc(tusupload.Pattern, s.guard(routeUploads, s.opt.Uploads.ServeHTTP))
	}
	if s.opt.Live != nil {
		st := s.lib.Store()
		s.opt.Live.Register(m, func(ctx context.Context) ([]byte, error) { return auth.LoadSecret(ctx, st, s.opt.State) })
		// Live playback: open, or behind the user's token (as the API).
		s.opt.Live.RegisterPlayback(apiMux{s})
	}
	if s.opt.Debug {
		m.HandleFunc("GET /debug/heap", s.guard(routeDebug, debugHeap))
		m.HandleFunc("GET /debug/pprof/", s.guard(routeDebug, pprof.Index))
		m.HandleFunc("GET /debug/pprof/profile", s.guard(routeDebug, pprof.Profile))
		m.HandleFunc("GET /debug/pprof/trace", s.guard(routeDebug, pprof.Trace))
	}
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpserve.Error(w, http.StatusNotFound, "not found", "no route for "+r.Method+" "+r.URL.Path)
	})
}

// ServeHTTP implements http.Handler: CORS, signed-link paths, panic
// recovery, request metrics (by format and status class) and logging
// around the routes.
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := s.recs.get(rw)
	var linkErr error
	if s.opt.Auth != nil {
		// From here on r is the request below the link, if any.
		r, linkErr = s.stripLink(r)
	}
	defer func() {
		s.metrics.Request(formatOf(r.URL.Path, r.URL.RawQuery), rec.statusOrOK(), rec.n)
		s.recs.put(rec)
	}()
	var w http.ResponseWriter = rec
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "Content-Length, Content-Range, Accept-Ranges, ETag, Last-Modified, Retry-After")
	if r.Method == http.MethodOptions && !(s.opt.Uploads != nil && tusupload.Owns(r.URL.Path)) && // tus answers its own
		// and WebDAV too, but for CORS preflights when it would ask
		// for a token first.
		(!strings.HasPrefix(r.URL.Path, dav.Prefix) || s.opt.Auth != nil && r.Header.Get("Access-Control-Request-Method") != "") {
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, DELETE, OPTIONS, PROPFIND")
		h.Set("Access-Control-Allow-Headers", "Authorization, Range, If-Range, If-None-Match, If-Modified-Since, Content-Type, Depth")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			httpserve.Error(w, http.StatusInternalServerError, "internal error", fmt.Sprint(v))
		}
	}()
	switch {
	case linkErr != nil:
		s.linkRefused(w, linkErr)
	case s.opt.Auth != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		hasTokenQuery(r.URL.RawQuery) && r.Context().Value(parsedLinkKey{}) == nil:
		s.tokenRedirect(w, r)
	default:
		s.mux.ServeHTTP(w, r)
	}
	s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "range", r.Header.Get("Range"), "took", time.Since(start))
}

// fail maps an error to a status and a JSON body.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := statusOf(err)
	if status >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	httpserve.Error(w, status, msg, err.Error())
}

func statusOf(err error) (int, string) {
	if status, msg, ok := apierr.Store(err); ok {
		return status, msg
	}
	if status, msg, ok := apierr.Ingest(err); ok {
		// 413 for over quota, not 507: the client is to send less (or
		// free space), and clients retry 5xx answers (tus-js-client does).
		return status, msg
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, library.ErrUnknownAsset):
		return http.StatusNotFound, "unknown asset"
	case errors.Is(err, outputs.ErrNotFound):
		return http.StatusNotFound, "no such file"
	case errors.Is(err, outputs.ErrBadQuery):
		return http.StatusBadRequest, "bad query"
	case errors.Is(err, mp4build.ErrRange):
		return http.StatusBadRequest, "clip range outside the recording"
	case errors.Is(err, mp4build.ErrTrickRate):
		return http.StatusBadRequest, "invalid trick-play request"
	case errors.Is(err, errBadRequest):
		return http.StatusBadRequest, "bad request"
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, "upload too large"
	case errors.Is(err, errBadUpload):
		return http.StatusBadRequest, "bad upload"
	case errors.Is(err, library.ErrTooManyChapters):
		return http.StatusBadRequest, "too many chapters"
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The client stopped sending the body (see Harden).
		return http.StatusRequestTimeout, "request timeout"
	}
	return http.StatusInternalServerError, "internal error"
}

var errBadUpload = errors.New("bad upload")

// wantsJSON reports whether the client prefers JSON to HTML.
func wantsJSON(r *http.Request) bool {
	if f := r.URL.Query().Get("format"); f != "" {
		return f == "json"
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "application/json":
			return true
		case "text/html":
			return false
		}
	}
	return false
}

func (s *Server) file(w http.ResponseWriter, r *http.Request) {
	s.serveFiles(w, r, r.PathValue("user"), r.PathValue("path"))
}

// serveFiles answers GET /files/{user}/{name} (WebDAV's GET too): "" is the
// library's listing, "ID/" an asset's, anything else a file, with r's query.
func (s *Server) serveFiles(w http.ResponseWriter, r *http.Request, user, name string) {
	if name == "" {
		s.listing(w, r, user)
		return
	}
	if id, ok := strings.CutSuffix(name, "/"); ok && !strings.Contains(id, "/") {
		s.assetListing(w, r, user, id)
		return
	}
	f, how, err := s.out.OpenDelivery(r.Context(), user, name, r.URL.Query())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if how.Stream != nil {
		// A rendition file still being transcoded: a fragmented MP4
		// without size, counted against the budget but not paced.
		how.Stream.Serve(w, r, outputs.StreamOptions{Delivery: s.opt.Delivery, Fail: s.fail, Logger: s.log})
		return
	}
	// Originals, consolidated files, clips and fragmented MP4s are all
	// played while they download: paced as progressive files. A trick
	// stream is paced by its own timeline; the normal stream sent instead
	// of a too sparse one plays how.Speed times faster.
	kind := delivery.Progressive
	if how.Trick {
		kind = delivery.Trick
	}
	d := s.opt.Delivery
	d.Serve(w, r, s.lib.Store(), f, delivery.Params{Kind: kind, Pace: d.Paces(kind), Speed: float64(how.Speed)},
		httpserve.Options{Logger: s.log})
}

// Delivery is the server's delivery controller (nil when none), for its
// statistics.
func (s *Server) Delivery() *delivery.Controller { return s.opt.Delivery }

// Metrics is the server's metrics (served at /metrics), for more
// collectors.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// debugHeap collects garbage, then reports the live heap.
func debugHeap(w http.ResponseWriter, r *http.Request) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	httpserve.WriteJSON(w, http.StatusOK, map[string]any{
		"heap_alloc": ms.HeapAlloc, "heap_inuse": ms.HeapInuse, "goroutines": runtime.NumGoroutine()})
}
