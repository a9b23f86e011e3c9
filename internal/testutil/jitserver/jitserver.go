// Package jitserver runs a complete jitstream server for tests: a
// filesystem store in a temporary directory, a library with one user
// (User), and the HTTP handler of internal/server on an httptest server.
package jitserver

import (
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/outputs"
	"github.com/jitstream/jitstream/internal/server"
	"github.com/jitstream/jitstream/internal/store"
)

// User is the user that New adds to the library.
const User = "alice"

// Env is a running server and what it serves from.
type Env struct {
	URL     string // of the server, without a trailing slash
	Store   *store.FS
	Library *library.Library
}

// New starts a server on 127.0.0.1 with an empty store and the user User;
// it stops when the test ends.
func New(tb testing.TB) *Env {
	tb.Helper()
	st, err := store.NewFS(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	lib := library.New(st, library.Options{})
	if err := lib.AddUser(context.Background(), User); err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(server.New(outputs.New(lib, 0), server.Options{}))
	tb.Cleanup(srv.Close)
	return &Env{URL: srv.URL, Store: st, Library: lib}
}

// Serve starts another server over e's library, with the given options
// (pacing, budget...), and returns its URL, without a trailing slash; it
// stops when the test ends.
func (e *Env) Serve(tb testing.TB, opt server.Options) string {
	tb.Helper()
	srv := httptest.NewServer(server.New(outputs.New(e.Library, 0), opt))
	tb.Cleanup(srv.Close)
	return srv.URL
}

// Upload posts files as one multipart upload (streamed through a pipe) to
// user's assets and returns the status and body of the answer.
func (e *Env) Upload(tb testing.TB, user string, files ...string) (int, []byte) {
	tb.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		for _, f := range files {
			part, err := mw.CreateFormFile("file", filepath.Base(f))
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			fh, err := os.Open(f)
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			_, err = io.Copy(part, fh)
			fh.Close()
			if err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(mw.Close())
	}()
	resp, err := http.Post(e.URL+"/api/v1/users/"+user+"/assets", mw.FormDataContentType(), pr)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// Ingest uploads files as one asset of User, fails the test unless the
// server created it, and returns the asset JSON of the answer decoded into
// a T (a struct of the fields the test reads).
func Ingest[T any](tb testing.TB, e *Env, files ...string) T {
	tb.Helper()
	status, body := e.Upload(tb, User, files...)
	if status != http.StatusCreated {
		tb.Fatalf("upload %v: %d %s", files, status, body)
	}
	var a T
	if err := json.Unmarshal(body, &a); err != nil {
		tb.Fatalf("upload answer: %v: %s", err, body)
	}
	return a
}

// Get requests path (from the server root) with the given header fields,
// name and value pairs, and returns the response and its body. Redirects
// are not followed.
func (e *Env) Get(tb testing.TB, path string, hdr ...string) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, e.URL+path, nil)
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
