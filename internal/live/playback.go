package live

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/vfile"
)

// Playback of live streams while they are pushed, from any node: every
// node renders the playlists from the stream's State (StateKey), which the
// ingesting node's Recorder rewrites after each stored fragment; other
// nodes cache it for at most half a fragment duration. Below
// /live/{user}/{name}/:
//
//	hls/master.m3u8         one variant per video representation, audio as a rendition group
//	hls/{rep}/index.m3u8    live media playlist: the last ?dvr=SECONDS (default 30),
//	                        or from the start with dvr=0 or type=event, or a
//	                        time-shift range (?vbegin=, ?vend=; see view); ENDLIST once ended
//	hls/{rep}/init.mp4      the stored init segment (init-N.mp4: of epoch N, after a reconnect)
//	hls/{rep}/{num}.m4s     the stored fragment numbered num (its sequence number in epoch 0;
//	                        later epochs number on, see RepEpoch)
//	dash/manifest.mpd       dynamic MPD (SegmentTimeline, $Number$ = num, a Period per epoch); static once ended
//	dash/{rep}/init*.mp4, dash/{rep}/{num}.m4s: as under hls/
//
// Segments are served as stored (CMAF), immutable; manifests with a
// max-age of half a fragment duration.

// Defaults of live playback.
const (
	// DefaultDVR is the default window of live playlists without ?dvr=
	// (Options.DVR).
	DefaultDVR = 30 * time.Second
	// CacheSegment is the Cache-Control of init segments and fragments:
	// the bytes under their URLs never change.
	CacheSegment = "public, max-age=31536000, immutable"
	// maxCachedStates bounds the states a node keeps before it drops the
	// expired ones.
	maxCachedStates = 1024
)

// stateCache keeps the live states that a node read from the store.
type stateCache struct {
	mu      sync.Mutex
	entries map[string]cachedState // by user + "/" + name
}

type cachedState struct {
	st      *State
	expires time.Time
}

// RegisterPlayback mounts the live playback routes (GET and HEAD) on mux,
// which guards them as the caller wants (the server's API guard).
func (s *Service) RegisterPlayback(mux Mux) {
	mux.HandleFunc("GET /live/{user}/{name}/hls/master.m3u8", s.serveMaster)
	mux.HandleFunc("GET /live/{user}/{name}/hls/{rep}/{file}", s.serveHLSFile)
	mux.HandleFunc("GET /live/{user}/{name}/dash/manifest.mpd", s.serveMPD)
	mux.HandleFunc("GET /live/{user}/{name}/dash/{rep}/{file}", s.serveSegment)
	s.registerSmooth(mux)
}

// errNoStream is a stream (or a part of it) that does not exist (404).
var errNoStream = errors.New("no such live stream")

// errBadQuery is a malformed query (400).
var errBadQuery = errors.New("bad query")

// State returns the live state of user's stream name: the Recorder's when
// the stream is pushed to this process, else the one stored, read at most
// half a fragment duration ago. Errors wrap errNoStream for a stream that
// never started.
func (s *Service) State(ctx context.Context, user, name string) (*State, error) {
	if library.CheckUser(user) != nil || CheckName(name) != nil {
		return nil, fmt.Errorf("live: %q/%q: %w", user, name, errNoStream)
	}
	if st := s.lookup(user, name); st != nil {
		return st.rec.State(), nil
	}
	k := user + "/" + name
	now := time.Now()
	s.cache.mu.Lock()
	c, ok := s.cache.entries[k]
	s.cache.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.st, nil
	}
	st, err := LoadState(ctx, s.lib.Store(), user, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", errNoStream, err)
	}
	if err != nil {
		return nil, err
	}
	ttl := time.Duration(st.fragDuration() / 2 * float64(time.Second))
	s.cache.mu.Lock()
	defer s.cache.mu.Unlock()
	if s.cache.entries == nil {
		s.cache.entries = map[string]cachedState{}
	}
	if len(s.cache.entries) >= maxCachedStates {
		for key, e := range s.cache.entries {
			if !now.Before(e.expires) {
				delete(s.cache.entries, key)
			}
		}
	}
	if len(s.cache.entries) < maxCachedStates {
		s.cache.entries[k] = cachedState{st: st, expires: now.Add(ttl)}
	}
	return st, nil
}

// manifestQuery is the query that a master playlist passes on to its
// media playlists.
func manifestQuery(q url.Values) string {
	out := url.Values{}
	for _, k := range viewParams {
		if v := q.Get(k); v != "" {
			out.Set(k, v)
		}
	}
	if len(out) == 0 {
		return ""
	}
	return "?" + out.Encode()
}

// serveManifest answers a generated manifest: cached for at most half a
// fragment duration, with an ETag of its bytes.
func (s *Service) serveManifest(w http.ResponseWriter, r *http.Request, st *State, name, ctype string, b []byte) {
	age := max(int(st.fragDuration()/2), 1)
	f := vfile.New(name, ctype, time.Time{}, vfile.ETag("live", string(b)), []vfile.Piece{vfile.Bytes(b)})
	httpserve.ServeFileWith(w, r, s.lib.Store(), f, httpserve.Options{
		CacheControl: "public, max-age=" + strconv.Itoa(age), Logger: s.log})
}

func (s *Service) serveMaster(w http.ResponseWriter, r *http.Request) {
	st, err := s.State(r.Context(), r.PathValue("user"), r.PathValue("name"))
	if err != nil {
		s.failPlayback(w, r, err)
		return
	}
	if _, err := viewOf(r.URL.Query(), s.opt.DVR); err != nil {
		s.failPlayback(w, r, err)
		return
	}
	b, err := masterPlaylist(st, manifestQuery(r.URL.Query()))
	if err != nil {
		s.failPlayback(w, r, err)
		return
	}
	s.serveManifest(w, r, st, "master.m3u8", "application/vnd.apple.mpegurl", b)
}

// serveHLSFile answers a media playlist or a segment below hls/{rep}/.
func (s *Service) serveHLSFile(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("file") != "index.m3u8" {
		s.serveSegment(w, r)
		return
	}
	st, v, ok := s.manifestState(w, r)
	if !ok {
		return
	}
	rep := st.rep(r.PathValue("rep"))
	if rep == nil || len(rep.Frags) == 0 {
		s.failPlayback(w, r, fmt.Errorf("%w: no fragment of representation %q yet", errNoStream, r.PathValue("rep")))
		return
	}
	b, err := mediaPlaylist(st, rep, v)
	if err != nil {
		s.failPlayback(w, r, err)
		return
	}
	s.serveManifest(w, r, st, "index.m3u8", "application/vnd.apple.mpegurl", b)
}

// manifestState reads the state of the stream of a manifest request and
// the view it asks for; it answers the request and returns false when it
// fails.
func (s *Service) manifestState(w http.ResponseWriter, r *http.Request) (*State, view, bool) {
	st, err := s.State(r.Context(), r.PathValue("user"), r.PathValue("name"))
	if err != nil {
		s.failPlayback(w, r, err)
		return nil, view{}, false
	}
	v, err := viewOf(r.URL.Query(), s.opt.DVR)
	if err != nil {
		s.failPlayback(w, r, err)
		return nil, view{}, false
	}
	return st, v, true
}

func (s *Service) serveMPD(w http.ResponseWriter, r *http.Request) {
	st, v, ok := s.manifestState(w, r)
	if !ok {
		return
	}
	b, err := mpd(st, v, time.Now())
	if err != nil {
		s.failPlayback(w, r, err)
		return
	}
	s.serveManifest(w, r, st, "manifest.mpd", "application/dash+xml", b)
}

// serveSegment answers {rep}/init.mp4 and {rep}/{seq}.m4s: the stored
// object, immutable. A fragment that the state does not list (yet) is
// looked up in the store, where another node may have stored it already.
func (s *Service) serveSegment(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	st, err := s.State(ctx, r.PathValue("user"), r.PathValue("name"))
	if err != nil {
		s.failPlayback(w, r, err)
		return
	}
	repName, file := r.PathValue("rep"), r.PathValue("file")
	rep := st.rep(repName)
	if rep == nil {
		s.failPlayback(w, r, fmt.Errorf("%w: representation %q", errNoStream, repName))
		return
	}
	ctype := "video/mp4"
	if rep.Kind == string(media.KindAudio) {
		ctype = "audio/mp4"
	}
	key, size, err := segmentKey(st, rep, file)
	if err != nil {
		s.failPlayback(w, r, err)
		return
	}
	if size < 0 {
		info, err := s.lib.Store().Stat(ctx, key)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				err = fmt.Errorf("%w: %s of %s not stored (yet)", errNoStream, file, repName)
			}
			s.failPlayback(w, r, err)
			return
		}
		size = info.Size
	}
	f := vfile.New(file, ctype, time.Time{}, vfile.ETag("live segment", key, strconv.FormatInt(size, 10)),
		[]vfile.Piece{vfile.Stored(key, 0, size)})
	httpserve.ServeFileWith(w, r, s.lib.Store(), f, httpserve.Options{CacheControl: CacheSegment, Logger: s.log})
}

// segmentKey is the object key of file of representation rep (init.mp4,
// init-N.mp4 of epoch N, or NUM.m4s, NUM the playlist number) and its
// size, -1 when the state does not list it (yet): its key is then the
// one it would be stored under, which another node may have stored
// already. Errors wrap errNoStream.
func segmentKey(st *State, rep *Rep, file string) (string, int64, error) {
	if n, ok := strings.CutPrefix(file, "init"); ok && strings.HasSuffix(n, ".mp4") {
		n = strings.TrimSuffix(n, ".mp4")
		epoch := 0
		if n != "" {
			v, ok := strings.CutPrefix(n, "-")
			e, err := strconv.Atoi(v)
			if !ok || err != nil || e <= 0 || strconv.Itoa(e) != v {
				return "", 0, fmt.Errorf("%w: %q: want init.mp4, init-N.mp4 or NUM.m4s", errNoStream, file)
			}
			epoch = e
		}
		re := rep.epoch(epoch)
		if re == nil {
			return "", 0, fmt.Errorf("%w: no epoch %d of %s", errNoStream, epoch, rep.Name)
		}
		return re.Init, -1, nil
	}
	v, ok := strings.CutSuffix(file, ".m4s")
	num, err := strconv.Atoi(v)
	if !ok || err != nil || num < 0 || num > math.MaxInt32 || strconv.Itoa(num) != v {
		return "", 0, fmt.Errorf("%w: %q: want init.mp4, init-N.mp4 or NUM.m4s", errNoStream, file)
	}
	// The epoch of num: the last one whose numbers start at or before it.
	eps := rep.epochs()
	re := eps[0]
	for _, e := range eps[1:] {
		if e.Timescale != 0 && e.Base+e.First <= num {
			re = e
		}
	}
	seq := num - re.Base
	if seq < 0 || seq > 99999999 {
		return "", 0, fmt.Errorf("%w: %s of %s", errNoStream, file, rep.Name)
	}
	if i, ok := slices.BinarySearchFunc(rep.Frags, [2]int{re.Epoch, seq}, func(f Frag, k [2]int) int { return cmpFrag(f, k[0], k[1]) }); ok {
		return rep.Frags[i].Key, rep.Frags[i].Size, nil
	}
	return fragmentKey(st.User, st.Asset, rep.Name, re.Epoch, seq), -1, nil
}

// failPlayback answers a playback error as JSON, never cached.
func (s *Service) failPlayback(w http.ResponseWriter, r *http.Request, err error) {
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case errors.Is(err, errNoStream):
		httpserve.Error(w, http.StatusNotFound, "not found", err.Error())
		return
	case errors.Is(err, errBadQuery):
		httpserve.Error(w, http.StatusBadRequest, "bad query", err.Error())
		return
	}
	s.fail(w, r, err)
}
