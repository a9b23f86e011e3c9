package media

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/probe"
)

func readFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestFragmentSamples checks FragmentSamples against ffmpeg reading each
// init segment + fragment of a real DASH stream: as many samples, of the
// same sizes and durations, each sample's bytes those of ffmpeg's packet,
// and base decode times that continue one another.
func TestFragmentSamples(t *testing.T) {
	d := fixtures.LiveDASH(t)
	wantKind := map[string]Kind{"stream0": KindVideo, "stream1": KindAudio}
	for _, rep := range d.Reps {
		t.Run(rep, func(t *testing.T) {
			init := readFile(t, d.Init[rep])
			var next int64 = -1 // expected base time of the next fragment
			for _, path := range d.Fragments[rep] {
				frag := readFile(t, path)
				f, err := FragmentSamples(context.Background(), init, frag)
				if err != nil {
					t.Fatalf("%s: %v", filepath.Base(path), err)
				}
				if len(f.Tracks) != 1 || len(f.BaseTime) != 1 {
					t.Fatalf("%s: %d tracks, %d base times, want 1", filepath.Base(path), len(f.Tracks), len(f.BaseTime))
				}
				tr := f.Tracks[0]
				if tr.Kind != wantKind[rep] || tr.ID != 1 || len(tr.SampleEntries) != 1 {
					t.Errorf("%s: track %d of kind %s with %d entries", filepath.Base(path), tr.ID, tr.Kind, len(tr.SampleEntries))
				}
				if next >= 0 && f.BaseTime[0] != next {
					t.Errorf("%s: base time %d, want %d (the previous fragment's end)", filepath.Base(path), f.BaseTime[0], next)
				}
				next = f.BaseTime[0] + tr.Duration()

				joined := filepath.Join(t.TempDir(), "joined.mp4")
				if err := os.WriteFile(joined, append(append([]byte(nil), init...), frag...), 0o644); err != nil {
					t.Fatal(err)
				}
				pkts := probe.Packets(t, joined)
				s := &tr.Samples
				if len(pkts) != s.Len() {
					t.Fatalf("%s: %d samples, ffmpeg reads %d packets", filepath.Base(path), s.Len(), len(pkts))
				}
				for i, p := range pkts {
					sum := md5.Sum(frag[s.Offset[i] : s.Offset[i]+int64(s.Size[i])])
					if int(s.Size[i]) != p.Size || hex.EncodeToString(sum[:]) != p.MD5 {
						t.Fatalf("%s: sample %d: %d bytes of md5 %x, ffmpeg's packet %d bytes of md5 %s",
							filepath.Base(path), i, s.Size[i], sum, p.Size, p.MD5)
					}
					// Durations as decode time steps (ffmpeg guesses the
					// last packet's; the base time check covers it).
					if i+1 < len(pkts) && int64(s.Dur[i]) != pkts[i+1].DTS-p.DTS {
						t.Fatalf("%s: sample %d lasts %d, ffmpeg's packets are %d apart", filepath.Base(path), i, s.Dur[i], pkts[i+1].DTS-p.DTS)
					}
				}
			}
		})
	}
}

func TestFragmentSamplesErrors(t *testing.T) {
	d := fixtures.LiveDASH(t)
	init := readFile(t, d.Init["stream0"])
	frag := readFile(t, d.Fragments["stream0"][0])
	audioFrag := readFile(t, d.Fragments["stream1"][0])
	progressive := readFile(t, fixtures.H264AAC(t))
	// A fragment whose first data offset points back into the init
	// segment: the trun's data_offset made hugely negative.
	backwards := append([]byte(nil), frag...)
	if !patchTrunOffset(backwards, -1<<30) {
		t.Fatal("no trun with data offset in the fragment")
	}
	tests := []struct {
		name       string
		init, frag []byte
	}{
		{"empty init", nil, frag},
		{"empty fragment", init, nil},
		{"init without moov", frag, frag},
		{"init with media", progressive, frag},
		{"truncated init", init[:len(init)-10], frag},
		{"truncated fragment", init, frag[:len(frag)/2]},
		{"fragment not MP4", init, []byte("this is not a media fragment at all")},
		{"init only", init, init},
		{"data outside the fragment", init, backwards},
		{"audio fragment with video init", init, audioFrag}, // same track ID 1: samples of garbage sizes? must not crash
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := FragmentSamples(context.Background(), tc.init, tc.frag)
			if tc.name == "audio fragment with video init" {
				// Well-formed boxes: accepted or refused, never out of bounds.
				if err == nil {
					checkFragment(t, f, tc.frag)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

// patchTrunOffset sets the data_offset of the first trun of b that has
// one; it reports whether there was one.
func patchTrunOffset(b []byte, v int32) bool {
	for i := 4; i+16 <= len(b); i++ {
		if string(b[i:i+4]) != "trun" {
			continue
		}
		flags := binary.BigEndian.Uint32(b[i+4:]) & 0xffffff
		if flags&1 == 0 {
			continue
		}
		binary.BigEndian.PutUint32(b[i+12:], uint32(v)) // after version/flags and sample_count
		return true
	}
	return false
}

// checkFragment checks what FragmentSamples returned: valid as a
// one-chapter index over frag, every sample inside frag.
func checkFragment(t *testing.T, f *Fragment, frag []byte) {
	t.Helper()
	if len(f.Tracks) != len(f.BaseTime) {
		t.Fatalf("%d tracks, %d base times", len(f.Tracks), len(f.BaseTime))
	}
	ix := &Index{Chapters: []Chapter{{Object: "frag", Size: int64(len(frag))}}, Tracks: f.Tracks}
	if err := ix.Validate(); err != nil {
		t.Fatalf("fragment does not validate as an index: %v", err)
	}
}

// FuzzFragmentSamples feeds FragmentSamples mutated init segments and
// fragments of a real DASH stream: it must return an error or tracks whose
// samples lie inside the fragment, never panic.
func FuzzFragmentSamples(f *testing.F) {
	d := fixtures.LiveDASH(f)
	for _, rep := range d.Reps {
		init := readFile(f, d.Init[rep])
		for _, p := range d.Fragments[rep] {
			frag := readFile(f, p)
			f.Add(init, frag)
			f.Add(init, frag[:len(frag)/2])
		}
	}
	f.Add([]byte{}, []byte{})
	f.Add([]byte("\x00\x00\x00\x08moov"), []byte("\x00\x00\x00\x08moof"))
	f.Fuzz(func(t *testing.T, init, frag []byte) {
		fr, err := FragmentSamples(context.Background(), init, frag)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error wraps neither ErrInvalid nor ErrUnsupported: %v", err)
			}
			return
		}
		checkFragment(t, fr, frag)
	})
}
