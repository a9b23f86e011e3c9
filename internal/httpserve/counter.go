package httpserve

import (
	"io"
	"net/http"
	"strconv"
)

// BodyCounter is an http.ResponseWriter that counts the body bytes written
// through it, sendfile(2) included (it keeps io.ReaderFrom), so that the
// caller can tell afterwards whether a response was delivered whole.
type BodyCounter struct {
	http.ResponseWriter
	status int
	n      int64
}

// NewBodyCounter wraps w.
func NewBodyCounter(w http.ResponseWriter) *BodyCounter { return &BodyCounter{ResponseWriter: w} }

// WriteHeader implements http.ResponseWriter.
func (c *BodyCounter) WriteHeader(code int) {
	if c.status == 0 && code >= 200 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (c *BodyCounter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

// ReadFrom implements io.ReaderFrom with the underlying writer's (net/http
// sends files with sendfile).
func (c *BodyCounter) ReadFrom(r io.Reader) (int64, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := c.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{c.ResponseWriter}, r)
	}
	c.n += n
	return n, err
}

// Flush implements http.Flusher when the underlying writer does.
func (c *BodyCounter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap is the underlying writer, for http.ResponseController.
func (c *BodyCounter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// Written is the number of body bytes written.
func (c *BodyCounter) Written() int64 { return c.n }

// Delivered reports whether the response to r was a GET answered 200 or
// 206 whose body was written whole: as many bytes as its Content-Length.
func (c *BodyCounter) Delivered(r *http.Request) bool {
	if r.Method != http.MethodGet || (c.status != http.StatusOK && c.status != http.StatusPartialContent) {
		return false
	}
	want, err := strconv.ParseInt(c.Header().Get("Content-Length"), 10, 64)
	return err == nil && want == c.n
}
