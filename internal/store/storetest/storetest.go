// Package storetest is the conformance suite of store.Store backends: Run
// checks, against a fresh store per subtest, everything the store.Store
// contract promises (ranges, Stat, List by prefix, Delete, atomic Put, key
// checks, error values, contexts).
//
// Where the contract does not say, the suite holds every backend to what
// the backends in the tree do alike, so that callers need not care which
// one they have:
//   - keys are flat names, as in S3: a key that is a prefix of others
//     ("dir" beside "dir/obj") or that extends an object ("dir/obj/below")
//     names no object, for Get, Stat and Delete alike;
//   - Get fails at once, before anything is read, for a missing object,
//     a done context, or an offset beyond the end of the object (a range
//     starting at the end reads nothing);
//   - reads from the reader of a Get fail once its context is done.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/store"
)

// LargeSize is the size of the large objects of the suite: more than the
// 16 MiB default part size of multipart uploads, so that they cross a part
// boundary.
const LargeSize = 20<<20 + 123

// PartCrossing is the number of bytes the failing and cancelled Puts of the
// suite read before failing: more than a 16 MiB part, so that a backend
// with multipart uploads has one started (and must abort it).
const PartCrossing = 17 << 20

// Run runs the conformance suite as parallel subtests of t. newStore
// returns an empty store; it is called once per subtest, with the subtest's
// t (so it can register cleanups).
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"GetRanges", testGetRanges},
		{"GetBeyondEnd", testGetBeyondEnd},
		{"EmptyObject", testEmptyObject},
		{"Stat", testStat},
		{"List", testList},
		{"Delete", testDelete},
		{"Overwrite", testOverwrite},
		{"InvalidKeys", testInvalidKeys},
		{"NotFound", testNotFound},
		{"FailedPut", testFailedPut},
		{"CancelledPut", testCancelledPut},
		{"Large", testLarge},
		{"ConcurrentOverwrite", testConcurrentOverwrite},
		{"CancelledGet", testCancelledGet},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

// Pattern returns n deterministic pseudo-random bytes for seed.
func Pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	var key [32]byte
	key[0] = seed
	rand.NewChaCha8(key).Read(b)
	return b
}

// errRead is the error of the readers that fail on purpose.
var errRead = errors.New("storetest: reader failed on purpose")

// FailingReader returns a reader of data that fails with an error after
// the first n bytes (at once if n is 0). It is not a Seeker, so backends
// cannot learn the size in advance.
func FailingReader(data []byte, n int) io.Reader {
	return &failingReader{data: data[:n]}
}

type failingReader struct{ data []byte }

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, errRead
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

// IsReadError reports whether err comes from a FailingReader.
func IsReadError(err error) bool { return errors.Is(err, errRead) }

// onlyReader hides every method but Read (Seek, WriteTo, Len), like a
// network stream.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// CancellingReader returns a reader of data that calls cancel once it has
// returned n bytes, then goes on reading: a request whose client goes away
// in the middle of an upload.
func CancellingReader(data []byte, n int, cancel context.CancelFunc) io.Reader {
	return &cancellingReader{data: data, n: n, cancel: cancel}
}

type cancellingReader struct {
	data   []byte
	n      int
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	if c.n <= 0 {
		c.cancel()
	} else if len(p) > c.n {
		p = p[:c.n]
	}
	k := copy(p, c.data)
	c.data = c.data[k:]
	c.n -= k
	return k, nil
}

func put(t *testing.T, s store.Store, key string, data []byte) store.Info {
	t.Helper()
	info, err := s.Put(t.Context(), key, onlyReader{bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(data), err)
	}
	if info.Key != key || info.Size != int64(len(data)) || info.ModTime.IsZero() {
		t.Fatalf("Put(%q, %d bytes) = %+v, want key, size and a modification time", key, len(data), info)
	}
	return info
}

// read is Get then ReadAll.
func read(ctx context.Context, s store.Store, key string, off, n int64) ([]byte, error) {
	rc, err := s.Get(ctx, key, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// mustRead is read that fails the test on errors.
func mustRead(t *testing.T, s store.Store, key string, off, n int64) []byte {
	t.Helper()
	b, err := read(t.Context(), s, key, off, n)
	if err != nil {
		t.Fatalf("Get(%q, %d, %d): %v", key, off, n, err)
	}
	return b
}

func testGetRanges(t *testing.T, s store.Store) {
	data := Pattern(1000, 1)
	size := int64(len(data))
	put(t, s, "ranges/obj", data)
	for _, tc := range []struct {
		name   string
		off, n int64
		want   []byte
	}{
		{"whole", 0, -1, data},
		{"whole by size", 0, size, data},
		{"start", 0, 10, data[:10]},
		{"first byte", 0, 1, data[:1]},
		{"middle", 100, 50, data[100:150]},
		{"end", size - 10, 10, data[size-10:]},
		{"last byte", size - 1, 1, data[size-1:]},
		{"middle to the end", 500, -1, data[500:]},
		{"crossing the end", size - 10, 100, data[size-10:]},
		{"n == 0 at the start", 0, 0, nil},
		{"n == 0 in the middle", 500, 0, nil},
		{"off == size, to the end", size, -1, nil},
		{"off == size, n > 0", size, 10, nil},
		{"off == size, n == 0", size, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mustRead(t, s, "ranges/obj", tc.off, tc.n)
			if !bytes.Equal(got, tc.want) {
				t.Errorf("Get(%d, %d) = %d bytes %.16x..., want %d bytes %.16x...", tc.off, tc.n, len(got), got, len(tc.want), tc.want)
			}
		})
	}
}

func testGetBeyondEnd(t *testing.T, s store.Store) {
	data := Pattern(100, 2)
	put(t, s, "obj", data)
	for _, tc := range []struct {
		name   string
		off, n int64
	}{
		{"one past, to the end", 101, -1},
		{"one past, n > 0", 101, 10},
		{"one past, n == 0", 101, 0},
		{"far past", 1 << 40, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Get itself fails (callers answer 416 before they send
			// anything), with an error of its own: the object is there
			// and the store works.
			rc, err := s.Get(t.Context(), "obj", tc.off, tc.n)
			if err == nil {
				got, rerr := io.ReadAll(rc)
				rc.Close()
				t.Fatalf("Get(%d, %d) of a %d-byte object succeeded (then read %d bytes, %v); want an error", tc.off, tc.n, len(data), len(got), rerr)
			}
			for _, not := range []error{store.ErrNotFound, store.ErrInvalidKey, store.ErrUnavailable, context.Canceled, context.DeadlineExceeded} {
				if errors.Is(err, not) {
					t.Errorf("Get(%d, %d) of a %d-byte object: %v; want a range error, not one wrapping %q", tc.off, tc.n, len(data), err, not)
				}
			}
		})
	}
	t.Run("negative offset", func(t *testing.T) {
		if got, err := read(t.Context(), s, "obj", -1, 10); err == nil {
			t.Errorf("Get(-1, 10) = %d bytes, want an error", len(got))
		}
	})
}

func testEmptyObject(t *testing.T, s store.Store) {
	info := put(t, s, "empty", nil)
	if st, err := s.Stat(t.Context(), "empty"); err != nil || st.Size != 0 || !st.ModTime.Equal(info.ModTime) {
		t.Errorf("Stat = %+v, %v; want size 0, modification time %v", st, err, info.ModTime)
	}
	for _, r := range []struct{ off, n int64 }{{0, -1}, {0, 10}, {0, 0}} {
		if got := mustRead(t, s, "empty", r.off, r.n); len(got) != 0 {
			t.Errorf("Get(%d, %d) = %q, want nothing", r.off, r.n, got)
		}
	}
	list, err := s.List(t.Context(), "")
	if err != nil || len(list) != 1 || list[0].Key != "empty" || list[0].Size != 0 {
		t.Errorf("List = %+v, %v; want the empty object", list, err)
	}
}

func testStat(t *testing.T, s store.Store) {
	data := Pattern(12345, 3)
	info := put(t, s, "dir/obj.mp4", data)
	st, err := s.Stat(t.Context(), "dir/obj.mp4")
	if err != nil {
		t.Fatal(err)
	}
	if st.Key != "dir/obj.mp4" || st.Size != int64(len(data)) || st.ModTime.IsZero() {
		t.Errorf("Stat = %+v, want key, size %d and a modification time", st, len(data))
	}
	if !st.ModTime.Equal(info.ModTime) {
		t.Errorf("Stat's modification time %v differs from Put's %v", st.ModTime, info.ModTime)
	}
}

func testList(t *testing.T, s store.Store) {
	keys := []string{"a/b/x", "a/b/y/z", "a/bc/x", "a/bd", "ab", "b/x"}
	sizes := map[string]int64{}
	for i, k := range keys {
		put(t, s, k, Pattern(10+i, byte(i)))
		sizes[k] = int64(10 + i)
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", keys},
		{"a", []string{"a/b/x", "a/b/y/z", "a/bc/x", "a/bd", "ab"}},
		{"a/", []string{"a/b/x", "a/b/y/z", "a/bc/x", "a/bd"}},
		{"a/b", []string{"a/b/x", "a/b/y/z", "a/bc/x", "a/bd"}},
		{"a/b/", []string{"a/b/x", "a/b/y/z"}},
		{"a/bc", []string{"a/bc/x"}},
		{"a/b/y/z", []string{"a/b/y/z"}},
		{"b/", []string{"b/x"}},
		{"c", nil},
		{"a/bx/", nil},
		{"nothing/deeper/", nil},
		{"a/bd/", nil},          // below an object
		{"a/bd/x/", nil},        // further below an object
		{"a/b/y/z/deeper", nil}, // likewise, not ending in "/"
	} {
		t.Run(fmt.Sprintf("prefix %q", tc.prefix), func(t *testing.T) {
			list, err := s.List(t.Context(), tc.prefix)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, info := range list {
				got = append(got, info.Key)
				if info.Size != sizes[info.Key] || info.ModTime.IsZero() {
					t.Errorf("List(%q) has %+v, want size %d and a modification time", tc.prefix, info, sizes[info.Key])
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
			}
		})
	}
	for _, prefix := range []string{"../", "a//", "a/../"} {
		if list, err := s.List(t.Context(), prefix); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("List(%q) = %+v, %v; want ErrInvalidKey", prefix, list, err)
		}
	}
}

func testDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	put(t, s, "a/b/x", []byte("x"))
	put(t, s, "a/b/y", []byte("yy"))
	if err := s.Delete(ctx, "a/b/x"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Stat(ctx, "a/b/x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Stat after Delete: %v, want ErrNotFound", err)
	}
	if rc, err := s.Get(ctx, "a/b/x", 0, -1); !errors.Is(err, store.ErrNotFound) {
		if err == nil {
			rc.Close()
		}
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
	if list, err := s.List(ctx, "a/"); err != nil || len(list) != 1 || list[0].Key != "a/b/y" {
		t.Errorf("List after Delete = %+v, %v; want a/b/y alone", list, err)
	}
	if got := mustRead(t, s, "a/b/y", 0, -1); string(got) != "yy" {
		t.Errorf("the other object reads %q after Delete", got)
	}
	// Directories ("a", "a/b") and paths below an object ("a/b/y/z") are
	// missing keys too: deleting them succeeds and leaves the objects
	// alone.
	for _, key := range []string{"a/b/x", "never/there", "a", "a/b", "a/b/y/z", "a/b/y/z/deeper"} {
		if err := s.Delete(ctx, key); err != nil {
			t.Errorf("Delete(%q) of a missing key: %v", key, err)
		}
		if list, err := s.List(ctx, ""); err != nil || len(list) != 1 || list[0].Key != "a/b/y" {
			t.Errorf("after Delete(%q) of a missing key List = %+v, %v; want a/b/y alone", key, list, err)
		}
		if got, err := read(ctx, s, "a/b/y", 0, -1); err != nil || string(got) != "yy" {
			t.Errorf("after Delete(%q) of a missing key a/b/y reads %q, %v; want %q", key, got, err, "yy")
		}
	}
}

func testOverwrite(t *testing.T, s store.Store) {
	for _, tc := range []struct {
		name          string
		first, second int
	}{
		{"grow", 10, 25},
		{"shrink", 25, 10},
		{"to empty", 10, 0},
		{"from empty", 0, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := strings.ReplaceAll(tc.name, " ", "-")
			put(t, s, key, Pattern(tc.first, 4))
			want := Pattern(tc.second, 5)
			put(t, s, key, want)
			if got := mustRead(t, s, key, 0, -1); !bytes.Equal(got, want) {
				t.Errorf("after overwrite Get = %x, want %x", got, want)
			}
			if st, err := s.Stat(t.Context(), key); err != nil || st.Size != int64(tc.second) {
				t.Errorf("after overwrite Stat = %+v, %v; want size %d", st, err, tc.second)
			}
			if list, err := s.List(t.Context(), key); err != nil || len(list) != 1 || list[0].Size != int64(tc.second) {
				t.Errorf("after overwrite List = %+v, %v; want one object of %d bytes", list, err, tc.second)
			}
		})
	}
}

func testInvalidKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	keys := []string{"", "/abs", "a/../b", "..", ".", "a//b", "./a", "a/b/", ".tmp/x", "a/.tmpfoo", "sp ace", "ünï", "a\\b", "a?b", "a%2Fb", strings.Repeat("x", 1025)}
	for _, key := range keys {
		t.Run(fmt.Sprintf("%.20q", key), func(t *testing.T) {
			if _, err := s.Put(ctx, key, strings.NewReader("data")); !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("Put: %v, want ErrInvalidKey", err)
			}
			if _, err := s.Get(ctx, key, 0, -1); !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("Get: %v, want ErrInvalidKey", err)
			}
			if _, err := s.Get(ctx, key, 0, 0); !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("Get(n == 0): %v, want ErrInvalidKey", err)
			}
			if _, err := s.Stat(ctx, key); !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("Stat: %v, want ErrInvalidKey", err)
			}
			if err := s.Delete(ctx, key); !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("Delete: %v, want ErrInvalidKey", err)
			}
		})
	}
	if list, err := s.List(ctx, ""); err != nil || len(list) != 0 {
		t.Errorf("after Puts of invalid keys List = %+v, %v; want nothing", list, err)
	}
}

func testNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	put(t, s, "dir/obj", []byte("data"))
	for _, tc := range []struct {
		key    string
		off, n int64
	}{
		{"missing", 0, -1},
		{"missing", 0, 10},
		{"missing", 0, 0},
		{"missing", 5, -1},
		{"dir/missing", 0, -1},
		{"di", 0, -1},
		// A directory is not an object.
		{"dir", 0, -1},
		{"dir", 0, 10},
		{"dir", 0, 0},
		{"dir", 5, -1},
		// Nor is a path below an object.
		{"dir/obj/below", 0, -1},
		{"dir/obj/below", 0, 10},
		{"dir/obj/below", 0, 0},
		{"dir/obj/below/deeper", 0, -1},
	} {
		// Get itself must fail, not the first read: callers answer 404
		// before they send anything.
		rc, err := s.Get(ctx, tc.key, tc.off, tc.n)
		if err == nil {
			rc.Close()
		}
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(%q, %d, %d): %v, want ErrNotFound", tc.key, tc.off, tc.n, err)
		}
	}
	for _, key := range []string{"missing", "dir", "dir/missing", "di", "dir/obj/below", "dir/obj/below/deeper"} {
		if info, err := s.Stat(ctx, key); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Stat(%q) = %+v, %v; want ErrNotFound", key, info, err)
		}
	}
}

func testFailedPut(t *testing.T, s store.Store) {
	data := Pattern(PartCrossing+1, 6)
	for _, tc := range []struct {
		name     string
		existing bool
		after    int
	}{
		{"new key, fails at once", false, 0},
		{"new key, fails after some bytes", false, 1000},
		{"new key, fails after a part", false, PartCrossing},
		{"existing key, fails at once", true, 0},
		{"existing key, fails after some bytes", true, 1000},
		{"existing key, fails after a part", true, PartCrossing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "failed/" + strings.NewReplacer(",", "", " ", "-").Replace(tc.name)
			old := []byte("the old object")
			if tc.existing {
				put(t, s, key, old)
			}
			info, err := s.Put(t.Context(), key, FailingReader(data, tc.after))
			if !IsReadError(err) {
				t.Fatalf("Put from a reader that fails after %d bytes = %+v, %v; want the reader's error", tc.after, info, err)
			}
			checkUnchanged(t, s, key, tc.existing, old)
		})
	}
}

// checkUnchanged checks that key holds old if existing, else that it is
// missing, and that it is the only object under its directory.
func checkUnchanged(t *testing.T, s store.Store, key string, existing bool, old []byte) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	if !existing {
		if info, err := s.Stat(ctx, key); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("after a failed Put of a new key Stat = %+v, %v; want ErrNotFound", info, err)
		}
		if list, err := s.List(ctx, key); err != nil || len(list) != 0 {
			t.Errorf("after a failed Put of a new key List = %+v, %v; want nothing", list, err)
		}
		return
	}
	if got, err := read(ctx, s, key, 0, -1); err != nil || !bytes.Equal(got, old) {
		t.Errorf("after a failed Put the object reads %.40q, %v; want the old bytes %q", got, err, old)
	}
	if st, err := s.Stat(ctx, key); err != nil || st.Size != int64(len(old)) {
		t.Errorf("after a failed Put Stat = %+v, %v; want size %d", st, err, len(old))
	}
	if list, err := s.List(ctx, key); err != nil || len(list) != 1 || list[0].Size != int64(len(old)) {
		t.Errorf("after a failed Put List = %+v, %v; want the old object alone", list, err)
	}
}

func testCancelledPut(t *testing.T, s store.Store) {
	data := Pattern(PartCrossing+1<<20, 7)
	for _, tc := range []struct {
		name     string
		existing bool
		after    int // bytes read before the context is cancelled; -1: before Put
	}{
		{"new key, cancelled before", false, -1},
		{"new key, cancelled after some bytes", false, 1000},
		{"new key, cancelled after a part", false, PartCrossing},
		{"existing key, cancelled before", true, -1},
		{"existing key, cancelled after a part", true, PartCrossing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "cancelled/" + strings.NewReplacer(",", "", " ", "-").Replace(tc.name)
			old := []byte("the old object")
			if tc.existing {
				put(t, s, key, old)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var r io.Reader = &cancellingReader{data: data, n: tc.after, cancel: cancel}
			if tc.after < 0 {
				cancel()
				r = onlyReader{bytes.NewReader(data)}
			}
			info, err := s.Put(ctx, key, r)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Put cancelled after %d bytes = %+v, %v; want context.Canceled", tc.after, info, err)
			}
			checkUnchanged(t, s, key, tc.existing, old)
		})
	}
}

func testLarge(t *testing.T, s store.Store) {
	data := Pattern(LargeSize, 8)
	info := put(t, s, "large", data)
	if st, err := s.Stat(t.Context(), "large"); err != nil || st.Size != LargeSize || !st.ModTime.Equal(info.ModTime) {
		t.Errorf("Stat = %+v, %v; want size %d, modification time %v", st, err, LargeSize, info.ModTime)
	}
	rc, err := s.Get(t.Context(), "large", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, rc)
	rc.Close()
	if err != nil || n != LargeSize || !bytes.Equal(h.Sum(nil), sha256Sum(data)) {
		t.Errorf("Get(0, -1) read %d bytes (err %v), sha256 %x; want %d bytes, %x", n, err, h.Sum(nil), LargeSize, sha256Sum(data))
	}
	const part = 16 << 20
	for _, r := range []struct{ off, n int64 }{
		{part - 100, 200},  // across the first part boundary
		{part, -1},         // the last part
		{LargeSize - 5, 5}, // the end
		{5 << 20, 1 << 20}, // inside the first part
	} {
		end := int64(len(data))
		if r.n >= 0 {
			end = r.off + r.n
		}
		if got := mustRead(t, s, "large", r.off, r.n); !bytes.Equal(got, data[r.off:end]) {
			t.Errorf("Get(%d, %d): %d bytes, not the stored ones", r.off, r.n, len(got))
		}
	}
}

func sha256Sum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

// testConcurrentOverwrite overwrites an object while others read it: every
// read must see one whole version.
func testConcurrentOverwrite(t *testing.T, s store.Store) {
	versions := [][]byte{bytes.Repeat([]byte("a"), 256<<10), bytes.Repeat([]byte("b"), 300<<10)}
	put(t, s, "hot", versions[0])
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				got, err := read(t.Context(), s, "hot", 0, -1)
				if err != nil {
					t.Errorf("Get during overwrites: %v", err)
					return
				}
				if !bytes.Equal(got, versions[0]) && !bytes.Equal(got, versions[1]) {
					t.Errorf("Get during overwrites read %d bytes that are neither version", len(got))
					return
				}
				select {
				case <-done:
					return
				default:
				}
			}
		})
	}
	for i := range 10 {
		if _, err := s.Put(t.Context(), "hot", bytes.NewReader(versions[i%2])); err != nil {
			t.Errorf("Put during reads: %v", err)
			break
		}
	}
	close(done)
	wg.Wait()
}

func testCancelledGet(t *testing.T, s store.Store) {
	data := Pattern(4<<20, 9)
	put(t, s, "obj", data)
	// Get with a done context fails at once with the context's error,
	// whether or not the key exists.
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	expired, cancel := context.WithDeadline(t.Context(), time.Unix(0, 0))
	defer cancel()
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		want   error
		key    string
		off, n int64
	}{
		{"cancelled, whole", cancelled, context.Canceled, "obj", 0, -1},
		{"cancelled, range", cancelled, context.Canceled, "obj", 100, 10},
		{"cancelled, n == 0", cancelled, context.Canceled, "obj", 0, 0},
		{"cancelled, missing key", cancelled, context.Canceled, "missing", 0, -1},
		{"expired, whole", expired, context.DeadlineExceeded, "obj", 0, -1},
		{"expired, n == 0", expired, context.DeadlineExceeded, "obj", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := s.Get(tc.ctx, tc.key, tc.off, tc.n)
			if err == nil {
				got, rerr := io.ReadAll(rc)
				rc.Close()
				t.Fatalf("Get(%q, %d, %d) with a done context succeeded (then read %d bytes, %v); want %v", tc.key, tc.off, tc.n, len(got), rerr, tc.want)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("Get(%q, %d, %d) with a done context: %v, want %v", tc.key, tc.off, tc.n, err, tc.want)
			}
			if errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get(%q, %d, %d) with a done context: %v; want the context's error alone, not ErrNotFound", tc.key, tc.off, tc.n, err)
			}
		})
	}
	// Reads from the reader of a Get fail once its context is done, after
	// the right bytes.
	t.Run("cancelled while reading", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		rc, err := s.Get(ctx, "obj", 100, -1)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		first := make([]byte, 10)
		if _, err := io.ReadFull(rc, first); err != nil || !bytes.Equal(first, data[100:110]) {
			t.Fatalf("first read = %x, %v; want %x", first, err, data[100:110])
		}
		cancel()
		rest, err := io.ReadAll(rc)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("read after cancel: %d bytes, %v; want context.Canceled", len(rest), err)
		}
		if !bytes.Equal(rest, data[110:110+min(len(rest), len(data)-110)]) {
			t.Errorf("read after cancel: %d wrong bytes before the error", len(rest))
		}
	})
}
