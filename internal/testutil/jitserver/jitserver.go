// Package jitserver runs a complete jitstream server for tests: an empty
// store of the backend that the environment selects (internal/testutil/
// teststore: a directory by default, a bucket of MinIO behind the read
// cache with JITSTREAM_TEST_STORE=s3), a library with one user (User), and
// the HTTP handler of internal/server on an httptest server. The server is
// open unless New is given WithAuth: then it asks for tokens (Env.Token is
// one of User's, which Upload, Ingest and Get send) and serves signed links
// (Env.Link).
//
// A package whose tests call New must run them through minio.Main, which
// stops the MinIO server of the S3 backend (started by the first New with
// that backend only):
//
//	func TestMain(m *testing.M) { minio.Main(m) }
package jitserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/auth"
	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/outputs"
	"github.com/jitstream/jitstream/internal/server"
	"github.com/jitstream/jitstream/internal/spool"
	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/testutil/httpt"
	"github.com/jitstream/jitstream/internal/testutil/teststore"
)

// User is the user that New adds to the library.
const User = "alice"

// Env is a running server and what it serves from.
type Env struct {
	URL string // of the server, without a trailing slash
	// Store is what the server serves from: a *store.FS, or the read
	// cache over S3 (see TestStore).
	Store store.Store
	// Dir is a local scratch directory of the server, for what it keeps
	// on local disk beside the store (tusupload.DefaultDir(Dir) holds
	// partial uploads): the store's root for FS, a temporary directory
	// for S3.
	Dir string
	// TestStore is the store with what tests check beneath it: its
	// backend (teststore.FS or teststore.S3) and, with Leftovers, what
	// failed writes left beside the objects.
	TestStore *teststore.Store
	Library   *library.Library
	// Auth is the server's access control, nil for an open server.
	Auth *auth.Auth
	// Token is a token of User when Auth is set, sent by Upload, Ingest
	// and Get.
	Token string
}

// config is what Options set.
type config struct {
	auth bool
	opt  server.Options
}

// Option configures New.
type Option func(*config)

// WithAuth turns access control on (server.Options.Auth).
func WithAuth() Option { return func(c *config) { c.auth = true } }

// WithOptions serves with these options (Auth is set by WithAuth).
func WithOptions(opt server.Options) Option { return func(c *config) { c.opt = opt } }

// WithLogger serves with this logger.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.opt.Logger = l } }

// New starts a server on 127.0.0.1 with an empty store of the selected
// backend (teststore.New) and the user User; it stops when the test ends.
func New(tb testing.TB, opts ...Option) *Env {
	tb.Helper()
	var c config
	for _, o := range opts {
		o(&c)
	}
	ts := teststore.New(tb)
	st := ts.Store
	lib := library.New(st, library.Options{})
	if err := lib.AddUser(context.Background(), User); err != nil {
		tb.Fatal(err)
	}
	e := &Env{Store: st, Dir: ts.Dir, TestStore: ts, Library: lib}
	if c.auth {
		var err error
		if e.Auth, err = auth.New(context.Background(), st, auth.Options{}); err != nil {
			tb.Fatal(err)
		}
		c.opt.Auth = e.Auth
		e.Token = e.CreateToken(tb, User, 0)
	}
	e.URL = start(tb, server.New(outputs.New(lib, 0), withSpool(tb, c.opt)))
	return e
}

// withSpool gives opt a spool in a temporary directory, as jitstream
// serve has, unless it has one; none where spooling is unsupported.
func withSpool(tb testing.TB, opt server.Options) server.Options {
	if opt.Spool != nil {
		return opt
	}
	sp, err := spool.New(tb.TempDir())
	if err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			return opt
		}
		tb.Fatal(err)
	}
	opt.Spool = sp
	return opt
}

// start serves h as jitstream serve does (the connection in each
// request's context, see httpserve.WithConn) and returns its URL; it stops
// when the test ends.
func start(tb testing.TB, h http.Handler) string {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnContext = httpserve.WithConn
	srv.Start()
	tb.Cleanup(srv.Close)
	return srv.URL
}

// AddUser adds a user to the library.
func (e *Env) AddUser(tb testing.TB, user string) {
	tb.Helper()
	if err := e.Library.AddUser(context.Background(), user); err != nil {
		tb.Fatal(err)
	}
}

// CreateToken makes a token for user (who must exist) valid for ttl (0:
// no expiry), on a server WithAuth.
func (e *Env) CreateToken(tb testing.TB, user string, ttl time.Duration) string {
	tb.Helper()
	if e.Auth == nil {
		tb.Fatal("jitserver: CreateToken on a server without auth (use WithAuth)")
	}
	token, _, err := e.Auth.CreateToken(context.Background(), user, "test", ttl)
	if err != nil {
		tb.Fatal(err)
	}
	return token
}

// Link is the URL prefix of a signed link to user's asset valid for ttl,
// e.g. URL/s/{exp}.{sig}: append a path such as
// /streams/alice/ID/hls/master.m3u8.
func (e *Env) Link(tb testing.TB, user, asset string, ttl time.Duration) string {
	tb.Helper()
	return e.link(tb, auth.Scope{User: user, Asset: asset}, ttl)
}

// PrefixLink is the URL prefix of a signed link to every path below
// prefix (e.g. /files/alice/).
func (e *Env) PrefixLink(tb testing.TB, user, prefix string, ttl time.Duration) string {
	tb.Helper()
	return e.link(tb, auth.Scope{User: user, Prefix: prefix}, ttl)
}

func (e *Env) link(tb testing.TB, sc auth.Scope, ttl time.Duration) string {
	tb.Helper()
	if e.Auth == nil {
		tb.Fatal("jitserver: links on a server without auth (use WithAuth)")
	}
	l, err := e.Auth.SignLink(sc, ttl)
	if err != nil {
		tb.Fatal(err)
	}
	return e.URL + l.Path()
}

// Serve starts another server over e's library, with the given options
// (pacing, budget...), and returns its URL, without a trailing slash; it
// stops when the test ends.
func (e *Env) Serve(tb testing.TB, opt server.Options) string {
	tb.Helper()
	return start(tb, server.New(outputs.New(e.Library, 0), withSpool(tb, opt)))
}

// Upload posts files as one multipart upload (streamed through a pipe) to
// user's assets, with Env.Token, and returns the status and body of the
// answer.
func (e *Env) Upload(tb testing.TB, user string, files ...string) (int, []byte) {
	tb.Helper()
	return e.UploadAs(tb, e.Token, user, files...)
}

// UploadAs is Upload with a token ("": none).
func (e *Env) UploadAs(tb testing.TB, token, user string, files ...string) (int, []byte) {
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
	req, err := http.NewRequest(http.MethodPost, e.URL+"/api/v1/users/"+user+"/assets", pr)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
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
// are not followed. It sends Env.Token unless hdr has an Authorization.
func (e *Env) Get(tb testing.TB, path string, hdr ...string) (*http.Response, []byte) {
	tb.Helper()
	return e.GetAs(tb, e.Token, path, hdr...)
}

// GetAs is Get with a token ("": none).
func (e *Env) GetAs(tb testing.TB, token, path string, hdr ...string) (*http.Response, []byte) {
	tb.Helper()
	if token != "" {
		hdr = append([]string{"Authorization", "Bearer " + token}, hdr...)
	}
	return httpt.Get(tb, e.URL+path, hdr...)
}
