package transcode

import (
	"reflect"
	"strings"
	"testing"

	"github.com/jitstream/jitstream/internal/media"
)

// videoTrack is a video track of w x h (coded) with 2 s of samples at fps
// (whole frames per second), in a 90 kHz timescale.
func videoTrack(w, h uint32, format string, fps int) *media.Track {
	t := &media.Track{ID: 1, Kind: media.KindVideo, Format: format, Timescale: 90000, Width: w, Height: h,
		TkhdWidth: w << 16, TkhdHeight: h << 16}
	for i := 0; i < 2*fps; i++ {
		t.Samples.Dur = append(t.Samples.Dur, uint32(90000/fps))
		t.Samples.Size = append(t.Samples.Size, 100)
		t.Samples.Offset = append(t.Samples.Offset, int64(i*100))
	}
	t.Samples.Derive()
	return t
}

func TestRenditions(t *testing.T) {
	type want struct {
		name  string
		w, h  int
		codec string
		bw    int64
	}
	anamorphic := videoTrack(1440, 1080, "avc1", 25)
	anamorphic.TkhdWidth = 1920 << 16
	tests := []struct {
		name  string
		track *media.Track
		want  []want
	}{
		{"1080p30 H.264: below its height only", videoTrack(1920, 1080, "avc1", 30), []want{
			{"720p", 1280, 720, "avc1.64001f", 3_750_000},
			{"480p", 854, 480, "avc1.64001f", 1_500_000},
			{"360p", 640, 360, "avc1.64001e", 875_000},
		}},
		{"1080p30 H.265", videoTrack(1920, 1080, "hvc1", 30), []want{
			{"1080p", 1920, 1080, "avc1.640028", 6_250_000},
			{"720p", 1280, 720, "avc1.64001f", 3_750_000},
			{"480p", 854, 480, "avc1.64001f", 1_500_000},
			{"360p", 640, 360, "avc1.64001e", 875_000},
		}},
		{"1080p60 H.265", videoTrack(1920, 1080, "hvc1", 60), []want{
			{"1080p", 1920, 1080, "avc1.64002a", 6_250_000},
			{"720p", 1280, 720, "avc1.640020", 3_750_000},
			{"480p", 854, 480, "avc1.64001f", 1_500_000},
			{"360p", 640, 360, "avc1.64001f", 875_000},
		}},
		{"720p", videoTrack(1280, 720, "avc1", 30), []want{
			{"480p", 854, 480, "avc1.64001f", 1_500_000},
			{"360p", 640, 360, "avc1.64001e", 875_000},
		}},
		{"320x240 H.264: none", videoTrack(320, 240, "avc1", 30), nil},
		{"320x240 H.265: one H.264 at its size", videoTrack(320, 240, "hvc1", 30), []want{
			{"240p", 320, 240, "avc1.64001e", 311_000 * 5 / 4},
		}},
		{"H.265 hev1 between rungs", videoTrack(1024, 576, "hev1", 30), []want{
			{"480p", 854, 480, "avc1.64001f", 1_500_000},
			{"360p", 640, 360, "avc1.64001e", 875_000},
		}},
		{"odd aspect 1000x562", videoTrack(1000, 562, "avc1", 30), []want{
			{"480p", 854, 480, "avc1.64001f", 1_500_000},
			{"360p", 640, 360, "avc1.64001e", 875_000},
		}},
		{"4:3", videoTrack(640, 480, "avc1", 30), []want{
			{"360p", 480, 360, "avc1.64001e", 875_000},
		}},
		{"odd height 1278x719", videoTrack(1278, 719, "avc1", 30), []want{
			{"480p", 854, 480, "avc1.64001f", 1_500_000},
			{"360p", 640, 360, "avc1.64001e", 875_000},
		}},
		{"anamorphic 1440x1080 shown 16:9", anamorphic, []want{
			{"720p", 1280, 720, "avc1.64001f", 3_750_000},
			{"480p", 854, 480, "avc1.64001e", 1_500_000},
			{"360p", 640, 360, "avc1.64001e", 875_000},
		}},
		{"portrait 1080x1920", videoTrack(1080, 1920, "avc1", 30), []want{
			{"720p", 720, 1280, "avc1.64001f", 3_750_000},
			{"480p", 480, 854, "avc1.64001f", 1_500_000},
			{"360p", 360, 640, "avc1.64001e", 875_000},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs := Renditions(DefaultLadder(), tc.track)
			var got []want
			for _, r := range rs {
				got = append(got, want{r.Name, r.Width, r.Height, r.Codec, r.Bandwidth})
				if r.Width%2 != 0 || r.Height%2 != 0 {
					t.Errorf("%s: odd size %dx%d", r.Name, r.Width, r.Height)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Renditions:\n got %v\nwant %v", got, tc.want)
			}
			// Deterministic, and independent of the ladder's order.
			rev := DefaultLadder()
			for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
				rev[i], rev[j] = rev[j], rev[i]
			}
			if again := Renditions(rev, tc.track); !reflect.DeepEqual(again, rs) {
				t.Errorf("Renditions of the reversed ladder differ: %v vs %v", again, rs)
			}
		})
	}
}

func TestRenditionFrameRate(t *testing.T) {
	tr := videoTrack(1280, 720, "avc1", 30)
	// 29.97 fps: 1001/30000 s per frame.
	for i := range tr.Samples.Dur {
		tr.Samples.Dur[i] = 3003
	}
	tr.Samples.Derive()
	rs := Renditions(DefaultLadder(), tr)
	if len(rs) == 0 || rs[0].FrameRate != "30000/1001" {
		t.Fatalf("frame rate of a 29.97 fps source: %+v", rs)
	}
	if got := rs[0].ID(); got != "480p-854x480-1200000" {
		t.Errorf("ID = %q", got)
	}
}

func TestParseLadder(t *testing.T) {
	good := []struct {
		in   string
		want []Rung
	}{
		{"1080p=5000k,720p=3000k,480p=1200k", []Rung{
			{"1080p", 1080, 5_000_000}, {"720p", 720, 3_000_000}, {"480p", 480, 1_200_000}}},
		{" 360p=0.7M , 720p=3M ", []Rung{{"720p", 720, 3_000_000}, {"360p", 360, 700_000}}},
		{"240p=250000", []Rung{{"240p", 240, 250_000}}},
	}
	for _, tc := range good {
		got, err := ParseLadder(tc.in)
		if err != nil {
			t.Errorf("ParseLadder(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseLadder(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	bad := []struct{ in, msg string }{
		{"", "empty ladder"},
		{"   ", "empty ladder"},
		{"720p", `want "<height>p=<bitrate>"`},
		{"720=3000k", `followed by "p"`},
		{"p=3000k", `followed by "p"`},
		{"-720p=3000k", `followed by "p"`},
		{"721p=3000k", "must be even"},
		{"16p=100k", "32 to 4320"},
		{"8640p=100M", "32 to 4320"},
		{"720p=", "not a number"},
		{"720p=fast", "not a number"},
		{"720p=3000K", "not a number"},
		{"720p=1.5", "not a number"},
		{"720p=-3000k", "not a number"},
		{"720p=1k", "out of range"},
		{"720p=900M", "out of range"},
		{"720p=3000k,720p=2000k", "given twice"},
		{"720p=3000k,,480p=1M", "item 2"},
	}
	for _, tc := range bad {
		_, err := ParseLadder(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParseLadder(%q) = %v, want an error containing %q", tc.in, err, tc.msg)
		}
	}
}
