package readcache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jitstream/jitstream/internal/spool"
	"github.com/jitstream/jitstream/internal/store"
)

// countingStore counts the Gets reaching the store and can be made to
// fail them (the store "going away").
type countingStore struct {
	store.Store
	gets, stats atomic.Int64
	down        atomic.Bool
}

var errDown = errors.New("store down")

func (s *countingStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if s.down.Load() {
		return nil, errDown
	}
	s.gets.Add(1)
	return s.Store.Get(ctx, key, off, n)
}

func (s *countingStore) Stat(ctx context.Context, key string) (store.Info, error) {
	if s.down.Load() {
		return store.Info{}, errDown
	}
	s.stats.Add(1)
	return s.Store.Stat(ctx, key)
}

const bs = 64 << 10 // block size of the tests

// setup stores objects "media/a" (1 MiB + 123 bytes) and "meta/b" and
// returns a cache over them with the given budgets; "media/" is immutable.
func setup(t *testing.T, memBytes, diskBytes int64) (*Cache, *countingStore, []byte) {
	t.Helper()
	fs, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 1<<20+123)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	ctx := context.Background()
	if _, err := fs.Put(ctx, "media/a", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Put(ctx, "meta/b", strings.NewReader("v1")); err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: fs}
	o := Options{Immutable: func(k string) bool { return strings.HasPrefix(k, "media/") },
		BlockSize: bs, MemBytes: memBytes, DiskBytes: diskBytes}
	if diskBytes > 0 {
		if o.Spool, err = spool.New(t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	return New(cs, o), cs, data
}

func read(t *testing.T, c *Cache, key string, off, n int64) []byte {
	t.Helper()
	rc, err := c.Get(context.Background(), key, off, n)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReads: ranges read through the cache are the object's bytes, and a
// second read of cached blocks does not reach the store, from memory or
// from disk.
func TestReads(t *testing.T) {
	for _, tc := range []struct {
		name       string
		mem, disk  int64
		wantHitsIn string
	}{
		{"memory", 4 << 20, -1, "mem"},
		{"disk only", -1, 4 << 20, "disk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, cs, data := setup(t, tc.mem, tc.disk)
			ranges := []struct{ off, n int64 }{
				{0, -1}, {0, 1}, {bs - 1, 2}, {5 * bs, 3*bs + 7}, {int64(len(data)) - 10, 10}, {int64(len(data)), 0}, {100, 0},
			}
			for _, rg := range ranges {
				want := data[rg.off:]
				if rg.n >= 0 {
					want = want[:rg.n]
				}
				if got := read(t, c, "media/a", rg.off, rg.n); !bytes.Equal(got, want) {
					t.Fatalf("range %d+%d: %d bytes differ from the object's", rg.off, rg.n, len(got))
				}
			}
			c.runs.Wait() // the disk tier is filled after the readers are served
			gets := cs.gets.Load()
			if gets != 1 {
				t.Errorf("%d Gets of the store for the first pass, want 1 (the first read fetches every block in one run)", gets)
			}
			for _, rg := range ranges {
				read(t, c, "media/a", rg.off, rg.n)
			}
			if n := cs.gets.Load() - gets; n != 0 {
				t.Errorf("%d Gets of the store for cached blocks, want 0", n)
			}
			st := c.Stats()
			hits := st.MemHits
			if tc.wantHitsIn == "disk" {
				hits = st.DiskHits
			}
			if hits == 0 {
				t.Errorf("stats %+v: no %s hits", st, tc.wantHitsIn)
			}
		})
	}
}

// TestCoalesce: a read of a run of missing blocks is one Get, and a read
// across cached and missing blocks fetches only the missing ones.
func TestCoalesce(t *testing.T) {
	c, cs, data := setup(t, 8<<20, -1)
	read(t, c, "media/a", 3*bs, bs)       // block 3
	got := read(t, c, "media/a", 0, 8*bs) // 0-2 (one run), 3 cached, 4-7 (one run)
	if !bytes.Equal(got, data[:8*bs]) {
		t.Fatal("bytes differ")
	}
	if n := cs.gets.Load(); n != 3 {
		t.Errorf("%d Gets, want 3 (block 3; blocks 0-2; blocks 4-7)", n)
	}
	if st := c.Stats(); st.FetchedBytes != 8*bs {
		t.Errorf("fetched %d bytes, want %d: a block was fetched twice", st.FetchedBytes, 8*bs)
	}
}

// TestConcurrentReaders: readers of the same missing blocks share one
// fetch.
func TestConcurrentReaders(t *testing.T) {
	c, cs, data := setup(t, 8<<20, -1)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			rc, err := c.Get(context.Background(), "media/a", 0, -1)
			if err != nil {
				t.Error(err)
				return
			}
			defer rc.Close()
			if b, err := io.ReadAll(rc); err != nil || !bytes.Equal(b, data) {
				t.Errorf("read %d bytes, %v", len(b), err)
			}
		})
	}
	wg.Wait()
	// Every reader asks for block 0 first: one fetch of the whole object,
	// or a few if some readers raced ahead, never one per reader.
	if st := c.Stats(); st.FetchedBytes > int64(len(data)) {
		t.Errorf("fetched %d bytes for a %d-byte object: blocks fetched more than once (%d Gets)", st.FetchedBytes, len(data), cs.gets.Load())
	}
}

// TestBudgets: each tier stays within its budget, and blocks evicted from
// both are fetched again.
func TestBudgets(t *testing.T) {
	c, cs, data := setup(t, 2*bs, 4*bs)
	got := read(t, c, "media/a", 0, -1) // 17 blocks
	if !bytes.Equal(got, data) {
		t.Fatal("bytes differ")
	}
	c.runs.Wait() // the disk tier is filled after the readers are served
	if n := c.mem.Len(); n > 2 {
		t.Errorf("%d blocks in memory, budget 2", n)
	}
	if n := c.disk.Len(); n > 4 {
		t.Errorf("%d blocks on disk, budget 4", n)
	}
	gets := cs.gets.Load()
	if got := read(t, c, "media/a", 0, bs); !bytes.Equal(got, data[:bs]) { // block 0: evicted
		t.Fatal("bytes differ")
	}
	if cs.gets.Load() == gets {
		t.Error("an evicted block was served without a Get")
	}
}

// TestPassThrough: keys that are not immutable always reach the store, so
// their changes are seen at once.
func TestPassThrough(t *testing.T) {
	c, cs, _ := setup(t, 8<<20, -1)
	ctx := context.Background()
	if got := read(t, c, "meta/b", 0, -1); string(got) != "v1" {
		t.Fatalf("meta/b = %q", got)
	}
	if _, err := c.Put(ctx, "meta/b", strings.NewReader("v2")); err != nil {
		t.Fatal(err)
	}
	if got := read(t, c, "meta/b", 0, -1); string(got) != "v2" {
		t.Fatalf("meta/b = %q after a Put, want v2", got)
	}
	if n := cs.gets.Load(); n != 2 {
		t.Errorf("%d Gets, want 2", n)
	}
}

// TestStoreDown: cached blocks are still served while the store is down;
// missing ones fail with the store's error; and a deleted object is gone.
func TestStoreDown(t *testing.T) {
	c, cs, data := setup(t, 8<<20, -1)
	read(t, c, "media/a", 0, bs)
	cs.down.Store(true)
	if got := read(t, c, "media/a", 0, bs); !bytes.Equal(got, data[:bs]) {
		t.Fatal("cached block differs while the store is down")
	}
	if _, err := c.Get(context.Background(), "media/a", 4*bs, 10); !errors.Is(err, errDown) {
		t.Fatalf("Get of a missing block with the store down = %v, want its error", err)
	}
	cs.down.Store(false)
	if err := c.Delete(context.Background(), "media/a"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(context.Background(), "media/a", 0, 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
	}
}

// TestRangesAsTheStore: an immutable object read through the cache, cold
// or cached, gives for every range what the store gives: the same bytes, or
// an error where the store fails (a negative offset, one beyond the end, a
// done context). A range crossing the end stops there (it is not an error);
// one starting at the end reads nothing.
func TestRangesAsTheStore(t *testing.T) {
	c, cs, data := setup(t, 8<<20, -1)
	size := int64(len(data))
	ranges := []struct{ off, n int64 }{
		{0, -1}, {0, size}, {bs - 1, 2}, {size - 10, 10},
		{size - 10, 100}, {10, size}, {0, size + 1}, {5, math.MaxInt64}, // crossing the end
		{size, -1}, {size, 10}, {size, 0}, {100, 0}, // empty
		{-1, 1}, {size + 1, -1}, {size + 1, 0}, {size + 1, 10}, {1 << 40, 10}, // errors
	}
	get := func(ctx context.Context, st store.Store, off, n int64) ([]byte, error) {
		rc, err := st.Get(ctx, "media/a", off, n)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for _, pass := range []string{"cold", "cached"} {
		for _, rg := range ranges {
			want, werr := get(context.Background(), cs.Store, rg.off, rg.n)
			got, err := get(context.Background(), c, rg.off, rg.n)
			if (err != nil) != (werr != nil) || !bytes.Equal(got, want) {
				t.Errorf("%s: Get(%d, %d) through the cache: %d bytes, %v; the store's: %d bytes, %v",
					pass, rg.off, rg.n, len(got), err, len(want), werr)
			}
			if err != nil && errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s: Get(%d, %d) of an object that exists: %v", pass, rg.off, rg.n, err)
			}
		}
		// Get itself fails, as the store's does, not the first Read.
		if rc, err := c.Get(done, "media/a", 0, 10); !errors.Is(err, context.Canceled) {
			if err == nil {
				rc.Close()
			}
			t.Errorf("%s: Get with a done context = %v, want context.Canceled", pass, err)
		}
	}
	if st := c.Stats(); st.MemHits == 0 {
		t.Errorf("stats %+v: the second pass was not served from the cache", st)
	}
}

// TestHintSize: the size of an immutable object told by a caller spares
// the Stat of its first read; hints for keys that are not cached are
// ignored, and a read without a hint asks the store.
func TestHintSize(t *testing.T) {
	for _, tc := range []struct {
		name      string
		key       string
		hint      bool
		wantStats int64
	}{
		{"hinted", "media/a", true, 0},
		{"not hinted", "media/a", false, 1},
		{"mutable key hinted", "meta/b", true, 0}, // not cached: a plain Get, no Stat either
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, cs, data := setup(t, 4<<20, -1)
			want := data
			if tc.key == "meta/b" {
				want = []byte("v1")
			}
			if tc.hint {
				store.HintSize(c, tc.key, int64(len(want)))
			}
			if got := read(t, c, tc.key, 0, -1); !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes, want %d", len(got), len(want))
			}
			if n := cs.stats.Load(); n != tc.wantStats {
				t.Errorf("%d Stats of the store, want %d", n, tc.wantStats)
			}
			if _, ok := c.sizes.Get("meta/b"); ok {
				t.Error("the size of a mutable key was kept")
			}
		})
	}
}
