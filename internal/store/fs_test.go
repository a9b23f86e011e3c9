package store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/store/storetest"
)

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("connection reset")
	}
	k := min(len(p), f.n)
	for i := range p[:k] {
		p[i] = 'x'
	}
	f.n -= k
	return k, nil
}

func TestFSConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := store.NewFS(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestFSPutGetStatListDelete(t *testing.T) {
	ctx := context.Background()
	s, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("0123456789abcdef")
	if _, err := s.Put(ctx, "users/alice/a/src/01", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "users/alice/b/meta.json", strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "users/bob/x", strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	ranges := []struct {
		off, n int64
		want   string
	}{
		{0, -1, string(data)},
		{4, 3, "456"},
		{10, -1, "abcdef"},
		{16, -1, ""},
		{15, 1, "f"},
	}
	for _, r := range ranges {
		rc, err := s.Get(ctx, "users/alice/a/src/01", r.off, r.n)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(got) != r.want {
			t.Errorf("Get(%d,%d) = %q, %v; want %q", r.off, r.n, got, err, r.want)
		}
	}
	info, err := s.Stat(ctx, "users/alice/a/src/01")
	if err != nil || info.Size != int64(len(data)) {
		t.Errorf("Stat = %+v, %v", info, err)
	}
	list, err := s.List(ctx, "users/alice/")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Key != "users/alice/a/src/01" || list[1].Key != "users/alice/b/meta.json" {
		t.Errorf("List = %+v", list)
	}
	if list, _ := s.List(ctx, "users/al"); len(list) != 2 {
		t.Errorf("List(partial prefix) = %+v", list)
	}
	if list, _ := s.List(ctx, "nothing/"); len(list) != 0 {
		t.Errorf("List(missing) = %+v", list)
	}
	if err := s.Delete(ctx, "users/alice/a/src/01"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "users/alice/a/src/01"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Stat after Delete: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "users", "alice", "a")); !os.IsNotExist(err) {
		t.Errorf("empty directory left behind: %v", err)
	}
	if err := s.Delete(ctx, "users/alice/a/src/01"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	if _, err := s.Get(ctx, "missing", 0, -1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(missing) = %v, want ErrNotFound", err)
	}
}

// TestFSOpenFile checks that OpenFile, the zero-copy path beside Get,
// finds objects only: not directories, nor paths below an object.
func TestFSOpenFile(t *testing.T) {
	s, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "dir/obj", strings.NewReader("data")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key  string
		want error // nil: opens the object
	}{
		{"dir/obj", nil},
		{"dir", store.ErrNotFound},
		{"dir/obj/below", store.ErrNotFound},
		{"dir/missing", store.ErrNotFound},
		{"missing/deeper", store.ErrNotFound},
		{"dir/../dir/obj", store.ErrInvalidKey},
	} {
		t.Run(tc.key, func(t *testing.T) {
			f, err := s.OpenFile(t.Context(), tc.key)
			if tc.want != nil {
				if err == nil {
					f.Close()
				}
				if !errors.Is(err, tc.want) {
					t.Errorf("OpenFile(%q): %v, want %v", tc.key, err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("OpenFile(%q): %v", tc.key, err)
			}
			defer f.Close()
			if got, err := io.ReadAll(f); err != nil || string(got) != "data" {
				t.Errorf("OpenFile(%q) reads %q, %v; want %q", tc.key, got, err, "data")
			}
		})
	}
}

// TestFSGetBeyondEnd checks that the error of a Get starting beyond the end
// says so, with the offset and the size.
func TestFSGetBeyondEnd(t *testing.T) {
	s, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "obj", strings.NewReader("0123456789")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		off, n int64
		want   string
	}{
		{11, -1, "offset 11 beyond the end (size 10)"},
		{11, 0, "offset 11 beyond the end (size 10)"},
		{1 << 40, 5, "offset 1099511627776 beyond the end (size 10)"},
	} {
		rc, err := s.Get(t.Context(), "obj", tc.off, tc.n)
		if err == nil {
			rc.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "obj") {
			t.Errorf("Get(obj, %d, %d): %v; want an error naming obj and saying %q", tc.off, tc.n, err, tc.want)
		}
	}
}

// TestFSDeleteKeepsObjects checks, on disk, that deleting a directory or a
// path below an object removes no file, and that deleting an object removes
// the directories it leaves empty, but not those still holding objects.
func TestFSDeleteKeepsObjects(t *testing.T) {
	for _, tc := range []struct {
		del      string
		gone     []string // paths under the root, removed
		remained []string // paths under the root, still there
	}{
		{"a", nil, []string{"a/b/c", "a/d"}},
		{"a/b", nil, []string{"a/b/c", "a/d"}},
		{"a/d/below", nil, []string{"a/b/c", "a/d"}},
		{"a/b/c/below/deeper", nil, []string{"a/b/c", "a/d"}},
		{"a/b/c", []string{"a/b"}, []string{"a/d"}},
		{"a/d", []string{"a/d"}, []string{"a/b/c"}},
	} {
		t.Run(tc.del, func(t *testing.T) {
			s, err := store.NewFS(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			for _, key := range []string{"a/b/c", "a/d"} {
				if _, err := s.Put(t.Context(), key, strings.NewReader(key)); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Delete(t.Context(), tc.del); err != nil {
				t.Fatalf("Delete(%q): %v", tc.del, err)
			}
			for _, p := range tc.gone {
				if _, err := os.Lstat(filepath.Join(s.Root(), filepath.FromSlash(p))); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("after Delete(%q) %s is still there (%v)", tc.del, p, err)
				}
			}
			for _, p := range tc.remained {
				if _, err := os.Lstat(filepath.Join(s.Root(), filepath.FromSlash(p))); err != nil {
					t.Errorf("after Delete(%q) %s is gone: %v", tc.del, p, err)
				}
			}
		})
	}
}

func TestFSPutIsAtomic(t *testing.T) {
	ctx := context.Background()
	s, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "k", strings.NewReader("old")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "k", &failingReader{n: 100000}); err == nil {
		t.Fatal("Put from a failing reader succeeded")
	}
	rc, err := s.Get(ctx, "k", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "old" {
		t.Errorf("after a failed Put the object reads %q, want the old bytes", got)
	}
	if _, err := s.Put(ctx, "new", &failingReader{n: 10}); err == nil {
		t.Fatal("Put from a failing reader succeeded")
	}
	if _, err := s.Stat(ctx, "new"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("half-written object is visible: %v", err)
	}
	if list, _ := s.List(ctx, ""); len(list) != 1 {
		t.Errorf("List shows temporary files: %+v", list)
	}
	tmp, _ := os.ReadDir(filepath.Join(s.Root(), ".tmp"))
	if len(tmp) != 0 {
		t.Errorf("temporary files left: %d", len(tmp))
	}
}

func TestCheckKey(t *testing.T) {
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"users/alice/x.mp4", true},
		{"a", true},
		{"", false},
		{"/abs", false},
		{"a/../b", false},
		{"a//b", false},
		{"a/./b", false},
		{".tmp/x", false},
		{"sp ace", false},
		{"a/b/", false},
	} {
		if err := store.CheckKey(tc.key); (err == nil) != tc.ok {
			t.Errorf("CheckKey(%q) = %v, want ok=%v", tc.key, err, tc.ok)
		}
	}
}

func TestReaderAt(t *testing.T) {
	ctx := context.Background()
	s, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 200000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if _, err := s.Put(ctx, "obj", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	r := store.NewReaderAt(ctx, s, "obj", int64(len(data)))
	for _, tc := range []struct{ off, n int }{{0, 8}, {8, 16}, {100000, 100000}, {199990, 10}, {70000, 5}, {65530, 12}} {
		buf := make([]byte, tc.n)
		n, err := r.ReadAt(buf, int64(tc.off))
		if n != tc.n || (err != nil && err != io.EOF) || !bytes.Equal(buf, data[tc.off:tc.off+tc.n]) {
			t.Errorf("ReadAt(%d, %d) = %d, %v", tc.off, tc.n, n, err)
		}
	}
	buf := make([]byte, 20)
	if n, err := r.ReadAt(buf, 199990); n != 10 || err != io.EOF {
		t.Errorf("ReadAt past the end = %d, %v; want 10, EOF", n, err)
	}
}
