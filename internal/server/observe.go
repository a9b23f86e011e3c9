package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/internal/metrics"
	"github.com/jitstream/jitstream/internal/store"
)

// Observability: request metrics (the format of each request and the
// status class of its answer, see formatOf and recorder), GET /metrics and
// GET /healthz. The delivery metrics are read from the controller at
// scrape time (internal/metrics).

// healthTimeout bounds the store check of /healthz.
const healthTimeout = 2 * time.Second

// healthKey is the key /healthz asks the store about: usually missing,
// which is a fine answer.
const healthKey = "healthz"

// healthz answers 200 {"status": "ok", "store": "ok"} when the store
// answers (see checkStore), 503 {"status": "unavailable", "store": ...,
// "error", "detail"} when it fails or does not answer within healthTimeout.
// The answer is never cached.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	start := time.Now()
	err := checkStore(ctx, s.lib.Store())
	took := time.Since(start)
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		s.log.Warn("health check: the store does not answer", "err", err, "took", took)
		// The error itself is in the log, not in the open answer.
		w.Header().Set("Retry-After", httpserve.RetryAfter)
		httpserve.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{
			"status": "unavailable", "store": "error", "error": "store unavailable",
			"detail": "the store does not answer; see the server's log"})
		return
	}
	httpserve.WriteJSON(w, http.StatusOK, map[string]any{
		"status": "ok", "store": "ok", "store_ms": float64(took.Microseconds()) / 1000})
}

// checkStore checks that st answers: a Stat of healthKey (found or not),
// and the backend's own check when it has one (store.Checker, such as the
// local directory's root being there).
func checkStore(ctx context.Context, st store.Store) error {
	if st == nil {
		return errors.New("no store")
	}
	if _, err := st.Stat(ctx, healthKey); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if c, ok := st.(store.Checker); ok {
		return c.Check(ctx)
	}
	return nil
}

// formatOf classifies a request for the metrics by its URL path and raw
// query, the way the routes read them (it does not allocate):
//
//	/files/U/ and /files/U/ID/             listing
//	/files/U/ID.mp4 or .frag.mp4 ?rate=    trick
//	/files/U/ID.frag.mp4                   fmp4
//	/files/U/ID.mp4?start= or ?end=        clip
//	/files/U/ID.mp4                        consolidated
//	/files/U/ID/NAME                       original
//	/streams/U/A/hls/ts/...                hls_ts
//	/streams/U/A/{hls,dash,smooth}/...     hls, dash, smooth
//	/api/...                               api
//	anything else                          other
func formatOf(path, query string) metrics.Format {
	if rest, ok := strings.CutPrefix(path, "/files/"); ok {
		_, name, ok := strings.Cut(rest, "/")
		switch {
		case !ok:
			return metrics.Other
		case name == "":
			return metrics.Listing
		}
		if id, sub, ok := strings.Cut(name, "/"); ok {
			switch {
			case sub == "" && id != "":
				return metrics.Listing
			case sub != "" && !strings.Contains(sub, "/"):
				return metrics.Original
			}
			return metrics.Other
		}
		frag := strings.HasSuffix(name, ".frag.mp4")
		switch {
		case !strings.HasSuffix(name, ".mp4"):
			return metrics.Other
		case hasParam(query, "rate"):
			return metrics.Trick
		case frag:
			return metrics.FMP4
		case hasParam(query, "start") || hasParam(query, "end"):
			return metrics.Clip
		}
		return metrics.Consolidated
	}
	if rest, ok := strings.CutPrefix(path, "/streams/"); ok {
		// U/A/FORMAT/...
		_, rest, _ = strings.Cut(rest, "/")
		_, rest, _ = strings.Cut(rest, "/")
		switch {
		case strings.HasPrefix(rest, "hls/ts/"):
			return metrics.HLSTS
		case strings.HasPrefix(rest, "hls/"):
			return metrics.HLS
		case strings.HasPrefix(rest, "dash/"):
			return metrics.DASH
		case strings.HasPrefix(rest, "smooth/"):
			return metrics.Smooth
		}
		return metrics.Other
	}
	if strings.HasPrefix(path, "/api/") {
		return metrics.API
	}
	return metrics.Other
}

// hasParam reports whether the raw query has a parameter named key (with
// or without a value).
func hasParam(query, key string) bool {
	for query != "" {
		var p string
		p, query, _ = strings.Cut(query, "&")
		if name, _, _ := strings.Cut(p, "="); name == key {
			return true
		}
	}
	return false
}

// recorder is the ResponseWriter the server's routes write to: it notes
// the status and counts the body bytes, for the metrics. It keeps what
// the underlying writer offers to httpserve: ReadFrom (so that files still
// go out with sendfile), Flush, and Unwrap for http.ResponseController.
// With access control it also adjusts the response's Cache-Control
// before the header goes out (see adjustCacheControl).
type recorder struct {
	w      http.ResponseWriter
	status int
	n      int64
	// private makes the response private to HTTP caches (token requests).
	private bool
	// capAge caps max-age, when capAgeSet (link requests).
	capAge    int64
	capAgeSet bool
	fixed     bool // the header was adjusted
}

// fixHeader adjusts Cache-Control once, before the header is written.
func (rec *recorder) fixHeader() {
	if rec.fixed || !rec.private && !rec.capAgeSet {
		return
	}
	rec.fixed = true
	h := rec.w.Header()
	if v := adjustCacheControl(h.Get("Cache-Control"), rec.private, rec.capAge, rec.capAgeSet); v != "" {
		h.Set("Cache-Control", v)
	}
}

// recorders is a pool of recorders, one per server, so that counting
// requests does not allocate.
type recorders struct{ sync.Pool }

func (p *recorders) get(w http.ResponseWriter) *recorder {
	rec, _ := p.Get().(*recorder)
	if rec == nil {
		rec = new(recorder)
	}
	rec.w = w
	return rec
}

func (p *recorders) put(rec *recorder) {
	*rec = recorder{}
	p.Put(rec)
}

// Header implements http.ResponseWriter.
func (rec *recorder) Header() http.Header { return rec.w.Header() }

// WriteHeader implements http.ResponseWriter; the first final status
// (not 1xx) is the one counted.
func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 && code >= 200 {
		rec.status = code
		rec.fixHeader()
	}
	rec.w.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
		rec.fixHeader()
	}
	n, err := rec.w.Write(b)
	rec.n += int64(n)
	return n, err
}

// ReadFrom implements io.ReaderFrom with the underlying writer's ReadFrom
// (net/http's sends files with sendfile).
func (rec *recorder) ReadFrom(r io.Reader) (int64, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
		rec.fixHeader()
	}
	var n int64
	var err error
	if rf, ok := rec.w.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{rec.w}, r)
	}
	rec.n += n
	return n, err
}

// Flush implements http.Flusher when the underlying writer does.
func (rec *recorder) Flush() {
	if rec.status == 0 {
		rec.fixHeader()
	}
	if f, ok := rec.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap is the underlying writer, for http.ResponseController.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.w }

// statusOrOK is the status written, 200 when the handler wrote nothing
// (net/http then answers 200).
func (rec *recorder) statusOrOK() int {
	if rec.status == 0 {
		return http.StatusOK
	}
	return rec.status
}
