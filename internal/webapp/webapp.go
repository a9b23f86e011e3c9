// Package webapp serves jitstream's web app: a single page, embedded in the
// binary (package web/app), at Prefix (/app/), where a person signs in with
// a token, browses their library, plays, scrubs and downloads their
// recordings and uploads new ones. The page is plain HTML, CSS and ES
// modules with no build step; the player libraries it uses (hls.js and
// tus-js-client) are vendored, pinned, under /app/vendor/.
//
// The Handler serves the files with their Content-Type, a strong ETag
// (conditional requests answer 304), gzip when the client takes it and it
// pays, and these headers:
//
//   - Cache-Control: "public, max-age=31536000, immutable" for the vendored
//     libraries, whose directory names carry their version (a new version
//     is a new URL), "no-cache" (revalidate with the ETag) for the app's
//     own files, so that a new binary's app is picked up at once;
//   - Content-Security-Policy allowing only the server itself ('self'),
//     with blob: for media and workers (hls.js feeds the <video> through
//     Media Source Extensions and runs its transmuxer in a worker) and
//     data: and blob: for images; no inline scripts or styles, no eval;
//     frames are refused (frame-ancestors 'none');
//   - X-Content-Type-Options: nosniff, Referrer-Policy: same-origin and
//     Cross-Origin-Opener-Policy: same-origin.
//
// How the app authenticates (see internal/server/auth.go): the token that
// the person enters is kept in the browser's localStorage and sent as
// "Authorization: Bearer" with every API request (the asset list, signed
// links, tus uploads). Media elements, images and download links cannot
// send that header, so at sign-in the app also opens GET
// /api/v1/whoami?token=TOKEN: the server moves a valid token into its
// HttpOnly, SameSite=Lax cookie, which authenticates every later GET and
// HEAD of the same origin (HLS playlists and segments, thumbnails, files,
// clips, trick-play streams). Signing out removes the token and asks POST
// /api/v1/signout to expire the cookie. /app/#token=TOKEN signs in too:
// the fragment never reaches a server or its logs, and the app takes it
// out of the address bar at once. Signed links (POST
// /api/v1/users/{user}/assets/{id}/links) are what the app shares.
package webapp

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/web/app"
)

// Prefix is the URL path the app is served at.
const Prefix = "/app/"

// ContentSecurityPolicy is the policy of every response of the Handler.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data: blob:; media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self'; " +
	"font-src 'self'; manifest-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; " +
	"frame-ancestors 'none'"

// Cache-Control values of the served files.
const (
	cacheImmutable  = "public, max-age=31536000, immutable"
	cacheRevalidate = "no-cache"
)

// Options configures a Handler.
type Options struct {
	// Logger receives the handler's logs; nil discards them.
	Logger *slog.Logger
	// Files is the app's file tree, index.html at its top; nil serves the
	// embedded app (package web/app).
	Files fs.FS
}

// Handler serves the app's files below Prefix. Its zero value is not
// usable: make one with New.
type Handler struct {
	fsys fs.FS
	log  *slog.Logger

	once  sync.Once
	files map[string]*file
	err   error
}

// file is one served file, prepared once.
type file struct {
	body, gz     []byte // gz is nil when compressing does not pay
	etag, gzETag string
	ctype, cache string
}

// New returns the handler of the app's files. The files are read (and
// compressed) at the first request, so that a server that is never asked
// for the app does not pay for it.
func New(opt Options) *Handler {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Files == nil {
		opt.Files = app.Files()
	}
	return &Handler{fsys: opt.Files, log: opt.Logger}
}

// load reads every file of the tree.
func (h *Handler) load() {
	h.files = map[string]*file{}
	h.err = fs.WalkDir(h.fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(h.fsys, name)
		if err != nil {
			return err
		}
		h.files[name] = prepare(name, b)
		return nil
	})
	if h.err == nil && h.files["index.html"] == nil {
		h.err = fmt.Errorf("webapp: no index.html among the app's %d files", len(h.files))
	}
	if h.err != nil {
		h.log.Error("webapp: cannot load the app's files", "err", h.err)
	}
}

// prepare makes the served form of a file: its type, cache policy, ETag
// and, for text that shrinks by a tenth or more, its gzip encoding.
func prepare(name string, b []byte) *file {
	f := &file{body: b, ctype: contentType(name), cache: cacheRevalidate, etag: etagOf(b, "")}
	if dir, _, ok := strings.Cut(name, "/"); ok && dir == "vendor" && strings.Count(name, "/") >= 2 {
		f.cache = cacheImmutable // vendor/{library}-{version}/...
	}
	if compressible(f.ctype) && len(b) > 512 {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // the level is valid
		zw.Write(b)
		zw.Close()
		if buf.Len() < len(b)*9/10 {
			f.gz, f.gzETag = buf.Bytes(), etagOf(b, "gz")
		}
	}
	return f
}

// etagOf is the strong ETag of content b in an encoding ("" for none).
func etagOf(b []byte, encoding string) string {
	sum := sha256.Sum256(b)
	tag := base64.RawURLEncoding.EncodeToString(sum[:12])
	if encoding != "" {
		tag += "-" + encoding
	}
	return `"` + tag + `"`
}

// contentType is the Content-Type of a file of the app by its name.
func contentType(name string) string {
	switch ext := path.Ext(name); ext {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".json", ".map":
		return "application/json"
	case ".md":
		return "text/markdown; charset=utf-8"
	case "", ".txt":
		return "text/plain; charset=utf-8" // LICENSE
	default:
		if t := mime.TypeByExtension(ext); t != "" {
			return t
		}
		return "application/octet-stream"
	}
}

func compressible(ctype string) bool {
	return strings.HasPrefix(ctype, "text/") || strings.HasPrefix(ctype, "image/svg") || strings.HasPrefix(ctype, "application/json")
}

// ServeHTTP implements http.Handler: GET and HEAD of Prefix (index.html)
// and of the files below it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", ContentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		httpserve.Error(w, http.StatusMethodNotAllowed, "method not allowed", r.Method+" on the web app's files")
		return
	}
	h.once.Do(h.load)
	if h.err != nil {
		httpserve.Error(w, http.StatusInternalServerError, "internal error", "the web app's files cannot be read")
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		httpserve.Error(w, http.StatusNotFound, "not found", "no route for "+r.Method+" "+r.URL.Path)
		return
	}
	if name == "" {
		name = "index.html"
	}
	f := h.files[name]
	if f == nil {
		hd.Set("Cache-Control", "no-cache")
		httpserve.Error(w, http.StatusNotFound, "not found", "the web app has no file "+name)
		return
	}
	body, etag := f.body, f.etag
	if f.gz != nil {
		hd.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			body, etag = f.gz, f.gzETag
			hd.Set("Content-Encoding", "gzip")
		}
	}
	hd.Set("Content-Type", f.ctype)
	hd.Set("Cache-Control", f.cache)
	hd.Set("ETag", etag)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether the request's Accept-Encoding takes gzip
// (with a non-zero q).
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

// RedirectBrowsers wraps next, the handler of GET /: a browser asking for
// a page (an Accept header naming text/html before any application/json,
// and no ?format=) is redirected to the app (302 to Prefix); everyone else
// (JSON clients, curl's */*, ?format=json) gets next, as before the app.
func RedirectBrowsers(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Accept")
		if !r.URL.Query().Has("format") && prefersHTML(r.Header.Get("Accept")) {
			w.Header().Set("Cache-Control", "no-cache")
			http.Redirect(w, r, Prefix, http.StatusFound)
			return
		}
		next(w, r)
	}
}

// prefersHTML reports whether an Accept header names text/html before
// application/json (the server's rule for pages, see server.wantsJSON).
func prefersHTML(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "text/html", "application/xhtml+xml":
			return true
		case "application/json":
			return false
		}
	}
	return false
}
