package ts

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/mediatest"
	"github.com/jitstream/jitstream/internal/testutil/probe"
)

// TestFFmpeg muxes every segment of the fixtures and checks the result with
// ffprobe and ffmpeg: each segment and each keyframe range alone, and all
// segments concatenated against the original.
func TestFFmpeg(t *testing.T) {
	cases := []struct {
		name     string
		files    func(testing.TB) []string
		original func(testing.TB) string // same packets as files
		target   time.Duration
		codec    string
		// sameTimeline: the original's timestamps are the index's (single
		// file); for chapters the index stretches chapter ends.
		sameTimeline bool
	}{
		{"h264aac", mediatest.One(fixtures.H264AAC), fixtures.H264AAC, 4 * time.Second, "h264", true},
		{"h265aac", mediatest.One(fixtures.H265AAC), fixtures.H265AAC, 4 * time.Second, "hevc", true},
		{"moovatend", mediatest.One(fixtures.MoovAtEnd), fixtures.MoovAtEnd, 4 * time.Second, "h264", true},
		{"fragmented", mediatest.One(fixtures.Fragmented), fixtures.Fragmented, 4 * time.Second, "h264", true},
		{"twochapters", fixtures.TwoChapters, fixtures.ChaptersSource, 4 * time.Second, "h264", false},
		// 3 s segments: the second segment spans the chapter boundary.
		{"twochapters-3s", fixtures.TwoChapters, fixtures.ChaptersSource, 3 * time.Second, "h264", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			files := tc.files(t)
			original := tc.original(t)
			ix := mediatest.Index(t, files...)
			segs := ix.Segments(tc.target)
			if len(segs) < 2 {
				t.Fatalf("want several segments, got %v", segs)
			}
			var all []byte
			nkey := 0
			for k := range segs {
				in := segmentInputs(t, ix, segs, k)
				b := checkSegment(t, ix, in, fmt.Sprintf("seg%d", k), tc.codec)
				nkey += countKeyframes(in)
				all = append(all, b...)
			}
			if nkey == 0 {
				t.Fatal("no keyframes")
			}
			path := mediatest.WriteTemp(t, all, "all.ts")
			if _, stderr := probe.Tool(t, "ffprobe", "-v", "error", "-show_streams", "-show_format", path); stderr != "" {
				t.Errorf("ffprobe of the concatenated segments: %s", stderr)
			}
			streams := probe.Streams(t, path)
			if len(streams) != 2 || streams[0].CodecName != tc.codec || streams[1].CodecName != "aac" {
				t.Errorf("streams %+v, want %s and aac", streams, tc.codec)
			}

			// Decoded video frames.
			got, want := decodedVideo(t, path), decodedVideo(t, original)
			if len(want) == 0 || !slices.Equal(got, want) {
				t.Errorf("decoded video frames differ: %d frames, original %d", len(got), len(want))
			}
			if n := ix.Video().Samples.Len(); len(got) != n {
				t.Errorf("%d decoded frames, index has %d samples", len(got), n)
			}

			// Audio packets, ADTS headers removed.
			gotA := frameMD5s(t, path, "-map", "0:a", "-c", "copy", "-bsf:a", "aac_adtstoasc")
			wantA := frameMD5s(t, original, "-map", "0:a", "-c", "copy")
			if len(wantA) == 0 || !slices.Equal(gotA, wantA) {
				t.Errorf("audio packets differ: %d packets, original %d", len(gotA), len(wantA))
			}

			// Timestamps: the index's presentation times plus 10 s, and,
			// for single files, the original's times plus 10 s.
			for _, tr := range []*media.Track{ix.Video(), ix.Audio()} {
				sel := "v:0"
				if tr.Kind == media.KindAudio {
					sel = "a:0"
				}
				gotPTS := packetPTS(t, path, sel)
				var wantPTS []int64
				for i := range tr.Samples.Len() {
					p := tr.Samples.DTS[i] + int64(tr.Samples.CompOffset(i)) - tr.MediaTime
					wantPTS = append(wantPTS, 900000+rescale90(p, tr.Timescale))
				}
				if !slices.Equal(gotPTS, wantPTS) {
					t.Errorf("%s PTS %v..., want %v...", sel, head(gotPTS), head(wantPTS))
				}
				if tc.sameTimeline {
					var orig []int64
					for _, p := range packetPTS(t, original, sel) {
						orig = append(orig, 900000+rescale90(p, tr.Timescale))
					}
					if !slices.Equal(gotPTS, orig) {
						t.Errorf("%s PTS %v..., original +10 s %v...", sel, head(gotPTS), head(orig))
					}
				}
			}
		})
	}
}

func head(s []int64) []int64 { return s[:min(len(s), 8)] }

func countKeyframes(in []Input) int {
	n := 0
	for _, x := range in {
		if x.Track.Kind != media.KindVideo {
			continue
		}
		for i := x.First; i < x.End; i++ {
			if x.Track.Samples.IsSync(i) {
				n++
			}
		}
	}
	return n
}

// checkSegment muxes one segment, compares it with its plan, checks its
// structure, and has ffprobe read it and each of its keyframe ranges.
func checkSegment(t *testing.T, ix *media.Index, in []Input, name, codec string) []byte {
	t.Helper()
	planIn := slices.Clone(in)
	for i := range planIn {
		planIn[i].Data = nil
	}
	plan, err := Plan(ix, planIn, Options{})
	if err != nil {
		t.Fatalf("%s: Plan: %v", name, err)
	}
	b, err := Mux(ix, in, Options{})
	if err != nil {
		t.Fatalf("%s: Mux: %v", name, err)
	}
	if int64(len(b)) != plan.Size {
		t.Fatalf("%s: Mux made %d bytes, Plan says %d", name, len(b), plan.Size)
	}
	d, err := demux(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var video, audio *Input
	for i := range in {
		switch in[i].Track.Kind {
		case media.KindVideo:
			video = &in[i]
		case media.KindAudio:
			audio = &in[i]
		}
	}
	vpes := d.byPID(PIDVideo)
	if len(vpes) != video.End-video.First {
		t.Errorf("%s: %d video PES, want %d", name, len(vpes), video.End-video.First)
	}
	if n := countKeyframes(in); len(plan.Keyframes) != n {
		t.Errorf("%s: %d keyframe ranges, want %d", name, len(plan.Keyframes), n)
	}
	var adts int
	for _, p := range d.byPID(PIDAudio) {
		for f := p.payload; len(f) >= 7; {
			l := int(f[3]&3)<<11 | int(f[4])<<3 | int(f[5])>>5
			if f[0] != 0xFF || f[1]&0xF6 != 0xF0 || l < 7 || l > len(f) {
				t.Fatalf("%s: bad ADTS frame in the audio PES at %d", name, p.start)
			}
			adts++
			f = f[l:]
		}
	}
	if adts != audio.End-audio.First {
		t.Errorf("%s: %d ADTS frames, want %d", name, adts, audio.End-audio.First)
	}
	if d.psiAt[0] != 0 {
		t.Errorf("%s: does not start with a PAT", name)
	}

	path := mediatest.WriteTemp(t, b, name+".ts")
	if _, stderr := probe.Tool(t, "ffprobe", "-v", "error", "-show_streams", "-count_frames", path); stderr != "" {
		t.Errorf("%s: ffprobe: %s", name, stderr)
	}
	frames, stderr := probe.Tool(t, "ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0", "-f", "null", "-")
	if stderr != "" || frames != "" {
		t.Errorf("%s: ffmpeg decoding: %s", name, stderr)
	}

	for k, kr := range plan.Keyframes {
		if !slices.Contains(d.psiAt, kr.Offset) {
			t.Errorf("%s: keyframe range %d at %d does not start at a PAT", name, k, kr.Offset)
		}
		end := kr.Offset + kr.Length
		var keyPES *pes
		for i := range vpes {
			if vpes[i].end == end {
				keyPES = &vpes[i]
			}
		}
		if keyPES == nil || !keyPES.rai || keyPES.start != kr.Offset+2*PacketSize {
			t.Errorf("%s: keyframe range %d [%d, %d) is not PAT, PMT and a keyframe PES", name, k, kr.Offset, end)
		}
		rp := mediatest.WriteTemp(t, b[kr.Offset:end], fmt.Sprintf("%s-key%d.ts", name, k))
		out, stderr := probe.Tool(t, "ffprobe", "-v", "error", "-select_streams", "v:0", "-show_frames",
			"-read_intervals", "%+#1", "-show_entries", "frame=key_frame,pict_type", "-of", "csv=p=0", rp)
		if stderr != "" || !strings.HasPrefix(out, "1,I") {
			t.Errorf("%s: keyframe range %d: first frame %q (stderr %q), want key frame of type I", name, k, out, stderr)
		}
	}
	return b
}

// decodedVideo returns the MD5 of every decoded video frame of src.
func decodedVideo(t *testing.T, src string) []string {
	t.Helper()
	return frameMD5s(t, src, "-map", "0:v", "-fps_mode", "passthrough")
}

// frameMD5s runs ffmpeg -i src args -f framemd5 and returns the hashes,
// failing on any message at level error.
func frameMD5s(t *testing.T, src string, args ...string) []string {
	t.Helper()
	return probe.MD5s(probe.FrameMD5(t, append([]string{"-i", src}, args...)...))
}

// packetPTS returns the PTS of each packet of the selected stream of src,
// in decode order, in the stream's time base.
func packetPTS(t *testing.T, src, sel string) []int64 {
	t.Helper()
	out, _ := probe.Tool(t, "ffprobe", "-v", "error", "-select_streams", sel, "-show_entries", "packet=pts", "-of", "csv=p=0", src)
	var pts []int64
	for _, f := range strings.Fields(out) {
		n, err := strconv.ParseInt(strings.TrimSuffix(f, ","), 10, 64)
		if err != nil {
			t.Fatalf("ffprobe packet pts %q: %v", f, err)
		}
		pts = append(pts, n)
	}
	return pts
}
