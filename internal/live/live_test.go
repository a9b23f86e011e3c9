package live_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/auth"
	"github.com/jitstream/jitstream/internal/live"
	"github.com/jitstream/jitstream/internal/server"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/httpt"
	"github.com/jitstream/jitstream/internal/testutil/jitserver"
	"github.com/jitstream/jitstream/internal/testutil/minio"
	"github.com/jitstream/jitstream/internal/testutil/probe"
)

func TestMain(m *testing.M) { minio.Main(m) }

// tlog writes log lines to the test's log.
type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// env is a server taking live streams, with the idle sweep running.
type env struct {
	*jitserver.Env
	url    string // of the server with live ingest
	secret []byte
}

func newEnv(t *testing.T, idle time.Duration) *env {
	t.Helper()
	e := jitserver.New(t)
	svc := live.New(e.Library, live.Options{IdleTimeout: idle, Logger: slog.New(slog.NewTextHandler(tlog{t}, nil))})
	url := e.Serve(t, server.Options{Live: svc})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { svc.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	secret, err := auth.LoadSecret(context.Background(), e.Store, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &env{Env: e, url: url, secret: secret}
}

// put pushes b as file of the stream with key and returns the status and
// body of the answer.
func (e *env) put(t *testing.T, user, key, file string, b []byte) (int, []byte) {
	t.Helper()
	resp, body := httpt.Do(t, http.MethodPut, e.url+"/live/"+user+"/"+key+"/"+file, bytes.NewReader(b))
	return resp.StatusCode, body
}

// objects lists the keys under the asset's src/.
func (e *env) objects(t *testing.T, id string) []string {
	t.Helper()
	infos, err := e.Store.List(context.Background(), "users/alice/assets/"+id+"/src/")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, in := range infos {
		keys = append(keys, in.Key)
	}
	return keys
}

// assets lists the ids of alice's assets through the API.
func (e *env) assets(t *testing.T) []string {
	t.Helper()
	resp, body := e.Get(t, "/api/v1/users/alice/assets")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("asset list: %d %s", resp.StatusCode, body)
	}
	var out struct {
		Assets []struct {
			ID string `json:"id"`
		} `json:"assets"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("asset list: %v: %s", err, body)
	}
	var ids []string
	for _, a := range out.Assets {
		ids = append(ids, a.ID)
	}
	return ids
}

// waitAsset waits (with a deadline) until alice's asset id is listed.
func (e *env) waitAsset(t *testing.T, id string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !slices.Contains(e.assets(t), id) {
		if time.Now().After(deadline) {
			t.Fatalf("asset %q was not archived: %v", id, e.assets(t))
		}
		time.Sleep(50 * time.Millisecond) // polling interval, with a deadline
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// concatReps returns, per representation, the packet MD5s of its init
// segment and fragments as stored under the asset, epoch by epoch (each
// epoch's init segment and fragments as one file), as streams 0 (video),
// 1 (audio).
func concatReps(t *testing.T, e *env, id string) map[int][]string {
	t.Helper()
	want := map[int][]string{}
	keys := e.objects(t, id) // sorted: epoch by epoch (e0 < e1 < ... < e9), init last
	for i, rep := range []string{"stream0", "stream1"} {
		for n := 0; ; n++ {
			prefix := fmt.Sprintf("users/alice/assets/%s/src/%s-e%d-", id, rep, n)
			var frags []string
			for _, k := range keys {
				if strings.HasPrefix(k, prefix) && !strings.HasSuffix(k, "-init") {
					frags = append(frags, k)
				}
			}
			if len(frags) == 0 {
				if n == 0 {
					t.Fatalf("no fragment of %s stored: %v", rep, keys)
				}
				break
			}
			var all []byte
			for _, k := range append([]string{prefix + "init"}, frags...) {
				rc, err := e.Store.Get(context.Background(), k, 0, -1)
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, b...)
			}
			path := filepath.Join(t.TempDir(), fmt.Sprintf("%s-e%d.mp4", rep, n))
			if err := os.WriteFile(path, all, 0o644); err != nil {
				t.Fatal(err)
			}
			want[i] = append(want[i], probe.PacketMD5s(t, path)[0]...)
		}
	}
	return want
}

// TestFFmpegPush: ffmpeg pushes 10 s live; the stream is archived as an
// asset whose consolidated MP4 carries exactly the samples pushed, and
// whose HLS plays.
func TestFFmpegPush(t *testing.T) {
	t.Parallel()
	fixtures.RequireTools(t)
	e := newEnv(t, 0)
	key := live.Key(e.secret, "alice", "show")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=10",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=10",
		"-c:v", "libx264", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-c:a", "aac",
		"-f", "dash", "-method", "PUT", "-seg_duration", "2", "-use_timeline", "1", "-use_template", "1",
		e.url+"/live/alice/"+key+"/stream.mpd")
	out, err := cmd.CombinedOutput()
	checkPush(t, out, err)
	// The static manifest is answered once the asset is committed, but
	// ffmpeg does not wait for that answer.
	e.waitAsset(t, "show")
	a, err := e.Library.Asset(context.Background(), "alice", "show")
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Chapters) < 10 {
		t.Errorf("%d chapters, want the ~12 fragments", len(a.Chapters))
	}
	want := concatReps(t, e, "show")
	got := probe.PacketMD5s(t, e.url+"/files/alice/show.mp4?pace=0")
	probe.EqualStreams(t, "consolidated MP4", got, want)
	if d := probe.Duration(t, e.url+"/files/alice/show.mp4?pace=0"); d < 9.5 || d > 10.5 {
		t.Errorf("consolidated MP4 lasts %.3f s, want 10", d)
	}
	hls := e.url + "/streams/alice/show/hls/master.m3u8"
	probe.RequireClean(t, hls)
	counts := probe.PacketCounts(t, hls)
	var n, wantN int
	for _, c := range counts {
		n += c
	}
	for _, w := range want {
		wantN += len(w)
	}
	if n != wantN {
		t.Errorf("HLS has %d packets (%v), want %d", n, counts, wantN)
	}
}

// tamper changes the last character of key to another one of its alphabet.
func tamper(key string) string {
	last := byte('a')
	if key[len(key)-1] == last {
		last = 'b'
	}
	return key[:len(key)-1] + string(last)
}

// TestKeys: only the key of the user's stream name lets a push in.
func TestKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	d := fixtures.LiveDASH(t)
	init := readFile(t, d.Init["stream0"])
	good := live.Key(e.secret, "alice", "show")
	other := live.Key(e.secret, "bob", "show")
	tests := []struct {
		name, user, key string
		want            int
	}{
		{"valid", "alice", good, http.StatusNoContent},
		{"other user's key", "alice", other, http.StatusForbidden},
		{"tampered", "alice", tamper(good), http.StatusForbidden},
		{"renamed", "alice", "other" + strings.TrimPrefix(good, "show"), http.StatusForbidden},
		{"no name", "alice", strings.TrimPrefix(good, "show"), http.StatusForbidden},
		{"garbage", "alice", "x", http.StatusForbidden},
		{"other secret", "alice", live.Key([]byte("not the secret"), "alice", "show"), http.StatusForbidden},
		{"unknown user", "bob", other, http.StatusNotFound},
	}
	for _, tc := range tests {
		status, body := e.put(t, tc.user, tc.key, "init-stream0.m4s", init)
		if status != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, status, body, tc.want)
		}
		if status >= 400 && !json.Valid(body) {
			t.Errorf("%s: error body is not JSON: %s", tc.name, body)
		}
	}
}

// TestIdempotentFragments: a fragment pushed twice is stored once; other
// bytes under its number are refused and leave the first.
func TestIdempotentFragments(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	d := fixtures.LiveDASH(t)
	key := live.Key(e.secret, "alice", "dup")
	f1 := readFile(t, d.Fragments["stream0"][0])
	f2 := readFile(t, d.Fragments["stream0"][1])
	steps := []struct {
		file string
		b    []byte
		want int
	}{
		{"chunk-stream0-00001.m4s", f1, http.StatusConflict}, // before its init segment
		{"init-stream0.m4s", readFile(t, d.Init["stream0"]), http.StatusNoContent},
		{"init-stream0.m4s", readFile(t, d.Init["stream0"]), http.StatusNoContent}, // a retry
		{"chunk-stream0-00001.m4s", f1, http.StatusNoContent},
		{"chunk-stream0-00001.m4s", f1, http.StatusNoContent},
		{"chunk-stream0-00001.m4s", f2, http.StatusConflict},
		{"chunk-stream0-00002.m4s", []byte("not a fragment"), http.StatusBadRequest},
		{"notes.txt", []byte("x"), http.StatusBadRequest},
	}
	for i, s := range steps {
		if status, body := e.put(t, "alice", key, s.file, s.b); status != s.want {
			t.Fatalf("step %d: PUT %s: %d %s, want %d", i, s.file, status, body, s.want)
		}
	}
	want := []string{"users/alice/assets/dup/src/stream0-e0-00000001", "users/alice/assets/dup/src/stream0-e0-init"}
	if got := e.objects(t, "dup"); !slices.Equal(got, want) {
		t.Errorf("stored %v, want %v", got, want)
	}
	rc, err := e.Store.Get(context.Background(), want[0], 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, _ := io.ReadAll(rc); !bytes.Equal(b, f1) {
		t.Error("the stored fragment is not the first one pushed")
	}
}

// TestIdleStream: a stream that stops without its static manifest is
// archived after the idle timeout, with the samples it received.
func TestIdleStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 300*time.Millisecond)
	d := fixtures.LiveDASH(t)
	key := live.Key(e.secret, "alice", "cut")
	for _, rep := range d.Reps {
		if status, body := e.put(t, "alice", key, "init-"+rep+".m4s", readFile(t, d.Init[rep])); status != http.StatusNoContent {
			t.Fatalf("init of %s: %d %s", rep, status, body)
		}
		for _, p := range d.Fragments[rep] {
			if status, body := e.put(t, "alice", key, filepath.Base(p), readFile(t, p)); status != http.StatusNoContent {
				t.Fatalf("%s: %d %s", filepath.Base(p), status, body)
			}
		}
	}
	e.waitAsset(t, "cut")
	want := concatReps(t, e, "cut")
	probe.EqualStreams(t, "consolidated MP4", probe.PacketMD5s(t, e.url+"/files/alice/cut.mp4?pace=0"), want)
	// Later files of the stream make a new recording.
	if status, body := e.put(t, "alice", key, "init-stream0.m4s", readFile(t, d.Init["stream0"])); status != http.StatusNoContent {
		t.Fatalf("init after archive: %d %s", status, body)
	}
	if got := e.objects(t, "cut-2"); len(got) != 1 {
		t.Errorf("new recording has %v", got)
	}
}

// checkPush fails the test when an ffmpeg push failed or complained, but
// for its warning (at error level) that it cannot rename over HTTP.
func checkPush(t *testing.T, out []byte, err error) {
	t.Helper()
	var complaints []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" && !strings.Contains(l, "Cannot use rename on non file protocol") {
			complaints = append(complaints, l)
		}
	}
	if err != nil || len(complaints) > 0 {
		t.Fatalf("ffmpeg push: %v\n%s", err, out)
	}
}

// ffmpegPush pushes seconds of a test pattern (a tone of freq Hz) in real
// time to url as ffmpeg's DASH PUT does.
func ffmpegPush(t *testing.T, url string, seconds, freq int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-re",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=320x240:rate=30:duration=%d", seconds),
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%d:duration=%d", freq, seconds),
		"-c:v", "libx264", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-c:a", "aac",
		"-f", "dash", "-method", "PUT", "-seg_duration", "2", "-use_timeline", "1", "-use_template", "1",
		url)
	out, err := cmd.CombinedOutput()
	checkPush(t, out, err)
}

// TestReconnect: ffmpeg pushes 6 s and goes away without ending the
// stream (its last, static manifest is lost, as when it is killed), then
// another ffmpeg pushes 6 s more to the same URL before the idle timeout
// and ends the stream: one asset, with every fragment of both pushes on
// one timeline, and a discontinuity in the live playlist.
func TestReconnect(t *testing.T) {
	t.Parallel()
	fixtures.RequireTools(t)
	e := newEnv(t, 5*time.Second)
	key := live.Key(e.secret, "alice", "again")
	// The first encoder pushes through a proxy that loses its static
	// manifest.
	target, err := url.Parse(e.url)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	// ffmpeg drops requests without waiting for their answers: the
	// proxy's "context canceled" errors are expected.
	rp.ErrorLog = log.New(io.Discard, "", 0)
	lossy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".mpd") {
			b, _ := io.ReadAll(r.Body)
			if bytes.Contains(b, []byte(`type="static"`)) {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		rp.ServeHTTP(w, r)
	}))
	defer lossy.Close()
	ffmpegPush(t, lossy.URL+"/live/alice/"+key+"/stream.mpd", 6, 440)
	if ids := e.assets(t); slices.Contains(ids, "again") {
		t.Fatalf("the stream was archived after the first push: %v", ids)
	}
	ffmpegPush(t, e.url+"/live/alice/"+key+"/stream.mpd", 6, 660)
	e.waitAsset(t, "again")

	if ids := e.assets(t); len(ids) != 1 {
		t.Errorf("assets %v, want one", ids)
	}
	a, err := e.Library.Asset(context.Background(), "alice", "again")
	if err != nil {
		t.Fatal(err)
	}
	keys := e.objects(t, "again")
	for _, k := range []string{"stream0-e0-init", "stream0-e1-init", "stream1-e1-init", "stream0-e0-00000003", "stream0-e1-00000003"} {
		if !slices.Contains(keys, "users/alice/assets/again/src/"+k) {
			t.Errorf("no %s stored: %v", k, keys)
		}
	}
	if n := len(keys) - 4; len(a.Chapters) != n {
		t.Errorf("%d chapters, want the %d fragments stored", len(a.Chapters), n)
	}
	file := e.url + "/files/alice/again.mp4?pace=0"
	probe.EqualStreams(t, "consolidated MP4", probe.PacketMD5s(t, file), concatReps(t, e, "again"))
	if d := probe.Duration(t, file); d < 11.5 || d > 12.5 {
		t.Errorf("consolidated MP4 lasts %.3f s, want 12", d)
	}
	probe.RequireClean(t, e.url+"/streams/alice/again/hls/master.m3u8")

	_, b := get(t, e.url+"/live/alice/again/hls/stream0/index.m3u8?dvr=0", http.StatusOK)
	p := parsePlaylist(t, b)
	if n := strings.Count(string(b), "#EXT-X-DISCONTINUITY\n"); n != 1 || p.maps != 2 || !p.ended || p.seq != 1 {
		t.Errorf("live playlist with %d discontinuities, %+v:\n%s", n, p, b)
	}
	if d := p.total(); d < 11.5 || d > 12.5 {
		t.Errorf("live playlist lasts %.3f s, want 12", d)
	}
	for _, u := range p.uris {
		get(t, e.url+"/live/alice/again/hls/stream0/"+u, http.StatusOK)
	}
	get(t, e.url+"/live/alice/again/hls/stream0/init-1.mp4", http.StatusOK)
	_, b = get(t, e.url+"/live/alice/again/dash/manifest.mpd", http.StatusOK)
	if n := strings.Count(string(b), "<Period "); n != 2 || !strings.Contains(string(b), `initialization="$RepresentationID$/init-1.mp4"`) {
		t.Errorf("MPD with %d periods:\n%s", n, b)
	}
}
