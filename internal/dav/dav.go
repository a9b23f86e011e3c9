// Package dav serves each user's library over WebDAV (RFC 4918, class 1,
// read-only but for uploads) at /dav/{user}/, so that file managers and
// tools such as rclone can browse, download and add to it:
//
//	/dav/{user}/                 the library root: ID.mp4, ID.frag.mp4 and
//	                             one collection ID/ per asset
//	/dav/{user}/ID.mp4           the consolidated MP4 (as /files/{user}/ID.mp4)
//	/dav/{user}/ID.frag.mp4      the fragmented MP4
//	/dav/{user}/ID/              an asset's collection: its original chapters
//	/dav/{user}/ID/NAME          an original chapter, byte-exact
//
// Clips (ID.mp4?start=..&end=..) are not listed: a query names no WebDAV
// resource. GET of a file with a query still answers what /files answers.
//
// Methods:
//
//   - OPTIONS: DAV: 1 and the Allow of the resource.
//   - PROPFIND with Depth 0, 1 or infinity (a missing Depth means infinity,
//     RFC 4918 section 9.1). Infinity is answered, not refused with 403: the
//     tree is two levels deep, so it costs what /files/{user}/ with
//     Accept: application/json costs (every file of the library). Bodies
//     allprop (or empty), propname and prop are understood. Properties:
//     displayname, resourcetype, getcontentlength, getcontenttype,
//     getetag, getlastmodified and creationdate. getcontentlength,
//     getetag, getlastmodified (RFC 1123, whole seconds) and
//     getcontenttype are the Content-Length, ETag, Last-Modified and
//     Content-Type of a GET of the same file, since both come from the
//     same virtual file (outputs.Open).
//   - GET and HEAD go to the handler of /files/{user}/... (Options.ServeFiles):
//     the same bytes, ranges, conditionals, ETags, pacing and budget. A
//     collection answers the /files listing (HTML, or JSON when asked).
//   - PUT of a new name at the root ingests the body as a new asset
//     (streamed to the store, never held whole in memory) and answers 201
//     Created, with Location naming the asset's collection and the asset's
//     JSON (as POST /api/v1/users/{user}/assets) as body. Media the
//     library refuses gets the status and JSON error of the upload API
//     (415, 422, 400 for an empty body, 413 over the upload limit or the
//     user's quota: refused before any byte is stored when Content-Length
//     says so, else stopped when the body goes past it).
//   - Every other change is refused: PUT, DELETE, PROPPATCH, MKCOL, COPY
//     and MOVE of existing resources get 403 with a JSON error; MKCOL of a
//     new name 403 too (assets are the only collections); PUT below a
//     collection that does not exist 409 (RFC 4918 section 9.7.1). LOCK and
//     UNLOCK get 405: class 1 has no locks, and rclone does not use them.
//
// Uploaded names. The asset that a PUT of NAME creates gets its id from
// NAME's stem as every ingest does (GX010042.MP4 becomes GX010042, or
// GX010042-2 when that id is taken, ids never being reused), so the files
// it adds are ID.mp4, ID.frag.mp4 and ID/NAME, not NAME. So that clients
// which read an upload back (rclone checks its size with a PROPFIND of
// NAME) see what they sent, NAME at the root, when it names no other file
// or collection, stays an alias of the original it became (ID/NAME, of
// the newest asset that has a chapter named NAME): PROPFIND, GET and HEAD
// answer that original; listings do not show it, and a PUT of NAME ingests
// again. An upload named with the lowercase ".mp4" of generated files
// (clip.mp4) is an exception: clip.mp4 then names the new asset's
// consolidated MP4, whose size differs from the upload's (rclone then
// reports "sizes differ": give it --ignore-size), and a second PUT of
// clip.mp4 is refused (it names an existing file).
//
// Access. With access control on (internal/server, Options.Auth), every
// request needs a token of {user}: WebDAV clients send it as Basic
// credentials, the user name and the token as password (rclone:
// --webdav-user NAME --webdav-pass "$(rclone obscure TOKEN)"); a 401 asks
// for Basic. Signed links never reach WebDAV.
//
// golang.org/x/net/webdav is not used: its Handler writes GET bodies itself
// (io.Copy of a webdav.File), where these must go through httpserve
// (sendfile, multipart ranges, ETags, pacing) as /files does, and it wants
// a lock system and a file system open for writing; the read-only class 1
// subset here is small.
package dav

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/jitstream/jitstream/internal/apierr"
	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/outputs"
	"github.com/jitstream/jitstream/internal/vfile"
)

// Prefix is the URL path below which the handler serves the libraries.
const Prefix = "/dav/"

// WebDAV methods (RFC 4918) not in net/http.
const (
	methodPropfind  = "PROPFIND"
	methodProppatch = "PROPPATCH"
	methodMkcol     = "MKCOL"
	methodCopy      = "COPY"
	methodMove      = "MOVE"
	methodLock      = "LOCK"
	methodUnlock    = "UNLOCK"
)

// Options configures a Handler.
type Options struct {
	// Logger receives the errors of listings (an asset that cannot be
	// listed is left out and logged). Nil discards.
	Logger *slog.Logger
	// ServeFiles answers GET and HEAD of name in user's file-system view
	// exactly as GET /files/{user}/{name} does, with r's query: "" is the
	// library's listing, "ID/" an asset's listing, anything else a file.
	// Required.
	ServeFiles func(w http.ResponseWriter, r *http.Request, user, name string)
	// Fail answers err with the status and JSON body the rest of the
	// server gives it (unknown user 404, invalid media 422...). Nil maps
	// every error to 500 but not-found errors to 404.
	Fail func(w http.ResponseWriter, r *http.Request, err error)
	// MaxUploadBytes bounds the body of a PUT; 0 means no bound.
	MaxUploadBytes int64
}

// Handler serves WebDAV.
type Handler struct {
	out *outputs.Outputs
	lib *library.Library
	log *slog.Logger
	opt Options
}

// New returns a Handler over out's library.
func New(out *outputs.Outputs, opt Options) *Handler {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Fail == nil {
		opt.Fail = defaultFail
	}
	return &Handler{out: out, lib: out.Library(), log: opt.Logger, opt: opt}
}

// Mux is where Register mounts the routes: an *http.ServeMux, or a
// wrapper that adds to each handler (authentication).
type Mux interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// Register mounts the handler on mux at /dav/{user} and below, for every
// method.
func (h *Handler) Register(mux Mux) {
	mux.HandleFunc(Prefix+"{user}", h.serve)
	mux.HandleFunc(Prefix+"{user}/{path...}", h.serve)
}

// serve dispatches a request by method.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request) {
	user, name := r.PathValue("user"), r.PathValue("path")
	t, err := h.resolve(r.Context(), user, name)
	if err != nil {
		h.opt.Fail(w, r, err)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.get(w, r, user, t)
	case http.MethodOptions:
		h.options(w, t)
	case methodPropfind:
		h.propfind(w, r, user, t)
	case http.MethodPut:
		h.put(w, r, user, t)
	case http.MethodDelete, methodProppatch, methodMkcol, methodCopy, methodMove:
		h.refuse(w, r, t)
	default: // LOCK, UNLOCK, POST...
		w.Header().Set("Allow", t.allow())
		detail := r.Method + " is not supported here; allowed: " + t.allow()
		if r.Method == methodLock || r.Method == methodUnlock {
			detail = "this WebDAV server (class 1) has no locks; allowed: " + t.allow()
		}
		httpserve.Error(w, http.StatusMethodNotAllowed, "method not allowed", detail)
	}
}

// kind is what a path names.
type kind int

const (
	missing  kind = iota // nothing (yet)
	root                 // the user's library
	assetDir             // an asset's collection of originals
	file                 // a file
)

// target is a resolved path.
type target struct {
	kind kind
	// name is the path relative to the user's root in the /files view: ""
	// for the root, "ID/" for an asset's collection, the file's name (for
	// an alias, the original's ID/NAME), or the missing path.
	name  string
	asset *library.Asset // of an assetDir
	f     *vfile.File    // of a file
	alias bool           // a file reached by the name it was uploaded under
}

// allow is the Allow header of the target.
func (t target) allow() string {
	switch {
	case t.kind == missing && !strings.Contains(t.name, "/"):
		return "OPTIONS, PUT"
	case t.kind == missing:
		return "OPTIONS"
	case t.alias:
		return "OPTIONS, GET, HEAD, PROPFIND, PUT"
	}
	return "OPTIONS, GET, HEAD, PROPFIND"
}

// isNotFound reports whether err says that a path names nothing in a known
// user's library.
func isNotFound(err error) bool {
	return errors.Is(err, outputs.ErrNotFound) || errors.Is(err, library.ErrUnknownAsset)
}

// resolve finds what name (a path relative to user's root, unescaped, with
// a trailing slash for collections) names. An unknown user is an error;
// a path naming nothing of a known user's library is a missing target.
func (h *Handler) resolve(ctx context.Context, user, name string) (target, error) {
	if name == "" {
		if err := h.lib.HasUser(ctx, user); err != nil {
			return target{}, err
		}
		return target{kind: root}, nil
	}
	if id, ok := strings.CutSuffix(name, "/"); ok {
		if !strings.Contains(id, "/") {
			a, err := h.lib.Asset(ctx, user, id)
			if err == nil {
				return target{kind: assetDir, name: name, asset: a}, nil
			}
			if !isNotFound(err) {
				return target{}, err
			}
		}
		return h.missing(ctx, user, name)
	}
	f, err := h.out.Open(ctx, user, name, nil)
	if err == nil {
		return target{kind: file, name: name, f: f}, nil
	}
	if !isNotFound(err) {
		return target{}, fmt.Errorf("dav: open %s: %w", name, err)
	}
	if strings.Contains(name, "/") {
		return h.missing(ctx, user, name)
	}
	// A collection named without its trailing slash.
	if a, err := h.lib.Asset(ctx, user, name); err == nil {
		return target{kind: assetDir, name: name + "/", asset: a}, nil
	} else if !isNotFound(err) {
		return target{}, err
	}
	return h.uploaded(ctx, user, name)
}

// uploaded resolves name, at the root and naming no file or collection, to
// the original of the newest asset with a chapter of that name (the name
// it was uploaded under), or to a missing target.
func (h *Handler) uploaded(ctx context.Context, user, name string) (target, error) {
	assets, err := h.lib.Assets(ctx, user)
	if err != nil {
		return target{}, err
	}
	for i := len(assets) - 1; i >= 0; i-- {
		a := assets[i]
		for _, c := range a.Chapters {
			if c.Name != name {
				continue
			}
			orig := a.ID + "/" + c.Name
			f, err := h.out.Open(ctx, user, orig, nil)
			if err != nil {
				if isNotFound(err) {
					break // deleted meanwhile
				}
				return target{}, fmt.Errorf("dav: open %s: %w", orig, err)
			}
			return target{kind: file, name: orig, f: f, alias: true}, nil
		}
	}
	return target{kind: missing, name: name}, nil
}

// missing is the missing target name, once the user is known to exist.
func (h *Handler) missing(ctx context.Context, user, name string) (target, error) {
	if err := h.lib.HasUser(ctx, user); err != nil {
		return target{}, err
	}
	return target{kind: missing, name: name}, nil
}

// notFound answers 404 for a missing target.
func (h *Handler) notFound(w http.ResponseWriter, r *http.Request, t target) {
	h.opt.Fail(w, r, fmt.Errorf("%w: %s", outputs.ErrNotFound, t.name))
}

// get answers GET and HEAD through the /files handler.
func (h *Handler) get(w http.ResponseWriter, r *http.Request, user string, t target) {
	if t.kind == missing {
		h.notFound(w, r, t)
		return
	}
	h.opt.ServeFiles(w, r, user, t.name)
}

// options answers OPTIONS: the WebDAV class and the allowed methods (also
// for CORS preflights).
func (h *Handler) options(w http.ResponseWriter, t target) {
	hd := w.Header()
	hd.Set("DAV", "1")
	hd.Set("MS-Author-Via", "DAV")
	hd.Set("Allow", t.allow())
	hd.Set("Access-Control-Allow-Methods", t.allow())
	hd.Set("Access-Control-Allow-Headers", "Depth, Content-Type, Range, If-Range, If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since")
	hd.Set("Access-Control-Max-Age", "86400")
	hd.Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// refuse answers the methods that would change an existing resource, or
// create a collection.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, t target) {
	switch {
	case t.kind == missing && r.Method == methodMkcol:
		httpserve.Error(w, http.StatusForbidden, "read-only",
			"collections cannot be made: each asset is one; PUT media files at the library's root to add assets")
	case t.kind == missing:
		h.notFound(w, r, t)
	default:
		h.readOnly(w, r, t)
	}
}

// readOnly answers 403 for a change to an existing resource.
func (h *Handler) readOnly(w http.ResponseWriter, r *http.Request, t target) {
	what := "/" + t.name + " is generated from the library"
	switch {
	case t.kind == root:
		what = "the library's root is generated from its assets"
	case t.kind == assetDir:
		what = "/" + t.name + " holds the originals of asset " + t.asset.ID
	case strings.Contains(t.name, "/"):
		what = "/" + t.name + " is an original as uploaded"
	}
	w.Header().Set("Allow", t.allow())
	httpserve.Error(w, http.StatusForbidden, "read-only",
		r.Method+" refused: "+what+" and cannot be changed over WebDAV (PUT a new file at the root to add an asset; DELETE /api/v1/users/{user}/assets/{id} removes one)")
}

// put ingests a new file at the root.
func (h *Handler) put(w http.ResponseWriter, r *http.Request, user string, t target) {
	ctx := r.Context()
	switch {
	case t.kind == file && t.alias:
		// A name uploaded before: ingest again (a new asset, a new id).
		t.name = t.name[strings.IndexByte(t.name, '/')+1:]
	case t.kind != missing:
		h.readOnly(w, r, t)
		return
	case strings.Contains(t.name, "/"):
		id, _, _ := strings.Cut(t.name, "/")
		if a, err := h.lib.Asset(ctx, user, id); err == nil {
			h.readOnly(w, r, target{kind: assetDir, name: id + "/", asset: a})
			return
		}
		httpserve.Error(w, http.StatusConflict, "no such collection",
			"uploads go to the library's root: PUT /dav/"+user+"/NAME")
		return
	}
	if r.ContentLength > 0 {
		// Refused before a byte is stored when the size is known.
		if err := h.lib.CheckQuota(ctx, user, r.ContentLength); err != nil {
			h.opt.Fail(w, r, err)
			return
		}
	}
	if h.opt.MaxUploadBytes > 0 {
		r.Body = http.MaxBytesReader(w, r.Body, h.opt.MaxUploadBytes)
	}
	done := false
	a, err := h.lib.Ingest(ctx, user, "", func() (*library.Upload, error) {
		if done {
			return nil, nil
		}
		done = true
		return &library.Upload{Name: t.name, R: r.Body}, nil
	})
	if err != nil {
		h.opt.Fail(w, r, err)
		return
	}
	d, err := h.out.Describe(ctx, a)
	if err != nil {
		h.opt.Fail(w, r, fmt.Errorf("dav: describe new asset %s: %w", a.ID, err))
		return
	}
	w.Header().Set("Location", href(user, a.ID+"/"))
	httpserve.WriteJSON(w, http.StatusCreated, d)
}

// href is the escaped URL path of name (relative to user's root; a
// collection's ends with a slash) below Prefix.
func href(user, name string) string {
	segs := strings.Split(name, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return Prefix + url.PathEscape(user) + "/" + strings.Join(segs, "/")
}

// defaultFail is Options.Fail when none is given.
func defaultFail(w http.ResponseWriter, r *http.Request, err error) {
	if status, msg, ok := apierr.Store(err); ok {
		httpserve.Error(w, status, msg, err.Error())
		return
	}
	switch {
	case errors.Is(err, library.ErrUnknownUser), isNotFound(err):
		httpserve.Error(w, http.StatusNotFound, "not found", err.Error())
	default:
		httpserve.Error(w, http.StatusInternalServerError, "internal error", err.Error())
	}
}
