package tusupload_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/jitstream/jitstream/internal/testutil/httpt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/outputs"
	"github.com/jitstream/jitstream/internal/server"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/jitserver"
	"github.com/jitstream/jitstream/internal/testutil/probe"
	"github.com/jitstream/jitstream/internal/tusupload"
)

// env is a jitstream server with resumable uploads.
type env struct {
	*jitserver.Env
	URL string // of the server with uploads (Env.URL has none)
	Svc *tusupload.Service
}

// newEnv starts a server whose uploads are configured by opt (Dir defaults
// to the store's DefaultDir).
func newEnv(t *testing.T, opt tusupload.Options) *env {
	t.Helper()
	e := jitserver.New(t)
	if opt.Dir == "" {
		opt.Dir = tusupload.DefaultDir(e.Dir)
	}
	svc, err := tusupload.New(outputs.New(e.Library, 0), opt)
	if err != nil {
		t.Fatal(err)
	}
	return &env{Env: e, URL: e.Serve(t, server.Options{Uploads: svc}), Svc: svc}
}

func (e *env) collection(user string) string { return e.URL + "/api/v1/users/" + user + "/uploads/" }

// event is a line of tusclient.js's output.
type event struct {
	Event   string            `json:"event"`
	URL     string            `json:"url"`
	Method  string            `json:"method"`
	Offset  int64             `json:"offset"`
	Sent    int64             `json:"sent"`
	Message string            `json:"message"`
	Headers map[string]string `json:"headers"`
}

// run is one run of the tus client.
type run struct {
	events []event
	killed bool // by itself, mid-request (abortAfter)
}

func (r run) last(kind string) (event, bool) {
	for i := len(r.events) - 1; i >= 0; i-- {
		if r.events[i].Event == kind {
			return r.events[i], true
		}
	}
	return event{}, false
}

func (r run) requests() []event {
	var out []event
	for _, ev := range r.events {
		if ev.Event == "request" {
			out = append(out, ev)
		}
	}
	return out
}

// clientConfig is tusclient.js's configuration (see its header).
type clientConfig struct {
	Module     string            `json:"module"`
	Endpoint   string            `json:"endpoint"`
	File       string            `json:"file"`
	ChunkSize  int64             `json:"chunkSize"`
	Metadata   map[string]string `json:"metadata"`
	URLStorage string            `json:"urlStorage"`
	Resume     bool              `json:"resume,omitempty"`
	AbortAfter int64             `json:"abortAfter,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
}

// tusClient returns the path of the tus-js-client package, failing the
// test when node or the package is missing.
func tusClient(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is missing (%v): run make deps", err)
	}
	root, err := fixtures.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	mod := filepath.Join(root, "web", "players", "node_modules", "tus-js-client")
	if _, err := os.Stat(filepath.Join(mod, "package.json")); err != nil {
		t.Fatalf("tus-js-client is not installed in web/players (%v): run make deps", err)
	}
	return mod
}

// upload runs tusclient.js with cfg (Module filled in).
func upload(t *testing.T, cfg clientConfig) run {
	t.Helper()
	cfg.Module = tusClient(t)
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("testdata", "tusclient.js"), string(b))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var r run
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("tus client output %q: %v", sc.Text(), err)
		}
		r.events = append(r.events, ev)
	}
	_, aborted := r.last("abort")
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && aborted && ee.ProcessState.String() == "signal: killed":
		r.killed = true
	default:
		t.Fatalf("tus client: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if !r.killed {
		if _, ok := r.last("success"); !ok {
			t.Fatalf("tus client did not succeed:\n%s\n%s", stdout.String(), stderr.String())
		}
	}
	return r
}

// asset is the part of the asset JSON the tests read.
type asset struct {
	ID       string  `json:"id"`
	Title    string  `json:"title"`
	Duration float64 `json:"duration"`
	Chapters []struct {
		Name string `json:"name"`
	} `json:"chapters"`
	URLs struct {
		Consolidated string `json:"consolidated"`
	} `json:"urls"`
}

// assets lists alice's assets through the API.
func (e *env) assets(t *testing.T) []asset {
	t.Helper()
	resp, body := e.Get(t, "/api/v1/users/"+jitserver.User+"/assets")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("asset listing: %d %s", resp.StatusCode, body)
	}
	var l struct {
		Assets []asset `json:"assets"`
	}
	if err := json.Unmarshal(body, &l); err != nil {
		t.Fatal(err)
	}
	return l.Assets
}

// noAssetObjects fails the test if the store holds anything under alice's
// assets.
func (e *env) noAssetObjects(t *testing.T) {
	t.Helper()
	objs, err := e.Store.List(context.Background(), "users/"+jitserver.User+"/assets/")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 0 {
		t.Errorf("store objects under alice's assets: %v", objs)
	}
}

// do sends a request with the tus version header (and hdr pairs) and
// returns the answer and its body.
func do(t *testing.T, method, url string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	return httpt.Do(t, method, url, body, append([]string{"Tus-Resumable", "1.0.0"}, hdr...)...)
}

// offset HEADs an upload and returns its Upload-Offset and Upload-Length.
func offset(t *testing.T, url string) (int64, int64, *http.Response) {
	t.Helper()
	resp, _ := do(t, http.MethodHead, url, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD %s: %d", url, resp.StatusCode)
	}
	off, err1 := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	n, err2 := strconv.ParseInt(resp.Header.Get("Upload-Length"), 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("HEAD %s: Upload-Offset %q, Upload-Length %q", url, resp.Header.Get("Upload-Offset"), resp.Header.Get("Upload-Length"))
	}
	return off, n, resp
}

// wantJSONError checks an error answer: status and JSON error message.
func wantJSONError(t *testing.T, what string, resp *http.Response, body []byte, status int, msg string) {
	t.Helper()
	var e struct {
		Error  string `json:"error"`
		Detail string `json:"detail"`
	}
	if resp.StatusCode != status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
		json.Unmarshal(body, &e) != nil || e.Error != msg {
		t.Errorf("%s: %d %s %s, want %d with JSON error %q", what, resp.StatusCode, resp.Header.Get("Content-Type"), body, status, msg)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// uploadFiles lists the files left in the upload directory.
func uploadFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUploadIngests: a whole upload with the official client, in chunks,
// becomes an asset with the recording's duration; the final PATCH names
// it, the result endpoint describes it, the partial data is gone, and HEAD
// still tells the client the upload is complete.
func TestUploadIngests(t *testing.T) {
	e := newEnv(t, tusupload.Options{})
	src := fixtures.H264AAC(t)
	r := upload(t, clientConfig{Endpoint: e.collection(jitserver.User), File: src, ChunkSize: 64 << 10,
		Metadata:   map[string]string{"filename": "GX010042.MP4", "title": "Bike ride"},
		URLStorage: filepath.Join(t.TempDir(), "urls.json")})
	ok, _ := r.last("success")
	if ok.Headers[tusupload.HeaderIngestStatus] != "200" || ok.Headers[tusupload.HeaderAsset] != "GX010042" {
		t.Errorf("final PATCH headers %v, want ingest status 200 and asset GX010042", ok.Headers)
	}
	if n := len(r.requests()); n < 1+int(fileSize(t, src)/(64<<10)) {
		t.Errorf("%d requests, want a POST and a PATCH per 64 KiB chunk", n)
	}
	as := e.assets(t)
	if len(as) != 1 || as[0].ID != "GX010042" || as[0].Title != "Bike ride" {
		t.Fatalf("assets %+v, want GX010042 titled Bike ride", as)
	}
	if want := probe.Duration(t, src); math.Abs(as[0].Duration-want) > 0.1 {
		t.Errorf("duration %.3f s, want %.3f s", as[0].Duration, want)
	}

	resp, body := do(t, http.MethodGet, ok.URL+"/result", nil)
	var a asset
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &a) != nil || a.ID != "GX010042" ||
		resp.Header.Get("Location") != "/api/v1/users/alice/assets/GX010042" {
		t.Errorf("result: %d %s (Location %q)", resp.StatusCode, body, resp.Header.Get("Location"))
	}
	off, n, _ := offset(t, ok.URL)
	if off != n || n != fileSize(t, src) {
		t.Errorf("HEAD after ingest: offset %d, length %d, want both %d", off, n, fileSize(t, src))
	}
	for _, f := range uploadFiles(t, e.Svc.Dir()) {
		if !strings.HasSuffix(f, ".result") {
			t.Errorf("upload file %s left after the ingest", f)
		}
	}
	// The store never lists the upload directory.
	objs, err := e.Store.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if strings.Contains(o.Key, "upload") {
			t.Errorf("store lists %s", o.Key)
		}
	}
}

// TestResumeAfterDroppedConnection: the client dies in the middle of a
// PATCH; nothing is visible; the client, run again, finds the stored
// upload URL, asks the offset and sends only the rest; the asset carries
// exactly the packets of the original.
func TestResumeAfterDroppedConnection(t *testing.T) {
	e := newEnv(t, tusupload.Options{})
	src := fixtures.H264AAC(t)
	size := fileSize(t, src)
	cfg := clientConfig{Endpoint: e.collection(jitserver.User), File: src, ChunkSize: 64 << 10,
		Metadata: map[string]string{"filename": "GX010042.MP4"}, URLStorage: filepath.Join(t.TempDir(), "urls.json"),
		AbortAfter: size / 2}
	first := upload(t, cfg)
	if !first.killed {
		t.Fatalf("the client was not killed mid-PATCH: %+v", first.events)
	}
	u, ok := first.last("url")
	if !ok {
		t.Fatal("no upload URL")
	}
	got, n, resp := offset(t, u.URL)
	if n != size || got <= 0 || got > size/2 {
		t.Fatalf("after the drop: offset %d of %d, want in (0, %d]", got, n, size/2)
	}
	t.Logf("first run: %+v; the server has %d of %d bytes", first.requests(), got, size)
	if exp, err := http.ParseTime(resp.Header.Get("Upload-Expires")); err != nil || exp.Before(time.Now().Add(23*time.Hour)) {
		t.Errorf("Upload-Expires %q, want about 24 h ahead", resp.Header.Get("Upload-Expires"))
	}
	if as := e.assets(t); len(as) != 0 {
		t.Errorf("assets before the upload completed: %+v", as)
	}
	e.noAssetObjects(t)
	resp, body := do(t, http.MethodGet, u.URL+"/result", nil)
	wantJSONError(t, "result of a partial upload", resp, body, http.StatusConflict, "upload incomplete")

	cfg.Resume, cfg.AbortAfter = true, 0
	second := upload(t, cfg)
	reqs := second.requests()
	if len(reqs) < 2 || reqs[0].Method != "HEAD" || reqs[1].Method != "PATCH" || reqs[1].Offset != got {
		t.Errorf("resumed run's requests %+v, want HEAD then PATCH from %d", reqs, got)
	}
	for _, rq := range reqs {
		if rq.Method == "POST" {
			t.Errorf("the resumed run created a new upload: %+v", reqs)
		}
	}
	if s, _ := second.last("success"); s.URL != u.URL || s.Headers[tusupload.HeaderAsset] != "GX010042" {
		t.Errorf("resumed run: %+v, want success at %s with asset GX010042", s, u.URL)
	}
	as := e.assets(t)
	if len(as) != 1 {
		t.Fatalf("assets %+v, want one", as)
	}
	probe.EqualStreams(t, "consolidated", probe.PacketMD5s(t, e.URL+as[0].URLs.Consolidated), probe.PacketMD5s(t, src))
}

// TestAbandonedUploadExpires: a partial upload shows nowhere, announces
// its expiry, survives a sweep before it and is deleted by the first sweep
// after it.
func TestAbandonedUploadExpires(t *testing.T) {
	const expiry = 1500 * time.Millisecond
	e := newEnv(t, tusupload.Options{Expiry: expiry})
	src := fixtures.H264AAC(t)
	r := upload(t, clientConfig{Endpoint: e.collection(jitserver.User), File: src, ChunkSize: 64 << 10,
		URLStorage: filepath.Join(t.TempDir(), "urls.json"), AbortAfter: fileSize(t, src) / 3})
	u, _ := r.last("url")
	if !r.killed || u.URL == "" {
		t.Fatalf("client run: %+v", r.events)
	}
	_, _, resp := offset(t, u.URL)
	exp, err := http.ParseTime(resp.Header.Get("Upload-Expires"))
	if err != nil || time.Until(exp) > expiry+time.Second {
		t.Errorf("Upload-Expires %q, want within %v", resp.Header.Get("Upload-Expires"), expiry)
	}
	if as := e.assets(t); len(as) != 0 {
		t.Errorf("assets of an abandoned upload: %+v", as)
	}
	e.noAssetObjects(t)
	if files := uploadFiles(t, e.Svc.Dir()); len(files) != 2 {
		t.Errorf("upload files %v, want the data and its description", files)
	}

	if st, err := e.Svc.Sweep(context.Background()); err != nil || st != (tusupload.SweepStats{}) {
		t.Errorf("sweep before the expiry: %+v, %v; want nothing done", st, err)
	}
	time.Sleep(expiry + 200*time.Millisecond) // Upload-Expires is to the second
	if st, err := e.Svc.Sweep(context.Background()); err != nil || st.Expired != 1 {
		t.Errorf("sweep after the expiry: %+v, %v; want one upload expired", st, err)
	}
	if files := uploadFiles(t, e.Svc.Dir()); len(files) != 0 {
		t.Errorf("upload files after the sweep: %v", files)
	}
	if resp, _ := do(t, http.MethodHead, u.URL, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("HEAD of an expired upload: %d, want 404", resp.StatusCode)
	}
	resp, body := do(t, http.MethodGet, u.URL+"/result", nil)
	wantJSONError(t, "result of an expired upload", resp, body, http.StatusNotFound, "unknown upload")
	e.noAssetObjects(t)
}

// TestNotMediaIsReported: a file that is not media completes at the tus
// level; the final PATCH and the result endpoint report 422; no asset.
func TestNotMediaIsReported(t *testing.T) {
	e := newEnv(t, tusupload.Options{})
	r := upload(t, clientConfig{Endpoint: e.collection(jitserver.User), File: fixtures.NotMedia(t), ChunkSize: 16 << 10,
		Metadata: map[string]string{"filename": "holiday.mp4"}, URLStorage: filepath.Join(t.TempDir(), "urls.json")})
	ok, _ := r.last("success")
	if ok.Headers[tusupload.HeaderIngestStatus] != "422" || ok.Headers[tusupload.HeaderAsset] != "" {
		t.Errorf("final PATCH headers %v, want ingest status 422 and no asset", ok.Headers)
	}
	resp, body := do(t, http.MethodGet, ok.URL+"/result", nil)
	wantJSONError(t, "result", resp, body, http.StatusUnprocessableEntity, "invalid media")
	if as := e.assets(t); len(as) != 0 {
		t.Errorf("assets: %+v", as)
	}
	e.noAssetObjects(t)
	for _, f := range uploadFiles(t, e.Svc.Dir()) {
		if !strings.HasSuffix(f, ".result") {
			t.Errorf("upload file %s left after the failed ingest", f)
		}
	}
}

// TestChapterGroup: two chapters uploaded as a group (the second first)
// become one asset when both are complete.
func TestChapterGroup(t *testing.T) {
	e := newEnv(t, tusupload.Options{})
	files := fixtures.TwoChapters(t)
	storage := filepath.Join(t.TempDir(), "urls.json")
	meta := func(n int) map[string]string {
		return map[string]string{"filename": filepath.Base(files[n-1]), "group": "ride-42", "chapter": strconv.Itoa(n),
			"chapters": "2", "title": "Ride"}
	}
	second := upload(t, clientConfig{Endpoint: e.collection(jitserver.User), File: files[1], ChunkSize: 128 << 10,
		Metadata: meta(2), URLStorage: storage})
	s2, _ := second.last("success")
	if s2.Headers[tusupload.HeaderIngestStatus] != "202" {
		t.Errorf("chapter 2 alone: headers %v, want ingest status 202", s2.Headers)
	}
	resp, body := do(t, http.MethodGet, s2.URL+"/result", nil)
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(body), `"waiting"`) {
		t.Errorf("result of chapter 2 alone: %d %s", resp.StatusCode, body)
	}
	if as := e.assets(t); len(as) != 0 {
		t.Errorf("assets with a chapter missing: %+v", as)
	}
	// A second chapter 2 is refused.
	resp, body = do(t, http.MethodPost, e.collection(jitserver.User), nil, "Upload-Length", "10",
		"Upload-Metadata", "group cmlkZS00Mg==,chapter Mg==,chapters Mg==")
	wantJSONError(t, "duplicate chapter", resp, body, http.StatusConflict, "chapter conflict")

	first := upload(t, clientConfig{Endpoint: e.collection(jitserver.User), File: files[0], ChunkSize: 128 << 10,
		Metadata: meta(1), URLStorage: storage})
	s1, _ := first.last("success")
	if s1.Headers[tusupload.HeaderIngestStatus] != "200" || s1.Headers[tusupload.HeaderAsset] != "GX010042" {
		t.Errorf("chapter 1 completing the group: headers %v", s1.Headers)
	}
	as := e.assets(t)
	if len(as) != 1 || len(as[0].Chapters) != 2 || as[0].Chapters[0].Name != fixtures.Chapter1Name || as[0].Title != "Ride" {
		t.Fatalf("assets %+v, want one of two chapters in order", as)
	}
	for _, u := range []string{s1.URL, s2.URL} {
		resp, body := do(t, http.MethodGet, u+"/result", nil)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"id":"GX010042"`) {
			t.Errorf("result of %s: %d %.200s", u, resp.StatusCode, body)
		}
	}
	probe.EqualStreams(t, "consolidated", probe.PacketMD5s(t, e.URL+as[0].URLs.Consolidated), probe.ConcatMD5s(t, files))
}

// TestUnknownUserBeforeAnyByte: an upload to an unknown user is refused
// with a JSON 404 without reading the body.
func TestUnknownUserBeforeAnyByte(t *testing.T) {
	e := newEnv(t, tusupload.Options{})
	for _, method := range []string{http.MethodPost, http.MethodPatch} {
		path := "/api/v1/users/nobody/uploads/"
		if method == http.MethodPatch {
			path += "0123456789abcdef0123456789abcdef"
		}
		req := httptest.NewRequest(method, path, failReader{t})
		req.Header.Set("Tus-Resumable", "1.0.0")
		req.Header.Set("Upload-Length", "1000")
		req.Header.Set("Upload-Offset", "0")
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		rec := httptest.NewRecorder()
		e.Svc.ServeHTTP(rec, req)
		wantJSONError(t, method, rec.Result(), rec.Body.Bytes(), http.StatusNotFound, "unknown user")
	}
	resp, body := do(t, http.MethodPost, e.collection("nobody"), strings.NewReader("x"), "Upload-Length", "1",
		"Content-Type", "application/offset+octet-stream")
	wantJSONError(t, "POST over HTTP", resp, body, http.StatusNotFound, "unknown user")
}

type failReader struct{ t *testing.T }

func (f failReader) Read([]byte) (int, error) {
	f.t.Error("the body was read")
	return 0, io.EOF
}

// TestProtocolAnswers: OPTIONS through the whole server, the size limit,
// creation checks, termination, JSON errors.
func TestProtocolAnswers(t *testing.T) {
	e := newEnv(t, tusupload.Options{MaxSize: 1 << 20})
	coll := e.collection(jitserver.User)

	resp, _ := do(t, http.MethodOptions, coll, nil)
	h := resp.Header
	if resp.StatusCode != http.StatusOK || h.Get("Tus-Version") != "1.0.0" || h.Get("Tus-Max-Size") != "1048576" ||
		!strings.Contains(h.Get("Tus-Extension"), "creation") || !strings.Contains(h.Get("Tus-Extension"), "termination") ||
		!strings.Contains(h.Get("Tus-Extension"), "expiration") {
		t.Errorf("OPTIONS: %d %v", resp.StatusCode, h)
	}
	resp, _ = do(t, http.MethodOptions, coll, nil, "Origin", "http://example.com", "Access-Control-Request-Method", "PATCH")
	if !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "PATCH") ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Upload-Offset") {
		t.Errorf("CORS preflight: %v", resp.Header)
	}

	resp, body := do(t, http.MethodPost, coll, nil, "Upload-Length", strconv.Itoa(2<<20))
	wantJSONError(t, "too large", resp, body, http.StatusRequestEntityTooLarge, "maximum size exceeded")
	resp, body = do(t, http.MethodPost, coll, nil, "Upload-Length", "0")
	wantJSONError(t, "empty", resp, body, http.StatusBadRequest, "empty upload")
	resp, body = do(t, http.MethodPost, coll, nil, "Upload-Length", "10", "Upload-Metadata", "chapter MQ==")
	wantJSONError(t, "chapter without group", resp, body, http.StatusBadRequest, "invalid upload metadata")
	resp, body = do(t, http.MethodPost, coll, nil, "Upload-Defer-Length", "1")
	if resp.StatusCode < 400 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("deferred length: %d %s", resp.StatusCode, body)
	}

	resp, _ = do(t, http.MethodPost, coll, nil, "Upload-Length", "10")
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(loc, coll) || resp.Header.Get("Upload-Expires") == "" {
		t.Fatalf("POST: %d Location %q Upload-Expires %q", resp.StatusCode, loc, resp.Header.Get("Upload-Expires"))
	}
	// Uploads are per user: another user's path does not reach it.
	if err := e.Library.AddUser(context.Background(), "bob"); err != nil {
		t.Fatal(err)
	}
	if resp, _ := do(t, http.MethodHead, strings.Replace(loc, "/alice/", "/bob/", 1), nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("HEAD of alice's upload as bob: %d", resp.StatusCode)
	}
	resp, body = do(t, http.MethodPatch, loc, strings.NewReader("abc"), "Upload-Offset", "5",
		"Content-Type", "application/offset+octet-stream")
	wantJSONError(t, "PATCH at a wrong offset", resp, body, http.StatusConflict, "mismatched offset")
	resp, body = do(t, http.MethodPatch, loc, strings.NewReader("abc"), "Upload-Offset", "0",
		"Content-Type", "application/offset+octet-stream")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Upload-Offset") != "3" || resp.Header.Get("Upload-Expires") == "" {
		t.Errorf("PATCH: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if resp, _ := do(t, http.MethodDelete, loc, nil); resp.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE: %d", resp.StatusCode)
	}
	if resp, _ := do(t, http.MethodHead, loc, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("HEAD after DELETE: %d", resp.StatusCode)
	}
	if files := uploadFiles(t, e.Svc.Dir()); len(files) != 0 {
		t.Errorf("files after DELETE: %v", files)
	}
	resp, body = do(t, http.MethodGet, loc, nil)
	wantJSONError(t, "GET of an upload", resp, body, http.StatusMethodNotAllowed, "method not allowed")
}

// TestSweepIngestsWhatAStopLeft: an upload whose last bytes were written
// but which was not ingested (the server stopped) is ingested by the next
// sweep.
func TestSweepIngestsWhatAStopLeft(t *testing.T) {
	e := newEnv(t, tusupload.Options{})
	src := fixtures.H264AAC(t)
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := do(t, http.MethodPost, e.collection(jitserver.User), nil, "Upload-Length", strconv.Itoa(len(data)),
		"Upload-Metadata", "filename Q2xpcC5tcDQ=") // Clip.mp4
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	// What the server wrote before it stopped: every byte.
	bin := filepath.Join(e.Svc.Dir(), jitserver.User, "uploads", loc[strings.LastIndexByte(loc, '/')+1:])
	if err := os.WriteFile(bin, data, 0o644); err != nil {
		t.Fatal(err)
	}
	resp, body := do(t, http.MethodGet, loc+"/result", nil)
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(body), `"queued"`) {
		t.Errorf("result before the sweep: %d %s", resp.StatusCode, body)
	}
	st, err := e.Svc.Sweep(context.Background())
	if err != nil || st.Ingested != 1 {
		t.Fatalf("sweep: %+v, %v", st, err)
	}
	if as := e.assets(t); len(as) != 1 || as[0].ID != "Clip" {
		t.Errorf("assets %+v, want Clip", as)
	}
	if st, err := e.Svc.Sweep(context.Background()); err != nil || st != (tusupload.SweepStats{}) {
		t.Errorf("second sweep: %+v, %v; want nothing done", st, err)
	}
}

// TestRunStopsWithItsContext: the sweep loop ends when its context does.
func TestRunStopsWithItsContext(t *testing.T) {
	e := newEnv(t, tusupload.Options{Expiry: time.Second, SweepInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Svc.Run(ctx); close(done) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

// TestNewChecksOptions: the directory is required.
func TestNewChecksOptions(t *testing.T) {
	st := jitserver.New(t)
	if _, err := tusupload.New(outputs.New(st.Library, 0), tusupload.Options{}); err == nil {
		t.Error("New without a directory succeeded")
	}
	if _, err := tusupload.New(outputs.New(library.New(st.Store, library.Options{}), 0), tusupload.Options{Dir: t.TempDir(), Expiry: -time.Second}); err == nil {
		t.Error("New with a negative expiry succeeded")
	}
}
