package live

import (
	"context"
	"encoding/binary"
	"os"
	"testing"

	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/teststore"
)

// setTfdt sets the baseMediaDecodeTime of every tfdt box of frag.
func setTfdt(t *testing.T, frag []byte, v uint64) []byte {
	t.Helper()
	b := append([]byte(nil), frag...)
	n := 0
	for i := 4; i+16 <= len(b); i++ {
		if string(b[i:i+4]) != "tfdt" {
			continue
		}
		if b[i+4] == 1 {
			binary.BigEndian.PutUint64(b[i+8:], v)
		} else {
			binary.BigEndian.PutUint32(b[i+8:], uint32(v))
		}
		n++
	}
	if n == 0 {
		t.Fatal("no tfdt box")
	}
	return b
}

// TestTimelineJumps: a decode time jump forward stretches the sample
// before it; a jump back continues after the last sample.
func TestTimelineJumps(t *testing.T) {
	ctx := context.Background()
	d := fixtures.LiveDASH(t)
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	init := read(d.Init["stream0"])
	f1, f2 := read(d.Fragments["stream0"][0]), read(d.Fragments["stream0"][1])
	tests := []struct {
		name string
		tfdt uint64 // of the second fragment; the first starts at 0
		want int64  // DTS of the second fragment's first sample, relative to its natural one
	}{
		{"continuous", 0, 0}, // tfdt left as is
		{"gap of 1 s", 1, 15360},
		{"back to 0", 2, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := teststore.New(t).Store
			lib := library.New(st, library.Options{})
			if err := lib.AddUser(ctx, "u"); err != nil {
				t.Fatal(err)
			}
			r, err := NewRecorder(ctx, lib, nil, "u", "cam")
			if err != nil {
				t.Fatal(err)
			}
			if err := r.AddInit(ctx, "stream0", init); err != nil {
				t.Fatal(err)
			}
			if err := r.AddFragment(ctx, "stream0", 1, f1); err != nil {
				t.Fatal(err)
			}
			n1 := r.frags["stream0"][1].f.Tracks[0].Duration()
			second := f2
			switch tc.tfdt {
			case 1:
				second = setTfdt(t, f2, uint64(n1)+15360)
			case 2:
				second = setTfdt(t, f2, 0)
			}
			if err := r.AddFragment(ctx, "stream0", 2, second); err != nil {
				t.Fatal(err)
			}
			a, err := r.Finish(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ix, err := lib.Index(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			s := &ix.Tracks[0].Samples
			c2 := s.ChapterStart[1]
			if got := s.DTS[c2] - n1; got != tc.want {
				t.Errorf("second fragment starts %d ticks after the first's end, want %d", got, tc.want)
			}
			if len(ix.Chapters) != 2 || ix.Chapters[1].Start <= ix.Chapters[0].Start {
				t.Errorf("chapters %+v", ix.Chapters)
			}
			if _, err := r.Finish(ctx); err == nil {
				t.Error("second Finish succeeded")
			}
		})
	}
}
