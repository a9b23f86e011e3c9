// Package httpt holds the small HTTP helpers that tests across packages
// share: one request with its whole body, a log buffer safe for concurrent
// writers, and a slow request body.
package httpt

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// Do sends one request without following redirects and returns the
// response with its whole body read. hdr holds header name/value pairs.
func Do(tb testing.TB, method, url string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, b
}

// Get is Do with GET and no body.
func Get(tb testing.TB, url string, hdr ...string) (*http.Response, []byte) {
	tb.Helper()
	return Do(tb, http.MethodGet, url, nil, hdr...)
}

// SyncBuffer collects a server's log while the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// SlowReader reads at most Step bytes per read, after sleeping Pause: a
// client that sends or receives slowly on purpose.
type SlowReader struct {
	R     io.Reader
	Step  int
	Pause time.Duration
}

// Read implements io.Reader.
func (s SlowReader) Read(p []byte) (int, error) {
	time.Sleep(s.Pause)
	return s.R.Read(p[:min(len(p), s.Step)])
}
