package vfile

import (
	"strings"
	"testing"
	"time"
)

// materialize renders a file's range with stored pieces shown as letters of
// the object name repeated, so that tests can compare strings.
func render(t *testing.T, f *File, off, n int64) string {
	t.Helper()
	var b strings.Builder
	if err := f.Slice(off, n, func(p Piece) error {
		if p.IsStored() {
			for i := p.Off; i < p.Off+p.Len; i++ {
				b.WriteByte(p.Object[0] + byte(i%10))
			}
		} else {
			b.Write(p.Data)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestBuilderMergesAdjacentStoredRanges(t *testing.T) {
	var b Builder
	b.Add([]byte("HEAD"))
	b.AddStored("a", 0, 3)
	b.AddStored("a", 3, 2) // adjacent: merged
	b.AddStored("b", 5, 2) // other object
	b.AddStored("b", 8, 1) // gap: new piece
	b.AddStored("b", 9, 0) // empty: ignored
	b.Add(nil)
	f := b.File("x.mp4", "video/mp4", time.Time{}, ETag("x"))
	if got := len(f.Pieces); got != 4 {
		t.Errorf("%d pieces, want 4: %+v", got, f.Pieces)
	}
	if f.Size != 4+5+2+1 || b.Size() != f.Size {
		t.Errorf("Size = %d (builder %d), want 12", f.Size, b.Size())
	}
}

func TestSlice(t *testing.T) {
	var b Builder
	b.Add([]byte("HEAD"))   // 0-3
	b.AddStored("a", 0, 5)  // 4-8: a0..a4 -> "abcde"
	b.Add([]byte("MID"))    // 9-11
	b.AddStored("k", 10, 3) // 12-14: "klm"
	f := b.File("x", "", time.Time{}, "")
	full := render(t, f, 0, f.Size)
	if full != "HEADabcdeMIDklm" {
		t.Fatalf("full = %q", full)
	}
	for _, tc := range []struct{ off, n int64 }{{0, 0}, {0, 1}, {3, 2}, {4, 5}, {5, 7}, {8, 7}, {14, 1}, {15, 0}, {0, 15}} {
		if got, want := render(t, f, tc.off, tc.n), full[tc.off:tc.off+tc.n]; got != want {
			t.Errorf("Slice(%d, %d) = %q, want %q", tc.off, tc.n, got, want)
		}
	}
	for _, tc := range []struct{ off, n int64 }{{-1, 2}, {0, 16}, {15, 1}, {3, -1}} {
		if err := f.Slice(tc.off, tc.n, func(Piece) error { return nil }); err == nil {
			t.Errorf("Slice(%d, %d) accepted a range outside the file", tc.off, tc.n)
		}
	}
}

func TestETag(t *testing.T) {
	a, b := ETag("x", "y"), ETag("xy")
	if a == b {
		t.Error("ETag does not separate its parts")
	}
	if a != ETag("x", "y") || !strings.HasPrefix(a, `"`) || !strings.HasSuffix(a, `"`) {
		t.Errorf("ETag = %s: want stable and quoted", a)
	}
}
