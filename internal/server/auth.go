package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jitstream/jitstream/internal/auth"
	"github.com/jitstream/jitstream/internal/dav"
	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/outputs"
	"github.com/jitstream/jitstream/internal/urls"
)

// Access control, when Options.Auth is set (see the package documentation
// of internal/auth for tokens and links):
//
//   - Every route naming a user (/files, /streams, /watch, /play, /api,
//     uploads, /dav) asks for a token of that user: Authorization: Bearer,
//     Basic (user name and token, for WebDAV clients), or the cookie set
//     when a page is opened with ?token=. No or a bad token: 401 with
//     WWW-Authenticate. A valid token of another user: 404 with one body
//     for every path ("not found", "no such resource"), so that nothing
//     tells whether the other user or resource exists.
//   - A signed link, /s/{exp}.{sig}/PATH, grants GET and HEAD of what it
//     was made for, and nothing else: 403 otherwise, before anything is
//     looked up.
//   - Responses to token requests are "private" for HTTP caches; those to
//     link requests stay "public" (the link is in the URL, so a cache
//     shares them only with holders of the same link), with max-age capped
//     at the link's expiry.
//   - /, /healthz and /metrics are open (/ lists only the library of the
//     token it is given); /debug/ asks for any valid token.

// routeKind is what a guarded route serves.
type routeKind int

const (
	routeFiles routeKind = iota
	routeStreams
	routeWatch
	routePlay
	routeAPI
	routeUploads
	routeDAV
	routeDebug // not user-scoped: any valid token
)

// linkRoute is the first path element that links use for the kind, ""
// for the kinds links never reach.
func (k routeKind) linkRoute() string {
	switch k {
	case routeFiles:
		return "files"
	case routeStreams:
		return "streams"
	case routeWatch:
		return "watch"
	case routePlay:
		return "play"
	}
	return ""
}

// kindOfPattern is the kind of a route registered by another package.
func kindOfPattern(pattern string) routeKind {
	_, p, _ := strings.Cut(pattern, " ")
	if p == "" {
		p = pattern
	}
	switch {
	case strings.HasPrefix(p, "/streams/"):
		return routeStreams
	case strings.HasPrefix(p, "/play/"):
		return routePlay
	case strings.HasPrefix(p, dav.Prefix):
		return routeDAV
	}
	panic("server: no access rule for route " + pattern)
}

// guardedMux mounts the routes of other packages (streams, WebDAV) behind
// the guard.
type guardedMux struct{ s *Server }

// HandleFunc implements streams.Mux and dav.Mux.
func (g guardedMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	g.s.mux.HandleFunc(pattern, g.s.guard(kindOfPattern(pattern), h))
}

// parsedLinkKey is the context key of the link a request path started
// with (checked by the guard, once the route is known).
type parsedLinkKey struct{}

// stripLink takes the /s/{elem} element off a link request: the rest of
// the server sees the path below it, and the guard checks the link
// against what the route names. err is set for a malformed link path.
func (s *Server) stripLink(r *http.Request) (*http.Request, error) {
	pl, rest, ok, err := auth.ParseLinkPath(r.URL.EscapedPath())
	if !ok || err != nil {
		return r, err
	}
	p, err := url.PathUnescape(rest)
	if err != nil {
		return r, fmt.Errorf("%w: bad escape", auth.ErrLinkInvalid)
	}
	u := *r.URL
	u.Path, u.RawPath = p, ""
	if u.EscapedPath() != rest {
		u.RawPath = rest
	}
	r2 := r.WithContext(context.WithValue(r.Context(), parsedLinkKey{}, pl))
	r2.URL = &u
	return r2, nil
}

// guard wraps the handler of a user-scoped route with access control
// (nothing when the server has no Auth).
func (s *Server) guard(kind routeKind, h http.HandlerFunc) http.HandlerFunc {
	if s.opt.Auth == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		user := r.PathValue("user")
		if pl, _ := ctx.Value(parsedLinkKey{}).(*auth.ParsedLink); pl != nil {
			route := kind.linkRoute()
			if route == "" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
				s.linkRefused(w, fmt.Errorf("%w: links grant GET and HEAD of media only", auth.ErrLinkInvalid))
				return
			}
			l, err := s.opt.Auth.CheckLink(pl, auth.Target{User: user, Asset: s.assetOf(kind, r), Path: r.URL.EscapedPath()})
			if err != nil {
				s.linkRefused(w, err)
				return
			}
			if rec, ok := w.(*recorder); ok {
				rec.capAge, rec.capAgeSet = max(int64(time.Until(l.Expires)/time.Second), 0), true
			}
			h(w, r.WithContext(auth.WithLink(ctx, l)))
			return
		}
		if kind == routeUploads && r.Method == http.MethodOptions {
			h(w, r) // tus discovery and CORS preflights: the same for everyone
			return
		}
		t, err := s.opt.Auth.Authenticate(r)
		if err != nil {
			s.unauthorized(w, r, err)
			return
		}
		if kind != routeDebug && t.User != user {
			notYours(w)
			return
		}
		if rec, ok := w.(*recorder); ok {
			rec.private = true
		}
		h(w, r.WithContext(auth.WithToken(ctx, t)))
	}
}

// assetOf is the asset a request of a route names ("" for none).
func (s *Server) assetOf(kind routeKind, r *http.Request) string {
	switch kind {
	case routeFiles:
		return auth.AssetOf("files", r.PathValue("path"))
	case routeStreams:
		return auth.AssetOf("streams", r.PathValue("asset"))
	case routeWatch, routePlay:
		return auth.AssetOf("watch", r.PathValue("id"))
	}
	return ""
}

// unauthorized answers a request without a valid token: 401 with the
// schemes to use, or 500 when the store could not tell.
func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, auth.ErrNoCredentials) && !errors.Is(err, auth.ErrInvalidToken) {
		s.fail(w, r, fmt.Errorf("server: authenticate: %w", err))
		return
	}
	h := w.Header()
	if strings.HasPrefix(r.URL.Path, dav.Prefix) {
		h.Add("WWW-Authenticate", `Basic realm="jitstream", charset="UTF-8"`)
	}
	h.Add("WWW-Authenticate", `Bearer realm="jitstream"`)
	h.Set("Cache-Control", "no-store")
	if errors.Is(err, auth.ErrNoCredentials) {
		httpserve.Error(w, http.StatusUnauthorized, "unauthorized",
			"this server needs a token: send Authorization: Bearer TOKEN (WebDAV: Basic, with the user name and the token as password), or open a page once with ?token=TOKEN")
		return
	}
	httpserve.Error(w, http.StatusUnauthorized, "unauthorized", "the token is malformed, unknown, revoked or expired")
}

// notYours answers a valid token used on another user's path: the same
// 404 whatever the path, so that nothing tells what exists there.
func notYours(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	httpserve.Error(w, http.StatusNotFound, "not found", "no such resource")
}

// linkRefused answers a link that does not grant the request: 403, the
// same for every path (nothing has been looked up).
func (s *Server) linkRefused(w http.ResponseWriter, err error) {
	w.Header().Set("Cache-Control", "no-store")
	if errors.Is(err, auth.ErrLinkExpired) {
		httpserve.Error(w, http.StatusForbidden, "link expired", "this link has expired: ask for a new one")
		return
	}
	httpserve.Error(w, http.StatusForbidden, "invalid link", "the link is malformed, altered, or not for this resource")
}

// tokenRedirect answers a GET or HEAD with ?token=: with a valid token, it
// keeps it in a cookie and redirects to the same URL without it, so that
// the token leaves the address bar, the history and Referer headers.
func (s *Server) tokenRedirect(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	token := q.Get(auth.QueryParam)
	t, err := s.opt.Auth.Verify(r.Context(), token)
	if err != nil {
		s.unauthorized(w, r, err)
		return
	}
	http.SetCookie(w, s.opt.Auth.Cookie(r, token, t))
	q.Del(auth.QueryParam)
	target := r.URL.EscapedPath()
	if !strings.HasPrefix(target, "/") || strings.HasPrefix(target, "//") || strings.HasPrefix(target, "/\\") {
		target = "/" + strings.TrimLeft(target, "/\\") // never another host
	}
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, target, http.StatusFound)
}

// hasTokenQuery reports whether a raw query has the token parameter.
func hasTokenQuery(rawQuery string) bool {
	return rawQuery != "" && hasParam(rawQuery, auth.QueryParam)
}

// linkRequest is the body of POST .../assets/{id}/links.
type linkRequest struct {
	// ExpiresIn is the link's lifetime in seconds (rounded up to the
	// hour); 0 or absent: DefaultLinkTTL.
	ExpiresIn int64 `json:"expires_in"`
}

// DefaultLinkTTL is the lifetime of a link asked for without expires_in.
const DefaultLinkTTL = 24 * time.Hour

// apiLink makes a signed link to every format of an asset.
func (s *Server) apiLink(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	a, err := s.lib.Asset(ctx, r.PathValue("user"), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req linkRequest
	b, err := io.ReadAll(io.LimitReader(r.Body, 4096))
	if err != nil {
		s.fail(w, r, fmt.Errorf("%w: reading the body: %w", errBadRequest, err))
		return
	}
	if len(strings.TrimSpace(string(b))) > 0 {
		if err := json.Unmarshal(b, &req); err != nil {
			s.fail(w, r, fmt.Errorf("%w: body: %w (want {\"expires_in\": SECONDS})", errBadRequest, err))
			return
		}
	}
	ttl := DefaultLinkTTL
	if req.ExpiresIn < 0 || req.ExpiresIn > int64(auth.MaxLinkTTL/time.Second) {
		s.fail(w, r, fmt.Errorf("%w: expires_in %d: want seconds from 1 to %d", errBadRequest, req.ExpiresIn, int64(auth.MaxLinkTTL/time.Second)))
		return
	}
	if req.ExpiresIn > 0 {
		ttl = time.Duration(req.ExpiresIn) * time.Second
	}
	l, err := s.opt.Auth.SignLink(auth.Scope{User: a.User, Asset: a.ID}, ttl)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpserve.WriteJSON(w, http.StatusCreated, LinkJSON(l, a))
}

// LinkJSON describes an asset link as the API (and jitstream links
// create --json) gives it: its expiry, its path prefix, the entry URL and
// the URL of every format, all below the link.
func LinkJSON(l *auth.Link, a *library.Asset) map[string]any {
	return map[string]any{
		"user":    a.User,
		"asset":   a.ID,
		"expires": l.Expires.Format(time.RFC3339),
		"path":    l.Path(),
		"url":     l.URL(urls.Play(a.User, a.ID)),
		"urls":    signAll(outputs.URLs(a), l),
	}
}

// signAll puts every URL of v (strings, lists and maps of them) below l.
func signAll(v any, l *auth.Link) any {
	switch x := v.(type) {
	case string:
		return l.URL(x)
	case []string:
		out := make([]string, len(x))
		for i, u := range x {
			out[i] = l.URL(u)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, u := range x {
			out[k] = signAll(u, l)
		}
		return out
	}
	return v
}

// adjustCacheControl makes a Cache-Control value private (responses to
// token requests) and caps its max-age (responses to link requests).
func adjustCacheControl(v string, private bool, capAge int64, capped bool) string {
	if v == "" {
		if private {
			return "private"
		}
		return v
	}
	parts := strings.Split(v, ",")
	out := parts[:0]
	for _, p := range parts {
		p = strings.TrimSpace(p)
		name, val, _ := strings.Cut(p, "=")
		switch strings.ToLower(name) {
		case "public":
			if private {
				p = "private"
			}
		case "max-age", "s-maxage":
			if n, err := strconv.ParseInt(val, 10, 64); capped && err == nil && n > capAge {
				p = name + "=" + strconv.FormatInt(capAge, 10)
			}
		}
		out = append(out, p)
	}
	return strings.Join(out, ", ")
}

// errBadRequest is a malformed API request (400).
var errBadRequest = errors.New("bad request")

// userToken is the token a request presents when it is valid, for the
// open pages (the home page lists its user's library); nil otherwise.
func (s *Server) userToken(r *http.Request) *auth.Token {
	if s.opt.Auth == nil {
		return nil
	}
	t, err := s.opt.Auth.Authenticate(r)
	if err != nil {
		return nil
	}
	return t
}
