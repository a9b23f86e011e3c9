// Package live records live streams that an encoder pushes over HTTP, as
// DASH-IF live ingest (and ffmpeg -f dash -method PUT) does, and archives
// each stream as an ordinary asset when it ends.
//
// An encoder pushes to PUT (or POST) /live/{user}/{key}/{file}, where key
// is a stream key (Key) naming the stream: init-streamN.m4s is the init
// segment of representation "streamN", chunk-streamN-NNNNN.m4s its media
// fragment number NNNNN, and *.mpd the manifest, which ends the stream
// when it says type="static". An HLS push (hls.go) and a Smooth Streaming
// push (smoothpush.go) go to the same route. Each init segment and fragment is stored as
// it arrives (see Recorder); a stream that receives nothing for
// Options.IdleTimeout is archived too.
//
// A stream survives the restart of the node it is pushed to: the first
// file of a stream that a Service has no Recorder for resumes the
// recording from the stream's State in the store, unless it has ended
// (see Service.open and resumeRecorder), so that an encoder that goes on
// pushing (retrying, or reconnected to another node behind a load
// balancer) continues the same asset, with every fragment stored before.
//
// While it is pushed, a stream plays from any node (see RegisterPlayback
// and playback.go): the Recorder keeps the stream's State in the store,
// from which every node renders live HLS and DASH playlists.
package live

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/jitstream/jitstream/internal/apierr"
	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/store"
)

// Pattern is the path of pushed files, for an http.ServeMux.
const Pattern = "/live/{user}/{key}/{file}"

// Defaults of Options.
const (
	DefaultIdleTimeout      = 30 * time.Second
	DefaultMaxFragmentBytes = 64 << 20
	DefaultFinishWait       = 10 * time.Second
	// storeTimeout bounds the storing of one pushed file.
	storeTimeout = time.Minute
	// maxManifestBytes bounds a pushed manifest.
	maxManifestBytes = 1 << 20
	// finishTimeout bounds the archiving of the streams still open when
	// Run stops.
	finishTimeout = 30 * time.Second
)

// Options configures a Service.
type Options struct {
	Logger *slog.Logger
	// IdleTimeout: a stream that receives nothing for this long is
	// archived by Run (DefaultIdleTimeout when 0).
	IdleTimeout time.Duration
	// MaxFragmentBytes bounds one pushed file (DefaultMaxFragmentBytes
	// when 0).
	MaxFragmentBytes int64
	// FinishWait bounds the wait, after a static manifest, for the
	// fragments it lists that did not arrive yet (DefaultFinishWait when
	// 0).
	FinishWait time.Duration
	// DVR is the sliding window of live manifests requested without
	// ?dvr= (DefaultDVR when 0).
	DVR time.Duration
}

// Service holds the streams being pushed to this process: one Recorder per
// user and stream name, created (or resumed) by the stream's first file
// to this process.
type Service struct {
	lib *library.Library
	log *slog.Logger
	opt Options

	mu      sync.Mutex
	streams map[string]*stream  // by user + "/" + name
	opening map[string]*opening // streams whose Recorder is being made, by key as streams
	closing map[string]*stream  // streams being archived, by key as streams

	cache stateCache // live states read from the store
}

// stream is a Recorder and when it last received a file.
type stream struct {
	rec    *Recorder
	last   time.Time     // under Service.mu
	closed chan struct{} // closed once the stream is archived (see end)

	hlsMu   sync.Mutex    // serializes an HLS push's files (see hlsInit)
	pending []pendingFrag // under hlsMu: HLS segments held until an init segment
}

// New returns a Service recording into lib.
func New(lib *library.Library, o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.FinishWait <= 0 {
		o.FinishWait = DefaultFinishWait
	}
	if o.DVR <= 0 {
		o.DVR = DefaultDVR
	}
	if o.MaxFragmentBytes <= 0 {
		o.MaxFragmentBytes = DefaultMaxFragmentBytes
	}
	return &Service{lib: lib, log: o.Logger, opt: o, streams: map[string]*stream{},
		opening: map[string]*opening{}, closing: map[string]*stream{}}
}

// SecretFunc returns the deployment's secret (auth.LoadSecret), which
// stream keys derive from.
type SecretFunc func(ctx context.Context) ([]byte, error)

// Mux is where Register mounts the ingest routes.
type Mux interface {
	HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request))
}

// Register mounts PUT and POST Pattern on mux; keys are checked against
// the secret that secret returns. The routes need no token: the stream key
// authenticates.
func (s *Service) Register(mux Mux, secret SecretFunc) {
	h := func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, secret) }
	mux.HandleFunc("PUT "+Pattern, h)
	mux.HandleFunc("POST "+Pattern, h)
}

var (
	initRE  = regexp.MustCompile(`^init-(stream\d+)\.m4s$`)
	chunkRE = regexp.MustCompile(`^chunk-(stream\d+)-(\d{1,8})\.m4s$`)
	mpdRE   = regexp.MustCompile(`^[A-Za-z0-9_.-]+\.mpd$`)
	// HLS push (ffmpeg -f hls -method PUT -hls_segment_type fmp4):
	// init.mp4, {playlist name}N.m4s, {playlist name}.m3u8.
	hlsInitRE = regexp.MustCompile(`^init\.mp4$`)
	hlsSegRE  = regexp.MustCompile(`^[A-Za-z0-9_-]*?(\d{1,8})\.m4s$`)
	m3u8RE    = regexp.MustCompile(`^[A-Za-z0-9_.-]+\.m3u8$`)
	staticRE  = regexp.MustCompile(`(?:^|\s)type\s*=\s*["']static["']`)
)

// serve answers one pushed file.
func (s *Service) serve(w http.ResponseWriter, r *http.Request, secretFn SecretFunc) {
	ctx := r.Context()
	user, key, file := r.PathValue("user"), r.PathValue("key"), r.PathValue("file")
	secret, err := secretFn(ctx)
	if err != nil {
		s.fail(w, r, fmt.Errorf("live: load the secret: %w", err))
		return
	}
	name, ok := ParseKey(secret, user, key)
	if !ok {
		httpserve.Error(w, http.StatusForbidden, "invalid stream key", "the key does not grant a stream of "+strconv.Quote(user))
		return
	}
	if smoothPushRE.MatchString(file) {
		s.smoothPush(w, r, user, name)
		return
	}
	limit := s.opt.MaxFragmentBytes
	m := chunkRE.FindStringSubmatch(file)
	im := initRE.FindStringSubmatch(file)
	isMPD := mpdRE.MatchString(file)
	isM3U8 := m3u8RE.MatchString(file)
	var hm []string
	if m == nil && im == nil {
		hm = hlsSegRE.FindStringSubmatch(file)
	}
	isHLSInit := hlsInitRE.MatchString(file)
	if m == nil && im == nil && !isMPD && hm == nil && !isHLSInit && !isM3U8 {
		httpserve.Error(w, http.StatusBadRequest, "unsupported file",
			"push init-streamN.m4s, chunk-streamN-NNNNN.m4s or a .mpd manifest (DASH), init.mp4, streamN.m4s or a .m3u8 playlist (HLS), or Streams(NAME) (Smooth), not "+strconv.Quote(file))
		return
	}
	if isMPD || isM3U8 {
		limit = maxManifestBytes
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		s.fail(w, r, fmt.Errorf("live: read %s: %w", file, err))
		return
	}
	if isMPD || isM3U8 {
		s.manifest(w, r, user, name, body, isM3U8)
		return
	}
	// The body is whole: store it even if the encoder does not wait for
	// the answer (ffmpeg closes some connections at once).
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	rec, err := s.recorder(sctx, user, name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	switch {
	case im != nil:
		err = rec.AddInit(sctx, im[1], body)
	case m != nil:
		seq, _ := strconv.Atoi(m[2]) // at most 8 digits
		err = rec.AddFragment(sctx, m[1], seq, body)
	case isHLSInit:
		err = s.hlsInit(sctx, rec, body)
	default:
		seq, _ := strconv.Atoi(hm[1]) // at most 8 digits
		err = s.hlsFragment(sctx, rec, seq, body)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.touch(user, name)
	w.WriteHeader(http.StatusNoContent)
}

// manifest answers a pushed manifest: a static one finishes the stream,
// once the fragments it lists have arrived (an encoder may push the last
// fragments and the manifest at once) or Options.FinishWait passed; it
// resumes the stream first when it is the stream's first file to this
// process (see open).
func (s *Service) manifest(w http.ResponseWriter, r *http.Request, user, name string, body []byte, hls bool) {
	var m manifest
	var err error
	if hls {
		m = parsePlaylist(body)
	} else if m, err = parseManifest(body); err != nil {
		m = manifest{static: staticRE.Match(body)}
	}
	s.touch(user, name)
	st := s.lookup(user, name)
	if m.static && st == nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), storeTimeout)
		st, err = s.open(sctx, user, name, false)
		cancel()
		if err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if !m.static || st == nil {
		// Going on, or finished already (or never started).
		w.WriteHeader(http.StatusNoContent)
		return
	}
	// The encoder may go away: finish all the same.
	ctx := context.WithoutCancel(r.Context())
	wctx, cancel := context.WithTimeout(ctx, s.opt.FinishWait)
	err = st.rec.Wait(wctx, m.fragments)
	cancel()
	if err != nil {
		s.log.Warn("live stream ended without all the fragments of its manifest", "user", user, "stream", name, "asset", st.rec.ID(), "waited", s.opt.FinishWait)
	}
	s.finishPush(w, r, user, name, st)
}

// finishPush ends stream st of user's stream name, archiving it, and
// answers with the asset; 204 when it was finished meanwhile (idle), or
// resumed by another node, which archives it (ErrMoved).
func (s *Service) finishPush(w http.ResponseWriter, r *http.Request, user, name string, st *stream) {
	if s.take(user, name, st) == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	// The encoder may not wait for the answer: the archive outlives the
	// request.
	a, err := s.end(context.WithoutCancel(r.Context()), st)
	if errors.Is(err, ErrMoved) {
		s.log.Info("live stream ended here but resumed by another node, which archives it", "user", user, "stream", name, "asset", st.rec.ID())
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpserve.WriteJSON(w, http.StatusOK, a)
}

// lookup returns the stream in progress of user's stream name, nil if
// none.
func (s *Service) lookup(user, name string) *stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams[user+"/"+name]
}

// recorder returns the Recorder of user's stream name, resuming or
// creating it on the stream's first file to this process (see open).
func (s *Service) recorder(ctx context.Context, user, name string) (*Recorder, error) {
	st, err := s.open(ctx, user, name, true)
	if err != nil {
		return nil, err
	}
	return st.rec, nil
}

// opening is a stream whose Recorder one request makes (see open) while
// the others of the stream wait.
type opening struct {
	done chan struct{} // closed when made
	err  error
}

// open returns the stream in progress of user's stream name. When this
// process has none (the stream's first file to it), it makes its
// Recorder (see start): resumed from the stream's State when the stream
// has not ended, else, with create, a new recording; nil, nil when
// neither. One request at a time makes a stream's Recorder, outside
// Service.mu (resuming reads the stream's fragments back); the others of
// the stream wait for it, as do the files of a stream being archived
// (they start a new recording once it is).
func (s *Service) open(ctx context.Context, user, name string, create bool) (*stream, error) {
	k := user + "/" + name
	for {
		s.mu.Lock()
		if st := s.streams[k]; st != nil {
			s.mu.Unlock()
			return st, nil
		}
		var wait <-chan struct{}
		o := s.opening[k]
		if o != nil {
			wait = o.done
		} else if c := s.closing[k]; c != nil {
			wait = c.closed
		}
		if wait != nil {
			s.mu.Unlock()
			select {
			case <-wait:
			case <-ctx.Done():
				return nil, fmt.Errorf("live: %s/%s: %w", user, name, ctx.Err())
			}
			if o != nil && o.err != nil {
				return nil, o.err
			}
			continue
		}
		o = &opening{done: make(chan struct{})}
		s.opening[k] = o
		s.mu.Unlock()

		rec, err := s.start(ctx, user, name, create)
		var st *stream
		s.mu.Lock()
		delete(s.opening, k)
		if rec != nil {
			st = &stream{rec: rec, last: time.Now(), closed: make(chan struct{})}
			s.streams[k] = st
		}
		o.err = err
		close(o.done)
		s.mu.Unlock()
		return st, err
	}
}

// start makes the Recorder of user's stream name, which this process has
// none of. A stream whose State has not ended is resumed
// (resumeRecorder), unless the State shows it idle for
// Options.IdleTimeout already (the node that recorded it went away and
// the encoder too): that one is archived, as Run would have done, and a
// new recording starts. A stream that has ended (or never started) starts
// a new recording (NewRecorder, a new asset id), with create only: else
// start returns nil, nil.
func (s *Service) start(ctx context.Context, user, name string, create bool) (*Recorder, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	state, err := LoadState(ctx, s.lib.Store(), user, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case errors.Is(err, errBadState):
		s.log.Error("live state unreadable; the stream starts anew", "user", user, "stream", name, "err", err)
	case err != nil:
		return nil, err
	case !state.Ended:
		rec, err := s.resume(ctx, state)
		if err != nil || rec != nil {
			return rec, err
		}
	}
	if !create {
		return nil, nil
	}
	rec, err := NewRecorder(ctx, s.lib, s.log, user, name)
	if err != nil {
		return nil, err
	}
	s.log.Info("live stream started", "user", user, "stream", name, "asset", rec.ID())
	return rec, nil
}

// resume resumes the recording of state, which has not ended, for start:
// nil, nil when it was archived instead (idle, or archived already by a
// node that went before it stored the ended state) or cannot be resumed.
func (s *Service) resume(ctx context.Context, state *State) (*Recorder, error) {
	user, name := state.User, state.Name
	if _, err := s.lib.Asset(ctx, user, state.Asset); err == nil {
		// Archived by a node that went before it stored the ended state.
		state.Ended, state.Archived, state.Updated = true, state.Asset, time.Now().UTC()
		if err := state.save(ctx, s.lib.Store()); err != nil {
			return nil, err
		}
		return nil, nil
	} else if !errors.Is(err, library.ErrUnknownAsset) {
		return nil, err
	}
	idle := time.Since(state.Updated)
	rec, err := resumeRecorder(ctx, s.lib, s.log, state)
	if errors.Is(err, errBadState) {
		s.log.Error("live stream not resumed; it starts anew, what it stored is left to jitstream gc", "user", user, "stream", name, "asset", state.Asset, "err", err)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if idle < s.opt.IdleTimeout {
		return rec, nil
	}
	if _, err := rec.Finish(ctx); err != nil {
		s.log.Warn("live stream not archived; what it stored is left to jitstream gc", "user", user, "stream", name, "asset", rec.ID(), "err", err)
	} else {
		s.log.Info("idle live stream archived", "user", user, "stream", name, "asset", rec.ID(), "idle", idle.Round(time.Millisecond))
	}
	return nil, nil
}

// touch records that user's stream name received a file.
func (s *Service) touch(user, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.streams[user+"/"+name]; st != nil {
		st.last = time.Now()
	}
}

// take removes st from the streams in progress, for end to archive it,
// and returns it; nil if it is no longer there.
func (s *Service) take(user, name string, st *stream) *stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := user + "/" + name
	if s.streams[k] != st {
		return nil
	}
	delete(s.streams, k)
	s.closing[k] = st
	return st
}

// end archives st, taken from the streams in progress; until it is done,
// the stream's next file waits (see open), then starts a new recording.
func (s *Service) end(ctx context.Context, st *stream) (*library.Asset, error) {
	a, err := st.rec.Finish(ctx)
	k := st.rec.user + "/" + st.rec.name
	s.mu.Lock()
	if s.closing[k] == st {
		delete(s.closing, k)
	}
	s.mu.Unlock()
	close(st.closed)
	return a, err
}

// Run archives, until ctx is done, the streams that received nothing for
// Options.IdleTimeout, checking a few times per timeout. When ctx is done
// it archives the streams still open (within 30 s) and returns.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(max(s.opt.IdleTimeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
			defer cancel()
			s.finish(fctx, 0)
			return
		case <-t.C:
			s.finish(ctx, s.opt.IdleTimeout)
		}
	}
}

// finish archives the streams idle for at least idle (0: all).
func (s *Service) finish(ctx context.Context, idle time.Duration) {
	now := time.Now()
	var done []*stream
	s.mu.Lock()
	for k, st := range s.streams {
		if now.Sub(st.last) >= idle {
			done = append(done, st)
			delete(s.streams, k)
			s.closing[k] = st
		}
	}
	s.mu.Unlock()
	for _, st := range done {
		r := st.rec
		_, err := s.end(ctx, st)
		if errors.Is(err, ErrMoved) {
			s.log.Info("live stream resumed by another node, which archives it", "user", r.user, "stream", r.name, "asset", r.id)
			continue
		}
		if err != nil {
			s.log.Warn("live stream not archived; what it stored is left to jitstream gc",
				"user", r.user, "stream", r.name, "asset", r.id, "err", err)
			continue
		}
		s.log.Info("idle live stream archived", "user", r.user, "stream", r.name, "asset", r.id, "idle", now.Sub(st.last).Round(time.Millisecond))
	}
}

// fail answers err as JSON with its status.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := statusOf(err)
	if status >= 500 {
		s.log.Error("live ingest failed", "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		s.log.Warn("live ingest refused", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	httpserve.Error(w, status, msg, err.Error())
}

func statusOf(err error) (int, string) {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, "file too large"
	case errors.Is(err, ErrConflict):
		return http.StatusConflict, "conflicting data"
	case errors.Is(err, ErrFinished):
		return http.StatusConflict, "stream finished"
	case errors.Is(err, ErrMoved):
		return http.StatusConflict, "stream moved"
	case errors.Is(err, ErrNoInit):
		return http.StatusConflict, "init segment missing"
	case errors.Is(err, ErrBadRep), errors.Is(err, library.ErrBadName):
		return http.StatusBadRequest, "bad request"
	case errors.Is(err, ErrNothing):
		return http.StatusUnprocessableEntity, "no media received"
	case errors.Is(err, media.ErrInvalid):
		return http.StatusBadRequest, "invalid media"
	case errors.Is(err, media.ErrUnsupported):
		return http.StatusUnsupportedMediaType, "unsupported media"
	case errors.Is(err, library.ErrUnknownUser):
		return http.StatusNotFound, "unknown user"
	}
	if status, msg, ok := apierr.Store(err); ok {
		return status, msg
	}
	if status, msg, ok := apierr.Ingest(err); ok {
		return status, msg
	}
	return http.StatusInternalServerError, "internal error"
}
