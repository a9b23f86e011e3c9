// Package tusupload serves resumable uploads with the tus protocol 1.0.0
// (https://tus.io/protocols/resumable-upload): the core protocol and the
// creation, termination and expiration extensions, for each user at
//
//	/api/v1/users/{user}/uploads/
//
// It is built on tusd's protocol handler (github.com/tus/tusd/v2/pkg/handler)
// and its file store, which keep the partial uploads in a directory of their
// own (Options.Dir), and adds what jitstream needs around them: the user
// check, upload ids scoped to the user, ingest when an upload completes,
// the result of that ingest, expiry, and JSON errors.
//
// # Protocol
//
// A client creates an upload with POST to the collection URL, with
// Upload-Length and Upload-Metadata; the answer's Location is the upload's
// URL, /api/v1/users/{user}/uploads/{id}. It sends the bytes with PATCH
// (Upload-Offset, Content-Type application/offset+octet-stream), in as many
// requests as it likes; after a dropped connection, HEAD tells how many
// bytes the server has (Upload-Offset) and the client goes on from there.
// DELETE abandons an upload (of an upload already ingested, it forgets the
// record; the asset stays, to be deleted through the assets API). OPTIONS advertises Tus-Version 1.0.0, the
// extensions (creation, creation-with-upload, termination, expiration) and
// Tus-Max-Size when Options.MaxSize is set. Concatenation and deferred
// lengths are not offered. Upload-Length 0 is refused (nothing to ingest).
//
// The user must exist: any request naming an unknown user is answered 404
// with a JSON error before a byte of the body is read (OPTIONS excepted:
// it answers the same for every name). For a user with a storage quota
// (library.User.Quota), a creation whose Upload-Length, added to the
// user's stored bytes and to the lengths of their unfinished uploads,
// goes past the quota is refused with 413 and the error "over quota"; the
// ingest checks the quota again (library.Ingest). Errors are JSON,
// {"error": "...", "detail": "..."}, like the rest of the API (the detail of
// a protocol error holds tusd's error code, e.g. "ERR_MAX_SIZE_EXCEEDED").
//
// # Metadata
//
// Upload-Metadata keys read (all optional):
//
//	filename   the original file name: it names the chapter and gives the
//	           asset its id, as for the other upload APIs (default upload.mp4)
//	title      the asset's title (default: its id)
//	group      with chapter and chapters: the upload is chapter {chapter} of
//	chapter    {chapters} of one recording; the recording is ingested as one
//	chapters   asset, chapters in order, when all of them are complete.
//	           group is the client's name for the recording ([A-Za-z0-9_-],
//	           at most 64); a chapter number already taken in the group is
//	           refused with 409.
//
// # Ingest and its result
//
// When the last byte of an upload (or of the last chapter of a group)
// arrives, the final PATCH ingests it before answering: the completed
// file is streamed into library.Ingest, which stores, indexes and commits
// the asset; nothing is visible before that commit. Then the upload's data
// is removed from Options.Dir and a small record of the result is kept
// until it expires. The tus answer to that PATCH is 204 as always (at the
// tus level the upload did complete) and carries the outcome in headers:
//
//	Jitstream-Ingest-Status  200 when the asset was committed, 202 when
//	                         the chapter waits for the other chapters of
//	                         its group, else the error status (e.g. 422
//	                         for a file that is not media)
//	Jitstream-Asset          the asset's id, when committed
//
// and at any time afterwards the result is at
//
//	GET /api/v1/users/{user}/uploads/{id}/result
//
// which answers 200 with the asset's JSON (as GET /api/v1/users/{user}/
// assets/{asset}, with a Location header naming it), 202 with
// {"status": "ingesting"|"waiting"|"queued", "detail": ...} while it is not
// settled, 409 while the upload is not complete, the ingest's error status
// with a JSON error when it failed (415 unsupported media, 422 invalid
// media, ...), 404 for an unknown or expired upload. After the ingest, HEAD
// on the upload answers Upload-Offset = Upload-Length (so a client that
// lost the final answer sees the upload as done rather than starting
// again), until the record expires.
//
// If the server stops while an ingest runs, or the store fails (a 5xx
// result), the completed upload stays in Options.Dir and the next sweep
// ingests it again.
//
// # Expiry
//
// An upload that receives no byte for Options.Expiry (default 24 h) is
// deleted by the sweep, which Run starts every Options.SweepInterval
// (Sweep does one pass). The chapters of a group expire together, counting
// from the last byte received for any of them. POST, PATCH and HEAD answers
// for an unfinished upload carry Upload-Expires (an HTTP date). The records
// of finished uploads are forgotten Options.Expiry after the ingest.
//
// # Files
//
// Options.Dir holds, for upload {id} of user {user}, the files
// {user}/uploads/{id} (the bytes received), {id}.info (tusd's description)
// and {id}.result (the record of a finished upload). The directory must
// not be inside the store's key space, or the store would list these files
// as objects: DefaultDir puts it under the FS store's root as ".tmp-uploads",
// a name the FS store never uses as a key nor lists (names starting with
// ".tmp" are reserved to it), on the same file system as the store.
package tusupload

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tus/tusd/v2/pkg/filestore"
	"github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"
	xslog "golang.org/x/exp/slog"

	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/outputs"
)

// BasePath is the path under which every user's upload collection lies:
// the uploads of user U are under BasePath + U + "/uploads/".
const BasePath = "/api/v1/users/"

// Response headers that report the outcome of an ingest (see the package
// documentation).
const (
	HeaderIngestStatus = "Jitstream-Ingest-Status"
	HeaderAsset        = "Jitstream-Asset"
)

// DefaultExpiry is how long an upload may go without receiving a byte
// before it is deleted, when Options.Expiry is 0.
const DefaultExpiry = 24 * time.Hour

// DefaultDir is the default Options.Dir for a server whose FS store is at
// storeRoot: a directory inside it that the store never lists nor uses as a
// key (see the package documentation).
func DefaultDir(storeRoot string) string { return filepath.Join(storeRoot, ".tmp-uploads") }

// Options configures a Service.
type Options struct {
	// Dir holds the partial uploads and the records of finished ones; it
	// is created if missing. Required. It must not be inside a store's key
	// space (see DefaultDir).
	Dir string
	// Expiry: an upload that receives no byte for this long is deleted,
	// and the record of a finished upload is forgotten this long after
	// the ingest. 0 means DefaultExpiry.
	Expiry time.Duration
	// SweepInterval is how often Run sweeps; 0 means a quarter of Expiry,
	// at most 10 minutes.
	SweepInterval time.Duration
	// MaxSize bounds the size of one upload (its Upload-Length); 0 means
	// no bound. Larger uploads are refused at creation with 413.
	MaxSize int64
	// RespectForwardedHeaders makes the Location of a new upload follow
	// X-Forwarded-Host, X-Forwarded-Proto and Forwarded (behind a proxy).
	RespectForwardedHeaders bool
	// Logger receives the service's logs; tusd's own request logs go to
	// it at debug level. Nil discards them.
	Logger *slog.Logger
}

// Service is the tus upload handler and its expiry sweep.
type Service struct {
	out    *outputs.Outputs
	lib    *library.Library
	opt    Options
	log    *slog.Logger
	files  filestore.FileStore
	locker *memorylocker.MemoryLocker
	tus    *handler.UnroutedHandler
	h      http.Handler

	mu     sync.Mutex
	claims map[string]chan struct{} // ingests and deletions under way, by claim key; closed when done
}

// New returns the upload service for out's library. Mount it at
// BasePath + "{user}/uploads/" and run Run for the expiry sweep.
func New(out *outputs.Outputs, opt Options) (*Service, error) {
	if opt.Dir == "" {
		return nil, errors.New("tusupload: no upload directory")
	}
	if opt.Expiry < 0 || opt.SweepInterval < 0 || opt.MaxSize < 0 {
		return nil, errors.New("tusupload: negative expiry, sweep interval or size limit")
	}
	if opt.Expiry == 0 {
		opt.Expiry = DefaultExpiry
	}
	if opt.SweepInterval == 0 {
		opt.SweepInterval = min(opt.Expiry/4, 10*time.Minute)
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(opt.Dir)
	if err != nil {
		return nil, fmt.Errorf("tusupload: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tusupload: create %s: %w", dir, err)
	}
	opt.Dir = dir
	s := &Service{out: out, lib: out.Library(), opt: opt, log: opt.Logger,
		files: filestore.New(dir), locker: memorylocker.New(), claims: map[string]chan struct{}{}}

	composer := handler.NewStoreComposer()
	ds := dataStore{s}
	composer.UseCore(ds)
	composer.UseTerminater(ds)
	s.locker.UseIn(composer)
	cors := handler.DefaultCorsConfig
	cors.ExposeHeaders += ", Upload-Expires, " + HeaderIngestStatus + ", " + HeaderAsset
	tus, err := handler.NewUnroutedHandler(handler.Config{
		StoreComposer:             composer,
		MaxSize:                   opt.MaxSize,
		BasePath:                  BasePath,
		DisableDownload:           true,
		Cors:                      &cors,
		RespectForwardedHeaders:   opt.RespectForwardedHeaders,
		Logger:                    xslog.New(logHandler{opt.Logger.Handler()}),
		PreUploadCreateCallback:   s.preCreate,
		PreFinishResponseCallback: s.preFinish,
	})
	if err != nil {
		return nil, fmt.Errorf("tusupload: %w", err)
	}
	s.tus = tus
	s.h = tus.Middleware(http.HandlerFunc(s.route))
	return s, nil
}

// Dir is the directory of the partial uploads.
func (s *Service) Dir() string { return s.opt.Dir }

// userKey is the request context key of the user an upload request names.
type userKey struct{}

// reqCtxKey is the request context key of the request's context as it was
// before tusd's handler wrapped it (see hookContext).
type reqCtxKey struct{}

// hookContext returns the context for the work of a tusd callback (store
// requests): the request's own, not hook.Context. hook.Context is tusd's
// per-request struct, whose fields tusd sets while the request goes on
// (its logger), and which is copied whole when a context derived from it
// is cancelled (its Value is a method of the struct value): an HTTP client
// (the S3 store's) cancels its requests' contexts from goroutines of its
// own, a data race with tusd's writes.
func hookContext(hook handler.HookEvent) context.Context {
	if ctx, ok := hook.Context.Value(reqCtxKey{}).(context.Context); ok {
		return ctx
	}
	return hook.Context
}

// validID reports whether id has the form of the ids this service gives
// uploads: 32 lower-case hexadecimal digits.
func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// tusID is the id of upload id of user in tusd (and its path under Dir):
// with BasePath, tusd makes it the upload's URL.
func tusID(user, id string) string { return user + "/uploads/" + id }

// splitTusID is the inverse of tusID.
func splitTusID(tid string) (user, id string, ok bool) {
	user, id, ok = strings.Cut(tid, "/uploads/")
	return user, id, ok && library.CheckUser(user) == nil && validID(id)
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// parsePath splits a request path into the user, the upload id ("" for
// the collection) and what follows the id ("" or "result").
func parsePath(p string) (user, id, sub string, ok bool) {
	rest, ok := strings.CutPrefix(p, BasePath)
	if !ok {
		return "", "", "", false
	}
	user, rest, _ = strings.Cut(rest, "/")
	rest, ok = strings.CutPrefix(rest, "uploads")
	if !ok || user == "" || (rest != "" && rest[0] != '/') {
		return "", "", "", false
	}
	rest = strings.TrimPrefix(rest, "/")
	id, sub, _ = strings.Cut(rest, "/")
	if strings.Contains(sub, "/") || (id == "" && sub != "") {
		return "", "", "", false
	}
	return user, id, sub, true
}

// ServeHTTP implements http.Handler: it checks the user, answers the
// result endpoint itself and hands the tus requests to tusd.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, id, sub, ok := parsePath(r.URL.Path)
	if !ok || (sub != "" && sub != "result") {
		httpserve.Error(w, http.StatusNotFound, "not found", "no upload resource at "+r.URL.Path)
		return
	}
	// Before reading any of the body. OPTIONS (CORS preflights, tus
	// discovery) tells nothing of users: it is answered for any name, so
	// that it need not be authenticated.
	if err := s.lib.HasUser(r.Context(), user); err != nil && r.Method != http.MethodOptions {
		status, msg := statusOf(err)
		httpserve.Error(w, status, msg, err.Error())
		return
	}
	if id != "" && !validID(id) {
		httpserve.Error(w, http.StatusNotFound, "unknown upload", fmt.Sprintf("no upload %q", id))
		return
	}
	if sub == "result" {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			httpserve.Error(w, http.StatusMethodNotAllowed, "method not allowed", r.Method+" on an upload's result")
			return
		}
		s.result(w, r, user, id)
		return
	}
	ctx := context.WithValue(r.Context(), userKey{}, user)
	r = r.WithContext(context.WithValue(ctx, reqCtxKey{}, ctx))
	u := *r.URL
	u.Path, u.RawPath = "", ""
	if id != "" {
		u.Path = tusID(user, id)
	}
	r.URL = &u
	tw := &tusWriter{ResponseWriter: w, s: s, r: r}
	s.h.ServeHTTP(tw, r)
	tw.finish()
}

// route dispatches the tus requests, after tusd's middleware; r.URL.Path
// is the tusd id of the upload, or "" for the collection.
func (s *Service) route(w http.ResponseWriter, r *http.Request) {
	coll := r.URL.Path == ""
	switch {
	case coll && r.Method == http.MethodPost:
		s.tus.PostFile(w, r)
	case !coll && r.Method == http.MethodHead:
		s.tus.HeadFile(w, r)
	case !coll && r.Method == http.MethodPatch:
		s.tus.PatchFile(w, r)
	case !coll && r.Method == http.MethodDelete:
		s.tus.DelFile(w, r)
	default:
		allow := "POST, OPTIONS"
		if !coll {
			allow = "HEAD, PATCH, DELETE, OPTIONS"
		}
		w.Header().Set("Allow", allow)
		httpserve.Error(w, http.StatusMethodNotAllowed, "method not allowed", r.Method+" is not a tus request here (allowed: "+allow+")")
	}
}

// tusWriter adapts tusd's answers: it adds Upload-Expires and the
// expiration extension, and turns tusd's plain-text errors into JSON.
type tusWriter struct {
	http.ResponseWriter
	s      *Service
	r      *http.Request
	status int
	errBuf *bytes.Buffer // the body of an error being turned into JSON
}

// WriteHeader implements http.ResponseWriter.
func (w *tusWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	h := w.Header()
	if code >= 400 && w.r.Method != http.MethodHead && strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		w.errBuf = &bytes.Buffer{}
		return
	}
	if code < 300 {
		if ext := h.Get("Tus-Extension"); ext != "" {
			h.Set("Tus-Extension", ext+",expiration")
		}
		w.s.setExpires(w.r, h)
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *tusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.errBuf != nil {
		return w.errBuf.Write(p)
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap is the underlying writer, for http.ResponseController (tusd sets
// read deadlines through it).
func (w *tusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish sends the JSON of a held error.
func (w *tusWriter) finish() {
	if w.errBuf == nil {
		return
	}
	line := strings.TrimSpace(w.errBuf.String())
	msg := line
	if _, m, ok := strings.Cut(line, ": "); ok {
		msg = m
	}
	w.Header().Del("Content-Length")
	httpserve.Error(w.ResponseWriter, w.status, msg, line)
}

// setExpires adds Upload-Expires to a successful answer about an
// unfinished upload.
func (s *Service) setExpires(r *http.Request, h http.Header) {
	if h.Get(HeaderIngestStatus) != "" {
		return // finished
	}
	var last time.Time
	switch r.Method {
	case http.MethodPost, http.MethodPatch:
		last = time.Now()
	case http.MethodHead:
		if h.Get("Upload-Offset") == h.Get("Upload-Length") {
			return
		}
		fi, err := os.Stat(filepath.Join(s.opt.Dir, filepath.FromSlash(r.URL.Path)))
		if err != nil {
			return
		}
		last = fi.ModTime()
	default:
		return
	}
	h.Set("Upload-Expires", last.Add(s.opt.Expiry).UTC().Format(http.TimeFormat))
}

// jsonError is a tusd error (for tusd's callbacks to return) whose answer
// is jitstream's JSON error body.
func jsonError(status int, msg, detail string) handler.Error {
	e := handler.NewError("ERR_JITSTREAM", msg, status)
	b, _ := json.Marshal(struct {
		Error  string `json:"error"`
		Detail string `json:"detail"`
	}{msg, detail}) // strings always marshal
	e.HTTPResponse.Body = string(b) + "\n"
	e.HTTPResponse.Header = handler.HTTPHeader{"Content-Type": "application/json"}
	return e
}

// Pattern is the http.ServeMux pattern to mount a Service at.
const Pattern = BasePath + "{user}/uploads/"

// Owns reports whether a request path is one a Service answers (the
// collections, uploads and results of every user), whatever the method:
// a server that answers OPTIONS itself elsewhere must let these through
// (tus clients and browsers' CORS preflights need tusd's answer).
func Owns(path string) bool {
	_, _, _, ok := parsePath(path)
	return ok
}
