package transcode

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/state"
	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
)

// smallLadder has rungs below the 320x240 fixtures, which transcode fast.
func smallLadder(tb testing.TB) []Rung {
	tb.Helper()
	l, err := ParseLadder("180p=200k,120p=100k")
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// smallSource is the 6 s 320x240 H.264 fixture (two segments: 4 s, 2 s).
func smallSource(tb testing.TB, key string) Source {
	tb.Helper()
	fixtures.RequireTools(tb)
	src := newSource(tb, fixtures.H264AAC(tb), key)
	if len(src.Segments) != 2 {
		tb.Fatalf("source has %d segments, want 2", len(src.Segments))
	}
	return src
}

// waitFor polls cond until it holds, failing the test after 30 s.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waiters is the number of callers waiting for the run of key.
func (t *Transcoder) waiters(key string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if f := t.flights[key]; f != nil {
		return f.waiters
	}
	return 0
}

func TestSingleflight(t *testing.T) {
	src := smallSource(t, "carol/sf/r1")
	r := rendition(t, smallLadder(t), src, "180p")
	tr := newTranscoder(t, src.Store, Options{})
	release := make(chan struct{})
	tr.beforeRun = func(ctx context.Context, key string) { <-release }

	const callers = 8
	key := segmentKey(sourceHash(&src), r, 0)
	var wg sync.WaitGroup
	results := make([][]byte, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				results[i], errs[i] = tr.Segment(context.Background(), src, r, 0)
			} else {
				// Init shares the run of segment 0.
				_, errs[i] = tr.Init(context.Background(), src, r)
			}
		}()
	}
	waitFor(t, "every caller to join the run", func() bool { return tr.waiters(key) == callers })
	close(release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
	}
	for i := 2; i < callers; i += 2 {
		if !bytes.Equal(results[i], results[0]) {
			t.Errorf("caller %d got other bytes than caller 0", i)
		}
	}
	if runs := tr.runs.Load(); runs != 1 {
		t.Errorf("%d ffmpeg runs for %d concurrent callers, want 1", runs, callers)
	}
}

// TestCanceledCallers: a run whose callers all leave is stopped, caches
// nothing, and a later call runs again.
func TestCanceledCallers(t *testing.T) {
	src := smallSource(t, "carol/cancel/r1")
	r := rendition(t, smallLadder(t), src, "120p")
	tr := newTranscoder(t, src.Store, Options{})
	started := make(chan struct{})
	var once sync.Once
	tr.beforeRun = func(ctx context.Context, key string) {
		once.Do(func() {
			close(started)
			<-ctx.Done() // the run is canceled when its caller leaves
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := tr.Segment(ctx, src, r, 0)
		done <- err
	}()
	<-started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled call: %v, want context.Canceled", err)
	}
	tr.wg.Wait() // the run has ended
	if objs := cacheObjects(t, src.Store); len(objs) != 0 {
		t.Errorf("a canceled run cached %v", objs)
	}
	if _, err := tr.Segment(context.Background(), src, r, 0); err != nil {
		t.Fatal(err)
	}
	if runs := tr.runs.Load(); runs != 2 {
		t.Errorf("%d runs, want 2", runs)
	}
}

func TestBusy(t *testing.T) {
	src := smallSource(t, "carol/busy/r1")
	r1 := rendition(t, smallLadder(t), src, "180p")
	r2 := rendition(t, smallLadder(t), src, "120p")
	tr := newTranscoder(t, src.Store, Options{Concurrency: 1, QueueWait: 50 * time.Millisecond})
	started, release := make(chan struct{}), make(chan struct{})
	tr.beforeRun = func(ctx context.Context, key string) {
		if strings.Contains(key, "/"+r1.ID()+"/") {
			close(started)
			<-release
		}
	}
	first := make(chan error)
	go func() {
		_, err := tr.Segment(context.Background(), src, r1, 0)
		first <- err
	}()
	<-started
	_, err := tr.Segment(context.Background(), src, r2, 0)
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("second transcode while the only slot is taken: %v, want ErrBusy", err)
	}
	if d, ok := RetryAfter(err); !ok || d < time.Second || d > 30*time.Second {
		t.Errorf("RetryAfter(%v) = %v, %v; want 1 s to 30 s", err, d, ok)
	}
	if _, ok := RetryAfter(errors.New("other")); ok {
		t.Error("RetryAfter of another error reports busy")
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Segment(context.Background(), src, r2, 0); err != nil {
		t.Fatalf("once the slot is free: %v", err)
	}
}

func TestFFmpegFails(t *testing.T) {
	src := smallSource(t, "dave/fails/r1")
	r := rendition(t, smallLadder(t), src, "180p")
	script := filepath.Join(t.TempDir(), "ffmpeg")
	if err := os.WriteFile(script, []byte("#!/bin/sh\ncat >/dev/null\necho 'first line' >&2\necho 'boom: cannot encode' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tr := newTranscoder(t, src.Store, Options{FFmpeg: script})
	_, err := tr.Segment(context.Background(), src, r, 0)
	var fe *FFmpegError
	if !errors.As(err, &fe) {
		t.Fatalf("Segment with a failing ffmpeg: %v, want an *FFmpegError", err)
	}
	if fe.Key != src.Key || fe.Rendition != "180p" || fe.Segment != 0 {
		t.Errorf("FFmpegError names %q %q %d", fe.Key, fe.Rendition, fe.Segment)
	}
	for _, want := range []string{src.Key, "180p", "segment 0", "exit status 1", "first line | boom: cannot encode"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if objs := cacheObjects(t, src.Store); len(objs) != 0 {
		t.Errorf("a failed run cached %v", objs)
	}
	// The failure is remembered: Init (segment 0 too) fails the same way
	// without another run.
	if _, err2 := tr.Init(context.Background(), src, r); err2 != err {
		t.Errorf("Init after the failure: %v, want the remembered %v", err2, err)
	}
	if runs := tr.runs.Load(); runs != 1 {
		t.Errorf("%d runs, want 1", runs)
	}

	// A missing binary.
	tr2 := newTranscoder(t, src.Store, Options{FFmpeg: filepath.Join(t.TempDir(), "no-such-ffmpeg")})
	if _, err := tr2.Init(context.Background(), src, r); !errors.As(err, &fe) || !strings.Contains(err.Error(), "cannot run") {
		t.Errorf("Init with a missing ffmpeg: %v", err)
	}
}

// TestCorruptSource: the stored bytes of segment 1's video samples are
// garbage; segment 0 transcodes, segment 1 fails with an FFmpegError
// naming it, and nothing of it is cached.
func TestCorruptSource(t *testing.T) {
	src := smallSource(t, "dave/corrupt/r1")
	r := rendition(t, smallLadder(t), src, "120p")
	ctx := context.Background()
	obj := src.Index.Chapters[0].Object
	rc, err := src.Store.Get(ctx, obj, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(rc)
	rc.Close()
	data := buf.Bytes()
	rng := rand.New(rand.NewPCG(1, 2))
	s := &src.Track.Samples
	first, end := src.sampleSpan(1)
	for i := first; i < end; i++ {
		for b := s.Offset[i]; b < s.Offset[i]+int64(s.Size[i]); b++ {
			data[b] = byte(rng.Uint32())
		}
	}
	if _, err := src.Store.Put(ctx, obj, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	tr := newTranscoder(t, src.Store, Options{})
	if _, err := tr.Segment(ctx, src, r, 0); err != nil {
		t.Fatalf("segment 0 is intact: %v", err)
	}
	_, err = tr.Segment(ctx, src, r, 1)
	var fe *FFmpegError
	if !errors.As(err, &fe) || fe.Segment != 1 || !strings.Contains(err.Error(), "segment 1") {
		t.Fatalf("corrupt segment 1: %v, want an FFmpegError naming segment 1", err)
	}
	t.Logf("corrupt segment: %v", err)
	for _, o := range cacheObjects(t, src.Store) {
		if strings.HasSuffix(o.Key, "/1") {
			t.Errorf("the failed segment was cached: %s", o.Key)
		}
	}
}

// TestCachePersists: a new Transcoder over the same store serves what the
// first one made without running ffmpeg.
func TestCachePersists(t *testing.T) {
	src := smallSource(t, "erin/persist/r1")
	r := rendition(t, smallLadder(t), src, "180p")
	ctx := context.Background()
	a := newTranscoder(t, src.Store, Options{})
	var want [][]byte
	init, err := a.Init(ctx, src, r)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, init)
	for n := range src.Segments {
		seg, err := a.Segment(ctx, src, r, n)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, seg)
	}
	a.Close()
	if objs := cacheObjects(t, src.Store); len(objs) != 3 {
		t.Errorf("cache holds %d objects, want 3 (init and two segments)", len(objs))
	}

	b := newTranscoder(t, src.Store, Options{})
	got := [][]byte{}
	init, err = b.Init(ctx, src, r)
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, init)
	for n := range src.Segments {
		seg, err := b.Segment(ctx, src, r, n)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, seg)
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("object %d differs from the first transcoder's", i)
		}
	}
	if runs := b.runs.Load(); runs != 0 {
		t.Errorf("the second transcoder ran ffmpeg %d times, want 0", runs)
	}
	// Another revision of the asset is another cache entry.
	src2 := src
	src2.Key = "erin/persist/r2"
	if _, err := b.Segment(ctx, src2, r, 0); err != nil {
		t.Fatal(err)
	}
	if runs := b.runs.Load(); runs != 1 {
		t.Errorf("a new revision ran ffmpeg %d times, want 1", runs)
	}
}

// TestCacheBudget: with a small budget the cached bytes stay within it,
// and the least recently used objects go first.
func TestCacheBudget(t *testing.T) {
	src := smallSource(t, "frank/budget/r0")
	r := rendition(t, smallLadder(t), src, "120p")
	ctx := context.Background()
	// Sizes of segment 0 and of the init segment.
	cal := newTranscoder(t, src.Store, Options{})
	if _, err := cal.Init(ctx, src, r); err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int64{}
	for _, o := range cacheObjects(t, src.Store) {
		sizes[o.Key[strings.LastIndex(o.Key, "/")+1:]] = o.Size
	}
	S, I := sizes["0"], sizes["init"]
	if S <= 3*I || I == 0 {
		t.Fatalf("segment of %d bytes and init of %d: the test wants a segment above 3 inits", S, I)
	}
	budget := 3*(S+I) + (S+I)/2

	cacheStore, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tr := newTranscoder(t, cacheStore, Options{CacheBytes: budget})
	asset := func(i int) Source {
		s := src
		s.Key = "frank/budget/r" + string(rune('0'+i))
		return s
	}
	present := func(i int) (seg, init bool) {
		sh := sourceHash(ptr(asset(i)))
		_, err1 := cacheStore.Stat(ctx, segmentKey(sh, r, 0))
		_, err2 := cacheStore.Stat(ctx, initKey(sh, r))
		return err1 == nil, err2 == nil
	}
	total := func() int64 {
		var n int64
		for _, o := range cacheObjects(t, cacheStore) {
			n += o.Size
		}
		return n
	}
	for i := 1; i <= 3; i++ {
		if _, err := tr.Init(ctx, asset(i), r); err != nil {
			t.Fatal(err)
		}
	}
	// Use asset 1's segment: asset 1's init is now the least recently
	// used object, then asset 2's segment.
	if _, err := tr.Segment(ctx, asset(1), r, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Init(ctx, asset(4), r); err != nil {
		t.Fatal(err)
	}
	want := map[int][2]bool{1: {true, false}, 2: {false, true}, 3: {true, true}, 4: {true, true}}
	for i, w := range want {
		if s, in := present(i); s != w[0] || in != w[1] {
			t.Errorf("asset %d: segment cached %v, init cached %v; want %v, %v", i, s, in, w[0], w[1])
		}
	}
	for i := 5; i <= 9; i++ {
		if _, err := tr.Init(ctx, asset(i), r); err != nil {
			t.Fatal(err)
		}
		if n := total(); n > budget {
			t.Fatalf("after asset %d the cache holds %d bytes, over its budget of %d", i, n, budget)
		}
	}
	if runs := tr.runs.Load(); runs != 9 {
		t.Errorf("%d runs, want 9 (one per asset)", runs)
	}
	tr.Close()

	// A new transcoder loads the objects in the order they were written
	// (assets 7, 8, 9 are left): one more asset evicts the oldest, asset 7's
	// segment.
	tr2 := newTranscoder(t, cacheStore, Options{CacheBytes: budget})
	if _, err := tr2.Init(ctx, asset(1), r); err != nil {
		t.Fatal(err)
	}
	if n := total(); n > budget {
		t.Errorf("the new transcoder's cache holds %d bytes, over its budget of %d", n, budget)
	}
	for _, i := range []int{1, 9} {
		if s, in := present(i); !s || !in {
			t.Errorf("asset %d: segment cached %v, init cached %v; want both", i, s, in)
		}
	}
	for _, i := range []int{8} {
		if s, in := present(i); !s || !in {
			t.Errorf("asset %d: segment cached %v, init cached %v; want both", i, s, in)
		}
	}
	if s, _ := present(7); s {
		t.Error("asset 7's segment, the oldest object, is still cached")
	}
}

func ptr[T any](v T) *T { return &v }

func TestPrefetch(t *testing.T) {
	src := smallSource(t, "grace/prefetch/r1")
	r := rendition(t, smallLadder(t), src, "180p")
	ctx := context.Background()
	tr := newTranscoder(t, src.Store, Options{Concurrency: 2})
	if _, err := tr.Segment(ctx, src, r, 0); err != nil {
		t.Fatal(err)
	}
	tr.Prefetch(src, r, 0)
	key := segmentKey(sourceHash(&src), r, 1)
	waitFor(t, "the prefetch of segment 1", func() bool {
		_, err := src.Store.Stat(ctx, key)
		return err == nil
	})
	if _, err := tr.Segment(ctx, src, r, 1); err != nil {
		t.Fatal(err)
	}
	if runs := tr.runs.Load(); runs != 2 {
		t.Errorf("%d runs, want 2 (segment 0, the prefetched segment 1)", runs)
	}
	// With one slot, nothing is prefetched (the slot stays for viewers).
	one := newTranscoder(t, src.Store, Options{Concurrency: 1})
	r2 := rendition(t, smallLadder(t), src, "120p")
	if _, err := one.Segment(ctx, src, r2, 0); err != nil {
		t.Fatal(err)
	}
	one.Prefetch(src, r2, 0)
	one.Close()
	if runs := one.runs.Load(); runs != 1 {
		t.Errorf("Concurrency 1: %d runs, want 1", runs)
	}
	if _, err := one.Segment(ctx, src, r2, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Segment after Close: %v, want ErrClosed", err)
	}
}

// TestClusterLock: two transcoders (nodes) sharing a store and a lock
// service make a segment asked from both once.
func TestClusterLock(t *testing.T) {
	src := smallSource(t, "heidi/cluster/r1")
	r := rendition(t, smallLadder(t), src, "180p")
	locks := state.NewMemory()
	defer locks.Close()
	a := newTranscoder(t, src.Store, Options{Locker: locks})
	bLocking := make(chan string, 4)
	b := newTranscoder(t, src.Store, Options{Locker: signalLocker{locks, bLocking}})
	started, release := make(chan struct{}), make(chan struct{})
	a.beforeRun = func(ctx context.Context, key string) {
		close(started)
		<-release
	}
	b.beforeRun = func(ctx context.Context, key string) { t.Error("node b ran ffmpeg") }
	ctx := context.Background()
	resA := make(chan []byte)
	go func() {
		seg, err := a.Segment(ctx, src, r, 0)
		if err != nil {
			t.Error(err)
		}
		resA <- seg
	}()
	<-started
	resB := make(chan []byte)
	go func() {
		seg, err := b.Segment(ctx, src, r, 0)
		if err != nil {
			t.Error(err)
		}
		resB <- seg
	}()
	// b waits on the lock that a holds (a's run is held by beforeRun);
	// once a is done, b finds a's result in the cache.
	select {
	case <-bLocking:
	case <-time.After(time.Minute):
		t.Fatal("node b never asked for the cluster lock")
	}
	close(release)
	sa, sb := <-resA, <-resB
	if !bytes.Equal(sa, sb) || len(sa) == 0 {
		t.Error("the nodes returned different segments")
	}
	if ra, rb := a.runs.Load(), b.runs.Load(); ra+rb != 1 {
		t.Errorf("runs: node a %d, node b %d; want 1 in all", ra, rb)
	}
}

func TestBadRequests(t *testing.T) {
	src := smallSource(t, "ivan/bad/r1")
	r := rendition(t, smallLadder(t), src, "120p")
	tr := newTranscoder(t, src.Store, Options{})
	ctx := context.Background()
	if _, err := tr.Segment(ctx, src, r, 2); !errors.Is(err, ErrNoSegment) {
		t.Errorf("segment 2 of 2: %v, want ErrNoSegment", err)
	}
	if _, err := tr.Segment(ctx, src, r, -1); !errors.Is(err, ErrNoSegment) {
		t.Errorf("segment -1: %v, want ErrNoSegment", err)
	}
	bad := r
	bad.Name = "my rendition"
	if _, err := tr.Init(ctx, src, bad); err == nil || !strings.Contains(err.Error(), "rendition name") {
		t.Errorf("rendition with a space in its name: %v", err)
	}
	if _, err := tr.Init(ctx, src, Rendition{Rung: Rung{Name: "x"}}); err == nil {
		t.Error("a zero rendition was accepted")
	}
	audio := src
	audio.Track = src.Index.Audio()
	if _, err := tr.Segment(ctx, audio, r, 0); err == nil || !strings.Contains(err.Error(), "not video") {
		t.Errorf("audio track: %v", err)
	}
	if runs := tr.runs.Load(); runs != 0 {
		t.Errorf("%d runs for bad requests", runs)
	}
}

// signalLocker is a Locker that sends the name of every lock it is asked
// to wait for on locking before waiting.
type signalLocker struct {
	Locker
	locking chan<- string
}

func (l signalLocker) Lock(ctx context.Context, name string, ttl time.Duration) (*state.Lock, error) {
	select {
	case l.locking <- name:
	default:
	}
	return l.Locker.Lock(ctx, name, ttl)
}
