package trick

import (
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/build/hls"
	mp4build "github.com/jitstream/jitstream/internal/build/mp4"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/testutil/mediatest"
	"github.com/jitstream/jitstream/internal/testutil/probe"
	"github.com/jitstream/jitstream/internal/vfile"
)

// synthTrack returns a video track of n frames of 1000 ticks with a key
// frame every gop frames (from frame first), B-frame-like composition
// offsets, and chapters starting at the given samples, chapter c using
// sample entry c+1.
func synthTrack(n, gop, first int, chapters ...int) *media.Track {
	t := &media.Track{ID: 1, Kind: media.KindVideo, Timescale: 30000, Codec: "avc1.64001f", MediaTime: 2000}
	s := &t.Samples
	for i := range n {
		s.Offset = append(s.Offset, int64(1000+i*5000))
		s.Size = append(s.Size, uint32(100+i))
		s.Dur = append(s.Dur, 1000+uint32(i%2)) // not constant
		s.CTO = append(s.CTO, int32(1000*(i%3)))
		s.Sync = append(s.Sync, i >= first && (i-first)%gop == 0)
	}
	s.ChapterStart = append([]int{0}, chapters...)
	s.ChapterStart = append(s.ChapterStart, n)
	for c := range len(s.ChapterStart) - 1 {
		s.ChapterDesc = append(s.ChapterDesc, uint32(c+1))
		t.SampleEntries = append(t.SampleEntries, []byte{byte(c)})
	}
	s.Derive()
	return t
}

func TestKeyframes(t *testing.T) {
	for _, c := range []struct {
		name     string
		t        *media.Track
		shift    bool // the track does not start with a key frame
		allSync  bool
		noDerive bool
	}{
		{"one chapter", synthTrack(100, 30, 0), false, false, false},
		{"chapters at key frames", synthTrack(100, 10, 0, 30, 60), false, false, false},
		{"chapter mid-GOP and empty chapter", synthTrack(100, 30, 0, 45, 45), false, false, false},
		{"no key frame in a chapter", synthTrack(100, 50, 0, 10, 20), false, false, false},
		{"starts mid-GOP", synthTrack(100, 30, 7), true, false, false},
		{"all sync", func() *media.Track { t := synthTrack(20, 1, 0); t.Samples.Sync = nil; return t }(), false, true, false},
		{"no CTO", func() *media.Track { t := synthTrack(50, 5, 0); t.Samples.CTO = nil; return t }(), false, false, false},
		{"DTS not derived", func() *media.Track { t := synthTrack(50, 5, 0, 20); t.Samples.DTS = nil; return t }(), false, false, true},
		{"empty", synthTrack(0, 1, 0), false, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			orig := c.t
			s := &orig.Samples
			before := *s
			k := Keyframes(orig)
			ks := &k.Samples
			if c.noDerive {
				if s.DTS != nil {
					t.Error("the original's DTS was modified")
				}
				s.Derive() // for the comparisons below
			}
			if !slices.Equal(s.Offset, before.Offset) || !slices.Equal(s.Size, before.Size) || !slices.Equal(s.Dur, before.Dur) {
				t.Error("the original track was modified")
			}
			if k == orig || k.ID != orig.ID || k.Timescale != orig.Timescale || k.Codec != orig.Codec || k.MediaTime != orig.MediaTime || len(k.SampleEntries) != len(orig.SampleEntries) {
				t.Errorf("derived track header %+v differs from the original", k)
			}
			if ks.Sync != nil {
				t.Error("Sync not nil")
			}
			var want []int // sync samples of the original
			for i := range s.Len() {
				if s.IsSync(i) {
					want = append(want, i)
				}
			}
			if ks.Len() != len(want) || len(ks.Offset) != len(want) || len(ks.Dur) != len(want) || len(ks.DTS) != len(want)+1 {
				t.Fatalf("%d samples (columns %d/%d/%d/%d), want %d", ks.Len(), len(ks.Offset), len(ks.Size), len(ks.Dur), len(ks.DTS), len(want))
			}
			if (ks.CTO == nil) != (s.CTO == nil) {
				t.Errorf("CTO nil %v, original %v", ks.CTO == nil, s.CTO == nil)
			}
			var shift int64
			if c.shift && len(want) > 0 {
				shift = s.DTS[want[0]]
			}
			for j, i := range want {
				if ks.Offset[j] != s.Offset[i] || ks.Size[j] != s.Size[i] || ks.CompOffset(j) != s.CompOffset(i) {
					t.Errorf("key frame %d: bytes %d+%d cto %d, want sample %d: %d+%d cto %d", j, ks.Offset[j], ks.Size[j], ks.CompOffset(j), i, s.Offset[i], s.Size[i], s.CompOffset(i))
				}
				if ks.DTS[j] != s.DTS[i]-shift {
					t.Errorf("key frame %d: DTS %d, want %d", j, ks.DTS[j], s.DTS[i]-shift)
				}
				if s.Chapter(i) != ks.Chapter(j) {
					t.Errorf("key frame %d: chapter %d, sample %d is in chapter %d", j, ks.Chapter(j), i, s.Chapter(i))
				}
			}
			if len(want) > 0 && k.Duration() != orig.Duration()-shift {
				t.Errorf("duration %d, want %d", k.Duration(), orig.Duration()-shift)
			}
			if !slices.Equal(ks.ChapterDesc, s.ChapterDesc) || len(ks.ChapterStart) != len(s.ChapterStart) || ks.ChapterStart[len(ks.ChapterStart)-1] != ks.Len() {
				t.Errorf("chapter table %v %v, original %v %v", ks.ChapterStart, ks.ChapterDesc, s.ChapterStart, s.ChapterDesc)
			}
			// The derived track is valid in an index of the same chapters.
			ix := &media.Index{Tracks: []*media.Track{k}}
			for range len(s.ChapterStart) - 1 {
				ix.Chapters = append(ix.Chapters, media.Chapter{Object: "x", Size: 1 << 40})
			}
			if err := ix.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestKeyframesSegments builds trick-play segments of the fixtures with
// mp4build and checks them with ffprobe and ffmpeg: every frame is a key
// frame, there is one per sync sample of the original, they are the
// original key frames' bytes, and trick segment n holds the key frames of
// segment n.
func TestKeyframesSegments(t *testing.T) {
	probe.RequireTools(t)
	for _, fc := range mediatest.Fixtures() {
		t.Run(fc.Name, func(t *testing.T) {
			t.Parallel()
			chapters := fc.Chapters(t)
			ix := mediatest.Index(t, chapters...)
			v := ix.Video()
			k := Keyframes(v)
			segs := ix.Segments(0)
			tracks := []*media.Track{k}
			init, err := mp4build.InitSegment(ix, tracks)
			if err != nil {
				t.Fatal(err)
			}
			var b vfile.Builder
			b.Add(init)
			for n, seg := range segs {
				// Trick segment n: the key frames of segment n.
				kf, kend := hls.SegmentSpan(ix, k, seg)
				vf, vend := hls.SegmentSpan(ix, v, seg)
				syncs := 0
				for i := vf; i < vend; i++ {
					if v.Samples.IsSync(i) {
						syncs++
					}
				}
				if kend-kf != syncs || syncs == 0 {
					t.Errorf("segment %d: %d trick samples, %d key frames in the segment", n, kend-kf, syncs)
				}
				if k.Samples.DTS[kf] != v.Samples.DTS[vf] {
					t.Errorf("segment %d: trick segment starts at %d, segment at %d", n, k.Samples.DTS[kf], v.Samples.DTS[vf])
				}
				if err := mp4build.MediaSegment(&b, ix, tracks, seg, uint32(n+1)); err != nil {
					t.Fatal(err)
				}
			}
			path := mediatest.WriteTemp(t, mediatest.Materialize(t, b.File("", "", time.Time{}, "")), "trick.mp4")

			var syncMD5s []string
			for i, md5 := range mediatest.OriginalMD5s(t, chapters)[0] {
				if v.Samples.IsSync(i) {
					syncMD5s = append(syncMD5s, md5)
				}
			}
			if len(syncMD5s) != k.Samples.Len() {
				t.Fatalf("%d sync samples in the original, %d in the trick track", len(syncMD5s), k.Samples.Len())
			}

			// Decoded frames: all key frames, one per sync sample.
			cmd := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0",
				"-show_entries", "frame=key_frame,pict_type", "-of", "csv=p=0", path)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil || stderr.Len() > 0 {
				t.Fatalf("ffprobe: %v\n%s", err, stderr.String())
			}
			frames := strings.Fields(stdout.String())
			if len(frames) != len(syncMD5s) {
				t.Errorf("%d decoded frames, want %d (the sync samples)", len(frames), len(syncMD5s))
			}
			for i, f := range frames {
				// Side data (first frame) adds empty fields.
				if strings.TrimRight(f, ",") != "1,I" {
					t.Errorf("frame %d: key_frame,pict_type = %s, want 1,I", i, f)
				}
			}
			// The packets are the original key frames.
			if got := probe.PacketMD5s(t, path)[0]; !slices.Equal(got, syncMD5s) {
				t.Errorf("trick packets differ from the original key frames (%d vs %d packets)", len(got), len(syncMD5s))
			}
		})
	}
}
