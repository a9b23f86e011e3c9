package media

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/testutil/fixtures"
)

// fileSource opens path as a Source.
func fileSource(tb testing.TB, path string) Source {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	fi, err := f.Stat()
	if err != nil {
		tb.Fatal(err)
	}
	name := filepath.Base(path)
	return Source{Object: "assets/x/" + name, Name: name, R: f, Size: fi.Size()}
}

func bytesSource(name string, b []byte) Source {
	return Source{Object: "assets/x/" + name, Name: name, R: bytes.NewReader(b), Size: int64(len(b))}
}

func parsePaths(tb testing.TB, paths ...string) (*Index, error) {
	tb.Helper()
	var srcs []Source
	for _, p := range paths {
		srcs = append(srcs, fileSource(tb, p))
	}
	return Parse(context.Background(), srcs)
}

// packet is one packet as ffprobe reports it.
type packet struct {
	Stream int    `json:"stream_index"`
	DTS    int64  `json:"dts"`
	PTS    int64  `json:"pts"`
	Size   string `json:"size"`
	Pos    string `json:"pos"`
	Flags  string `json:"flags"`
}

type stream struct {
	Index     int    `json:"index"`
	CodecType string `json:"codec_type"`
	CodecTag  string `json:"codec_tag_string"`
	Width     uint32 `json:"width"`
	Height    uint32 `json:"height"`
	Rate      string `json:"sample_rate"`
	Channels  uint16 `json:"channels"`
	TimeBase  string `json:"time_base"`
}

type probeResult struct {
	Packets []packet `json:"packets"`
	Streams []stream `json:"streams"`
}

// ffprobe reads the packets and streams of path with ffprobe, an
// independent implementation.
func ffprobe(tb testing.TB, path string) probeResult {
	tb.Helper()
	out, err := exec.Command("ffprobe", "-v", "error",
		"-show_entries", "packet=stream_index,pts,dts,size,pos,flags:stream=index,codec_type,codec_tag_string,width,height,sample_rate,channels,time_base",
		"-of", "json", path).Output()
	if err != nil {
		tb.Fatalf("ffprobe %s: %v", path, err)
	}
	var r probeResult
	if err := json.Unmarshal(out, &r); err != nil {
		tb.Fatalf("ffprobe output: %v", err)
	}
	return r
}

// compareWithProbe checks the samples [a, b) of track t, which come from
// the file at path where the track is stream si, against ffprobe.
func compareWithProbe(t *testing.T, tr *Track, a, b int, pr probeResult, si int) {
	t.Helper()
	var pk []packet
	for _, p := range pr.Packets {
		if p.Stream == si {
			pk = append(pk, p)
		}
	}
	s := &tr.Samples
	if len(pk) != b-a {
		t.Fatalf("track %d (%s): %d samples, ffprobe sees %d packets in stream %d", tr.ID, tr.Kind, b-a, len(pk), si)
	}
	for i, p := range pk {
		j := a + i
		size, _ := strconv.ParseInt(p.Size, 10, 64)
		pos, _ := strconv.ParseInt(p.Pos, 10, 64)
		if int64(s.Size[j]) != size || s.Offset[j] != pos {
			t.Fatalf("track %d sample %d: %d bytes at %d, ffprobe: %d bytes at %d", tr.ID, j, s.Size[j], s.Offset[j], size, pos)
		}
		if key := strings.Contains(p.Flags, "K"); key != s.IsSync(j) {
			t.Fatalf("track %d sample %d: sync %v, ffprobe flags %q", tr.ID, j, s.IsSync(j), p.Flags)
		}
		// Decode times relative to the first packet (ffprobe shifts
		// by the edit list); the last sample may be stretched.
		if j+1 < b {
			if got, want := s.DTS[j]-s.DTS[a], p.DTS-pk[0].DTS; got != want {
				t.Fatalf("track %d sample %d: DTS %d, ffprobe %d", tr.ID, j, got, want)
			}
			if got, want := int64(s.CompOffset(j)), (p.PTS-p.DTS)-(pk[0].PTS-pk[0].DTS)+int64(s.CompOffset(a)); got != want {
				t.Fatalf("track %d sample %d: CTO %d, ffprobe implies %d", tr.ID, j, got, want)
			}
		}
	}
}

func TestParseFixtures(t *testing.T) {
	tests := []struct {
		name    string
		path    func(testing.TB) string
		kinds   []Kind
		formats []string
		codecs  []string
	}{
		{"H264AAC", fixtures.H264AAC, []Kind{KindVideo, KindAudio}, []string{"avc1", "mp4a"}, []string{"avc1.64000d", "mp4a.40.2"}},
		{"H265AAC", fixtures.H265AAC, []Kind{KindVideo, KindAudio}, []string{"hvc1", "mp4a"}, []string{"hvc1.1.6.L60.90", "mp4a.40.2"}},
		{"MoovAtEnd", fixtures.MoovAtEnd, []Kind{KindVideo, KindAudio}, []string{"avc1", "mp4a"}, []string{"avc1.64000d", "mp4a.40.2"}},
		{"Fragmented", fixtures.Fragmented, []Kind{KindVideo, KindAudio}, []string{"avc1", "mp4a"}, []string{"avc1.64000d", "mp4a.40.2"}},
		{"WithMetadataTrack", fixtures.WithMetadataTrack, []Kind{KindVideo, KindAudio, KindMetadata}, []string{"avc1", "mp4a", "gpmd"}, []string{"avc1.64000d", "mp4a.40.2", "gpmd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path(t)
			ix, err := parsePaths(t, path)
			if err != nil {
				t.Fatal(err)
			}
			pr := ffprobe(t, path)
			if len(ix.Tracks) != len(tt.kinds) {
				t.Fatalf("%d tracks, want %d", len(ix.Tracks), len(tt.kinds))
			}
			for i, tr := range ix.Tracks {
				if tr.Kind != tt.kinds[i] || tr.Format != tt.formats[i] || tr.Codec != tt.codecs[i] {
					t.Errorf("track %d: %s %s %s, want %s %s %s", tr.ID, tr.Kind, tr.Format, tr.Codec, tt.kinds[i], tt.formats[i], tt.codecs[i])
				}
				st := pr.Streams[i]
				if want := "1/" + strconv.Itoa(int(tr.Timescale)); st.TimeBase != want {
					t.Errorf("track %d: timescale %d, ffprobe time base %s", tr.ID, tr.Timescale, st.TimeBase)
				}
				switch tr.Kind {
				case KindVideo:
					if tr.Width != st.Width || tr.Height != st.Height {
						t.Errorf("track %d: %dx%d, ffprobe %dx%d", tr.ID, tr.Width, tr.Height, st.Width, st.Height)
					}
				case KindAudio:
					if strconv.Itoa(int(tr.SampleRate)) != st.Rate || tr.Channels != st.Channels {
						t.Errorf("track %d: %d Hz %d ch, ffprobe %s Hz %d ch", tr.ID, tr.SampleRate, tr.Channels, st.Rate, st.Channels)
					}
				}
				if tr.Language != "und" && len(tr.Language) != 3 {
					t.Errorf("track %d: language %q", tr.ID, tr.Language)
				}
				if len(tr.SampleEntries) != 1 || string(tr.SampleEntries[0][4:8]) != tr.Format {
					t.Errorf("track %d: sample entries %d", tr.ID, len(tr.SampleEntries))
				}
				compareWithProbe(t, tr, 0, tr.Samples.Len(), pr, i)
			}
			v := ix.Video()
			if v.Samples.Sync == nil {
				t.Errorf("video: every sample is sync, want GOP 30")
			}
			if v.Samples.CTO == nil {
				t.Errorf("video: no composition offsets, want B-frames")
			}
			if a := ix.Audio(); a.Samples.Sync != nil || a.Samples.CTO != nil {
				t.Errorf("audio: Sync or CTO column set")
			}
			if d := ix.Duration(); d < 5900*time.Millisecond || d > 6100*time.Millisecond {
				t.Errorf("duration %v, want about 6 s", d)
			}
			// The asset may end up to one tick of the coarsest track
			// after the chapter: tracks end on their own tick grid.
			if len(ix.Chapters) != 1 || ix.Chapters[0].Start != 0 ||
				ix.Duration()-ix.Chapters[0].Duration > time.Millisecond || ix.Duration() < ix.Chapters[0].Duration-time.Microsecond {
				t.Errorf("chapters %+v, duration %v", ix.Chapters, ix.Duration())
			}
			// All tracks end together.
			for _, tr := range ix.Tracks {
				if got, want := tr.Duration(), durationToTicks(ix.Chapters[0].Duration, tr.Timescale); got != want {
					t.Errorf("track %d ends at %d, want %d", tr.ID, got, want)
				}
			}
			if tt.name != "Fragmented" && ix.Created.IsZero() {
				t.Logf("no creation time")
			}
		})
	}
}

func TestParseTwoChapters(t *testing.T) {
	paths := fixtures.TwoChapters(t)
	ix, err := parsePaths(t, paths...)
	if err != nil {
		t.Fatal(err)
	}
	if len(ix.Chapters) != 2 {
		t.Fatalf("%d chapters", len(ix.Chapters))
	}
	if ix.Chapters[0].Name != fixtures.Chapter1Name || ix.Chapters[1].Name != fixtures.Chapter2Name {
		t.Errorf("chapter names %q %q", ix.Chapters[0].Name, ix.Chapters[1].Name)
	}
	c0, c1 := ix.Chapters[0], ix.Chapters[1]
	if c0.Start != 0 || c1.Start != c0.Duration {
		t.Errorf("chapters %+v", ix.Chapters)
	}
	if d := c0.Duration + c1.Duration; d < 7900*time.Millisecond || d > 8200*time.Millisecond {
		t.Errorf("total duration %v, want about 8 s", d)
	}
	for c, path := range paths {
		pr := ffprobe(t, path)
		for i, tr := range ix.Tracks {
			a, b := tr.Samples.ChapterStart[c], tr.Samples.ChapterStart[c+1]
			compareWithProbe(t, tr, a, b, pr, i)
			// The chapters' sample entries differ in their bit rates
			// (btrt, esds), so each chapter has its own.
			if d := tr.Samples.ChapterDesc[c]; int(d) != c+1 || string(tr.SampleEntries[d-1][4:8]) != tr.Format {
				t.Errorf("track %d chapter %d uses entry %d", tr.ID, c, d)
			}
			// Every track reaches the end of every chapter.
			end := ix.Chapters[c].Start + ix.Chapters[c].Duration
			if got, want := tr.Samples.DTS[b], durationToTicks(end, tr.Timescale); got != want {
				t.Errorf("track %d: chapter %d ends at %d, want %d", tr.ID, c, got, want)
			}
		}
	}
	// Chapter 2 starts with a keyframe.
	v := ix.Video()
	if !v.Samples.IsSync(v.Samples.ChapterStart[1]) {
		t.Errorf("chapter 2 does not start with a sync sample")
	}
	// The packets of both chapters are those of the source.
	src, err := parsePaths(t, fixtures.ChaptersSource(t))
	if err != nil {
		t.Fatal(err)
	}
	for i, tr := range ix.Tracks {
		st := src.Tracks[i]
		if tr.Samples.Len() != st.Samples.Len() {
			t.Errorf("track %d: %d samples, source has %d", tr.ID, tr.Samples.Len(), st.Samples.Len())
			continue
		}
		for j := range tr.Samples.Size {
			if tr.Samples.Size[j] != st.Samples.Size[j] {
				t.Fatalf("track %d sample %d: size %d, source %d", tr.ID, j, tr.Samples.Size[j], st.Samples.Size[j])
			}
		}
	}

	// Chapters in the other order are a different (but valid) asset.
	if _, err := parsePaths(t, paths[1], paths[0]); err != nil {
		t.Errorf("reversed chapters: %v", err)
	}
}

func TestParseChapterMismatch(t *testing.T) {
	// A file with a metadata track and one without are not chapters of
	// the same recording.
	_, err := parsePaths(t, fixtures.H264AAC(t), fixtures.WithMetadataTrack(t))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "chapter 2") {
		t.Fatalf("err = %v, want ErrInvalid naming chapter 2", err)
	}
}

func TestParseMetadataTrack(t *testing.T) {
	ix, err := parsePaths(t, fixtures.WithMetadataTrack(t))
	if err != nil {
		t.Fatal(err)
	}
	m := ix.Tracks[2]
	if m.Handler != "meta" || m.Name != "GoPro MET" || m.Format != "gpmd" {
		t.Errorf("metadata track: handler %q name %q format %q", m.Handler, m.Name, m.Format)
	}
	if m.Samples.Len() < 6 || m.Samples.Size[0] != 32 {
		t.Errorf("metadata track: %d samples, first %d bytes", m.Samples.Len(), m.Samples.Size[0])
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		path func(testing.TB) string
		want error
		msg  string
	}{
		{"NotMedia", fixtures.NotMedia, ErrInvalid, "not an MP4 file"},
		{"TruncatedMoovAtEnd", fixtures.TruncatedMoovAtEnd, ErrInvalid, "no moov box"},
		{"TruncatedMdat", fixtures.TruncatedMdat, ErrInvalid, "truncated"},
		{"Unsupported", fixtures.Unsupported, ErrUnsupported, "unsupported video codec mp4v in track 1; supported: avc1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path(t)
			_, err := parsePaths(t, path)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), filepath.Base(path)) {
				t.Errorf("err = %q, want it to name the file and say %q", err, tt.msg)
			}
		})
	}
}
