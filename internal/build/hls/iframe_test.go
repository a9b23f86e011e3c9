package hls

import (
	"bytes"
	"io"
	"math"
	"os"
	"strconv"
	"testing"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/testutil/cmaftest"
	"github.com/jitstream/jitstream/internal/testutil/mediatest"
)

// TestFMP4IFrames checks the I-frame byte ranges against the media segments
// mp4build builds (decoded with mp4ff): each range runs from the moof to the
// end of the segment's first sample, a sync sample whose bytes are those of
// the original key frame; and the I-frame playlist lists them.
func TestFMP4IFrames(t *testing.T) {
	for _, fc := range fixtureCases {
		t.Run(fc.Name, func(t *testing.T) {
			ix := mediatest.Index(t, fc.Chapters(t)...)
			segs := ix.Segments(0)
			v := ix.Video()
			frames, err := FMP4IFrames(ix, v, segs)
			if err != nil {
				t.Fatal(err)
			}
			if len(frames) != len(segs) {
				t.Fatalf("%d I-frames, want one per segment (%d)", len(frames), len(segs))
			}
			spans := TrackSegments(ix, v, segs)
			for n, f := range frames {
				data := mediatest.Materialize(t, cmaftest.MediaSegment(t, ix, []*media.Track{v}, segs, n))
				box, err := mp4.DecodeBox(0, bytes.NewReader(data))
				if err != nil {
					t.Fatal(err)
				}
				moof, ok := box.(*mp4.MoofBox)
				if !ok {
					t.Fatalf("segment %d starts with %s", n, box.Type())
				}
				traf := moof.Traf
				traf.Trun.AddSampleDefaultValues(traf.Tfhd, nil)
				s0 := traf.Trun.Samples[0]
				if !s0.IsSync() {
					t.Errorf("segment %d: first sample not sync (flags %#x)", n, s0.Flags)
				}
				end := int64(traf.Trun.DataOffset) + int64(s0.Size)
				if f.Offset != 0 || f.Length != end || f.Length > int64(len(data)) {
					t.Errorf("segment %d: range %d@%d, want %d@0 (moof %d bytes, sample at %d)", n, f.Length, f.Offset, end, moof.Size(), traf.Trun.DataOffset)
					continue
				}
				first, _ := SegmentSpan(ix, v, segs[n])
				if want := readSample(t, ix, v, first); !bytes.Equal(data[traf.Trun.DataOffset:end], want) {
					t.Errorf("segment %d: the range does not end with the key frame's bytes", n)
				}
				if f.Segment != n || f.Start != spans[n].Start || f.Duration != spans[n].End-spans[n].Start {
					t.Errorf("entry %d: %+v, want segment %d, span %v", n, f, n, spans[n])
				}
			}

			// The master playlist's estimate covers the exact peak.
			exact := IFramesPeakBitrate(frames, v.Timescale)
			if est := IFrameBitrate(ix, v, segs, FMP4SampleOverhead, FMP4SegmentOverhead); est < exact || est > exact*2 {
				t.Errorf("I-frame bit rate estimated %d, exact %d", est, exact)
			}

			b := IFrames(frames, v.Timescale, MediaOptions{})
			pl, err := parseMedia(b)
			if err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			if !pl.iframesOnly || pl.version != 7 || pl.mapURI != "init.mp4" || !pl.endList || pl.playlistType != "VOD" {
				t.Errorf("I-frames only %v, version %d, map %q, endlist %v, type %s", pl.iframesOnly, pl.version, pl.mapURI, pl.endList, pl.playlistType)
			}
			var sum float64
			for n, s := range pl.segments {
				f := frames[n]
				if !s.hasRange || s.length != f.Length || s.off != f.Offset || s.uri != strconv.Itoa(n)+".m4s" {
					t.Errorf("entry %d: %d@%d %s, want %d@%d %d.m4s", n, s.length, s.off, s.uri, f.Length, f.Offset, n)
				}
				if int(math.Round(s.dur)) > pl.target {
					t.Errorf("entry %d: EXTINF %s above target %d", n, s.durText, pl.target)
				}
				sum += s.dur
			}
			if want := v.Seconds(v.Duration()); math.Abs(sum-want) > 0.0015 {
				t.Errorf("I-frame durations add up to %.3f s, want %.3f", sum, want)
			}
		})
	}
}

func TestIFramesTS(t *testing.T) {
	frames := []IFrame{
		{URI: "0.ts", Offset: 376, Length: 9212, Start: 0, Duration: 180000},
		{URI: "0.ts", Offset: 500000, Length: 8084, Start: 180000, Duration: 180000},
		{Segment: 1, Offset: 376, Length: 10152, Start: 360000, Duration: 90000},
	}
	b := IFrames(frames, 90000, MediaOptions{Format: TS})
	pl, err := parseMedia(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if !pl.iframesOnly || pl.version != 4 || pl.mapURI != "" || pl.target != 2 || len(pl.segments) != 3 {
		t.Fatalf("unexpected playlist:\n%s", b)
	}
	for n, want := range []string{"0.ts", "0.ts", "1.ts"} {
		s := pl.segments[n]
		if s.uri != want || s.off != frames[n].Offset || s.length != frames[n].Length {
			t.Errorf("entry %d: %d@%d %s", n, s.length, s.off, s.uri)
		}
	}
}

func TestFMP4IFrameRangeErrors(t *testing.T) {
	ix := mediatest.Synth(20, 30, 60, false)
	v := ix.Video()
	frame := int64(v.Samples.Dur[0])
	if _, err := FMP4IFrameRange(ix, v, media.Segment{Start: 0, End: 60 * frame}); err != nil {
		t.Errorf("segment at a key frame: %v", err)
	}
	if _, err := FMP4IFrameRange(ix, v, media.Segment{Start: 10 * frame, End: 60 * frame}); err == nil {
		t.Error("no error for a segment starting mid-GOP")
	}
	if _, err := FMP4IFrameRange(ix, v, media.Segment{Start: 10 * frame, End: 10 * frame}); err == nil {
		t.Error("no error for an empty segment")
	}
}

// readSample reads sample i of t from its chapter's file.
func readSample(tb testing.TB, ix *media.Index, t *media.Track, i int) []byte {
	tb.Helper()
	f, err := os.Open(ix.Chapters[t.Samples.Chapter(i)].Object)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, t.Samples.Size[i])
	if _, err := io.ReadFull(io.NewSectionReader(f, t.Samples.Offset[i], int64(len(b))), b); err != nil {
		tb.Fatal(err)
	}
	return b
}
