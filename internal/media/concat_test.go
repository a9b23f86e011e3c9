package media_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	mp4build "github.com/jitstream/jitstream/internal/build/mp4"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/mediatest"
	"github.com/jitstream/jitstream/internal/testutil/probe"
)

// clip is media.Clip that fails the test on an error.
func clip(tb testing.TB, ix *media.Index, start, end time.Duration) *media.Index {
	tb.Helper()
	c, err := media.Clip(ix, start, end)
	if err != nil {
		tb.Fatalf("Clip(%v, %v): %v", start, end, err)
	}
	return c
}

// synth is mediatest.Synth with its object renamed, so that parts made
// from different recordings name different objects.
func synth(object string, seconds, fps, gop int, noAudio bool) *media.Index {
	ix := mediatest.Synth(seconds, fps, gop, noAudio)
	ix.Chapters[0].Object = object
	return ix
}

// rescaled returns a copy of ix whose video track has timescale ts (its
// durations, offsets and MediaTime converted exactly: ts is a multiple of
// the frame rate).
func rescaled(ix *media.Index, ts uint32) *media.Index {
	out := *ix
	out.Tracks = slices.Clone(ix.Tracks)
	v := *ix.Tracks[0]
	from := v.Timescale
	v.Timescale = ts
	v.MediaTime = media.Rescale(v.MediaTime, from, ts)
	v.Samples.Dur = slices.Clone(v.Samples.Dur)
	for i, d := range v.Samples.Dur {
		v.Samples.Dur[i] = uint32(media.Rescale(int64(d), from, ts))
	}
	v.Samples.CTO = slices.Clone(v.Samples.CTO)
	for i, c := range v.Samples.CTO {
		v.Samples.CTO[i] = int32(media.Rescale(int64(c), from, ts))
	}
	v.Samples.DTS = nil
	v.Samples.Derive()
	out.Tracks[0] = &v
	return &out
}

// withEntry returns a copy of ix whose video track has the sample entry e.
func withEntry(ix *media.Index, e []byte) *media.Index {
	out := *ix
	out.Tracks = slices.Clone(ix.Tracks)
	v := *ix.Tracks[0]
	v.SampleEntries = [][]byte{e}
	out.Tracks[0] = &v
	return &out
}

// withMediaTime returns a copy of ix whose video track has MediaTime mt.
func withMediaTime(ix *media.Index, mt int64) *media.Index {
	out := *ix
	out.Tracks = slices.Clone(ix.Tracks)
	v := *ix.Tracks[0]
	v.MediaTime = mt
	out.Tracks[0] = &v
	return &out
}

func TestConcat(t *testing.T) {
	a := synth("a", 4, 30, 30, false)        // 4 s, video MediaTime 6000 (two frames at 90 kHz)
	b := synth("b", 2, 30, 30, false)        // 2 s
	long := synth("long", 12, 30, 30, false) // a program, clipped below
	silent := synth("silent", 3, 30, 30, true)
	const frame = 3000 // a video frame at 90 kHz
	for _, tc := range []struct {
		name  string
		parts []*media.Index
		kinds []media.Kind
		// wantShift[k] is the composition offset shift of the video of
		// part k (nil: MediaTime - part's MediaTime).
		wantShift   []int64
		wantEntries int // sample entries of the video track
	}{
		{name: "two recordings", parts: []*media.Index{a, b}, kinds: []media.Kind{media.KindVideo, media.KindAudio}, wantEntries: 1},
		{name: "ad, program split, ad, rest", parts: []*media.Index{b, clip(t, long, 0, 4*time.Second), a, clip(t, long, 4*time.Second, 0)},
			kinds: []media.Kind{media.KindVideo, media.KindAudio}, wantEntries: 1},
		{name: "the same clip twice", parts: []*media.Index{clip(t, long, 2*time.Second, 5*time.Second), clip(t, long, 2*time.Second, 5*time.Second)},
			kinds: []media.Kind{media.KindVideo, media.KindAudio}, wantEntries: 1},
		{name: "one part without audio", parts: []*media.Index{a, silent, b}, kinds: []media.Kind{media.KindVideo}, wantEntries: 1},
		{name: "another timescale", parts: []*media.Index{a, rescaled(b, 30000)}, kinds: []media.Kind{media.KindVideo, media.KindAudio}, wantEntries: 1},
		{name: "another sample entry", parts: []*media.Index{a, withEntry(b, []byte("avc1-other")), a},
			kinds: []media.Kind{media.KindVideo, media.KindAudio}, wantEntries: 2},
		// A later part presented from a smaller MediaTime: shifted later.
		{name: "smaller media time later", parts: []*media.Index{a, withMediaTime(b, frame)},
			kinds: []media.Kind{media.KindVideo, media.KindAudio}, wantShift: []int64{0, frame}, wantEntries: 1},
		// A later part whose MediaTime exceeds the first's by more than its
		// smallest composition offset (0): not shifted (offsets stay >= 0).
		{name: "larger media time later", parts: []*media.Index{a, withMediaTime(b, 10*frame)},
			kinds: []media.Kind{media.KindVideo, media.KindAudio}, wantShift: []int64{0, 0}, wantEntries: 1},
		// A mid-GOP clip after a whole recording: its MediaTime includes the
		// frames before its start, beyond what offsets can absorb.
		{name: "clip off a keyframe", parts: []*media.Index{a, clip(t, long, 2500*time.Millisecond, 6*time.Second)},
			kinds: []media.Kind{media.KindVideo, media.KindAudio}, wantShift: []int64{0, 0}, wantEntries: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := media.Concat(tc.parts)
			if err != nil {
				t.Fatal(err)
			}
			if err := got.Validate(); err != nil {
				t.Fatal(err)
			}
			var kinds []media.Kind
			for _, tr := range got.Tracks {
				kinds = append(kinds, tr.Kind)
			}
			if !slices.Equal(kinds, tc.kinds) {
				t.Fatalf("tracks %v, want %v", kinds, tc.kinds)
			}
			// Chapters: the parts' in order, one entry each.
			var objects, wantObjects []string
			for _, c := range got.Chapters {
				objects = append(objects, c.Object)
			}
			for _, p := range tc.parts {
				for _, c := range p.Chapters {
					wantObjects = append(wantObjects, c.Object)
				}
			}
			if !slices.Equal(objects, wantObjects) {
				t.Errorf("chapters %v, want %v", objects, wantObjects)
			}
			if n := len(got.Video().SampleEntries); got.Video() != nil && n != tc.wantEntries {
				t.Errorf("%d video sample entries, want %d", n, tc.wantEntries)
			}
			checkConcat(t, tc.parts, got, tc.wantShift)
		})
	}
}

// checkConcat checks the samples and timing of got, the concatenation of
// parts: the reference track holds every sample of every part, end to
// end, its composition offsets shifted by wantShift[k] (default MediaTime
// - the part's); the other track's part k is presented from where the
// reference's part k is, holding the part's samples but possibly its last
// ones.
func checkConcat(t *testing.T, parts []*media.Index, got *media.Index, wantShift []int64) {
	t.Helper()
	ref := got.Reference()
	for _, tr := range got.Tracks {
		s := &tr.Samples
		if tr.MediaTime != parts[0].Tracks[0].MediaTime && tr.Kind == media.KindVideo {
			t.Errorf("video MediaTime %d, want the first part's %d", tr.MediaTime, parts[0].Tracks[0].MediaTime)
		}
		i := 0      // the result's sample
		chap := 0   // the result's first chapter of the part
		var v int64 // the reference part's start
		for k, p := range parts {
			pt := p.Video()
			if tr.Kind == media.KindAudio {
				pt = p.Audio()
			}
			ps := &pt.Samples
			conv := func(x int64) int64 { return media.Rescale(x, pt.Timescale, tr.Timescale) }
			// The part's samples, in its chapters.
			first := i
			for j := range ps.Len() {
				if i >= s.Len() || s.Offset[i] != ps.Offset[j] || s.Size[i] != ps.Size[j] || s.IsSync(i) != ps.IsSync(j) ||
					s.Chapter(i) != chap+ps.Chapter(j) {
					if tr != ref && k+1 < len(parts) && j > 0 {
						break // the tail left out
					}
					t.Fatalf("%s track: part %d sample %d is not the result's sample %d", tr.Kind, k, j, i)
				}
				if d := s.ChapterDesc[s.Chapter(i)]; !bytes.Equal(tr.SampleEntries[d-1], pt.SampleEntries[ps.ChapterDesc[ps.Chapter(j)]-1]) {
					t.Fatalf("%s track: part %d sample %d has another sample entry", tr.Kind, k, j)
				}
				i++
			}
			if tr == ref {
				if s.DTS[first] != v {
					t.Errorf("reference part %d starts at %d, want %d", k, s.DTS[first], v)
				}
				shift := tr.MediaTime - conv(pt.MediaTime)
				if wantShift != nil {
					shift = wantShift[k]
				}
				for j := range ps.Len() {
					if got, want := int64(s.CompOffset(first+j)), conv(int64(ps.CompOffset(j)))+shift; got != want {
						t.Fatalf("reference part %d sample %d: composition offset %d, want %d", k, j, got, want)
					}
					if s.CompOffset(first+j) < 0 {
						t.Fatalf("reference part %d sample %d: negative composition offset", k, j)
					}
				}
				if k == 0 && shift != 0 {
					t.Errorf("the first part is shifted")
				}
				v += conv(pt.Duration())
			} else if k > 0 {
				// Presented where the reference part is: its MediaTime at
				// the reference part's start (plus what the reference
				// part is late).
				rp := ref.Samples.DTS[refStart(got, parts, k)]
				late := refLate(got, parts, k)
				want := media.Rescale(rp+late, ref.Timescale, tr.Timescale) + tr.MediaTime - conv(pt.MediaTime)
				if s.DTS[first] != want {
					t.Errorf("%s part %d starts at %d, want %d", tr.Kind, k, s.DTS[first], want)
				}
				if first > 0 && s.Dur[first-1] == 0 {
					t.Errorf("%s part %d: the sample before lasts 0", tr.Kind, k)
				}
			}
			chap += len(p.Chapters)
		}
		if i != s.Len() {
			t.Errorf("%s track: %d samples, the parts have %d", tr.Kind, s.Len(), i)
		}
	}
}

// refStart is the index of the first sample of part k in got's reference
// track.
func refStart(got *media.Index, parts []*media.Index, k int) int {
	n := 0
	for _, p := range parts[:k] {
		n += refOf(got, p).Samples.Len()
	}
	return n
}

// refLate is how much later than its start part k's MediaTime is
// presented on got's reference track.
func refLate(got *media.Index, parts []*media.Index, k int) int64 {
	ref := got.Reference()
	pt := refOf(got, parts[k])
	i := refStart(got, parts, k)
	// Presented: DTS + CTO - MediaTime; the part's MediaTime sample is the
	// one with composition time MediaTime in the part.
	shift := int64(ref.Samples.CompOffset(i)) - media.Rescale(int64(pt.Samples.CompOffset(0)), pt.Timescale, ref.Timescale)
	want := ref.MediaTime - media.Rescale(pt.MediaTime, pt.Timescale, ref.Timescale)
	return shift - want
}

func refOf(got *media.Index, p *media.Index) *media.Track {
	if got.Reference().Kind == media.KindVideo {
		return p.Video()
	}
	return p.Audio()
}

func TestConcatErrors(t *testing.T) {
	a := synth("a", 2, 30, 30, false)
	audioOnly := mediatest.SynthAudioOnly(2)
	silent := synth("silent", 2, 30, 30, true)
	for _, tc := range []struct {
		name  string
		parts []*media.Index
		err   error
	}{
		{"no parts", nil, nil},
		{"a nil part", []*media.Index{a, nil}, media.ErrInvalid},
		{"no chapters", []*media.Index{a, {Tracks: a.Tracks}}, media.ErrInvalid},
		{"nothing in common", []*media.Index{audioOnly, silent}, media.ErrUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := media.Concat(tc.parts)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("error %v does not wrap %v", err, tc.err)
			}
		})
	}
	// Audio only, everywhere: the audio tracks.
	got, err := media.Concat([]*media.Index{audioOnly, a})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Tracks) != 1 || got.Tracks[0].Kind != media.KindAudio {
		t.Fatalf("audio only and audio+video: tracks %v, want the audio", got.Tracks)
	}
}

// TestConcatPlays: the progressive MP4 of real recordings concatenated as
// a server-side playlist does (a bumper, an ad, a program split by a
// mid-roll ad, a post-roll) decodes, with ffmpeg, to the parts' frames in
// order; its audio lasts as long as its video (no drift).
func TestConcatPlays(t *testing.T) {
	bumper := mediatest.Index(t, fixtures.Clip(t, 2, "rgbtestsrc", 880))
	ad := mediatest.Index(t, fixtures.Clip(t, 4, "smptebars", 660))
	program := mediatest.Index(t, fixtures.Clip(t, 12, "testsrc2", 440))
	// Whole recordings as they are (their audio with its priming skipped
	// by the edit), parts of the program as Clip cuts them.
	parts := []*media.Index{
		bumper, ad, clip(t, program, 0, 4*time.Second),
		ad, clip(t, program, 4*time.Second, 0), bumper,
	}
	ix, err := media.Concat(parts)
	if err != nil {
		t.Fatal(err)
	}
	checkConcat(t, parts, ix, nil)
	f, err := mp4build.Progressive(ix, mp4build.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	path := mediatest.WriteTemp(t, mediatest.Materialize(t, f), "stitched.mp4")
	frames := func(src string) []string {
		return probe.MD5s(probe.FrameMD5(t, "-i", src, "-map", "0:v:0", "-fps_mode", "passthrough"))
	}
	bf, af, pf := frames(bumper.Chapters[0].Object), frames(ad.Chapters[0].Object), frames(program.Chapters[0].Object)
	var want []string
	for _, p := range [][]string{bf, af, pf[:4*30], af, pf[4*30:], bf} {
		want = append(want, p...)
	}
	got := frames(path)
	if !slices.Equal(got, want) {
		t.Fatalf("ffmpeg decoded %d frames, want the %d of the parts in order", len(got), len(want))
	}
	probe.RequireClean(t, path)
	// Audio and video end together, within an AAC frame or two, when the
	// parts do.
	var length float64
	for _, p := range parts {
		length += p.Video().Seconds(p.Video().Duration())
	}
	var vd, ad2 float64
	for _, s := range probe.Streams(t, path) {
		switch s.CodecType {
		case "video":
			vd = s.Duration
		case "audio":
			ad2 = s.Duration
		}
	}
	if vd-length > 0.01 || length-vd > 0.01 || ad2-vd > 0.05 || vd-ad2 > 0.05 {
		t.Errorf("video lasts %.3f s, audio %.3f s: want %.3f s both", vd, ad2, length)
	}
}
