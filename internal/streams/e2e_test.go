package streams_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jitstream/jitstream/internal/testutil/browser"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/jitserver"
	"github.com/jitstream/jitstream/internal/testutil/players"
	"github.com/jitstream/jitstream/internal/testutil/probe"
)

// ffmpegHashes runs ffmpeg args -f framemd5 on a URL or file and returns
// the hashes (the last field of each line); it fails the test on any error
// output.
func ffmpegHashes(t *testing.T, args ...string) []string {
	t.Helper()
	return probe.MD5s(probe.FrameMD5(t, args...))
}

// originalHashes hashes the chapters' packets of one stream type (copy) or
// decoded frames, in order.
func originalHashes(t *testing.T, files []string, args ...string) []string {
	var all []string
	for _, f := range files {
		all = append(all, ffmpegHashes(t, append([]string{"-i", f}, args...)...)...)
	}
	return all
}

func sameHashes(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d packets, want %d", what, len(got), len(want))
		return
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s: packet %d differs", what, i)
			return
		}
	}
}

func TestFFmpegReadsEveryFormatWithTheOriginalPackets(t *testing.T) {
	e := jitserver.New(t)
	for _, tc := range []struct {
		name  string
		files []string
	}{
		{"h264-two-chapters", fixtures.TwoChapters(t)},
		{"h265", []string{fixtures.H265AAC(t)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := jitserver.Ingest[assetURLs](t, e, tc.files...)
			base := e.URL
			copyV := []string{"-map", "0:v:0", "-c", "copy"}
			copyA := []string{"-map", "0:a:0", "-c", "copy"}
			wantV := originalHashes(t, tc.files, copyV...)
			wantA := originalHashes(t, tc.files, copyA...)
			// HLS fMP4 and DASH carry the stored samples unchanged.
			for _, u := range []string{a.URLs.HLS, a.URLs.DASH} {
				sameHashes(t, u+" video", ffmpegHashes(t, append([]string{"-i", base + u}, copyV...)...), wantV)
				sameHashes(t, u+" audio", ffmpegHashes(t, append([]string{"-i", base + u}, copyA...)...), wantA)
			}
			// MPEG-TS carries Annex B video and ADTS audio: compare decoded
			// video frames and the AAC frames.
			decV := []string{"-map", "0:v:0"}
			sameHashes(t, "TS video frames", ffmpegHashes(t, append([]string{"-i", base + a.URLs.HLSTS}, decV...)...),
				originalHashes(t, tc.files, decV...))
			adts := []string{"-map", "0:a:0", "-c", "copy", "-bsf:a", "aac_adtstoasc"}
			sameHashes(t, "TS audio", ffmpegHashes(t, append([]string{"-i", base + a.URLs.HLSTS}, adts...)...), wantA)
		})
	}
}

// playlistTimes returns the start time of every segment of a media
// playlist, in seconds.
func playlistTimes(body []byte) []float64 {
	var out []float64
	now := 0.0
	for _, line := range strings.Split(string(body), "\n") {
		if d, ok := strings.CutPrefix(line, "#EXTINF:"); ok {
			f, _ := strconv.ParseFloat(strings.TrimSuffix(d, ","), 64)
			out = append(out, now)
			now += f
		}
	}
	return out
}

// mpdTimes returns the video SegmentTimeline's start times in seconds.
func mpdTimes(t *testing.T, body []byte) []float64 {
	var m struct {
		Sets []struct {
			ContentType string `xml:"contentType,attr"`
			MimeType    string `xml:"mimeType,attr"`
			Reps        []struct {
				ID       string `xml:"id,attr"`
				Template struct {
					Timescale float64 `xml:"timescale,attr"`
					S         []struct {
						T *int64 `xml:"t,attr"`
						D int64  `xml:"d,attr"`
						R int    `xml:"r,attr"`
					} `xml:"SegmentTimeline>S"`
				} `xml:"SegmentTemplate"`
			} `xml:"Representation"`
		} `xml:"Period>AdaptationSet"`
	}
	if err := xml.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	for _, s := range m.Sets {
		for _, r := range s.Reps {
			if r.ID != "v1" {
				continue
			}
			var out []float64
			var now int64
			for _, seg := range r.Template.S {
				if seg.T != nil {
					now = *seg.T
				}
				for range seg.R + 1 {
					out = append(out, float64(now)/r.Template.Timescale)
					now += seg.D
				}
			}
			return out
		}
	}
	t.Fatal("no v1 representation in the MPD")
	return nil
}

func TestSegmentBoundariesAgreeAcrossFormats(t *testing.T) {
	e := jitserver.New(t)
	a := jitserver.Ingest[assetURLs](t, e, fixtures.TwoChapters(t)...)
	root := strings.TrimSuffix(a.URLs.HLS, "master.m3u8")
	_, fmp4 := e.Get(t, root+"v1/index.m3u8")
	_, tsList := e.Get(t, root+"ts/index.m3u8")
	_, mpd := e.Get(t, a.URLs.DASH)
	_, sm := e.Get(t, a.URLs.Smooth)
	lists := map[string][]float64{
		"hls fmp4": playlistTimes(fmp4),
		"hls ts":   playlistTimes(tsList),
		"dash":     mpdTimes(t, mpd),
		"smooth":   smoothChunks(t, sm)["video"],
	}
	want := lists["dash"]
	if len(want) < 2 {
		t.Fatalf("only %d segments", len(want))
	}
	for name, got := range lists {
		if len(got) != len(want) {
			t.Errorf("%s: %d segments, DASH has %d", name, len(got), len(want))
			continue
		}
		for i := range want {
			if math.Abs(got[i]-want[i]) > 0.002 {
				t.Errorf("%s: segment %d starts at %.3f s, DASH at %.3f s", name, i, got[i], want[i])
			}
		}
	}
}

// keyframeFirst reports whether ffprobe sees a keyframe as the first video
// frame of file.
func keyframeFirst(t *testing.T, file string) bool {
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=key_frame,pict_type",
		"-of", "csv=p=0", file).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.HasPrefix(first, "1,I")
}

func TestIFramePlaylistRangesStartAtKeyframes(t *testing.T) {
	e := jitserver.New(t)
	a := jitserver.Ingest[assetURLs](t, e, fixtures.TwoChapters(t)...)
	root := strings.TrimSuffix(a.URLs.HLS, "master.m3u8")
	for _, tc := range []struct{ playlist, dir, init string }{
		{root + "ts/iframes.m3u8", root + "ts/", ""},
		{root + "v1/iframes.m3u8", root + "v1/", root + "v1/init.mp4"},
	} {
		resp, body := e.Get(t, tc.playlist)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "#EXT-X-I-FRAMES-ONLY") {
			t.Fatalf("%s: %d\n%s", tc.playlist, resp.StatusCode, body)
		}
		var init []byte
		if tc.init != "" {
			_, init = e.Get(t, tc.init)
		}
		n := 0
		var rng string
		for _, line := range strings.Split(string(body), "\n") {
			if r, ok := strings.CutPrefix(line, "#EXT-X-BYTERANGE:"); ok {
				rng = r
				continue
			}
			if line == "" || strings.HasPrefix(line, "#") || rng == "" {
				continue
			}
			var length, off int64
			if _, err := fmt.Sscanf(rng, "%d@%d", &length, &off); err != nil {
				t.Fatalf("byte range %q: %v", rng, err)
			}
			resp, part := e.Get(t, tc.dir+line, "Range", fmt.Sprintf("bytes=%d-%d", off, off+length-1))
			if resp.StatusCode != http.StatusPartialContent || int64(len(part)) != length {
				t.Fatalf("%s %s: %d, %d bytes", line, rng, resp.StatusCode, len(part))
			}
			f := filepath.Join(t.TempDir(), "iframe")
			os.WriteFile(f, append(append([]byte{}, init...), part...), 0o644)
			if !keyframeFirst(t, f) {
				t.Errorf("%s: range %s of %s does not start at a keyframe", tc.playlist, rng, line)
			}
			rng = ""
			n++
		}
		if n < 2 {
			t.Errorf("%s: only %d I-frames", tc.playlist, n)
		}
	}
}

func TestClipsWorkInEveryFormat(t *testing.T) {
	e := jitserver.New(t)
	a := jitserver.Ingest[assetURLs](t, e, fixtures.TwoChapters(t)...)
	clip := func(u string) string { return strings.Replace(u, "/"+a.ID+"/", "/"+a.ID+",1.5-6/", 1) }
	for _, u := range []string{a.URLs.HLS, a.URLs.HLSTS, a.URLs.DASH} {
		d := probe.Duration(t, e.URL+clip(u))
		// Adaptive clips start at the keyframe at or before start (1 s).
		if d < 4.4 || d > 5.1 {
			t.Errorf("%s: clip lasts %.3f s, want 4.5 to 5", clip(u), d)
		}
		ffmpegHashes(t, "-i", e.URL+clip(u), "-map", "0", "-c", "copy")
	}
	resp, sm := e.Get(t, clip(a.URLs.Smooth))
	if resp.StatusCode != http.StatusOK || len(smoothChunks(t, sm)["video"]) < 1 {
		t.Errorf("smooth clip: %d", resp.StatusCode)
	}
}

func TestHEVCIsOfferedWhereTheFormatAllows(t *testing.T) {
	e := jitserver.New(t)
	a := jitserver.Ingest[assetURLs](t, e, fixtures.H265AAC(t))
	_, master := e.Get(t, a.URLs.HLS)
	_, mpd := e.Get(t, a.URLs.DASH)
	if !strings.Contains(string(master), "hvc1.") || !strings.Contains(string(mpd), "hvc1.") {
		t.Errorf("HEVC codecs missing:\n%s\n%s", master, mpd)
	}
	checkJSON404(t, e, a.URLs.Smooth)
}

func TestBrowserPlayersPlayEveryFormat(t *testing.T) {
	e := jitserver.New(t)
	a := jitserver.Ingest[assetURLs](t, e, fixtures.TwoChapters(t)...)
	ctx := browser.New(t)
	for _, tc := range []struct {
		name string
		play func(testing.TB, context.Context, string) players.Result
		url  string
	}{
		{"hls.js fMP4", players.PlayHLS, a.URLs.HLS},
		{"hls.js TS", players.PlayHLS, a.URLs.HLSTS},
		{"dash.js DASH", players.PlayDASH, a.URLs.DASH},
		{"dash.js Smooth", players.PlaySmooth, a.URLs.Smooth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.play(t, ctx, e.URL+tc.url)
			if math.Abs(r.Duration-a.Duration) > 0.2 || r.Frames == 0 || r.SeekedTo < a.Duration/2-0.6 {
				t.Errorf("%s: %+v (asset lasts %.3f s)", tc.name, r, a.Duration)
			}
		})
	}
}
