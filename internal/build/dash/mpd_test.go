package dash

import (
	"bytes"
	"encoding/xml"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/jitstream/jitstream/internal/build/hls"
	"github.com/jitstream/jitstream/internal/build/trick"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/testutil/cmaftest"
	"github.com/jitstream/jitstream/internal/testutil/mediatest"
)

// An MPD as the tests read it, independently of the writer's model.
type tMPD struct {
	XMLName       xml.Name  `xml:"urn:mpeg:dash:schema:mpd:2011 MPD"`
	Type          string    `xml:"type,attr"`
	Profiles      string    `xml:"profiles,attr"`
	Duration      string    `xml:"mediaPresentationDuration,attr"`
	MinBufferTime string    `xml:"minBufferTime,attr"`
	BaseURL       string    `xml:"BaseURL"`
	Periods       []tPeriod `xml:"Period"`
}

type tPeriod struct {
	Start string `xml:"start,attr"`
	Sets  []tSet `xml:"AdaptationSet"`
}

type tSet struct {
	ID               int      `xml:"id,attr"`
	ContentType      string   `xml:"contentType,attr"`
	MimeType         string   `xml:"mimeType,attr"`
	Lang             string   `xml:"lang,attr"`
	SegmentAlignment string   `xml:"segmentAlignment,attr"`
	StartWithSAP     int      `xml:"startWithSAP,attr"`
	MaxWidth         uint32   `xml:"maxWidth,attr"`
	MaxHeight        uint32   `xml:"maxHeight,attr"`
	MaxFrameRate     string   `xml:"maxFrameRate,attr"`
	Essential        []tDesc  `xml:"EssentialProperty"`
	Roles            []tDesc  `xml:"Role"`
	Reps             []tRep   `xml:"Representation"`
	Extra            []string `xml:"SegmentTemplate"` // must be absent: templates are per representation
}

type tDesc struct {
	Scheme string `xml:"schemeIdUri,attr"`
	Value  string `xml:"value,attr"`
}

type tRep struct {
	ID                string  `xml:"id,attr"`
	Bandwidth         int64   `xml:"bandwidth,attr"`
	Codecs            string  `xml:"codecs,attr"`
	Width             uint32  `xml:"width,attr"`
	Height            uint32  `xml:"height,attr"`
	FrameRate         string  `xml:"frameRate,attr"`
	AudioSamplingRate uint32  `xml:"audioSamplingRate,attr"`
	MaxPlayoutRate    float64 `xml:"maxPlayoutRate,attr"`
	CodingDependency  string  `xml:"codingDependency,attr"`
	Channels          []tDesc `xml:"AudioChannelConfiguration"`
	Template          struct {
		Timescale      uint32 `xml:"timescale,attr"`
		PTO            int64  `xml:"presentationTimeOffset,attr"`
		Initialization string `xml:"initialization,attr"`
		Media          string `xml:"media,attr"`
		StartNumber    *int   `xml:"startNumber,attr"`
		Timeline       struct {
			S []struct {
				T *int64 `xml:"t,attr"`
				D int64  `xml:"d,attr"`
				R int    `xml:"r,attr"`
			} `xml:"S"`
		} `xml:"SegmentTimeline"`
	} `xml:"SegmentTemplate"`
}

// segments expands a representation's SegmentTimeline into segment start
// times and durations.
func (r *tRep) segments(tb testing.TB) (starts, durs []int64) {
	tb.Helper()
	var at int64
	for i, s := range r.Template.Timeline.S {
		if s.T != nil {
			at = *s.T
		} else if i == 0 {
			at = 0
		}
		if s.D <= 0 || s.R < 0 {
			tb.Fatalf("%s: S d=%d r=%d", r.ID, s.D, s.R)
		}
		for range s.R + 1 {
			starts, durs = append(starts, at), append(durs, s.D)
			at += s.D
		}
	}
	return starts, durs
}

var (
	durationRe  = regexp.MustCompile(`^PT(\d+)(\.\d{1,3})?S$`)
	frameRateRe = regexp.MustCompile(`^\d+(/\d+)?$`)
)

func parseDuration(tb testing.TB, s string) time.Duration {
	tb.Helper()
	if !durationRe.MatchString(s) {
		tb.Fatalf("duration %q not of the form PTn.nnnS", s)
	}
	d, err := time.ParseDuration(strings.ToLower(s[2:]))
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

func parseFrameRate(tb testing.TB, s string) float64 {
	tb.Helper()
	if !frameRateRe.MatchString(s) {
		tb.Fatalf("frameRate %q is not a FrameRateType", s)
	}
	num, den, ok := strings.Cut(s, "/")
	n, _ := strconv.ParseFloat(num, 64)
	d := 1.0
	if ok {
		d, _ = strconv.ParseFloat(den, 64)
	}
	return n / d
}

// tfdts returns the tfdt and the summed sample durations of each media
// segment mp4build builds for the track (decoded with mp4ff from the
// segment's moof, which is generated data); segments without samples are
// -1.
func tfdts(tb testing.TB, ix *media.Index, t *media.Track, segs []media.Segment) (starts, durs []int64) {
	tb.Helper()
	for n := range segs {
		f := cmaftest.MediaSegment(tb, ix, []*media.Track{t}, segs, n)
		box, err := mp4.DecodeBox(0, bytes.NewReader(f.Pieces[0].Data))
		if err != nil {
			tb.Fatal(err)
		}
		moof := box.(*mp4.MoofBox)
		if len(moof.Trafs) == 0 {
			starts, durs = append(starts, -1), append(durs, -1)
			continue
		}
		var d int64
		for _, traf := range moof.Trafs {
			for _, trun := range traf.Truns {
				d += int64(trun.AddSampleDefaultValues(traf.Tfhd, nil))
			}
		}
		starts, durs = append(starts, int64(moof.Traf.Tfdt.BaseMediaDecodeTime())), append(durs, d)
	}
	return starts, durs
}

// checkMPD checks the MPD of ix built with opt.
func checkMPD(t *testing.T, b []byte, ix *media.Index, segs []media.Segment, opt Options, checkTfdt bool) {
	t.Helper()
	var m tMPD
	if err := xml.Unmarshal(b, &m); err != nil {
		t.Fatalf("MPD does not parse: %v\n%s", err, b)
	}
	if !bytes.HasPrefix(b, []byte(xml.Header)) {
		t.Error("no XML declaration")
	}
	wantProfiles := opt.Profiles
	if wantProfiles == "" {
		wantProfiles = ProfileLive
	}
	if m.Type != "static" || m.Profiles != wantProfiles || len(m.Periods) != 1 || m.BaseURL != opt.BaseURL {
		t.Fatalf("type %q, profiles %q, %d periods, BaseURL %q", m.Type, m.Profiles, len(m.Periods), m.BaseURL)
	}
	if d := parseDuration(t, m.Duration); (d - ix.Duration()).Abs() > time.Millisecond {
		t.Errorf("mediaPresentationDuration %s, asset lasts %v", m.Duration, ix.Duration())
	}
	ref := ix.Reference()
	if mb := parseDuration(t, m.MinBufferTime); mb <= 0 || (opt.MinBufferTime == 0 && mb < time.Duration(float64(time.Second)*ref.Seconds(maxSeg(segs)))) ||
		(opt.MinBufferTime != 0 && mb != opt.MinBufferTime.Round(time.Millisecond)) {
		t.Errorf("minBufferTime %s", m.MinBufferTime)
	}

	// Expected tracks, by representation ID.
	tracks := map[string]*media.Track{}
	var videos []*media.Track
	for _, tr := range ix.Tracks {
		if slices.Contains(opt.Exclude, tr.ID) || (tr.Kind != media.KindVideo && tr.Kind != media.KindAudio) {
			continue
		}
		tracks[hls.TrackName(tr)] = tr
		if tr.Kind == media.KindVideo {
			videos = append(videos, tr)
		}
	}
	prefix := opt.TrickPrefix
	if prefix == "" {
		prefix = "trick/"
	}
	trickMode := len(videos) > 0 && !opt.NoTrickMode
	if trickMode {
		for _, v := range videos {
			tracks[prefix+hls.TrackName(v)] = trick.Keyframes(v)
		}
	}
	initTmpl, mediaTmpl := opt.Initialization, opt.Media
	if initTmpl == "" {
		initTmpl, mediaTmpl = "$RepresentationID$/init.mp4", "$RepresentationID$/$Number$.m4s"
	}

	sets := m.Periods[0].Sets
	ids := map[int]bool{}
	seen := map[string]bool{}
	var videoSet int
	for _, as := range sets {
		if ids[as.ID] || as.ID <= 0 {
			t.Errorf("AdaptationSet id %d not unique and positive", as.ID)
		}
		ids[as.ID] = true
		if as.SegmentAlignment != "true" || as.StartWithSAP != 1 || len(as.Extra) != 0 {
			t.Errorf("AdaptationSet %d: segmentAlignment %q startWithSAP %d", as.ID, as.SegmentAlignment, as.StartWithSAP)
		}
		isTrick := len(as.Essential) > 0
		switch {
		case isTrick:
			if len(as.Essential) != 1 || as.Essential[0].Scheme != "http://dashif.org/guidelines/trickmode" || as.Essential[0].Value != strconv.Itoa(videoSet) || videoSet == 0 {
				t.Errorf("trick-mode EssentialProperty %+v, want the trick-mode scheme naming set %d", as.Essential, videoSet)
			}
		case as.ContentType == "video":
			videoSet = as.ID
		}
		for _, r := range as.Reps {
			tr := tracks[r.ID]
			if tr == nil || seen[r.ID] {
				t.Errorf("unexpected or repeated representation %q", r.ID)
				continue
			}
			seen[r.ID] = true
			if r.Codecs != tr.Codec || r.Bandwidth <= 0 {
				t.Errorf("%s: codecs %q bandwidth %d, want %q and a positive bandwidth", r.ID, r.Codecs, r.Bandwidth, tr.Codec)
			}
			if want := hls.PeakBitrate(ix, []*media.Track{tr}, segs, hls.FMP4SampleOverhead, hls.FMP4SegmentOverhead); r.Bandwidth != want {
				t.Errorf("%s: bandwidth %d, want %d", r.ID, r.Bandwidth, want)
			}
			switch tr.Kind {
			case media.KindVideo:
				if as.ContentType != "video" || as.MimeType != "video/mp4" || r.Width != tr.Width || r.Height != tr.Height ||
					as.MaxWidth < r.Width || as.MaxHeight < r.Height {
					t.Errorf("%s: %s %s %dx%d (max %dx%d), want video/mp4 %dx%d", r.ID, as.ContentType, as.MimeType, r.Width, r.Height, as.MaxWidth, as.MaxHeight, tr.Width, tr.Height)
				}
				fr := parseFrameRate(t, r.FrameRate)
				if isTrick {
					if r.CodingDependency != "false" || r.MaxPlayoutRate <= 1 {
						t.Errorf("%s: codingDependency %q maxPlayoutRate %v", r.ID, r.CodingDependency, r.MaxPlayoutRate)
					}
					if want := float64(tr.Samples.Len()) / tr.Seconds(tr.Duration()); math.Abs(fr-want) > 0.5 {
						t.Errorf("%s: frameRate %s, key frames come at %.3f/s", r.ID, r.FrameRate, want)
					}
				} else {
					num, den := hls.FrameRate(tr)
					if math.Abs(fr-float64(num)/float64(den)) > 1e-9 || as.MaxFrameRate == "" {
						t.Errorf("%s: frameRate %s, want %d/%d; maxFrameRate %q", r.ID, r.FrameRate, num, den, as.MaxFrameRate)
					}
				}
			case media.KindAudio:
				if as.ContentType != "audio" || as.MimeType != "audio/mp4" || as.Lang != hls.Language(tr.Language) || r.AudioSamplingRate != tr.SampleRate {
					t.Errorf("%s: %s %s lang %q rate %d", r.ID, as.ContentType, as.MimeType, as.Lang, r.AudioSamplingRate)
				}
				if len(r.Channels) != 1 || r.Channels[0].Value != strconv.Itoa(int(tr.Channels)) ||
					r.Channels[0].Scheme != "urn:mpeg:dash:23003:3:audio_channel_configuration:2011" {
					t.Errorf("%s: AudioChannelConfiguration %+v", r.ID, r.Channels)
				}
			}

			// SegmentTemplate and SegmentTimeline.
			st := &r.Template
			if st.Timescale != tr.Timescale || st.PTO != tr.MediaTime || st.StartNumber == nil || *st.StartNumber != 0 ||
				st.Initialization != initTmpl || st.Media != mediaTmpl {
				t.Errorf("%s: SegmentTemplate timescale %d PTO %d init %q media %q", r.ID, st.Timescale, st.PTO, st.Initialization, st.Media)
			}
			starts, durs := r.segments(t)
			spans := hls.TrackSegments(ix, tr, segs)
			for len(spans) > 0 && spans[len(spans)-1].Start == spans[len(spans)-1].End {
				spans = spans[:len(spans)-1]
			}
			if len(starts) != len(spans) || len(starts) == 0 {
				t.Errorf("%s: %d timeline segments, want %d", r.ID, len(starts), len(spans))
				continue
			}
			if starts[0] != 0 || starts[len(starts)-1]+durs[len(durs)-1] != tr.Duration() {
				t.Errorf("%s: timeline [%d, %d), track lasts %d", r.ID, starts[0], starts[len(starts)-1]+durs[len(durs)-1], tr.Duration())
			}
			for n := range starts {
				if starts[n] != spans[n].Start || durs[n] != spans[n].End-spans[n].Start {
					t.Errorf("%s: segment %d at %d+%d, want %v", r.ID, n, starts[n], durs[n], spans[n])
				}
			}
			if checkTfdt {
				// S@t are the tfdt of the segments mp4build builds, and S@d
				// their sample durations.
				tf, td := tfdts(t, ix, tr, segs)
				for n := range starts {
					if tf[n] != starts[n] || td[n] != durs[n] {
						t.Errorf("%s: segment %d: timeline %d+%d, built segment tfdt %d, duration %d", r.ID, n, starts[n], durs[n], tf[n], td[n])
					}
				}
			}
		}
	}
	for id := range tracks {
		if !seen[id] {
			t.Errorf("no representation %q", id)
		}
	}
	if len(videos) > 0 && sets[0].ContentType != "video" {
		t.Errorf("first AdaptationSet is %s, want video", sets[0].ContentType)
	}
}

func maxSeg(segs []media.Segment) int64 {
	var d int64
	for _, s := range segs {
		d = max(d, s.End-s.Start)
	}
	return d
}

// synthTwoAudio is synth with a second audio track in French.
func synthTwoAudio() *media.Index {
	ix := mediatest.Synth(120, 30, 60, false)
	a := *ix.Tracks[1]
	a.ID, a.Language = 3, "fra"
	ix.Tracks = append(ix.Tracks, &a)
	return ix
}

func TestMPD(t *testing.T) {
	fixture := func(i int) func(testing.TB) *media.Index {
		return func(tb testing.TB) *media.Index { return mediatest.Index(tb, fixtureCases[i].Chapters(tb)...) }
	}
	cases := []struct {
		name string
		ix   func(testing.TB) *media.Index
		opt  Options
		tfdt bool
	}{
		{"h264 aac", fixture(0), Options{}, true},
		{"h265 aac", fixture(1), Options{}, true},
		{"two chapters", fixture(2), Options{}, true},
		{"h264 without audio", fixture(0), Options{Exclude: []uint32{2}}, false},
		{"h264 without video", fixture(0), Options{Exclude: []uint32{1}}, false},
		{"h264 without trick mode", fixture(0), Options{NoTrickMode: true}, false},
		{"h264 options", fixture(0), Options{
			Profiles: ProfileLive + "," + ProfileCMAF, MinBufferTime: 1500 * time.Millisecond, BaseURL: "https://cdn.example/a/",
			Initialization: "$RepresentationID$-init.mp4", Media: "$RepresentationID$-$Number%05d$.m4s", TrickPrefix: "tm-",
		}, false},
		{"synthetic 60 min", func(testing.TB) *media.Index { return mediatest.Synth(3600, 30, 60, false) }, Options{}, true},
		{"synthetic GOP 4 s", func(testing.TB) *media.Index { return mediatest.Synth(300, 30, 120, false) }, Options{}, true},
		{"synthetic video only", func(testing.TB) *media.Index { return mediatest.Synth(60, 30, 60, true) }, Options{}, true},
		{"synthetic audio only", func(testing.TB) *media.Index { return mediatest.SynthAudioOnly(60) }, Options{}, true},
		{"synthetic two audio languages", func(testing.TB) *media.Index { return synthTwoAudio() }, Options{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ix := c.ix(t)
			segs := ix.Segments(0)
			b, err := MPD(ix, segs, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			checkMPD(t, b, ix, segs, c.opt, c.tfdt)
			if t.Failed() && len(b) < 20000 {
				t.Logf("MPD:\n%s", b)
			}
		})
	}
}

// TestMPDCompression checks that runs of equal segment durations are
// written as one S with @r, and @t only where needed.
func TestMPDCompression(t *testing.T) {
	ix := mediatest.Synth(3600, 30, 60, false)
	b, err := MPD(ix, ix.Segments(0), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var m tMPD
	if err := xml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	video := m.Periods[0].Sets[0].Reps[0]
	// 900 segments of exactly 4 s: one S.
	if s := video.Template.Timeline.S; len(s) != 1 || s[0].R != 899 || s[0].T == nil || *s[0].T != 0 {
		t.Errorf("video timeline %+v, want one S with t=0 r=899", s)
	}
	for _, as := range m.Periods[0].Sets {
		for _, r := range as.Reps {
			for i, s := range r.Template.Timeline.S {
				if i > 0 && s.T != nil {
					t.Errorf("%s: S %d has @t in a contiguous timeline", r.ID, i)
				}
			}
		}
	}
	if n := bytes.Count(b, []byte("<S ")); n > 1000 {
		t.Errorf("%d S elements", n)
	}
}

func TestMPDErrors(t *testing.T) {
	if _, err := MPD(&media.Index{}, nil, Options{}); err == nil {
		t.Error("no error for an empty index")
	}
	// An audio track with a gap: one 12-second sample leaves segments
	// without audio in the middle, which $Number$ cannot address.
	ix := mediatest.Synth(60, 30, 60, false)
	a := ix.Tracks[1]
	a.Samples.Dur[100] = 48000 * 12
	a.Samples.Derive()
	if _, err := MPD(ix, ix.Segments(0), Options{}); err == nil || !strings.Contains(err.Error(), "no samples in segment") {
		t.Errorf("error %v, want one about a segment without samples", err)
	}
	// Without that track, fine.
	if _, err := MPD(ix, ix.Segments(0), Options{Exclude: []uint32{2}}); err != nil {
		t.Error(err)
	}
}

// TestMPDShortAudio checks that audio ending before the last segment is
// left out of its timeline there rather than failing.
func TestMPDShortAudio(t *testing.T) {
	ix := mediatest.Synth(60, 30, 60, false)
	a := ix.Tracks[1]
	n := a.Samples.Len() - 48000*5/1024 // drop the last 5 s of audio
	s := &a.Samples
	s.Offset, s.Size, s.Dur = s.Offset[:n], s.Size[:n], s.Dur[:n]
	s.ChapterStart[1] = n
	s.Derive()
	segs := ix.Segments(0)
	b, err := MPD(ix, segs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkMPD(t, b, ix, segs, Options{}, true)
}

// BenchmarkMPD60min builds the MPD of a 60-minute recording (900 segments,
// video, audio and trick mode).
func BenchmarkMPD60min(b *testing.B) {
	ix := mediatest.Synth(3600, 30, 60, false)
	segs := ix.Segments(0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := MPD(ix, segs, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMPDUnalignedVideo checks a second video track whose key frames do not
// start the segments: it is offered, but without trick mode.
func TestMPDUnalignedVideo(t *testing.T) {
	ix := mediatest.Synth(60, 30, 120, false)
	// Key frames every 8 s, 0.5 s into a segment: with 4 s segments, every
	// other segment has none.
	mediatest.AddUnalignedVideo(ix, 240)
	segs := ix.Segments(0)
	b, err := MPD(ix, segs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.Contains(s, `id="v3"`) || !strings.Contains(s, `id="trick/v1"`) || strings.Contains(s, `id="trick/v3"`) {
		t.Errorf("want v3 offered without trick mode, v1 with:\n%s", s)
	}
	if _, err := MPD(ix, segs, Options{Exclude: []uint32{1, 2, 3}}); err == nil {
		t.Error("no error for an MPD without tracks")
	}
}
