//go:build linux

package spool

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWriteOpen(t *testing.T) {
	dir := t.TempDir()
	sp, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<14) // 256 KiB
	f, err := sp.Write(context.Background(), int64(len(data)), func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if f.Size() != int64(len(data)) {
		t.Fatalf("Size %d, want %d", f.Size(), len(data))
	}
	// Each Open has an offset of its own: concurrent readers at different
	// offsets all read the right bytes.
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := f.Open()
			if err != nil {
				errs <- err
				return
			}
			defer r.Close()
			off := int64(i * 4099)
			if _, err := r.Seek(off, io.SeekStart); err != nil {
				errs <- err
				return
			}
			got, err := io.ReadAll(r)
			if err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(got, data[off:]) {
				errs <- errors.New("reader read other bytes")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Spooled files have no name.
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Errorf("spool dir has %d entries, want none", len(ents))
	}
}

func TestWriteFailures(t *testing.T) {
	sp, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		size int64
		fill func(w io.Writer) error
		want string
	}{
		{"fill fails", 3, func(w io.Writer) error { w.Write([]byte("abc")); return boom }, "boom"},
		{"short", 4, func(w io.Writer) error { _, err := w.Write([]byte("abc")); return err }, "wrote 3 bytes, want 4"},
		{"long", 2, func(w io.Writer) error { _, err := w.Write([]byte("abc")); return err }, "wrote 3 bytes, want 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := sp.Write(context.Background(), tc.size, tc.fill)
			if err == nil || !strings.Contains(err.Error(), tc.want) || f != nil {
				t.Fatalf("Write = %v, %v; want nil and an error with %q", f, err, tc.want)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sp.Write(ctx, 0, func(io.Writer) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestNewBadDir(t *testing.T) {
	if _, err := New(t.TempDir() + "/missing"); err == nil {
		t.Fatal("New of a missing directory succeeded")
	}
}

// TestUnreachableClosed: a spooled file's descriptor is closed once the
// *File is unreachable, freeing its space.
func TestUnreachableClosed(t *testing.T) {
	sp, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := sp.Write(context.Background(), 1, func(w io.Writer) error { _, err := w.Write([]byte("x")); return err })
	if err != nil {
		t.Fatal(err)
	}
	path := f.d.path
	target, err := os.Readlink(path)
	if err != nil || !strings.HasPrefix(target, sp.Dir()) {
		t.Fatalf("readlink %s = %q, %v; want a file in %s", path, target, err, sp.Dir())
	}
	f = nil
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		if t2, err := os.Readlink(path); err != nil || t2 != target {
			return // closed (the number may be in use by another file by now)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still open 10 s after the *File became unreachable", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRelease: a released file cannot be opened again, files opened
// before still read, and releasing twice is harmless.
func TestRelease(t *testing.T) {
	sp, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := sp.Write(context.Background(), 3, func(w io.Writer) error { _, err := w.Write([]byte("abc")); return err })
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f.Release()
	f.Release()
	if _, err := f.Open(); !errors.Is(err, ErrReleased) {
		t.Fatalf("Open after Release = %v, want ErrReleased", err)
	}
	if b, err := io.ReadAll(r); err != nil || string(b) != "abc" {
		t.Fatalf("a file opened before Release reads %q, %v", b, err)
	}
}
