package hls

import (
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/testutil/mediatest"
)

var (
	resolutionRe = regexp.MustCompile(`^\d+x\d+$`)
	frameRateRe  = regexp.MustCompile(`^\d+\.\d{3}$`)
)

// checkMaster checks the fMP4 multivariant playlist of ix built with opt.
func checkMaster(t *testing.T, b []byte, ix *media.Index, segs []media.Segment, opt MasterOptions) {
	t.Helper()
	version, independent, tags, err := parseMaster(b)
	if err != nil {
		t.Fatalf("malformed playlist: %v\n%s", err, b)
	}
	if version != 7 || !independent {
		t.Errorf("version %d, independent segments %v; want 7, true", version, independent)
	}
	var videos, audios []*media.Track
	for _, tr := range ix.Tracks {
		if slices.Contains(opt.Exclude, tr.ID) {
			continue
		}
		switch tr.Kind {
		case media.KindVideo:
			videos = append(videos, tr)
		case media.KindAudio:
			audios = append(audios, tr)
		}
	}
	uri := func(tr *media.Track) string {
		if opt.MediaURI != nil {
			return opt.MediaURI(tr)
		}
		return TrackName(tr) + "/index.m3u8"
	}
	byName := map[string][]masterTag{}
	for _, tag := range tags {
		byName[tag.name] = append(byName[tag.name], tag)
	}
	q := func(tag masterTag, name string) string {
		t.Helper()
		v, ok := unquote(tag.attrs[name])
		if !ok {
			t.Errorf("%s: %s=%s is not a quoted string", tag.name, name, tag.attrs[name])
		}
		return v
	}
	bandwidth := func(tag masterTag, name string) int64 {
		t.Helper()
		n, err := strconv.ParseInt(tag.attrs[name], 10, 64)
		if err != nil || n <= 0 {
			t.Errorf("%s: %s=%q is not a positive decimal integer", tag.name, name, tag.attrs[name])
		}
		return n
	}

	// Audio renditions: only alongside video.
	renditions := byName["#EXT-X-MEDIA"]
	if len(videos) == 0 {
		audios = nil
	}
	if len(renditions) != len(audios) {
		t.Fatalf("%d EXT-X-MEDIA tags, want %d", len(renditions), len(audios))
	}
	names, defaults := map[string]bool{}, 0
	for i, tag := range renditions {
		a := audios[i]
		if tag.attrs["TYPE"] != "AUDIO" || q(tag, "GROUP-ID") != "aud" || tag.attrs["AUTOSELECT"] != "YES" {
			t.Errorf("EXT-X-MEDIA %v: want TYPE=AUDIO, GROUP-ID=\"aud\", AUTOSELECT=YES", tag.attrs)
		}
		name := q(tag, "NAME")
		if name == "" || names[name] {
			t.Errorf("EXT-X-MEDIA NAME %q empty or not unique", name)
		}
		names[name] = true
		if tag.attrs["DEFAULT"] == "YES" {
			defaults++
		}
		if got := q(tag, "URI"); got != uri(a) {
			t.Errorf("EXT-X-MEDIA URI %q, want %q", got, uri(a))
		}
		if got := q(tag, "CHANNELS"); got != strconv.Itoa(int(a.Channels)) {
			t.Errorf("EXT-X-MEDIA CHANNELS %q, want %d", got, a.Channels)
		}
		if lang := Language(a.Language); lang != "" && q(tag, "LANGUAGE") != lang {
			t.Errorf("EXT-X-MEDIA LANGUAGE %s, want %q", tag.attrs["LANGUAGE"], lang)
		} else if lang == "" && tag.attrs["LANGUAGE"] != "" {
			t.Errorf("EXT-X-MEDIA LANGUAGE %s for an undetermined language", tag.attrs["LANGUAGE"])
		}
	}
	if len(renditions) > 0 && defaults != 1 {
		t.Errorf("%d renditions with DEFAULT=YES, want 1", defaults)
	}
	var audioCodecs []string
	for _, a := range audios {
		if !slices.Contains(audioCodecs, a.Codec) {
			audioCodecs = append(audioCodecs, a.Codec)
		}
	}

	// Variants.
	variants := videos
	if len(videos) == 0 {
		for _, tr := range ix.Tracks {
			if tr.Kind == media.KindAudio && !slices.Contains(opt.Exclude, tr.ID) {
				variants = append(variants, tr)
			}
		}
	}
	inf := byName["#EXT-X-STREAM-INF"]
	if len(inf) != len(variants) {
		t.Fatalf("%d EXT-X-STREAM-INF, want %d", len(inf), len(variants))
	}
	for i, tag := range inf {
		v := variants[i]
		peak, avg := bandwidth(tag, "BANDWIDTH"), bandwidth(tag, "AVERAGE-BANDWIDTH")
		if avg > peak {
			t.Errorf("AVERAGE-BANDWIDTH %d > BANDWIDTH %d", avg, peak)
		}
		if tag.uri != uri(v) {
			t.Errorf("variant URI %q, want %q", tag.uri, uri(v))
		}
		wantCodecs := strings.Join(append([]string{v.Codec}, audioCodecs...), ",")
		if got := q(tag, "CODECS"); got != wantCodecs {
			t.Errorf("CODECS %q, want %q", got, wantCodecs)
		}
		if v.Kind != media.KindVideo {
			continue
		}
		if r := tag.attrs["RESOLUTION"]; !resolutionRe.MatchString(r) || r != strconv.Itoa(int(v.Width))+"x"+strconv.Itoa(int(v.Height)) {
			t.Errorf("RESOLUTION %q, want %dx%d", r, v.Width, v.Height)
		}
		fr := tag.attrs["FRAME-RATE"]
		num, den := FrameRate(v)
		if f, _ := strconv.ParseFloat(fr, 64); !frameRateRe.MatchString(fr) || math.Abs(f-float64(num)/float64(den)) > 0.0005 {
			t.Errorf("FRAME-RATE %q, want %.3f", fr, float64(num)/float64(den))
		}
		if len(audios) > 0 {
			if q(tag, "AUDIO") != "aud" {
				t.Errorf("AUDIO %s, want \"aud\"", tag.attrs["AUDIO"])
			}
		} else if _, ok := tag.attrs["AUDIO"]; ok {
			t.Errorf("AUDIO attribute without audio renditions")
		}
		// BANDWIDTH covers the video with the heaviest audio rendition.
		want := PeakBitrate(ix, []*media.Track{v}, segs, FMP4SampleOverhead, FMP4SegmentOverhead)
		for _, a := range audios {
			want = max(want, PeakBitrate(ix, []*media.Track{v, a}, segs, FMP4SampleOverhead, FMP4SegmentOverhead))
		}
		if peak != want {
			t.Errorf("BANDWIDTH %d, want %d", peak, want)
		}
	}

	// I-frame variants.
	iframes := byName["#EXT-X-I-FRAME-STREAM-INF"]
	want := len(videos)
	if opt.NoIFrames {
		want = 0
	}
	if len(iframes) != want {
		t.Fatalf("%d EXT-X-I-FRAME-STREAM-INF, want %d", len(iframes), want)
	}
	for i, tag := range iframes {
		v := videos[i]
		bandwidth(tag, "BANDWIDTH")
		if got := q(tag, "CODECS"); got != v.Codec {
			t.Errorf("I-frame CODECS %q, want %q", got, v.Codec)
		}
		if r := tag.attrs["RESOLUTION"]; r != strconv.Itoa(int(v.Width))+"x"+strconv.Itoa(int(v.Height)) {
			t.Errorf("I-frame RESOLUTION %q", r)
		}
		wantURI := TrackName(v) + "/iframes.m3u8"
		if opt.IFrameURI != nil {
			wantURI = opt.IFrameURI(v)
		}
		if got := q(tag, "URI"); got != wantURI {
			t.Errorf("I-frame URI %q, want %q", got, wantURI)
		}
	}
}

// synthTwoAudio is synth with a second audio track in French.
func synthTwoAudio() *media.Index {
	ix := mediatest.Synth(120, 30, 60, false)
	a := *ix.Tracks[1]
	a.ID, a.Language, a.Codec = 3, "fra", "mp4a.40.5"
	ix.Tracks = append(ix.Tracks, &a)
	return ix
}

func TestMaster(t *testing.T) {
	custom := MasterOptions{
		MediaURI:  func(tr *media.Track) string { return "media/" + TrackName(tr) + ".m3u8?token=x" },
		IFrameURI: func(tr *media.Track) string { return "trick/" + TrackName(tr) + ".m3u8" },
	}
	cases := []struct {
		name string
		ix   func(testing.TB) *media.Index
		opt  MasterOptions
	}{
		{"h264 aac", fixtureIndex(fixtureCases[0].Chapters), MasterOptions{}},
		{"h265 aac", fixtureIndex(fixtureCases[1].Chapters), MasterOptions{}},
		{"two chapters", fixtureIndex(fixtureCases[2].Chapters), MasterOptions{}},
		{"h264 without audio", fixtureIndex(fixtureCases[0].Chapters), MasterOptions{Exclude: []uint32{2}}},
		{"h264 without video", fixtureIndex(fixtureCases[0].Chapters), MasterOptions{Exclude: []uint32{1}}},
		{"h264 custom URIs", fixtureIndex(fixtureCases[0].Chapters), custom},
		{"h264 no I-frames", fixtureIndex(fixtureCases[0].Chapters), MasterOptions{NoIFrames: true}},
		{"synthetic 60 min", func(testing.TB) *media.Index { return mediatest.Synth(3600, 30, 60, false) }, MasterOptions{}},
		{"synthetic video only", func(testing.TB) *media.Index { return mediatest.Synth(60, 30, 60, true) }, MasterOptions{}},
		{"synthetic audio only", func(testing.TB) *media.Index { return mediatest.SynthAudioOnly(60) }, MasterOptions{}},
		{"synthetic two audio tracks", func(testing.TB) *media.Index { return synthTwoAudio() }, MasterOptions{}},
		{"synthetic second audio dropped", func(testing.TB) *media.Index { return synthTwoAudio() }, MasterOptions{Exclude: []uint32{3}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ix := c.ix(t)
			segs := ix.Segments(0)
			b := Master(ix, segs, c.opt)
			checkMaster(t, b, ix, segs, c.opt)
			if t.Failed() {
				t.Logf("playlist:\n%s", b)
			}
		})
	}
}

func TestMasterTwoAudio(t *testing.T) {
	ix := synthTwoAudio()
	b := string(Master(ix, ix.Segments(0), MasterOptions{}))
	for _, want := range []string{
		`NAME="Audio 2",LANGUAGE="en",DEFAULT=YES`,
		`NAME="Audio 3",LANGUAGE="fr",DEFAULT=NO`,
		`CODECS="avc1.640028,mp4a.40.2,mp4a.40.5"`,
	} {
		if !strings.Contains(b, want) {
			t.Errorf("playlist lacks %s:\n%s", want, b)
		}
	}
}

// TestMasterIFrames checks the I-frame variants: a given BANDWIDTH is
// used, and a video track whose segments do not start with key frames (a
// second camera angle with its own GOP phase) gets none.
func TestMasterIFrames(t *testing.T) {
	ix := mediatest.Synth(60, 30, 60, false)
	v2 := mediatest.AddUnalignedVideo(ix, 60)
	segs := ix.Segments(0)
	b := string(Master(ix, segs, MasterOptions{IFrameBandwidth: func(tr *media.Track) int64 { return int64(1000 * tr.ID) }}))
	if !strings.Contains(b, "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1000,") || strings.Count(b, "#EXT-X-I-FRAME-STREAM-INF") != 1 ||
		!strings.Contains(b, `URI="v1/iframes.m3u8"`) || strings.Count(b, "#EXT-X-STREAM-INF") != 2 {
		t.Errorf("want two variants and one I-frame variant for v1 with BANDWIDTH=1000:\n%s", b)
	}
	if _, err := FMP4IFrames(ix, v2, segs); err == nil {
		t.Error("FMP4IFrames: no error for a track whose segments start mid-GOP")
	}
}

func TestTSMaster(t *testing.T) {
	cases := []struct {
		name          string
		ix            func(testing.TB) *media.Index
		opt           TSMasterOptions
		codecs        string
		iframes, resn bool
	}{
		{"h264 aac", fixtureIndex(fixtureCases[0].Chapters), TSMasterOptions{}, "avc1.64000d,mp4a.40.2", true, true},
		{"audio dropped", fixtureIndex(fixtureCases[0].Chapters), TSMasterOptions{Exclude: []uint32{2}}, "avc1.64000d", true, true},
		{"audio only", func(testing.TB) *media.Index { return mediatest.SynthAudioOnly(60) }, TSMasterOptions{}, "mp4a.40.2", false, false},
		{"no I-frames", fixtureIndex(fixtureCases[0].Chapters), TSMasterOptions{NoIFrames: true}, "avc1.64000d,mp4a.40.2", false, true},
		{"given I-frame bandwidth and URIs", fixtureIndex(fixtureCases[0].Chapters),
			TSMasterOptions{IFrameBandwidth: 12345, MediaURI: "muxed.m3u8", IFrameURI: "i.m3u8"}, "avc1.64000d,mp4a.40.2", true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ix := c.ix(t)
			segs := ix.Segments(0)
			b := TSMaster(ix, segs, c.opt)
			version, independent, tags, err := parseMaster(b)
			if err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			if version != 4 || !independent {
				t.Errorf("version %d, independent %v", version, independent)
			}
			want := 1
			if c.iframes {
				want = 2
			}
			if len(tags) != want || tags[0].name != "#EXT-X-STREAM-INF" {
				t.Fatalf("tags %+v, want a stream inf and %d I-frame stream inf", tags, want-1)
			}
			inf := tags[0]
			if got, _ := unquote(inf.attrs["CODECS"]); got != c.codecs {
				t.Errorf("CODECS %s, want %q", inf.attrs["CODECS"], c.codecs)
			}
			wantURI := c.opt.MediaURI
			if wantURI == "" {
				wantURI = "index.m3u8"
			}
			if inf.uri != wantURI {
				t.Errorf("URI %q, want %q", inf.uri, wantURI)
			}
			if _, ok := inf.attrs["RESOLUTION"]; ok != c.resn {
				t.Errorf("RESOLUTION present: %v, want %v", ok, c.resn)
			}
			// TS carries more overhead than fMP4.
			peak, _ := strconv.ParseInt(inf.attrs["BANDWIDTH"], 10, 64)
			avg, _ := strconv.ParseInt(inf.attrs["AVERAGE-BANDWIDTH"], 10, 64)
			var tracks []*media.Track
			for _, tr := range ix.Tracks {
				if !slices.Contains(c.opt.Exclude, tr.ID) {
					tracks = append(tracks, tr)
				}
			}
			fmp4 := PeakBitrate(ix, tracks, segs, FMP4SampleOverhead, FMP4SegmentOverhead)
			if peak <= fmp4 || avg > peak || avg <= 0 {
				t.Errorf("BANDWIDTH %d, AVERAGE-BANDWIDTH %d; want above the fMP4 peak %d and above the average", peak, avg, fmp4)
			}
			if c.iframes {
				fi := tags[1]
				if fi.name != "#EXT-X-I-FRAME-STREAM-INF" {
					t.Fatalf("second tag %s", fi.name)
				}
				wantURI := c.opt.IFrameURI
				if wantURI == "" {
					wantURI = "iframes.m3u8"
				}
				if got, _ := unquote(fi.attrs["URI"]); got != wantURI {
					t.Errorf("I-frame URI %s, want %q", fi.attrs["URI"], wantURI)
				}
				if got, _ := unquote(fi.attrs["CODECS"]); got != ix.Video().Codec {
					t.Errorf("I-frame CODECS %s", fi.attrs["CODECS"])
				}
				if c.opt.IFrameBandwidth > 0 && fi.attrs["BANDWIDTH"] != strconv.FormatInt(c.opt.IFrameBandwidth, 10) {
					t.Errorf("I-frame BANDWIDTH %s, want %d", fi.attrs["BANDWIDTH"], c.opt.IFrameBandwidth)
				}
			}
		})
	}
}

func TestTrackNameAndLanguage(t *testing.T) {
	for _, c := range []struct {
		kind media.Kind
		id   uint32
		want string
	}{{media.KindVideo, 1, "v1"}, {media.KindAudio, 2, "a2"}, {media.KindSubtitle, 3, "s3"}, {media.KindMetadata, 12, "m12"}, {"", 4, "o4"}} {
		if got := TrackName(&media.Track{Kind: c.kind, ID: c.id}); got != c.want {
			t.Errorf("TrackName(%s %d) = %q, want %q", c.kind, c.id, got, c.want)
		}
	}
	for in, want := range map[string]string{
		"eng": "en", "fra": "fr", "fre": "fr", "deu": "de", "jpn": "ja", "spa": "es",
		"und": "", "": "", "zxx": "", "e1g": "", "english": "",
		"gsw": "gsw", "ENG": "en", "ita": "it", "vie": "vi", "ara": "ar",
	} {
		if got := Language(in); got != want {
			t.Errorf("Language(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFrameRate(t *testing.T) {
	track := func(ts uint32, durs ...uint32) *media.Track {
		return &media.Track{Timescale: ts, Samples: media.Samples{Dur: durs}}
	}
	for _, c := range []struct {
		name     string
		t        *media.Track
		num, den int64
	}{
		{"30 fps", track(15360, 512, 512, 512), 30, 1},
		{"29.97 fps", track(30000, 1001, 1001, 1001, 1001), 30000, 1001},
		{"odd last frame", track(90000, 3000, 3000, 3000, 1234), 30, 1},
		{"odd first frame", track(90000, 1500, 1500, 1500, 3000, 1500), 60, 1},
		{"no samples", track(90000), 0, 1},
	} {
		if num, den := FrameRate(c.t); num != c.num || den != c.den {
			t.Errorf("%s: %d/%d, want %d/%d", c.name, num, den, c.num, c.den)
		}
	}
}

// BenchmarkMaster60min builds the fMP4 multivariant playlist of a 60-minute
// recording (bit rates computed from every sample).
func BenchmarkMaster60min(b *testing.B) {
	ix := mediatest.Synth(3600, 30, 60, false)
	segs := ix.Segments(0)
	b.ReportAllocs()
	for b.Loop() {
		Master(ix, segs, MasterOptions{})
	}
}
