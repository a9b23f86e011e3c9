package mp4build

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/mediatest"
	"github.com/jitstream/jitstream/internal/testutil/probe"
	"github.com/jitstream/jitstream/internal/vfile"
)

func TestTrickRateRequests(t *testing.T) {
	dense := mediatest.Synth(10, 30, 30, false)   // a key frame every second
	gop2s := mediatest.Synth(20, 30, 60, false)   // every 2 s: the threshold at rate 2
	sparse := mediatest.Synth(20, 30, 300, false) // every 10 s
	for _, tc := range []struct {
		name string
		ix   *media.Index
		rate int
		pos  time.Duration
		want error // nil: a stream
	}{
		{"rate 0", dense, 0, 0, ErrTrickRate},
		{"rate 1", dense, 1, 0, ErrTrickRate},
		{"rate 3", dense, 3, 0, ErrTrickRate},
		{"rate -3", dense, -3, 0, ErrTrickRate},
		{"rate 32", dense, 32, 0, ErrTrickRate},
		{"rate -1", dense, -1, 0, ErrTrickRate},
		{"negative position", dense, 2, -time.Second, ErrTrickRate},
		{"position at the end", dense, 2, 10 * time.Second, ErrTrickRate},
		{"position beyond the end", dense, -2, time.Hour, ErrTrickRate},
		{"no video", mediatest.SynthAudioOnly(10), 2, 0, ErrTrickRate},
		{"fast forward after the last key frame", dense, 2, 9500 * time.Millisecond, ErrTrickRate},
		{"rewind from the last instant", dense, -2, 9999 * time.Millisecond, nil},
		{"rewind from 0", dense, -16, 0, nil},
		{"GOP 2 s at rate 2: 1 frame/s, the limit", gop2s, 2, 0, nil},
		{"GOP 2 s at rate -2", gop2s, -2, 5 * time.Second, nil},
		{"GOP 10 s at rate 2", sparse, 2, 0, ErrSparseKeyframes},
		{"GOP 10 s at rate 8", sparse, 8, 0, ErrSparseKeyframes},
		{"GOP 10 s at rate -8", sparse, -8, 15 * time.Second, ErrSparseKeyframes},
		{"GOP 10 s at rate 16", sparse, 16, 0, nil},
		{"GOP 10 s at rate -16", sparse, -16, 15 * time.Second, nil},
		{"invalid request before sparse", sparse, 3, 0, ErrTrickRate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := TrickRate(tc.ix, tc.rate, tc.pos)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("TrickRate(%d, %v) error = %v, want %v", tc.rate, tc.pos, err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("TrickRate(%d, %v): %v", tc.rate, tc.pos, err)
			}
			if f.ContentType != ContentType || f.Size == 0 {
				t.Errorf("content type %q, size %d", f.ContentType, f.Size)
			}
		})
	}
	if _, err := TrickRate(nil, 2, 0); err == nil {
		t.Error("TrickRate(nil index) succeeded")
	}
}

// TestTrickRateTimes checks the frames and output times that TrickRate
// plans on a synthetic index: 90 kHz, a key frame every second, composition
// offsets and an edit of two frames (so key frames are presented on whole
// seconds).
func TestTrickRateTimes(t *testing.T) {
	ix := mediatest.Synth(10, 30, 30, false)
	const sec = 90000
	for _, tc := range []struct {
		rate int
		pos  time.Duration
		keys []int   // seconds of the key frames, in output order
		out  []int64 // output times, ticks, and the end
	}{
		{2, 0, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
			[]int64{0, sec / 2, sec, 3 * sec / 2, 2 * sec, 5 * sec / 2, 3 * sec, 7 * sec / 2, 4 * sec, 9 * sec / 2, 5 * sec}},
		{8, 7 * time.Second, []int{7, 8, 9}, []int64{7 * sec, 7*sec + sec/8, 7*sec + sec/4, 7*sec + 3*sec/8}},
		// Between key frames: forward starts at the next one, the output at pos.
		{4, 7500 * time.Millisecond, []int{8, 9}, []int64{7*sec + sec/2, 7*sec + sec/2 + sec/4, 8 * sec}},
		// Rewind: at or before pos, backward; the last one shows its GOP.
		{-4, 3500 * time.Millisecond, []int{3, 2, 1, 0},
			[]int64{7 * sec / 2, 7*sec/2 + sec/4, 7*sec/2 + sec/2, 7*sec/2 + 3*sec/4, 7*sec/2 + sec}},
		{-16, 0, []int{0}, []int64{0, sec / 16}},
		{-2, 2 * time.Second, []int{2, 1, 0}, []int64{2 * sec, 5 * sec / 2, 3 * sec, 7 * sec / 2}},
	} {
		t.Run(fmt.Sprintf("rate %d at %v", tc.rate, tc.pos), func(t *testing.T) {
			tp, err := planTrickRate(ix, tc.rate, tc.pos)
			if err != nil {
				t.Fatal(err)
			}
			var keys []int
			for _, i := range tp.frames {
				keys = append(keys, i/30)
				if i%30 != 0 {
					t.Errorf("frame %d is not a key frame", i)
				}
			}
			if !slices.Equal(keys, tc.keys) {
				t.Errorf("key frames at %v s, want %v", keys, tc.keys)
			}
			if !slices.Equal(tp.out, tc.out) {
				t.Errorf("output times %v, want %v", tp.out, tc.out)
			}
		})
	}
}

// TestTrickRateFragments checks the boxes of long synthetic trick streams
// with mp4ff: an init segment without edit list, then fragments of the
// video track only, every one but the last spanning at least
// TrickFragmentDuration, whose tfdt follow on from pos, whose samples are
// sync samples without composition offset, with the planned durations, in
// output order, and whose bytes are the key frames' stored ranges. A
// fragment also ends where the sample description changes. The timeline
// maps each frame's bytes to its playback time from pos.
func TestTrickRateFragments(t *testing.T) {
	// Three chapters, the second and third with another sample entry.
	ix := synth(synthOpts{seconds: 120, fps: 30, gop: 30, frameSize: 2000, keySize: 20000, chunk: 15, chapters: 3, secondSE: true})
	v := ix.Video()
	s := &v.Samples
	target := ticks(TrickFragmentDuration, v.Timescale)
	for _, rate := range []int{2, 16, -4, -16} {
		t.Run(fmt.Sprintf("rate %d", rate), func(t *testing.T) {
			pos := 60500 * time.Millisecond
			f, err := TrickRate(ix, rate, pos)
			if err != nil {
				t.Fatal(err)
			}
			tp, err := planTrickRate(ix, rate, pos)
			if err != nil {
				t.Fatal(err)
			}
			d := float64(tp.out[len(tp.frames)]-tp.out[0]) / float64(v.Timescale)
			step := vfile.TimelineStep(d)
			if tl := f.Timeline; len(tl) < 2 || tl[len(tl)-1] != (vfile.TimePoint{Off: f.Size, Time: d}) || tl[0].Time != 0 {
				t.Errorf("timeline %v: want time 0 first, %.3f s at the end (%d bytes)", tl, d, f.Size)
			}
			typ, size, _ := header(t, f, 0)
			if typ != "ftyp" {
				t.Fatalf("%s first, want ftyp", typ)
			}
			off := size
			typ, size, _ = header(t, f, off)
			if typ != "moov" {
				t.Fatalf("%s second, want moov", typ)
			}
			moov := decodeBox(t, f, off, size).(*mp4.MoovBox)
			if len(moov.Traks) != 1 || moov.Trak.Tkhd.TrackID != v.ID || moov.Trak.Edts != nil || moov.Mvex == nil {
				t.Fatalf("moov: want one trak (track %d) without edit list, and mvex", v.ID)
			}
			off += size
			k := 0 // next frame
			frags := 0
			for off < f.Size {
				typ, size, _ := header(t, f, off)
				if typ != "moof" {
					t.Fatalf("%s at %d, want moof", typ, off)
				}
				moof := decodeBox(t, f, off, size).(*mp4.MoofBox)
				moofOff := off
				off += size
				typ, msize, hdr := header(t, f, off)
				if typ != "mdat" {
					t.Fatalf("%s at %d, want mdat", typ, off)
				}
				frags++
				if moof.Mfhd.SequenceNumber != uint32(frags) || len(moof.Trafs) != 1 {
					t.Fatalf("fragment %d: sequence number %d, %d trafs", frags, moof.Mfhd.SequenceNumber, len(moof.Trafs))
				}
				traf := moof.Traf
				if traf.Tfhd.TrackID != v.ID || !traf.Tfhd.DefaultBaseIfMoof() {
					t.Fatalf("fragment %d: tfhd of track %d, want %d with default-base-is-moof", frags, traf.Tfhd.TrackID, v.ID)
				}
				if got := traf.Tfdt.BaseMediaDecodeTime(); got != uint64(tp.out[k]) {
					t.Errorf("fragment %d: tfdt %d, want %d", frags, got, tp.out[k])
				}
				if k == 0 && tp.out[0] != ticks(pos, v.Timescale) {
					t.Errorf("first tfdt %d, want pos %d", tp.out[0], ticks(pos, v.Timescale))
				}
				first := k
				desc := uint32(1)
				if traf.Tfhd.HasSampleDescriptionIndex() {
					desc = traf.Tfhd.SampleDescriptionIndex
				}
				if want := tp.desc(tp.frames[k]); desc != want {
					t.Errorf("fragment %d: sample description %d, want %d", frags, desc, want)
				}
				traf.Trun.AddSampleDefaultValues(traf.Tfhd, nil)
				at := moofOff + int64(traf.Trun.DataOffset)
				if at != off+hdr {
					t.Errorf("fragment %d: data offset points at %d, mdat payload at %d", frags, at, off+hdr)
				}
				for _, smp := range traf.Trun.Samples {
					i := tp.frames[k]
					switch {
					case !s.IsSync(i):
						t.Fatalf("frame %d is sample %d, not a key frame", k, i)
					case smp.Flags&0x00010000 != 0:
						t.Errorf("frame %d: flags %#x, want a sync sample", k, smp.Flags)
					case smp.CompositionTimeOffset != 0:
						t.Errorf("frame %d: composition offset %d", k, smp.CompositionTimeOffset)
					case smp.Size != s.Size[i] || int64(smp.Dur) != tp.out[k+1]-tp.out[k]:
						t.Errorf("frame %d: size %d dur %d, want %d %d", k, smp.Size, smp.Dur, s.Size[i], tp.out[k+1]-tp.out[k])
					}
					if k > first && tp.desc(i) != tp.desc(tp.frames[first]) {
						t.Errorf("frame %d: sample description %d in a fragment of description %d", k, tp.desc(i), tp.desc(tp.frames[first]))
					}
					if obj, o := storedAt(t, f, at, int64(smp.Size)); obj != ix.Chapters[s.Chapter(i)].Object || o != s.Offset[i] {
						t.Errorf("frame %d: bytes from %s@%d, want %s@%d", k, obj, o, ix.Chapters[s.Chapter(i)].Object, s.Offset[i])
					}
					// The timeline puts the frame at its playback time
					// from pos, within a step (points are one per step).
					if got, want := f.Timeline.Time(at), tp.playback(k); math.Abs(got-want) > step {
						t.Errorf("frame %d: timeline time %.3f s, want %.3f s", k, got, want)
					}
					at += int64(smp.Size)
					k++
				}
				if at != off+msize {
					t.Errorf("fragment %d: samples end at %d, mdat at %d", frags, at, off+msize)
				}
				cut := k < len(tp.frames) && tp.desc(tp.frames[k]) != desc
				if d := tp.out[k] - tp.out[first]; k < len(tp.frames) && !cut && (d < target || d > target+int64(v.Timescale)) {
					t.Errorf("fragment %d spans %d ticks, want at least %d", frags, d, target)
				}
				off += msize
			}
			if k != len(tp.frames) || frags < 2 {
				t.Errorf("%d fragments hold %d frames, want %d", frags, k, len(tp.frames))
			}
			// Content order: forward up, rewind down, every key frame.
			for j := 1; j < len(tp.frames); j++ {
				if d := tp.frames[j] - tp.frames[j-1]; d != 30*rate/abs(rate) {
					t.Fatalf("frame %d is sample %d after %d", j, tp.frames[j], tp.frames[j-1])
				}
			}
		})
	}
}

// trickCase is an original for the ffmpeg tests of TrickRate: its chapters
// and a single file with the same video (for decoding its key frames).
type trickCase struct {
	name      string
	chapters  func(testing.TB) []string
	source    func(testing.TB) string
	positions []float64
	rates     []int
}

func TestTrickRateFixtures(t *testing.T) {
	for _, tc := range []trickCase{
		{"two chapters", fixtures.TwoChapters, fixtures.ChaptersSource, []float64{0, 2, 2.5, 5.3, 7.9}, []int{2, 8, -4, -16}},
		{"h264 aac", mediatest.One(fixtures.H264AAC), fixtures.H264AAC, []float64{0, 3.2, 5.99}, []int{2, 8, -4, -16}},
		// Fast forward only: x265's key frames are CRA pictures, which
		// decoders reorder when rewinding (see TrickRate).
		{"h265 aac", mediatest.One(fixtures.H265AAC), fixtures.H265AAC, []float64{0, 3.2, 5.99}, []int{2, 16}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ix := mediatest.Index(t, tc.chapters(t)...)
			src := probeSource(t, tc.source(t))
			for _, rate := range tc.rates {
				for _, pos := range tc.positions {
					t.Run(fmt.Sprintf("rate %d at %v s", rate, pos), func(t *testing.T) {
						checkTrickRate(t, ix, src, rate, pos)
					})
				}
			}
		})
	}
}

func TestTrickRateSparseKeyframes(t *testing.T) {
	src := fixtures.SparseKeyframes(t)
	ix := mediatest.Index(t, src)
	s := probeSource(t, src)
	if len(s.keys) != 2 {
		t.Fatalf("fixture has %d key frames, want 2", len(s.keys))
	}
	for _, rate := range []int{2, 4, 8, -2, -8} {
		if _, err := TrickRate(ix, rate, 5*time.Second); !errors.Is(err, ErrSparseKeyframes) {
			t.Errorf("rate %d: error %v, want ErrSparseKeyframes", rate, err)
		}
	}
	// At 16x a key frame every 10 s is 1.6 frames per second: served.
	for _, c := range []struct {
		rate int
		pos  float64
	}{{16, 0}, {16, 12}, {-16, 15}, {-16, 5}} {
		t.Run(fmt.Sprintf("rate %d at %v s", c.rate, c.pos), func(t *testing.T) {
			checkTrickRate(t, ix, s, c.rate, c.pos)
		})
	}
}

// trunDurations returns the duration of every sample of the (single
// track) fragmented MP4 data, in order, as mp4ff reads its truns.
func trunDurations(tb testing.TB, data []byte) []int64 {
	tb.Helper()
	mf, err := mp4.DecodeFile(bytes.NewReader(data))
	if err != nil {
		tb.Fatalf("mp4ff: %v", err)
	}
	var durs []int64
	for _, seg := range mf.Segments {
		for _, frag := range seg.Fragments {
			for _, traf := range frag.Moof.Trafs {
				for _, trun := range traf.Truns {
					trun.AddSampleDefaultValues(traf.Tfhd, nil)
					for _, smp := range trun.Samples {
						durs = append(durs, int64(smp.Dur))
					}
				}
			}
		}
	}
	return durs
}

// streamEnd is the end time, in seconds, of the first video stream of a
// fragmented MP4 as ffprobe reports it (its "duration": ffmpeg takes the
// end of the last trun, not counting from the start time).
func streamEnd(tb testing.TB, src string) float64 {
	tb.Helper()
	out, _ := probe.Tool(tb, "ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=duration", "-of", "csv=p=0", src)
	d, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
	if err != nil {
		tb.Fatalf("ffprobe stream duration of %s: %q", src, out)
	}
	return d
}

// keyframe is a key frame of a source: its presentation time and the MD5
// of its decoded picture.
type keyframe struct {
	time float64
	md5  string
}

// source is what the ffmpeg tests of TrickRate know of an original, from
// ffprobe and ffmpeg.
type source struct {
	keys []keyframe // in presentation order
	end  float64    // end of the video's presentation, seconds
}

// probeSource lists the key frames of src's video in presentation order
// (their times from ffprobe's packets, their pictures decoded with ffmpeg
// -skip_frame nokey) and the end of the video stream.
func probeSource(tb testing.TB, src string) source {
	tb.Helper()
	var times []float64
	for _, p := range videoPackets(tb, src) {
		if strings.Contains(p.Flags, "K") {
			times = append(times, p.PTSTime)
		}
	}
	slices.Sort(times)
	out, _ := probe.Tool(tb, "ffmpeg", "-nostdin", "-v", "error", "-skip_frame", "nokey", "-i", src,
		"-map", "0:v:0", "-fps_mode", "passthrough", "-f", "framemd5", "-")
	pics, err := probe.ParseFrameMD5([]byte(out))
	if err != nil {
		tb.Fatal(err)
	}
	if len(pics) != len(times) {
		tb.Fatalf("%s: %d key frame packets, %d key frames decoded", src, len(times), len(pics))
	}
	s := source{keys: make([]keyframe, len(times))}
	for i := range s.keys {
		s.keys[i] = keyframe{times[i], pics[i].MD5}
	}
	var v probe.Stream
	for _, st := range probe.Streams(tb, src) {
		if st.CodecType == "video" {
			v = st
			break
		}
	}
	s.end = v.StartTime + v.Duration
	return s
}

// packet is a packet as ffprobe -show_packets reports it (without its
// duration: see checkTrickRate).
type packet struct {
	PTS, DTS int64
	PTSTime  float64
	Flags    string
}

// videoPackets returns the packets of the first video stream of src, and
// checks that ffprobe reads it without error.
func videoPackets(tb testing.TB, src string) []packet {
	tb.Helper()
	out, stderr := probe.Tool(tb, "ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "packet=pts,dts,pts_time,flags", "-of", "json", src)
	if stderr != "" {
		tb.Errorf("ffprobe reports errors on %s:\n%s", src, stderr)
	}
	var raw struct {
		Packets []struct {
			PTS     int64  `json:"pts"`
			DTS     int64  `json:"dts"`
			PTSTime string `json:"pts_time"`
			Flags   string `json:"flags"`
		} `json:"packets"`
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		tb.Fatalf("ffprobe packets of %s: %v", src, err)
	}
	pkts := make([]packet, len(raw.Packets))
	for i, p := range raw.Packets {
		t, err := strconv.ParseFloat(p.PTSTime, 64)
		if err != nil {
			tb.Fatalf("ffprobe packet %d of %s: pts_time %q", i, src, p.PTSTime)
		}
		pkts[i] = packet{p.PTS, p.DTS, t, p.Flags}
	}
	return pkts
}

// expectedKeyframes are the key frames that the trick stream at rate from
// pos shows, in order, and the content time after the last one (the end of
// the recording, or for rewind the last one's time minus its GOP).
func expectedKeyframes(keys []keyframe, rate int, pos, end float64) (want []keyframe, after float64) {
	const eps = 1e-6
	if rate > 0 {
		for _, k := range keys {
			if k.time >= pos-eps {
				want = append(want, k)
			}
		}
		return want, end
	}
	for _, k := range keys {
		if k.time <= pos+eps {
			want = append(want, k)
		}
	}
	slices.Reverse(want)
	gop := end - keys[0].time
	if len(keys) > 1 {
		gop = keys[1].time - keys[0].time
	}
	return want, keys[0].time - gop
}

// checkTrickRate builds the trick stream of ix at rate from pos and checks
// it with ffprobe and ffmpeg against the source's key frames.
func checkTrickRate(t *testing.T, ix *media.Index, src source, rate int, pos float64) {
	t.Helper()
	want, after := expectedKeyframes(src.keys, rate, pos, src.end)
	f, err := TrickRate(ix, rate, time.Duration(pos*float64(time.Second)))
	if len(want) == 0 {
		if !errors.Is(err, ErrTrickRate) {
			t.Fatalf("no key frame in range: error %v, want ErrTrickRate", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if n := storedPieces(f); n > len(want) {
		t.Errorf("%d stored pieces for %d key frames", n, len(want))
	}
	data := mediatest.Materialize(t, f)
	out := mediatest.WriteTemp(t, data, "trick.mp4")
	requireClean(t, out)
	if s := probe.Streams(t, out); len(s) != 1 || s[0].CodecType != "video" {
		t.Errorf("streams %+v, want one video stream", s)
	}

	// Only key frames, the right number, timestamps from pos on, each
	// frame lasting its content interval / |rate|, with no gap: ffprobe's
	// pts of frame i+1 is frame i's pts plus its duration. ffmpeg 5.1's mov
	// demuxer does not pass fragment sample durations on (its packets get
	// the frame rate of the H.264 timing info), so the durations are read
	// with mp4ff, and the last frame's end is ffprobe's stream end.
	pkts := videoPackets(t, out)
	if len(pkts) != len(want) {
		t.Fatalf("%d packets, want the %d key frames in range", len(pkts), len(want))
	}
	durs := trunDurations(t, data)
	if len(durs) != len(pkts) {
		t.Fatalf("mp4ff reads %d samples, ffprobe %d", len(durs), len(pkts))
	}
	ts := float64(ix.Video().Timescale) // the output keeps the video timescale
	if frame := 1.0 / 30; math.Abs(pkts[0].PTSTime-pos) > frame {
		t.Errorf("first pts %.4f s, want %.4f s (±1 frame)", pkts[0].PTSTime, pos)
	}
	n := float64(max(rate, -rate))
	for i, p := range pkts {
		if !strings.HasPrefix(p.Flags, "K") {
			t.Errorf("packet %d: flags %q, want a key frame", i, p.Flags)
		}
		if p.DTS != p.PTS {
			t.Errorf("packet %d: dts %d, pts %d", i, p.DTS, p.PTS)
		}
		next := after
		if i+1 < len(want) {
			next = want[i+1].time
		}
		tol := 2 / ts
		if i+1 == len(want) && rate > 0 {
			// The end of the recording: the index's (the last samples'
			// composition end) may differ from the edit list's by less
			// than a frame.
			tol += 1.0 / 30 / n
		}
		if d, wd := float64(durs[i])/ts, math.Abs(next-want[i].time)/n; durs[i] <= 0 || math.Abs(d-wd) > tol {
			t.Errorf("packet %d: shown %.5f s, want %.5f s (content %.3f to %.3f at %vx)", i, d, wd, want[i].time, next, rate)
		}
		if i > 0 && p.PTS != pkts[i-1].PTS+durs[i-1] {
			t.Errorf("packet %d: pts %d, want %d (previous pts + duration)", i, p.PTS, pkts[i-1].PTS+durs[i-1])
		}
	}
	last := pkts[len(pkts)-1]
	if end, want := streamEnd(t, out), float64(last.PTS+durs[len(durs)-1])/ts; math.Abs(end-want) > 1e-3 {
		t.Errorf("stream ends at %.4f s, want %.4f s (last pts + duration)", end, want)
	}

	// Decoded: all I frames, the source's key frames in order.
	fout, _ := probe.Tool(t, "ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "frame=key_frame,pict_type", "-of", "json", out)
	var frames struct {
		Frames []struct {
			KeyFrame int    `json:"key_frame"`
			PictType string `json:"pict_type"`
		} `json:"frames"`
	}
	if err := json.Unmarshal([]byte(fout), &frames); err != nil {
		t.Fatal(err)
	}
	if len(frames.Frames) != len(want) {
		t.Errorf("ffprobe decodes %d frames, want %d", len(frames.Frames), len(want))
	}
	for i, fr := range frames.Frames {
		if fr.KeyFrame != 1 || fr.PictType != "I" {
			t.Errorf("frame %d: key_frame %d, pict_type %s, want 1, I", i, fr.KeyFrame, fr.PictType)
		}
	}
	got := decodedFrames(t, out)
	if len(got) != len(want) {
		t.Fatalf("%d frames decoded, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].md5 != want[i].md5 {
			t.Errorf("frame %d differs from the source's key frame at %.3f s", i, want[i].time)
		}
	}
}

func TestTrickRateBitrate(t *testing.T) {
	ix := mediatest.Synth(10, 30, 30, false)
	v := ix.Video()
	var keyBytes int64
	for i := 0; i < v.Samples.Len(); i += 30 {
		keyBytes += int64(v.Samples.Size[i])
	}
	for _, rate := range []int{2, 8, -16} {
		got, err := TrickRateBitrate(ix, rate)
		if err != nil {
			t.Fatal(err)
		}
		// 10 s of content play in 10/|rate| s.
		if want := keyBytes * 8 * int64(abs(rate)) / 10; got < want-1 || got > want+1 {
			t.Errorf("rate %d: %d bit/s, want %d", rate, got, want)
		}
	}
	if _, err := TrickRateBitrate(ix, 5); !errors.Is(err, ErrTrickRate) {
		t.Errorf("rate 5: error %v, want ErrTrickRate", err)
	}
	if _, err := TrickRateBitrate(mediatest.SynthAudioOnly(5), 2); !errors.Is(err, ErrTrickRate) {
		t.Errorf("no video: error %v, want ErrTrickRate", err)
	}
}
