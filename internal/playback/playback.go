// Package playback serves server-side playlists (internal/playlist) to
// viewers. Starting playback of a playlist creates a session that decides
// the viewer's ads; the session's URLs are opaque and unguessable (no asset
// ids), and every request of one is checked against the playlist's rules
// before it is served: content after an ad is refused (403) until the ad
// was delivered, or held back until the ad's duration has passed since its
// first byte.
//
// URLs:
//
//	PUT    /api/v1/users/{user}/playlists/{id}            create or replace a playlist (JSON)
//	GET    /api/v1/users/{user}/playlists[/{id}]          list, or read one
//	DELETE /api/v1/users/{user}/playlists/{id}
//	POST   /api/v1/users/{user}/playlists/{id}/sessions   start a session for a viewer (JSON body: playlist.Viewer)
//	GET    /playlists/{user}/{id}/{entry}                 start a session (viewer from the query and headers) and redirect
//	                                                      to its entry: master.m3u8 (HLS), index.m3u8 (HLS TS), manifest.mpd, video.mp4
//	GET    /session/{sid}/hls/master.m3u8                 the session's HLS master playlist
//	GET    /session/{sid}/hls/{v|a}/index.m3u8            its video or audio media playlist: the items, with discontinuities
//	GET    /session/{sid}/hls/{v|a}/{item}/{file}         init.mp4 or {n}.m4s of an item, after the checks
//	GET    /session/{sid}/hls/ts/index.m3u8               the MPEG-TS media playlist (audio and video muxed)
//	GET    /session/{sid}/hls/ts/{item}/{n}.ts            a TS segment of an item, after the checks
//	GET    /session/{sid}/dash/manifest.mpd               the session's DASH manifest: one Period per item
//	GET    /session/{sid}/dash/{v|a}/{item}/{file}        init.mp4 or {n}.m4s of an item (the HLS segments)
//	GET    /session/{sid}/video.mp4                       the items stitched into one progressive MP4, byte ranges checked as they go out (mp4.go)
//	GET    /c/{token}/{path}                              content, shared by every viewer (see below)
//
// Ads are served on the session's URLs, never cached by shared caches, and
// their delivery is what moves the session on and what the beacons report.
// Content segments are the same for every viewer of the same content: a
// session URL of content answers, once its checks pass, with a redirect to
// /c/{token}/..., where token names the content (opaque, see token.go); HTTP
// caches keep those responses once for everyone. The redirect counts as the
// content's delivery.
package playback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jitstream/jitstream/internal/apierr"
	"github.com/jitstream/jitstream/internal/delivery"
	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/playlist"
	"github.com/jitstream/jitstream/internal/streams"
)

// Defaults of Options.
const (
	DefaultMaxWait = 30 * time.Second
	maxBody        = 1 << 20 // bytes of a playlist definition or viewer
)

// Options configure a Handler.
type Options struct {
	Logger    *slog.Logger
	Playlists *playlist.Store
	Sessions  *playlist.Sessions
	// Secret returns the deployment's secret (auth.LoadSecret), from which
	// the key of content tokens is derived. It is called until it
	// succeeds.
	Secret func(ctx context.Context) ([]byte, error)
	// MaxWait bounds how long a request waits for the release of the ad
	// before it (default DefaultMaxWait); a longer wait is answered 403
	// with Retry-After.
	MaxWait time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Pick makes the choice of ads for a new session; default
	// playlist.PickRandom.
	Pick func() func(int) int
	// Delivery, if not nil, paces the stitched MP4 as every progressive
	// file (fast start, then throttled) within the bandwidth budget.
	Delivery *delivery.Controller
}

// Handler serves playlists and sessions.
type Handler struct {
	st  *streams.Handler
	log *slog.Logger
	opt Options

	mu     sync.Mutex
	sealed *sealer // nil until the secret is loaded

	stitched stitchCache // the sessions' progressive MP4s (mp4.go)
}

// New returns a Handler serving the content of st.
func New(st *streams.Handler, opt Options) *Handler {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.MaxWait <= 0 {
		opt.MaxWait = DefaultMaxWait
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Pick == nil {
		opt.Pick = playlist.PickRandom
	}
	return &Handler{st: st, log: opt.Logger, opt: opt}
}

// Mux is where Register mounts routes.
type Mux interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// Register mounts the routes: those of the API and of starting sessions on
// guarded (which asks for the user's token), those of sessions and content
// on open (their URLs are their own credentials).
func (h *Handler) Register(guarded, open Mux) {
	guarded.HandleFunc("PUT /api/v1/users/{user}/playlists/{id}", h.apiPut)
	guarded.HandleFunc("GET /api/v1/users/{user}/playlists", h.apiList)
	guarded.HandleFunc("GET /api/v1/users/{user}/playlists/{id}", h.apiGet)
	guarded.HandleFunc("DELETE /api/v1/users/{user}/playlists/{id}", h.apiDelete)
	guarded.HandleFunc("POST /api/v1/users/{user}/playlists/{id}/sessions", h.apiSession)
	guarded.HandleFunc("GET /playlists/{user}/{id}/{entry}", h.start)
	open.HandleFunc("GET /session/{sid}/hls/master.m3u8", h.master)
	open.HandleFunc("GET /session/{sid}/hls/{track}/index.m3u8", h.media)
	open.HandleFunc("GET /session/{sid}/hls/{track}/{item}/{file}", h.segment)
	open.HandleFunc("GET /session/{sid}/dash/manifest.mpd", h.mpd)
	open.HandleFunc("GET /session/{sid}/dash/{track}/{item}/{file}", h.segment)
	open.HandleFunc("GET /session/{sid}/video.mp4", h.mp4)
	open.HandleFunc("GET /c/{token}/{path...}", h.content)
}

// sealer returns the content token sealer, loading the secret on first
// use.
func (h *Handler) sealer(ctx context.Context) (*sealer, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sealed != nil {
		return h.sealed, nil
	}
	if h.opt.Secret == nil {
		return nil, errors.New("playback: no secret configured")
	}
	secret, err := h.opt.Secret(ctx)
	if err != nil {
		return nil, fmt.Errorf("playback: load the secret: %w", err)
	}
	s, err := newSealer(secret)
	if err != nil {
		return nil, err
	}
	h.sealed = s
	return s, nil
}

// fail answers err as JSON with the status it calls for.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := http.StatusInternalServerError, "internal error"
	detail := ""
	if st, m, ok := apierr.Store(err); ok {
		status, msg = st, m
	} else {
		switch {
		case errors.Is(err, playlist.ErrInvalid):
			status, msg, detail = http.StatusUnprocessableEntity, "invalid playlist", err.Error()
		case errors.Is(err, playlist.ErrNotFound):
			status, msg, detail = http.StatusNotFound, "no such playlist", err.Error()
		case errors.Is(err, playlist.ErrNoSession):
			status, msg, detail = http.StatusNotFound, "no such session", "the session is unknown or has expired: start playback again"
		case errors.Is(err, playlist.ErrBadRequest), errors.Is(err, errBadPath):
			status, msg, detail = http.StatusNotFound, "not found", err.Error()
		case errors.Is(err, errToken):
			status, msg, detail = http.StatusNotFound, "not found", "the content URL is invalid or has expired: reload the playlist"
		case errors.Is(err, library.ErrUnknownUser), errors.Is(err, library.ErrUnknownAsset):
			status, msg, detail = http.StatusUnprocessableEntity, "playlist names unknown media", err.Error()
		case errors.Is(err, library.ErrBadName):
			status, msg, detail = http.StatusBadRequest, "invalid name", err.Error()
		}
	}
	if status == http.StatusInternalServerError {
		h.log.Error("playback", "path", r.URL.Path, "err", err)
		detail = "see the server log"
	}
	w.Header().Set("Cache-Control", "no-store")
	httpserve.Error(w, status, msg, detail)
}

// errBadPath is the error for a session path naming nothing.
var errBadPath = errors.New("no such session resource")

// apiPut creates or replaces a playlist.
func (h *Handler) apiPut(w http.ResponseWriter, r *http.Request) {
	user, id := r.PathValue("user"), r.PathValue("id")
	p, err := playlist.Parse(r.Body, maxBody)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if p.ID != "" && p.ID != id {
		h.fail(w, r, fmt.Errorf("%w: the body's id %q is not the URL's %q", playlist.ErrInvalid, p.ID, id))
		return
	}
	if p.User != "" && p.User != user {
		h.fail(w, r, fmt.Errorf("%w: the body's user %q is not the URL's %q", playlist.ErrInvalid, p.User, user))
		return
	}
	p.ID, p.User = id, user
	status := http.StatusCreated
	if old, err := h.opt.Playlists.Get(r.Context(), user, id); err == nil {
		p.Created, status = old.Created, http.StatusOK
	} else if !errors.Is(err, playlist.ErrNotFound) {
		h.fail(w, r, err)
		return
	}
	if p.Created.IsZero() {
		p.Created = h.opt.Now().UTC().Truncate(time.Second)
	}
	// A playlist that cannot be resolved for anyone is refused now, not
	// at its first viewer.
	if _, err := playlist.Resolve(r.Context(), source{h, user}, p, playlist.Viewer{Time: h.opt.Now()}, playlist.PickSeeded(id)); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.opt.Playlists.Put(r.Context(), p); err != nil {
		h.fail(w, r, err)
		return
	}
	httpserve.WriteJSON(w, status, p)
}

func (h *Handler) apiList(w http.ResponseWriter, r *http.Request) {
	ps, err := h.opt.Playlists.List(r.Context(), r.PathValue("user"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if ps == nil {
		ps = []*playlist.Playlist{}
	}
	httpserve.WriteJSON(w, http.StatusOK, ps)
}

func (h *Handler) apiGet(w http.ResponseWriter, r *http.Request) {
	p, err := h.opt.Playlists.Get(r.Context(), r.PathValue("user"), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpserve.WriteJSON(w, http.StatusOK, p)
}

func (h *Handler) apiDelete(w http.ResponseWriter, r *http.Request) {
	if err := h.opt.Playlists.Delete(r.Context(), r.PathValue("user"), r.PathValue("id")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// sessionView is what starting a session answers: the session's URLs and
// its timeline, without asset ids.
type sessionView struct {
	ID  string `json:"id"`
	HLS string `json:"hls"`
	// HLSTS is the MPEG-TS media playlist (audio and video muxed).
	HLSTS string     `json:"hls_ts"`
	DASH  string     `json:"dash"`
	MP4   string     `json:"mp4"` // the items stitched into one progressive MP4
	Items []itemView `json:"items"`
}

type itemView struct {
	Kind     string         `json:"kind"`
	Slot     string         `json:"slot,omitempty"`
	Duration float64        `json:"duration"`
	Rules    playlist.Rules `json:"rules"`
}

// apiSession starts a session for the viewer in the body (JSON, optional).
func (h *Handler) apiSession(w http.ResponseWriter, r *http.Request) {
	var v playlist.Viewer
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil && !errors.Is(err, io.EOF) {
		h.fail(w, r, fmt.Errorf("%w: the viewer is not valid JSON: %v", playlist.ErrInvalid, err))
		return
	}
	s, err := h.newSession(r.Context(), r.PathValue("user"), r.PathValue("id"), v)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	view := sessionView{ID: s.ID, HLS: "/session/" + s.ID + "/hls/master.m3u8", HLSTS: "/session/" + s.ID + "/hls/ts/index.m3u8",
		DASH: "/session/" + s.ID + "/dash/manifest.mpd", MP4: "/session/" + s.ID + "/video.mp4"}
	for _, it := range s.Timeline.Items {
		view.Items = append(view.Items, itemView{Kind: it.Kind, Slot: it.Slot, Duration: it.Duration, Rules: it.Rules})
	}
	w.Header().Set("Cache-Control", "no-store")
	httpserve.WriteJSON(w, http.StatusCreated, view)
}

// entryOf returns the session URL (below /session/{sid}/) that starting a
// session at name redirects to, if name is one.
func entryOf(name string) (string, bool) {
	switch name {
	case "master.m3u8":
		return "hls/master.m3u8", true
	case "index.m3u8":
		return "hls/ts/index.m3u8", true
	case "manifest.mpd":
		return "dash/manifest.mpd", true
	case "video.mp4":
		return "video.mp4", true
	}
	return "", false
}

// start starts a session for the viewer the request describes and
// redirects to the entry it asks for.
func (h *Handler) start(w http.ResponseWriter, r *http.Request) {
	entry, ok := entryOf(r.PathValue("entry"))
	if !ok {
		h.fail(w, r, fmt.Errorf("%w: %q: a session starts at master.m3u8, index.m3u8, manifest.mpd or video.mp4", errBadPath, r.PathValue("entry")))
		return
	}
	s, err := h.newSession(r.Context(), r.PathValue("user"), r.PathValue("id"), viewerOf(r, h.opt.Now()))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/session/"+s.ID+"/"+entry, http.StatusFound)
}

// newSession resolves playlist id of user for v and stores the session.
func (h *Handler) newSession(ctx context.Context, user, id string, v playlist.Viewer) (*playlist.Session, error) {
	if v.Time.IsZero() {
		v.Time = h.opt.Now().UTC()
	}
	p, err := h.opt.Playlists.Get(ctx, user, id)
	if err != nil {
		return nil, err
	}
	tl, err := playlist.Resolve(ctx, source{h, user}, p, v, h.opt.Pick())
	if err != nil {
		return nil, err
	}
	return h.opt.Sessions.Create(ctx, user, id, v, tl)
}

// source is the playlist.Source of a user's playlists and media.
type source struct {
	h    *Handler
	user string
}

func (s source) Playlist(ctx context.Context, user, id string) (*playlist.Playlist, error) {
	return s.h.opt.Playlists.Get(ctx, user, id)
}

func (s source) Clip(ctx context.Context, user, asset string, start, end float64) (playlist.ClipInfo, error) {
	in, err := s.h.st.Info(ctx, user, clipName(asset, start, end))
	if err != nil {
		return playlist.ClipInfo{}, err
	}
	ci := playlist.ClipInfo{Duration: in.Duration}
	for _, sg := range in.Segments {
		ci.Segments = append(ci.Segments, sg[0])
	}
	return ci, nil
}

// clipName is the streams name of a clip of asset: "ID" when whole, else
// "ID,START-END" in seconds. A cut at a segment boundary (a keyframe) must
// not move to the keyframe before it: the start is rounded up to the
// millisecond and the end down, which stays between the keyframe and the
// frame after it.
func clipName(asset string, start, end float64) string {
	if start <= 0 && end <= 0 {
		return asset
	}
	ms := func(x float64, up bool) string {
		v := x * 1000
		if up {
			v = ceilEps(v)
		} else {
			v = floorEps(v)
		}
		return strconv.FormatFloat(v/1000, 'f', -1, 64)
	}
	name := asset + "," + ms(start, true) + "-"
	if end > 0 {
		name += ms(end, false)
	}
	return name
}

// ceilEps and floorEps round to an integer, taking values within 1e-6 of
// one as that integer (float noise of times in seconds).
func ceilEps(v float64) float64 {
	if r := float64(int64(v + 0.5)); abs(v-r) < 1e-6 {
		return r
	}
	return float64(int64(v)) + 1
}

func floorEps(v float64) float64 {
	if r := float64(int64(v + 0.5)); abs(v-r) < 1e-6 {
		return r
	}
	return float64(int64(v))
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// viewerOf describes the viewer of r: query parameters country,
// language, device and profile.{field}; else the country from a CDN's
// header, the language from Accept-Language and the device from the
// User-Agent.
func viewerOf(r *http.Request, now time.Time) playlist.Viewer {
	q := r.URL.Query()
	v := playlist.Viewer{Country: q.Get("country"), Language: q.Get("language"), Device: q.Get("device"), Time: now.UTC()}
	if v.Country == "" {
		for _, hdr := range []string{"CF-IPCountry", "CloudFront-Viewer-Country", "X-Country-Code"} {
			if c := r.Header.Get(hdr); len(c) == 2 {
				v.Country = strings.ToUpper(c)
				break
			}
		}
	}
	if v.Language == "" {
		if al := r.Header.Get("Accept-Language"); al != "" {
			first, _, _ := strings.Cut(al, ",")
			first, _, _ = strings.Cut(first, ";")
			first, _, _ = strings.Cut(strings.TrimSpace(first), "-")
			if len(first) >= 2 && len(first) <= 3 {
				v.Language = strings.ToLower(first)
			}
		}
	}
	if v.Device == "" {
		ua := r.UserAgent()
		switch {
		case containsAny(ua, "SmartTV", "SMART-TV", "AppleTV", "CrKey", "Android TV", "AFT", "Tizen", "Web0S"):
			v.Device = "tv"
		case containsAny(ua, "Mobi", "iPhone", "Android"):
			v.Device = "mobile"
		case ua != "":
			v.Device = "desktop"
		}
	}
	for k, vals := range q {
		if f, ok := strings.CutPrefix(k, "profile."); ok && f != "" && len(vals) > 0 {
			if v.Profile == nil {
				v.Profile = map[string]string{}
			}
			if len(v.Profile) < 16 && len(f) <= 64 && len(vals[0]) <= 256 {
				v.Profile[f] = vals[0]
			}
		}
	}
	return v
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}
