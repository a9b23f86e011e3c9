package mp4build

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/mediatest"
	"github.com/jitstream/jitstream/internal/testutil/probe"
	"github.com/jitstream/jitstream/internal/vfile"
)

// Tests on real files made by ffmpeg, verified with ffprobe/ffmpeg: the
// outputs are materialized (stored ranges read from the fixture files).

// fixtureCases are the originals: those of the streaming tests and more.
var fixtureCases = append(mediatest.Fixtures(),
	mediatest.Fixture{Name: "moov at end", Chapters: mediatest.One(fixtures.MoovAtEnd)},
	mediatest.Fixture{Name: "fragmented original", Chapters: mediatest.One(fixtures.Fragmented)},
	mediatest.Fixture{Name: "gpmd metadata track", Chapters: mediatest.One(fixtures.WithMetadataTrack)},
	mediatest.Fixture{Name: "subtitles and timecode", Chapters: mediatest.One(allKinds)},
)

// allKinds returns a ~3 s MP4 (cached with the fixtures) with H.264 video
// (30 fps, GOP 30), AAC audio, a tx3g subtitle track and a tmcd timecode
// track.
func allKinds(tb testing.TB) string {
	tb.Helper()
	path := filepath.Join(fixtures.Dir(tb), "mp4build-allkinds-v1.mp4")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	dir := tb.TempDir()
	srt := filepath.Join(dir, "s.srt")
	if err := os.WriteFile(srt, []byte("1\n00:00:00,500 --> 00:00:01,500\nHello\n\n2\n00:00:02,000 --> 00:00:02,800\nWorld\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	tmp := filepath.Join(dir, "allkinds.mp4")
	probe.Tool(tb, "ffmpeg", "-nostdin", "-v", "error",
		"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30:duration=3",
		"-f", "lavfi", "-i", "sine=duration=3:sample_rate=48000", "-i", srt,
		"-map", "0", "-map", "1", "-map", "2",
		"-c:v", "libx264", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0",
		"-c:a", "aac", "-c:s", "mov_text", "-timecode", "01:00:00:00", "-write_tmcd", "1",
		"-movflags", "+faststart", tmp)
	// Rename within the cache directory: atomic for concurrent test runs.
	staged := path + ".tmp" + strconv.Itoa(os.Getpid())
	data, err := os.ReadFile(tmp)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(staged, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(staged, path); err != nil {
		tb.Fatal(err)
	}
	return path
}

// rawMD5s is the per-stream packet MD5s of every sample in the sample
// tables of src, including samples that an edit list hides: the index (and
// so the consolidated file) holds every sample of the originals, while an
// original's edit list may hide trailing samples (the allKinds subtitle
// track ends with an empty sample outside its edit).
func rawMD5s(tb testing.TB, src string) map[int][]string {
	tb.Helper()
	return probe.PacketMD5s(tb, src, "-ignore_editlist", "1")
}

func TestConsolidatedFixtures(t *testing.T) {
	for _, fc := range fixtureCases {
		t.Run(fc.Name, func(t *testing.T) {
			t.Parallel()
			chapters := fc.Chapters(t)
			ix := mediatest.Index(t, chapters...)
			f, err := Progressive(ix, Selection{})
			if err != nil {
				t.Fatal(err)
			}
			checkProgressive(t, ix, Selection{}, f)
			out := mediatest.WriteTemp(t, mediatest.Materialize(t, f), "consolidated.mp4")
			if types := boxTypes(topLevelFile(t, out)); !reflect.DeepEqual(types, []string{"ftyp", "moov", "mdat"}) {
				t.Errorf("top-level boxes %v, want [ftyp moov mdat]", types)
			}
			requireClean(t, out)

			// Identical sample bytes, stream by stream.
			probe.EqualStreams(t, "", rawMD5s(t, out), mediatest.OriginalMD5s(t, chapters))

			// Same streams.
			src, got := probe.Streams(t, chapters[0]), probe.Streams(t, out)
			if len(got) != len(src) {
				t.Fatalf("%d streams, want %d", len(got), len(src))
			}
			for i := range src {
				if got[i].CodecType != src[i].CodecType || got[i].CodecName != src[i].CodecName || got[i].CodecTagString != src[i].CodecTagString {
					t.Errorf("stream %d: %s/%s/%s, want %s/%s/%s", i, got[i].CodecType, got[i].CodecName, got[i].CodecTagString,
						src[i].CodecType, src[i].CodecName, src[i].CodecTagString)
				}
			}

			// Duration: the chapters end to end.
			var want float64
			for _, c := range chapters {
				want += formatDuration(t, c)
			}
			if d := formatDuration(t, out); math.Abs(d-want) > 0.1 {
				t.Errorf("duration %.3f s, want %.3f s (sum of chapters)", d, want)
			}

			// Zero copy: the payload is a few large ranges, at most one per
			// mdat box of the originals.
			mdats := 0
			for _, c := range chapters {
				for _, b := range topLevelFile(t, c) {
					if b.typ == "mdat" {
						mdats++
					}
				}
			}
			if n := storedPieces(f); n > mdats {
				t.Errorf("%d stored pieces for %d mdat boxes in the originals", n, mdats)
			}
		})
	}
}

func TestFragmentedFixtures(t *testing.T) {
	for _, fc := range fixtureCases {
		t.Run(fc.Name, func(t *testing.T) {
			t.Parallel()
			chapters := fc.Chapters(t)
			ix := mediatest.Index(t, chapters...)
			f, err := Fragmented(ix, Selection{})
			if err != nil {
				t.Fatal(err)
			}
			if n, want := checkFragmented(t, ix, Selection{}, f), len(ix.Segments(media.DefaultSegmentDuration)); n != want {
				t.Errorf("%d fragments, want one per segment (%d)", n, want)
			}
			out := mediatest.WriteTemp(t, mediatest.Materialize(t, f), "fragmented.mp4")
			requireClean(t, out)
			probe.EqualStreams(t, "", rawMD5s(t, out), mediatest.OriginalMD5s(t, chapters))
			if d, want := formatDuration(t, out), ix.Duration().Seconds(); math.Abs(d-want) > 0.1 {
				t.Errorf("duration %.3f s, want %.3f s", d, want)
			}
		})
	}
}

// TestRenditionSegments builds, with InitSegment and MediaSegment, one
// fragmented file per track (as HLS/DASH renditions would be) and checks
// that each holds exactly that track's packets.
func TestRenditionSegments(t *testing.T) {
	chapters := fixtures.TwoChapters(t)
	ix := mediatest.Index(t, chapters...)
	want := mediatest.OriginalMD5s(t, chapters)
	for k, tr := range ix.Tracks {
		t.Run(string(tr.Kind), func(t *testing.T) {
			out := mediatest.WriteTemp(t, mediatest.Materialize(t, segmentsFile(t, ix, []*media.Track{tr})), "rendition.mp4")
			requireClean(t, out)
			probe.EqualStreams(t, "", rawMD5s(t, out), map[int][]string{0: want[k]})
		})
	}
}

// clipCases are clips checked against the decoded frames of the unsplit
// source: all at 30 fps with a GOP of 30 frames (1 s).
var clipCases = []struct {
	name       string
	chapters   func(testing.TB) []string
	source     func(testing.TB) string // the recording the chapters come from
	start, end time.Duration
}{
	{"h264 mid-GOP", mediatest.One(fixtures.H264AAC), fixtures.H264AAC, 1500 * time.Millisecond, 3200 * time.Millisecond},
	{"h264 from key frame", mediatest.One(fixtures.H264AAC), fixtures.H264AAC, 2 * time.Second, 3 * time.Second},
	{"h264 within one GOP", mediatest.One(fixtures.H264AAC), fixtures.H264AAC, 4100 * time.Millisecond, 4400 * time.Millisecond},
	{"h264 head", mediatest.One(fixtures.H264AAC), fixtures.H264AAC, 0, 1 * time.Second},
	{"h264 tail, off frame grid", mediatest.One(fixtures.H264AAC), fixtures.H264AAC, 3510 * time.Millisecond, 0},
	{"h265 mid-GOP", mediatest.One(fixtures.H265AAC), fixtures.H265AAC, 2300 * time.Millisecond, 4 * time.Second},
	{"gpmd mid-GOP", mediatest.One(fixtures.WithMetadataTrack), fixtures.H264AAC, 2700 * time.Millisecond, 5 * time.Second},
	{"across chapters", fixtures.TwoChapters, fixtures.ChaptersSource, 3500 * time.Millisecond, 5 * time.Second},
	{"second chapter", fixtures.TwoChapters, fixtures.ChaptersSource, 5500 * time.Millisecond, 7 * time.Second},
	{"subtitles and timecode", mediatest.One(allKinds), allKinds, 700 * time.Millisecond, 2500 * time.Millisecond},
}

func TestClipFixtures(t *testing.T) {
	const fps = 30
	// Decoded frames of each source, decoded once.
	var mu sync.Mutex
	sourceFrames := map[string][]frame{}
	framesOf := func(t *testing.T, path string) []frame {
		mu.Lock()
		defer mu.Unlock()
		if f, ok := sourceFrames[path]; ok {
			return f
		}
		f := decodedFrames(t, path)
		sourceFrames[path] = f
		return f
	}
	for _, cc := range clipCases {
		t.Run(cc.name, func(t *testing.T) {
			t.Parallel()
			chapters := cc.chapters(t)
			ix := mediatest.Index(t, chapters...)
			sel := Selection{Start: cc.start, End: cc.end}
			end := cc.end
			if end == 0 {
				end = ix.Duration()
			}
			length := (end - cc.start).Seconds()

			f, err := Progressive(ix, sel)
			if err != nil {
				t.Fatal(err)
			}
			checkProgressive(t, ix, sel, f)
			out := mediatest.WriteTemp(t, mediatest.Materialize(t, f), "clip.mp4")
			requireClean(t, out)
			if d := formatDuration(t, out); math.Abs(d-length) > 1.0/fps {
				t.Errorf("duration %.3f s, want %.3f s", d, length)
			}
			for _, st := range probe.Streams(t, out) {
				if st.CodecType == "video" || st.CodecType == "audio" {
					if math.Abs(st.Duration-length) > 1.0/fps {
						t.Errorf("%s stream lasts %.3f s, want %.3f s", st.CodecType, st.Duration, length)
					}
				}
			}

			// The decoded frames are exactly the source's frames of
			// [start, end), the first one presented at 0.
			frames := decodedFrames(t, out)
			ref := framesOf(t, cc.source(t))
			first := int(cc.start.Seconds()*fps + 1e-6)
			last := int(math.Ceil(end.Seconds()*fps-1e-6)) - 1
			last = min(last, len(ref)-1)
			if len(frames) == 0 || frames[0].pts != 0 {
				t.Fatalf("first decoded frame at pts %v, want 0", frames[:min(1, len(frames))])
			}
			if n := last - first + 1; len(frames) != n {
				t.Errorf("%d decoded frames, want %d (source frames %d..%d)", len(frames), n, first, last)
			}
			for i := 0; i < len(frames) && first+i <= last; i++ {
				if frames[i].md5 != ref[first+i].md5 {
					t.Errorf("decoded frame %d differs from source frame %d", i, first+i)
					break
				}
			}

			// The fragmented clip holds the same samples.
			ff, err := Fragmented(ix, sel)
			if err != nil {
				t.Fatal(err)
			}
			checkFragmented(t, ix, sel, ff)
			fout := mediatest.WriteTemp(t, mediatest.Materialize(t, ff), "clip-frag.mp4")
			requireClean(t, fout)
			probe.EqualStreams(t, "", rawMD5s(t, fout), rawMD5s(t, out))
		})
	}
}

// TestClipEmptyTrack cuts a clip after the end of a (shortened) metadata
// track: the track is kept, empty and without edit list, and the file stays
// readable.
func TestClipEmptyTrack(t *testing.T) {
	ix := mediatest.Index(t, fixtures.WithMetadataTrack(t))
	meta := ix.Tracks[2]
	s := &meta.Samples
	if meta.Format != "gpmd" || s.Len() < 3 {
		t.Fatalf("unexpected metadata track %s with %d samples", meta.Format, s.Len())
	}
	// Keep the first two samples (2 s) only.
	s.Offset, s.Size, s.Dur = s.Offset[:2], s.Size[:2], s.Dur[:2]
	if s.Sync != nil {
		s.Sync = s.Sync[:2]
	}
	if s.CTO != nil {
		s.CTO = s.CTO[:2]
	}
	s.ChapterStart[len(s.ChapterStart)-1] = 2
	s.Derive()

	sel := Selection{Start: 3 * time.Second, End: 5 * time.Second}
	for name, build := range map[string]func(*media.Index, Selection) (*vfile.File, error){"progressive": Progressive, "fragmented": Fragmented} {
		t.Run(name, func(t *testing.T) {
			f, err := build(ix, sel)
			if err != nil {
				t.Fatal(err)
			}
			if name == "progressive" {
				moov := checkProgressive(t, ix, sel, f)
				if n := moov.Traks[2].Mdia.Minf.Stbl.Stsz.GetNrSamples(); n != 0 {
					t.Errorf("metadata track has %d samples in the clip, want 0", n)
				}
			} else {
				checkFragmented(t, ix, sel, f)
			}
			out := mediatest.WriteTemp(t, mediatest.Materialize(t, f), "clip.mp4")
			requireClean(t, out)
			if n := len(probe.Streams(t, out)); n != 3 {
				t.Errorf("%d streams, want 3", n)
			}
			if d := formatDuration(t, out); math.Abs(d-2) > 1.0/30 && name == "progressive" {
				t.Errorf("duration %.3f s, want 2", d)
			}
		})
	}
}
