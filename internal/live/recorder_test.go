package live

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"slices"
	"strings"
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
			n1 := r.frags["stream0"][fragID{0, 1}].f.Tracks[0].Duration()
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

// TestPlaceEpoch: a new epoch's fragments start where the stream ended,
// rescaled per track, and number on from the earlier epochs.
func TestPlaceEpoch(t *testing.T) {
	tests := []struct {
		name       string
		n          int
		start      float64
		base       []int64
		timescales []uint32
		seq, last  int
		want       repPlace
	}{
		{"epoch 0", 0, 0, []int64{0}, []uint32{15360}, 1, 0, repPlace{offsets: []int64{0}}},
		{"epoch 0 from a late tfdt", 0, 0, []int64{90000}, []uint32{90000}, 1, 0, repPlace{offsets: []int64{0}}},
		{"restart at 0", 1, 6, []int64{0}, []uint32{15360}, 1, 3, repPlace{offsets: []int64{92160}, base: 3, first: 1}},
		{"restart with priming", 1, 6, []int64{1024}, []uint32{48000}, 1, 3, repPlace{offsets: []int64{288000 - 1024}, base: 3, first: 1}},
		{"no tfdt", 2, 1.5, []int64{-1}, []uint32{1000}, 1, 9, repPlace{offsets: []int64{1500}, base: 9, first: 1}},
		{"encoder numbering on", 1, 10, []int64{900000}, []uint32{90000}, 6, 5, repPlace{offsets: []int64{0}, base: 0, first: 6}},
		{"two tracks", 1, 2.5, []int64{0, 512}, []uint32{90000, 44100}, 1, 2, repPlace{offsets: []int64{225000, 110250 - 512}, base: 2, first: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := placeEpoch(tc.n, tc.start, tc.base, tc.timescales, tc.seq, tc.last)
			if !slices.Equal(got.offsets, tc.want.offsets) || got.base != tc.want.base || got.first != tc.want.first {
				t.Errorf("placeEpoch = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestRepush: init segments and fragments pushed again, within and across
// epochs: the same bytes are stored once, other bytes for a number of the
// current epoch are refused, an init segment after fragments starts an
// epoch, a late retry of an earlier epoch's does not.
func TestRepush(t *testing.T) {
	ctx := context.Background()
	d := fixtures.LiveDASH(t)
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	initA := read(d.Init["stream0"])
	// initB differs in its sample entry (a byte of the compressor name).
	initB := slices.Clone(initA)
	i := bytes.Index(initB, []byte("avc1"))
	if i < 0 {
		t.Fatal("no avc1 sample entry")
	}
	initB[i+47] ^= 1
	f1, f2 := read(d.Fragments["stream0"][0]), read(d.Fragments["stream0"][1])
	st := teststore.New(t).Store
	lib := library.New(st, library.Options{})
	if err := lib.AddUser(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	r, err := NewRecorder(ctx, lib, nil, "u", "cam")
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name  string
		init  bool
		seq   int
		b     []byte
		want  error
		epoch int // the current epoch after the step
	}{
		{"init", true, 0, initA, nil, 0},
		{"init retried", true, 0, initA, nil, 0},
		{"fragment", false, 1, f1, nil, 0},
		{"fragment retried", false, 1, f1, nil, 0},
		{"other bytes", false, 1, f2, ErrConflict, 0},
		{"reconnect, same init", true, 0, initA, nil, 1},
		{"fragment 1 again, new epoch", false, 1, f1, nil, 1},
		{"retried in the new epoch", false, 1, f1, nil, 1},
		{"other bytes in the new epoch", false, 1, f2, ErrConflict, 1},
		{"reconnect, other init", true, 0, initB, nil, 2},
		{"late retry of an earlier init", true, 0, initA, nil, 2},
		{"fragment of the third epoch", false, 2, f2, nil, 2},
	}
	for _, s := range steps {
		var err error
		if s.init {
			err = r.AddInit(ctx, "stream0", s.b)
		} else {
			err = r.AddFragment(ctx, "stream0", s.seq, s.b)
		}
		if !errors.Is(err, s.want) || (s.want == nil) != (err == nil) {
			t.Fatalf("%s: %v, want %v", s.name, err, s.want)
		}
		if got := r.current().n; got != s.epoch {
			t.Fatalf("%s: epoch %d, want %d", s.name, got, s.epoch)
		}
	}
	infos, err := st.List(ctx, "users/u/assets/cam/src/")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, in := range infos {
		keys = append(keys, strings.TrimPrefix(in.Key, "users/u/assets/cam/src/"))
	}
	want := []string{"stream0-e0-00000001", "stream0-e0-init", "stream0-e1-00000001", "stream0-e1-init", "stream0-e2-00000002", "stream0-e2-init"}
	if !slices.Equal(keys, want) {
		t.Errorf("stored %v, want %v", keys, want)
	}
	state := r.State()
	if len(state.Epochs) != 2 || len(state.Reps[0].Epochs) != 3 {
		t.Errorf("state epochs %+v, representation epochs %+v", state.Epochs, state.Reps[0].Epochs)
	}
	n1 := r.frags["stream0"][fragID{0, 1}].f.Tracks[0].Duration()
	n2 := r.frags["stream0"][fragID{2, 2}].f.Tracks[0].Duration()
	a, err := r.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := lib.Index(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	tr := ix.Tracks[0]
	s := &tr.Samples
	// One timeline: each epoch starts where the one before ended.
	for c, want := range []int64{0, n1, 2 * n1} {
		if got := s.DTS[s.ChapterStart[c]]; got != want {
			t.Errorf("chapter %d starts at %d, want %d", c, got, want)
		}
	}
	if got := tr.Duration(); got != 2*n1+n2 {
		t.Errorf("track lasts %d, want %d", got, 2*n1+n2)
	}
	if len(tr.SampleEntries) != 2 || !slices.Equal(s.ChapterDesc, []uint32{1, 1, 2}) {
		t.Errorf("%d sample entries, chapters use %v; want 2, [1 1 2]", len(tr.SampleEntries), s.ChapterDesc)
	}
}
