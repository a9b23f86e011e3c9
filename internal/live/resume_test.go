package live_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/auth"
	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/live"
	"github.com/jitstream/jitstream/internal/outputs"
	"github.com/jitstream/jitstream/internal/server"
	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/jitserver"
	"github.com/jitstream/jitstream/internal/testutil/probe"
)

// restartNodes returns two ingest nodes over one store and library: a,
// the node an encoder pushes to first, which "crashes" (its idle sweep
// never runs, so it never archives what it holds), and b, the node
// restarted (a new Service over the same library) with its idle sweep
// running (idle).
func restartNodes(t *testing.T, idle time.Duration) (a, b *env) {
	t.Helper()
	return twoNodes(t, 0, idle)
}

// twoNodes returns two ingest nodes over one store and library, with
// their idle sweeps running after idleA and idleB; none on a for idleA 0.
func twoNodes(t *testing.T, idleA, idleB time.Duration) (a, b *env) {
	t.Helper()
	a, b, _ = twoNodesLogged(t, idleA, idleB)
	return a, b
}

// twoNodesLogged is twoNodes, with node a's log kept.
func twoNodesLogged(t *testing.T, idleA, idleB time.Duration) (a, b *env, logA *keptLog) {
	t.Helper()
	je := jitserver.New(t)
	logger := slog.New(slog.NewTextHandler(tlog{t}, nil))
	logA = &keptLog{t: t}
	svcA := live.New(je.Library, live.Options{IdleTimeout: idleA, Logger: slog.New(slog.NewTextHandler(logA, nil)).With("node", "a")})
	urlA := je.Serve(t, server.Options{Live: svcA})
	svcB := live.New(je.Library, live.Options{IdleTimeout: idleB, Logger: logger.With("node", "b")})
	urlB := je.Serve(t, server.Options{Live: svcB})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if idleA > 0 {
		wg.Go(func() { svcA.Run(ctx) })
	}
	wg.Go(func() { svcB.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	secret, err := auth.LoadSecret(context.Background(), je.Store, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &env{Env: je, url: urlA, secret: secret}, &env{Env: je, url: urlB, secret: secret}, logA
}

// keptLog is a log that the test reads, and also logs.
type keptLog struct {
	t  *testing.T
	mu sync.Mutex
	b  strings.Builder
}

func (l *keptLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// waitFor polls until the log has a line with s, or fails the test after
// timeout.
func (l *keptLog) waitFor(s string, timeout time.Duration) {
	l.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		l.mu.Lock()
		ok := strings.Contains(l.b.String(), s)
		l.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("no %q in the log within %v", s, timeout)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, with a deadline
	}
}

// fixtureMD5s returns the packet MD5s of the init segment and the first
// n fragments (all for n < 0) of each representation of d as one file, as
// streams 0 (video), 1 (audio).
func fixtureMD5s(t *testing.T, d fixtures.DASH, n int) map[int][]string {
	t.Helper()
	want := map[int][]string{}
	for i, rep := range d.Reps {
		fs := d.Fragments[rep]
		if n >= 0 {
			fs = fs[:n]
		}
		all := readFile(t, d.Init[rep])
		for _, p := range fs {
			all = append(all, readFile(t, p)...)
		}
		want[i] = md5sOf(t, rep, all)
	}
	return want
}

// md5sOf returns the packet MD5s of the one stream of the fragmented MP4
// b.
func md5sOf(t *testing.T, name string, b []byte) []string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name+".mp4")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return probe.PacketMD5s(t, p)[0]
}

// sameIndex fails the test unless assets got and want have the same
// tracks and samples, and chapters of the same names and times.
func sameIndex(t *testing.T, e *env, got, want string) {
	t.Helper()
	ctx := context.Background()
	var ix [2][]any
	for i, id := range []string{got, want} {
		a, err := e.Library.Asset(ctx, "alice", id)
		if err != nil {
			t.Fatal(err)
		}
		x, err := e.Library.Index(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range x.Chapters {
			ix[i] = append(ix[i], [4]any{c.Name, c.Size, c.Start, c.Duration})
		}
		for _, tr := range x.Tracks {
			ix[i] = append(ix[i], tr)
		}
	}
	if !reflect.DeepEqual(ix[0], ix[1]) {
		t.Errorf("asset %s differs from %s:\n%v\n%v", got, want, ix[0], ix[1])
	}
}

// TestResumeAfterRestart: the node an encoder pushes to restarts after the
// first half of the fragments; the restarted node takes the rest and the
// end: one asset with every fragment, the same as without the restart,
// and live playlists that list the stream from its start meanwhile.
func TestResumeAfterRestart(t *testing.T) {
	t.Parallel()
	a, b := restartNodes(t, time.Minute)
	d := fixtures.LiveDASH(t)
	key := live.Key(a.secret, "alice", "cam")
	half := len(d.Fragments["stream0"]) / 2
	pushFixture(t, a, key, d, half)

	// The restarted node: the rest, fragment by fragment, and the live
	// playlist of each after each.
	total := 0
	for _, rep := range d.Reps {
		total += len(d.Fragments[rep])
		for i, p := range d.Fragments[rep][half:] {
			if status, body := b.put(t, "alice", key, filepath.Base(p), readFile(t, p)); status != http.StatusNoContent {
				t.Fatalf("%s after the restart: %d %s", filepath.Base(p), status, body)
			}
			_, pl := get(t, b.url+"/live/alice/cam/hls/"+rep+"/index.m3u8?dvr=0", http.StatusOK)
			if p := parsePlaylist(t, pl); p.seq != 1 || len(p.uris) != half+i+1 || p.ended {
				t.Errorf("%s after %d fragments, %d of them after the restart: live playlist %+v:\n%s", rep, half+i+1, i+1, p, pl)
			}
		}
	}
	status, body := b.put(t, "alice", key, "stream.mpd", readFile(t, d.MPD))
	var archived struct {
		ID string `json:"id"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &archived) != nil || archived.ID != "cam" {
		t.Fatalf("static manifest: %d %s", status, body)
	}

	if ids := b.assets(t); !slices.Equal(ids, []string{"cam"}) {
		t.Errorf("assets %v, want [cam]", ids)
	}
	keys := b.objects(t, "cam")
	if len(keys) != total+2 || slices.ContainsFunc(keys, func(k string) bool { return strings.Contains(k, "-e1-") }) {
		t.Errorf("stored %v, want the 2 init segments and %d fragments of epoch 0", keys, total)
	}
	asset, err := b.Library.Asset(context.Background(), "alice", "cam")
	if err != nil {
		t.Fatal(err)
	}
	if len(asset.Chapters) != total {
		t.Errorf("%d chapters, want the %d fragments", len(asset.Chapters), total)
	}
	file := b.url + "/files/alice/cam.mp4?pace=0"
	probe.EqualStreams(t, "consolidated MP4", probe.PacketMD5s(t, file), fixtureMD5s(t, d, -1))
	probe.RequireClean(t, file)

	// The same stream pushed to one node that stays up.
	ref := live.Key(b.secret, "alice", "ref")
	pushFixture(t, b, ref, d, -1)
	if status, body := b.put(t, "alice", ref, "stream.mpd", readFile(t, d.MPD)); status != http.StatusOK {
		t.Fatalf("static manifest of ref: %d %s", status, body)
	}
	sameIndex(t, b, "cam", "ref")

	_, pl := get(t, b.url+"/live/alice/cam/hls/stream0/index.m3u8?dvr=0", http.StatusOK)
	if p := parsePlaylist(t, pl); !p.ended || p.seq != 1 || len(p.uris) != len(d.Fragments["stream0"]) {
		t.Errorf("ended live playlist %+v:\n%s", p, pl)
	}
	st, err := live.LoadState(context.Background(), b.Store, "alice", "cam")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Ended || st.Archived != "cam" || len(st.Epochs) != 0 {
		t.Errorf("state after the end: %+v", st)
	}
}

// TestResumeMoved: the encoder moves to another node while the first one
// stays up: the first one's idle sweep archives nothing, whether the
// stream still goes on on the other node or was archived there already;
// the other node archives the whole stream.
func TestResumeMoved(t *testing.T) {
	t.Parallel()
	for _, sweepFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("sweep first %v", sweepFirst), func(t *testing.T) {
			t.Parallel()
			const idleA = 500 * time.Millisecond
			a, b, logA := twoNodesLogged(t, idleA, time.Minute)
			// Node a's idle sweep finds the stream moved: it archives
			// nothing and says so.
			const moved = "live stream resumed by another node"
			d := fixtures.LiveDASH(t)
			key := live.Key(a.secret, "alice", "moved")
			half := len(d.Fragments["stream0"]) / 2
			pushFixture(t, a, key, d, half)
			total := 0
			for _, rep := range d.Reps {
				total += len(d.Fragments[rep])
				for _, p := range d.Fragments[rep][half:] {
					if status, body := b.put(t, "alice", key, filepath.Base(p), readFile(t, p)); status != http.StatusNoContent {
						t.Fatalf("%s on the other node: %d %s", filepath.Base(p), status, body)
					}
					if sweepFirst {
						logA.waitFor(moved, time.Minute)
						if ids := b.assets(t); len(ids) != 0 {
							t.Fatalf("assets %v while the stream goes on", ids)
						}
						sweepFirst = false
					}
				}
			}
			if status, body := b.put(t, "alice", key, "stream.mpd", readFile(t, d.MPD)); status != http.StatusOK {
				t.Fatalf("static manifest: %d %s", status, body)
			}
			logA.waitFor(moved, time.Minute)
			asset, err := b.Library.Asset(context.Background(), "alice", "moved")
			if err != nil {
				t.Fatal(err)
			}
			if len(asset.Chapters) != total {
				t.Errorf("%d chapters, want %d", len(asset.Chapters), total)
			}
			probe.EqualStreams(t, "consolidated MP4", probe.PacketMD5s(t, b.url+"/files/alice/moved.mp4?pace=0"), fixtureMD5s(t, d, -1))
			st, err := live.LoadState(context.Background(), b.Store, "alice", "moved")
			if err != nil {
				t.Fatal(err)
			}
			if !st.Ended || st.Archived != "moved" {
				t.Errorf("state %+v", st)
			}
		})
	}
}

// TestResumeRepush: after the restart the encoder pushes again the last
// fragment it pushed before: accepted and stored once; other bytes under
// its number are refused. Then nothing more: the resumed stream is
// archived when idle, with the fragments of before the restart.
func TestResumeRepush(t *testing.T) {
	t.Parallel()
	a, b := restartNodes(t, 500*time.Millisecond)
	d := fixtures.LiveDASH(t)
	key := live.Key(a.secret, "alice", "cut")
	half := len(d.Fragments["stream0"]) / 2
	pushFixture(t, a, key, d, half)
	before := a.objects(t, "cut")

	last := d.Fragments["stream0"][half-1]
	steps := []struct {
		name string
		b    []byte
		want int
	}{
		{"the same bytes", readFile(t, last), http.StatusNoContent},
		{"other bytes", readFile(t, d.Fragments["stream0"][half]), http.StatusConflict},
		{"the same bytes again", readFile(t, last), http.StatusNoContent},
	}
	for _, s := range steps {
		if status, body := b.put(t, "alice", key, filepath.Base(last), s.b); status != s.want {
			t.Fatalf("%s of %s after the restart: %d %s, want %d", s.name, filepath.Base(last), status, body, s.want)
		}
	}
	if got := b.objects(t, "cut"); !slices.Equal(got, before) {
		t.Errorf("stored %v after the re-push, want %v", got, before)
	}

	b.waitAsset(t, "cut")
	if ids := b.assets(t); !slices.Equal(ids, []string{"cut"}) {
		t.Errorf("assets %v, want [cut]", ids)
	}
	asset, err := b.Library.Asset(context.Background(), "alice", "cut")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(before) - 2; len(asset.Chapters) != n {
		t.Errorf("%d chapters, want the %d fragments", len(asset.Chapters), n)
	}
	rc, err := b.Store.Get(context.Background(), "users/alice/assets/cut/src/stream0-e0-"+fmt.Sprintf("%08d", half), 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, readFile(t, last)) {
		t.Errorf("the stored fragment is not the one pushed (%v)", err)
	}
	probe.EqualStreams(t, "consolidated MP4", probe.PacketMD5s(t, b.url+"/files/alice/cut.mp4?pace=0"), fixtureMD5s(t, d, half))
}

// TestResumeNewEpoch: an encoder that sends its init segments again after
// the restart (it restarted too) starts a new epoch of the same asset, as
// without the restart.
func TestResumeNewEpoch(t *testing.T) {
	t.Parallel()
	a, b := restartNodes(t, time.Minute)
	d := fixtures.LiveDASH(t)
	key := live.Key(a.secret, "alice", "again")
	half := len(d.Fragments["stream0"]) / 2
	pushFixture(t, a, key, d, half)
	pushFixture(t, b, key, d, -1)
	if status, body := b.put(t, "alice", key, "stream.mpd", readFile(t, d.MPD)); status != http.StatusOK {
		t.Fatalf("static manifest: %d %s", status, body)
	}
	if ids := b.assets(t); !slices.Equal(ids, []string{"again"}) {
		t.Errorf("assets %v, want [again]", ids)
	}
	keys := b.objects(t, "again")
	n := 0
	for _, rep := range d.Reps {
		n += half + len(d.Fragments[rep])
		for _, k := range []string{rep + "-e0-init", rep + "-e1-init", rep + "-e1-00000001", fmt.Sprintf("%s-e0-%08d", rep, half)} {
			if !slices.Contains(keys, "users/alice/assets/again/src/"+k) {
				t.Errorf("no %s stored: %v", k, keys)
			}
		}
	}
	asset, err := b.Library.Asset(context.Background(), "alice", "again")
	if err != nil {
		t.Fatal(err)
	}
	if len(asset.Chapters) != n || len(keys) != n+4 {
		t.Errorf("%d chapters, %d objects; want %d fragments", len(asset.Chapters), len(keys), n)
	}
	probe.EqualStreams(t, "consolidated MP4", probe.PacketMD5s(t, b.url+"/files/alice/again.mp4?pace=0"), concatReps(t, b, "again"))
	_, pl := get(t, b.url+"/live/alice/again/hls/stream0/index.m3u8?dvr=0", http.StatusOK)
	if p := parsePlaylist(t, pl); strings.Count(string(pl), "#EXT-X-DISCONTINUITY\n") != 1 || p.seq != 1 || len(p.uris) != half+len(d.Fragments["stream0"]) {
		t.Errorf("live playlist %+v:\n%s", p, pl)
	}
}

// TestResumeEnded: a stream archived before the restart is not resumed:
// its next file starts a new recording, as on a node that stays up; so
// too when the node went between archiving it and storing its ended
// state.
func TestResumeEnded(t *testing.T) {
	t.Parallel()
	for _, stateLost := range []bool{false, true} {
		t.Run(fmt.Sprintf("state lost %v", stateLost), func(t *testing.T) {
			t.Parallel()
			a, b := restartNodes(t, time.Minute)
			d := fixtures.LiveDASH(t)
			key := live.Key(a.secret, "alice", "fin")
			pushFixture(t, a, key, d, -1)
			if status, body := a.put(t, "alice", key, "stream.mpd", readFile(t, d.MPD)); status != http.StatusOK {
				t.Fatalf("static manifest: %d %s", status, body)
			}
			if stateLost {
				editState(t, a, "fin", func(st *live.State) { st.Ended, st.Archived = false, "" })
			}
			before := b.objects(t, "fin")
			if status, body := b.put(t, "alice", key, "init-stream0.m4s", readFile(t, d.Init["stream0"])); status != http.StatusNoContent {
				t.Fatalf("init after the archive: %d %s", status, body)
			}
			if got := b.objects(t, "fin"); !slices.Equal(got, before) {
				t.Errorf("the archived asset's objects changed: %v, were %v", got, before)
			}
			if got := b.objects(t, "fin-2"); len(got) != 1 {
				t.Errorf("new recording has %v", got)
			}
			st, err := live.LoadState(context.Background(), b.Store, "alice", "fin")
			if err != nil {
				t.Fatal(err)
			}
			if st.Asset != "fin-2" || st.Ended {
				t.Errorf("state of the new recording %+v", st)
			}
		})
	}
}

// editState changes the stored live state of alice's stream name.
func editState(t *testing.T, e *env, name string, edit func(*live.State)) {
	t.Helper()
	ctx := context.Background()
	st, err := live.LoadState(ctx, e.Store, "alice", name)
	if err != nil {
		t.Fatal(err)
	}
	edit(st)
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.Put(ctx, live.StateKey("alice", name), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
}

// TestResumeStale: a stream whose node went away, and its encoder too,
// for longer than the idle timeout is archived as it was by the next file
// of the stream, which starts a new recording, as on a node that stays
// up.
func TestResumeStale(t *testing.T) {
	t.Parallel()
	a, b := restartNodes(t, time.Minute)
	d := fixtures.LiveDASH(t)
	key := live.Key(a.secret, "alice", "old")
	pushFixture(t, a, key, d, 1)
	editState(t, a, "old", func(st *live.State) { st.Updated = st.Updated.Add(-2 * time.Minute) })
	if status, body := b.put(t, "alice", key, "init-stream0.m4s", readFile(t, d.Init["stream0"])); status != http.StatusNoContent {
		t.Fatalf("init: %d %s", status, body)
	}
	if ids := b.assets(t); !slices.Equal(ids, []string{"old"}) {
		t.Errorf("assets %v, want [old]", ids)
	}
	asset, err := b.Library.Asset(context.Background(), "alice", "old")
	if err != nil {
		t.Fatal(err)
	}
	if len(asset.Chapters) != 2 {
		t.Errorf("%d chapters, want 2", len(asset.Chapters))
	}
	if got := b.objects(t, "old-2"); len(got) != 1 {
		t.Errorf("new recording has %v", got)
	}
}

// TestResumeStoredFragments: the node went between storing a fragment and
// storing the state, and the store lost another fragment: the resumed
// stream has the first and goes on without the second.
func TestResumeStoredFragments(t *testing.T) {
	t.Parallel()
	a, b := restartNodes(t, time.Second)
	d := fixtures.LiveDASH(t)
	key := live.Key(a.secret, "alice", "gap")
	pushFixture(t, a, key, d, 1)
	ctx := context.Background()
	src := "users/alice/assets/gap/src/"
	unlisted := readFile(t, d.Fragments["stream0"][1])
	if _, err := a.Store.Put(ctx, src+"stream0-e0-00000002", bytes.NewReader(unlisted)); err != nil {
		t.Fatal(err)
	}
	if err := a.Store.Delete(ctx, src+"stream1-e0-00000001"); err != nil {
		t.Fatal(err)
	}
	audio := d.Fragments["stream1"]
	for _, f := range []struct {
		name string
		b    []byte
	}{
		{filepath.Base(audio[1]), readFile(t, audio[1])},
		{"chunk-stream0-00002.m4s", unlisted}, // the encoder's retry
		{filepath.Base(audio[2]), readFile(t, audio[2])},
	} {
		if status, body := b.put(t, "alice", key, f.name, f.b); status != http.StatusNoContent {
			t.Fatalf("%s after the restart: %d %s", f.name, status, body)
		}
	}
	st, err := live.LoadState(ctx, b.Store, "alice", "gap")
	if err != nil {
		t.Fatal(err)
	}
	var seqs [2][]int
	for i, r := range st.Reps {
		for _, f := range r.Frags {
			seqs[i] = append(seqs[i], f.Seq)
		}
	}
	if !slices.Equal(seqs[0], []int{1, 2}) || !slices.Equal(seqs[1], []int{2, 3}) {
		t.Errorf("state with fragments %v, want [[1 2] [2 3]]", seqs)
	}
	b.waitAsset(t, "gap")
	asset, err := b.Library.Asset(ctx, "alice", "gap")
	if err != nil {
		t.Fatal(err)
	}
	if len(asset.Chapters) != 4 {
		t.Errorf("%d chapters, want 4", len(asset.Chapters))
	}
	want := map[int][]string{0: fixtureMD5s(t, d, -1)[0],
		1: md5sOf(t, "audio", slices.Concat(readFile(t, d.Init["stream1"]), readFile(t, audio[1]), readFile(t, audio[2])))}
	probe.EqualStreams(t, "consolidated MP4", probe.PacketMD5s(t, b.url+"/files/alice/gap.mp4?pace=0"), want)
}

// countingStore counts the reads of originals (keys with /src/) under way
// at once, each made to last a little.
type countingStore struct {
	store.Store
	mu       sync.Mutex
	cur, max int
}

func (s *countingStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if !strings.Contains(key, "/src/") {
		return s.Store.Get(ctx, key, off, n)
	}
	s.mu.Lock()
	s.cur++
	s.max = max(s.max, s.cur)
	s.mu.Unlock()
	time.Sleep(2 * time.Millisecond) // a store farther away
	rc, err := s.Store.Get(ctx, key, off, n)
	if err != nil {
		s.done()
		return nil, err
	}
	return countedReader{rc, s}, nil
}

func (s *countingStore) done() {
	s.mu.Lock()
	s.cur--
	s.mu.Unlock()
}

type countedReader struct {
	io.ReadCloser
	s *countingStore
}

func (r countedReader) Close() error {
	r.s.done()
	return r.ReadCloser.Close()
}

// TestResumeMany: a stream of a thousand fragments resumes reading them
// back at most 8 at a time, and goes on with all of them.
func TestResumeMany(t *testing.T) {
	t.Parallel()
	a, _ := restartNodes(t, time.Minute)
	d := fixtures.LiveDASH(t)
	key := live.Key(a.secret, "alice", "many")
	pushFixture(t, a, key, d, 1)
	// A thousand more video fragments, as the node stored them.
	const n = 1000
	ctx := context.Background()
	frag := readFile(t, d.Fragments["stream0"][0])
	editState(t, a, "many", func(st *live.State) {
		r := st.Reps[0]
		f1 := r.Frags[0]
		for seq := 2; seq <= n+1; seq++ {
			k := fmt.Sprintf("users/alice/assets/many/src/stream0-e0-%08d", seq)
			if _, err := a.Store.Put(ctx, k, bytes.NewReader(frag)); err != nil {
				t.Fatal(err)
			}
			r.Frags = append(r.Frags, live.Frag{Seq: seq, Key: k, Size: f1.Size, Time: f1.Time + int64(seq-1)*f1.Dur, Dur: f1.Dur})
		}
	})

	// The restarted node, over a store that counts reads.
	cs := &countingStore{Store: a.Store}
	lib := library.New(cs, library.Options{})
	svc := live.New(lib, live.Options{Logger: slog.New(slog.NewTextHandler(tlog{t}, nil)).With("node", "b")})
	srv := httptest.NewServer(server.New(outputs.New(lib, 0), server.Options{Live: svc}))
	defer srv.Close()
	b := &env{Env: a.Env, url: srv.URL, secret: a.secret}
	audio := d.Fragments["stream1"][1]
	if status, body := b.put(t, "alice", key, filepath.Base(audio), readFile(t, audio)); status != http.StatusNoContent {
		t.Fatalf("%s after the restart: %d %s", filepath.Base(audio), status, body)
	}
	cs.mu.Lock()
	most := cs.max
	cs.mu.Unlock()
	if most < 2 || most > 8 {
		t.Errorf("%d reads at once, want 2 to 8", most)
	}
	before := len(b.objects(t, "many"))
	for _, seq := range []int{1, 500, n + 1} {
		if status, body := b.put(t, "alice", key, fmt.Sprintf("chunk-stream0-%05d.m4s", seq), frag); status != http.StatusNoContent {
			t.Fatalf("fragment %d again: %d %s", seq, status, body)
		}
	}
	if status, body := b.put(t, "alice", key, "chunk-stream0-00500.m4s", readFile(t, audio)); status != http.StatusConflict {
		t.Fatalf("other bytes for fragment 500: %d %s", status, body)
	}
	if after := len(b.objects(t, "many")); after != before {
		t.Errorf("%d objects after the re-push, were %d", after, before)
	}
	st, err := live.LoadState(ctx, b.Store, "alice", "many")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Reps[0].Frags) != n+1 || len(st.Reps[1].Frags) != 2 {
		t.Errorf("state with %d and %d fragments, want %d and 2", len(st.Reps[0].Frags), len(st.Reps[1].Frags), n+1)
	}
}

// TestRestartFFmpeg: ffmpeg pushes 8 s live through a front that sends
// its requests to node a for 5 s, then to node b (a restarted): one
// asset, with every fragment ffmpeg pushed.
func TestRestartFFmpeg(t *testing.T) {
	t.Parallel()
	fixtures.RequireTools(t)
	a, b := restartNodes(t, time.Minute)
	key := live.Key(a.secret, "alice", "show")
	var (
		mu       sync.Mutex // serializes the files, so that no two nodes record at once
		switchAt time.Time
		pushed   = map[string][]byte{} // by file name
		chunks   = map[string]int{}    // by node
	)
	client := &http.Client{Timeout: time.Minute}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return // ffmpeg went away
		}
		file := path.Base(r.URL.Path)
		manifest := strings.HasSuffix(file, ".mpd")
		mu.Lock()
		if switchAt.IsZero() {
			switchAt = time.Now().Add(5 * time.Second)
		}
		node, target := "a", a.url
		if time.Now().After(switchAt) {
			node, target = "b", b.url
		}
		if !manifest {
			pushed[file] = body
			if strings.HasPrefix(file, "chunk-") {
				chunks[node]++
			}
		} else {
			mu.Unlock() // a static manifest waits for fragments
		}
		// ffmpeg does not always wait for the answer: forward all the
		// same.
		req, err := http.NewRequestWithContext(context.WithoutCancel(r.Context()), r.Method, target+r.URL.Path, bytes.NewReader(body))
		var resp *http.Response
		if err == nil {
			resp, err = client.Do(req)
		}
		if !manifest {
			mu.Unlock()
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	defer front.Close()
	ffmpegPush(t, front.URL+"/live/alice/"+key+"/stream.mpd", 8, 440)
	b.waitAsset(t, "show")

	mu.Lock()
	defer mu.Unlock()
	if chunks["a"] == 0 || chunks["b"] == 0 {
		t.Fatalf("fragments pushed per node %v, want some to each", chunks)
	}
	if ids := b.assets(t); !slices.Equal(ids, []string{"show"}) {
		t.Errorf("assets %v, want [show]", ids)
	}
	asset, err := b.Library.Asset(context.Background(), "alice", "show")
	if err != nil {
		t.Fatal(err)
	}
	n := chunks["a"] + chunks["b"]
	keys := b.objects(t, "show")
	if len(asset.Chapters) != n || len(keys) != n+2 {
		t.Errorf("%d chapters, stored %v; want the %d fragments pushed", len(asset.Chapters), keys, n)
	}
	// What ffmpeg pushed, per representation: its init segment and
	// fragments in order.
	want := map[int][]string{}
	for i, rep := range []string{"stream0", "stream1"} {
		var names []string
		for f := range pushed {
			if strings.HasPrefix(f, "chunk-"+rep+"-") {
				names = append(names, f)
			}
		}
		slices.Sort(names)
		all := slices.Clone(pushed["init-"+rep+".m4s"])
		for _, f := range names {
			all = append(all, pushed[f]...)
		}
		want[i] = md5sOf(t, rep, all)
	}
	file := b.url + "/files/alice/show.mp4?pace=0"
	probe.EqualStreams(t, "consolidated MP4", probe.PacketMD5s(t, file), want)
	if d := probe.Duration(t, file); d < 7.5 || d > 8.5 {
		t.Errorf("consolidated MP4 lasts %.3f s, want 8", d)
	}
	t.Logf("fragments pushed per node: %v", chunks)
}
