package server

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jitstream/jitstream/internal/dav"
	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/internal/tusupload"
)

// Settings of the http.Server that serves jitstream (cmd/jitstream serve),
// against slow and oversized requests. There is no WriteTimeout: paced
// downloads last hours by design; a client that stops reading is dropped
// by httpserve's write idle timeout instead (Limits.WriteIdleTimeout).
const (
	// ReadHeaderTimeout bounds the reading of a request's header: a client
	// that sends it slowly (slowloris) is cut.
	ReadHeaderTimeout = 10 * time.Second
	// ReadTimeout bounds the reading of a whole request, header and body
	// (net/http lifts the read deadline once the body has been read, so
	// it never cuts a long download). Harden replaces it for the bodies it
	// reads with an idle deadline, so that an upload may last as long as
	// bytes keep coming; it still bounds bodies that no handler reads
	// (net/http discards up to 256 KiB of them after the handler).
	ReadTimeout = time.Minute
	// IdleTimeout bounds the wait for the next request on a kept-alive
	// connection.
	IdleTimeout = 2 * time.Minute
	// MaxHeaderBytes bounds a request's header (request line included):
	// net/http answers 431 beyond it.
	MaxHeaderBytes = 64 << 10
)

// Request limits that Harden enforces.
const (
	// MaxURLPath bounds the URL path of a request, as sent (escaped):
	// longer ones are answered 414.
	MaxURLPath = 4 << 10
	// MaxURLQuery bounds the query of a request: longer ones are answered
	// 414.
	MaxURLQuery = 4 << 10
	// MaxAPIBody bounds the body of API requests (/api/) other than
	// uploads: JSON bodies. A longer body fails to read with an
	// *http.MaxBytesError, answered 413.
	MaxAPIBody = 64 << 10
	// DefaultBodyIdleTimeout is the default of Limits.BodyIdleTimeout.
	DefaultBodyIdleTimeout = time.Minute
)

// Limits tune Harden. The zero value is ready to use.
type Limits struct {
	// BodyIdleTimeout drops a client that stops sending a request body:
	// each read of the body must get bytes within it (net/http's read
	// deadline, set before each read), so an upload may last as long as it
	// keeps going. Zero means DefaultBodyIdleTimeout. Uploads with tus
	// have their own (tusd's NetworkTimeout, also a minute).
	BodyIdleTimeout time.Duration
	// WriteIdleTimeout, if not zero, is the write idle timeout of the
	// files served (httpserve.Options.WriteIdleTimeout; default
	// httpserve.DefaultWriteIdleTimeout): a client that takes in nothing
	// for that long is dropped.
	WriteIdleTimeout time.Duration
}

// Harden wraps h (a Server) with the request limits of the HTTP layer:
//   - a URL path longer than MaxURLPath, or a query longer than
//     MaxURLQuery, is answered 414 with a JSON error;
//   - a request body is read under an idle deadline (BodyIdleTimeout)
//     rather than http.Server.ReadTimeout's whole-request one; a read that
//     times out fails with an error wrapping os.ErrDeadlineExceeded,
//     answered 408 by the upload handlers;
//   - an API request body other than an upload (POST
//     /api/v1/users/{user}/assets, tus uploads) is limited to MaxAPIBody.
//
// Uploads with tus are left to tusd, which sets its own deadlines.
func Harden(h http.Handler, l Limits) http.Handler {
	if l.BodyIdleTimeout <= 0 {
		l.BodyIdleTimeout = DefaultBodyIdleTimeout
	}
	return &hardened{h: h, l: l}
}

type hardened struct {
	h http.Handler
	l Limits
}

func (hd *hardened) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if n := pathLen(r); n > MaxURLPath {
		httpserve.Error(w, http.StatusRequestURITooLong, "URI too long",
			"the URL path has "+strconv.Itoa(n)+" bytes; the limit is "+strconv.Itoa(MaxURLPath))
		return
	}
	if n := len(r.URL.RawQuery); n > MaxURLQuery {
		httpserve.Error(w, http.StatusRequestURITooLong, "URI too long",
			"the URL query has "+strconv.Itoa(n)+" bytes; the limit is "+strconv.Itoa(MaxURLQuery))
		return
	}
	// Requests without a body need nothing: net/http lifts the read
	// deadline when it starts reading in the background (to notice the
	// client leaving) once the body is done, at once for them. tusd sets
	// read and write deadlines of its own.
	if r.Body != nil && r.Body != http.NoBody && !tusupload.Owns(r.URL.Path) {
		if strings.HasPrefix(r.URL.Path, "/api/") && !isUpload(r) {
			r.Body = http.MaxBytesReader(w, r.Body, MaxAPIBody)
		}
		r.Body = &idleBody{ReadCloser: r.Body, rc: http.NewResponseController(w), d: hd.l.BodyIdleTimeout}
	}
	if d := hd.l.WriteIdleTimeout; d != 0 {
		r = r.WithContext(httpserve.WithWriteIdleTimeout(r.Context(), d))
	}
	hd.h.ServeHTTP(w, r)
}

// pathLen is the length of r's URL path as sent.
func pathLen(r *http.Request) int {
	if u := r.RequestURI; u != "" {
		p, _, _ := strings.Cut(u, "?")
		return len(p)
	}
	return len(r.URL.EscapedPath())
}

// isUpload reports whether r is an upload whose body is media: POST
// /api/v1/users/{user}/assets or a WebDAV PUT (tus uploads are told apart
// before).
func isUpload(r *http.Request) bool {
	switch r.Method {
	case http.MethodPost:
		rest, ok := strings.CutPrefix(r.URL.Path, "/api/v1/users/")
		user, tail, _ := strings.Cut(rest, "/")
		return ok && user != "" && tail == "assets"
	case http.MethodPut:
		return strings.HasPrefix(r.URL.Path, dav.Prefix)
	}
	return false
}

// idleBody is a request body read under an idle deadline: each Read sets
// the connection's read deadline to d from now (see Harden). Once the body
// has ended (or failed) it sets no more: net/http then reads the
// connection in the background without a deadline, and one set by a
// later Read would cancel the request's context when it passed.
type idleBody struct {
	io.ReadCloser
	rc  *http.ResponseController
	d   time.Duration
	off bool // no more deadlines: the body has ended, or the writer cannot
}

func (b *idleBody) Read(p []byte) (int, error) {
	if !b.off {
		if err := b.rc.SetReadDeadline(time.Now().Add(b.d)); err != nil {
			b.off = true // http.ErrNotSupported
		}
	}
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.off = true
	}
	return n, err
}
