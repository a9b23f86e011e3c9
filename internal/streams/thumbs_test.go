package streams_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html/template"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/jitstream/jitstream/internal/server"
	"github.com/jitstream/jitstream/internal/streams"
	"github.com/jitstream/jitstream/internal/testutil/browser"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/httpt"
	"github.com/jitstream/jitstream/internal/testutil/jitserver"
	"github.com/jitstream/jitstream/internal/testutil/players"
	"github.com/jitstream/jitstream/internal/transcode"
)

// grayPicture returns the first picture that ffmpeg reads with the input
// arguments args, cropped to crop ("w:h:x:y", "" for all of it), scaled to
// 32x18 in gray levels.
func grayPicture(tb testing.TB, crop string, args ...string) []byte {
	tb.Helper()
	vf := "scale=32:18:flags=area,format=gray"
	if crop != "" {
		vf = "crop=" + crop + "," + vf
	}
	cmd := exec.Command("ffmpeg", append(append([]string{"-nostdin", "-v", "error"}, args...),
		"-frames:v", "1", "-vf", vf, "-f", "rawvideo", "-")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || len(out) != 32*18 {
		tb.Fatalf("ffmpeg %v: %v (%d bytes): %s", args, err, len(out), stderr.String())
	}
	return out
}

// grayJPEG is grayPicture of the JPEG b.
func grayJPEG(tb testing.TB, b []byte, crop string) []byte {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "pic.jpg")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return grayPicture(tb, crop, "-i", path)
}

// meanAbsDiff and rmsDiff are the mean absolute and the root mean
// square difference of two gray pictures. JPEG coding differs everywhere
// by a level or two; testsrc2's moving pattern and clock differ a lot
// in a few places, which the square brings out.
func meanAbsDiff(a, b []byte) float64 {
	var s int
	for i := range a {
		d := int(a[i]) - int(b[i])
		s += max(d, -d)
	}
	return float64(s) / float64(len(a))
}

func rmsDiff(a, b []byte) float64 {
	var s int
	for i := range a {
		d := int(a[i]) - int(b[i])
		s += d * d
	}
	return math.Sqrt(float64(s) / float64(len(a)))
}

// samePicture checks that got (gray, grayPicture) is the picture of the
// original file orig at at seconds (ffmpeg's own, seeking in orig): their
// mean absolute difference is below 2 levels and their RMS difference
// below 3 (the next frame's is about 5), while the picture 3 s away
// differs by more than 3 times as much.
func samePicture(tb testing.TB, what string, got []byte, orig string, at float64) {
	tb.Helper()
	want := grayPicture(tb, "", "-ss", strconv.FormatFloat(at, 'f', -1, 64), "-i", orig)
	away := at + 3
	if away > 11 {
		away = at - 3
	}
	other := grayPicture(tb, "", "-ss", strconv.FormatFloat(away, 'f', -1, 64), "-i", orig)
	d, r, far := meanAbsDiff(got, want), rmsDiff(got, want), rmsDiff(got, other)
	tb.Logf("%s: differs from the original at %.3f s by %.2f (RMS %.2f), from the one at %.3f s by RMS %.2f", what, at, d, r, away, far)
	if d > 2 || r > 3 || far < 3*r {
		tb.Errorf("%s is not the picture at %.3f s: it differs from it by %.2f (RMS %.2f), from the one at %.3f s by RMS %.2f",
			what, at, d, r, away, far)
	}
}

// probeJPEG returns the codec and size of the picture b with ffprobe.
func probeJPEG(tb testing.TB, b []byte) (codec string, w, h int) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "pic.jpg")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-show_streams", "-of", "json", path).Output()
	if err != nil {
		tb.Fatalf("ffprobe: %v", err)
	}
	var pr struct {
		Streams []struct {
			Codec  string `json:"codec_name"`
			Width  int    `json:"width"`
			Height int    `json:"height"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &pr); err != nil || len(pr.Streams) != 1 {
		tb.Fatalf("ffprobe: %v: %s", err, out)
	}
	return pr.Streams[0].Codec, pr.Streams[0].Width, pr.Streams[0].Height
}

// cue is a cue of a WebVTT thumbnail track.
type cue struct {
	start, end float64
	sheet      string // "sprite-0.jpg"
	x, y, w, h int
}

var (
	vttTiming = regexp.MustCompile(`^(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)$`)
	vttTile   = regexp.MustCompile(`^(sprite-\d+\.jpg)#xywh=(\d+),(\d+),(\d+),(\d+)$`)
)

// parseThumbnailVTT reads a WebVTT thumbnail track: the WEBVTT header,
// then cues of a timing line and a "sheet#xywh=x,y,w,h" line, separated by
// blank lines.
func parseThumbnailVTT(tb testing.TB, b []byte) []cue {
	tb.Helper()
	blocks := strings.Split(strings.TrimRight(string(b), "\n"), "\n\n")
	if blocks[0] != "WEBVTT" {
		tb.Fatalf("WebVTT header %q", blocks[0])
	}
	var cues []cue
	for _, bl := range blocks[1:] {
		lines := strings.Split(bl, "\n")
		if len(lines) != 2 {
			tb.Fatalf("cue %q: want a timing line and a tile", bl)
		}
		m, n := vttTiming.FindStringSubmatch(lines[0]), vttTile.FindStringSubmatch(lines[1])
		if m == nil || n == nil {
			tb.Fatalf("cue %q", bl)
		}
		num := func(s string) int { v, _ := strconv.Atoi(s); return v }
		sec := func(m []string) float64 {
			return float64(num(m[0])*3600+num(m[1])*60+num(m[2])) + float64(num(m[3]))/1000
		}
		cues = append(cues, cue{start: sec(m[1:5]), end: sec(m[5:9]), sheet: n[1],
			x: num(n[2]), y: num(n[3]), w: num(n[4]), h: num(n[5])})
	}
	return cues
}

// imageSet is the image AdaptationSet of an MPD.
type imageSet struct {
	ContentType string `xml:"contentType,attr"`
	MimeType    string `xml:"mimeType,attr"`
	Reps        []struct {
		ID        string `xml:"id,attr"`
		Bandwidth int64  `xml:"bandwidth,attr"`
		Width     int    `xml:"width,attr"`
		Height    int    `xml:"height,attr"`
		Essential []struct {
			Scheme string `xml:"schemeIdUri,attr"`
			Value  string `xml:"value,attr"`
		} `xml:"EssentialProperty"`
		Template struct {
			Timescale   int    `xml:"timescale,attr"`
			Duration    int64  `xml:"duration,attr"`
			Media       string `xml:"media,attr"`
			StartNumber string `xml:"startNumber,attr"`
		} `xml:"SegmentTemplate"`
	} `xml:"Representation"`
}

// imageSets returns the image AdaptationSets of the MPD b.
func imageSets(tb testing.TB, b []byte) []imageSet {
	tb.Helper()
	var mpd struct {
		Sets []imageSet `xml:"Period>AdaptationSet"`
	}
	if err := xml.Unmarshal(b, &mpd); err != nil {
		tb.Fatalf("MPD: %v\n%s", err, b)
	}
	var out []imageSet
	for _, s := range mpd.Sets {
		if s.ContentType == "image" {
			out = append(out, s)
		}
	}
	return out
}

// TestThumbnails: with a transcoder, the 12 s 720p asset (a key frame
// every 2 s) has JPEG thumbnails at any time, which are the original's
// pictures at that time; a WebVTT thumbnail track whose sprite sheets
// hold the original's pictures at the cues' starts; an image
// AdaptationSet in its MPD that dash.js reads (and still plays the MPD);
// concurrent requests for one picture run ffmpeg once; bad times, widths
// and sheets are 404 JSON, and so is every thumbnail without a
// transcoder.
func TestThumbnails(t *testing.T) {
	t.Parallel()
	fixtures.RequireTools(t)
	e := jitserver.New(t)
	logs := &httpt.SyncBuffer{}
	tc := transcode.New(transcode.Options{Store: e.Store, Concurrency: 2, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	t.Cleanup(func() { tc.Close() })
	url := e.Serve(t, server.Options{Transcoder: tc})
	orig := fixtures.HD(t, 720)
	a := jitserver.Ingest[assetURLs](t, e, orig)
	root := url + strings.TrimSuffix(a.URLs.HLS, "hls/master.m3u8")
	get := func(t *testing.T, u string) []byte {
		t.Helper()
		resp, b := httpt.Get(t, u)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
		}
		return b
	}

	t.Run("pictures", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			path  string
			at    float64
			width int
		}{
			{"thumbs/0.5.jpg", 0.5, 320},       // segment 0
			{"thumbs/160/2.jpg", 2, 160},       // segment 0, a key frame
			{"thumbs/6.5.jpg", 6.5, 320},       // segment 1
			{"thumbs/320/7.25.jpg", 7.25, 320}, // segment 1, between frames: 7.2333 shows
			{"thumbs/640/11.5.jpg", 11.5, 640}, // segment 2
			{"thumbs/6.5.jpg?w=160", 6.5, 160}, // the width as a query
		}
		for _, tc := range tests {
			resp, b := httpt.Get(t, root+tc.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d %s", tc.path, resp.StatusCode, b)
			}
			if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "image/jpeg" || cc != streams.CacheImmutable {
				t.Errorf("%s: Content-Type %q, Cache-Control %q", tc.path, ct, cc)
			}
			if codec, w, h := probeJPEG(t, b); codec != "mjpeg" || w != tc.width || h != tc.width*9/16 {
				t.Errorf("%s: %s %dx%d, want mjpeg %dx%d", tc.path, codec, w, h, tc.width, tc.width*9/16)
			}
			at := tc.at
			if tc.at == 7.25 {
				at = 217.0 / 30 // the frame shown at 7.25 s
			}
			samePicture(t, tc.path, grayJPEG(t, b, ""), orig, at)
		}
		// The last picture stays shown until the end of the asset (its
		// audio lasts 12.021 s, its video 12 s).
		last := get(t, root+"thumbs/11.99.jpg")
		if !bytes.Equal(get(t, root+"thumbs/12.01.jpg"), last) {
			t.Error("the picture after the video's end is not its last one")
		}
		samePicture(t, "thumbs/11.99.jpg", grayJPEG(t, last, ""), orig, 359.0/30)
	})

	t.Run("not found", func(t *testing.T) {
		t.Parallel()
		for _, p := range []string{
			"thumbs/12.5.jpg", "thumbs/99.jpg", "thumbs/10000000000.jpg", "thumbs/abc.jpg", "thumbs/-1.jpg",
			"thumbs/1e1.jpg", "thumbs/1..jpg", "thumbs/.5.jpg", "thumbs/1.", "thumbs/1.png", "thumbs/",
			"thumbs/200/1.jpg", "thumbs/0320/1.jpg", "thumbs/w320/1.jpg", "thumbs/320/x.jpg", "thumbs/320/",
			"thumbs/sprite-1.jpg", "thumbs/sprite-01.jpg", "thumbs/sprite--1.jpg", "thumbs/sprite-x.jpg", "thumbs/sprite-0.png",
			"thumbs/thumbs.vtt", "thumbs/1/2/3.jpg", "thumbs/1.jpg?w=200", "thumbs/1.jpg?w=x",
		} {
			resp, b := httpt.Get(t, root+p)
			if resp.StatusCode != http.StatusNotFound || !json.Valid(b) {
				t.Errorf("GET %s: %d %s, want 404 JSON", p, resp.StatusCode, b)
			}
		}
		// Without a transcoder there are no thumbnails.
		plain := e.URL + strings.TrimSuffix(a.URLs.HLS, "hls/master.m3u8")
		for _, p := range []string{"thumbs/1.jpg", "thumbs/sprite-0.jpg", "thumbs/thumbnails.vtt"} {
			resp, b := httpt.Get(t, plain+p)
			if resp.StatusCode != http.StatusNotFound || !json.Valid(b) {
				t.Errorf("GET %s without a transcoder: %d %s, want 404 JSON", p, resp.StatusCode, b)
			}
		}
		if _, b := httpt.Get(t, e.URL+a.URLs.DASH); len(imageSets(t, b)) != 0 {
			t.Errorf("MPD without a transcoder has thumbnails:\n%s", b)
		}
	})

	// The HLS master lists the sheets as an image stream (Roku and Apple
	// players): its image media playlist has a segment per sheet, with the
	// sheet's tiles, up to the asset's end.
	t.Run("hls image playlist", func(t *testing.T) {
		_, m := httpt.Get(t, root+"hls/master.m3u8")
		if !strings.Contains(string(m), `#EXT-X-IMAGE-STREAM-INF:BANDWIDTH=`) || !strings.Contains(string(m), `,RESOLUTION=160x90,CODECS="jpeg",URI="images.m3u8"`) {
			t.Fatalf("master playlist without the image stream:\n%s", m)
		}
		resp, b := httpt.Get(t, root+"hls/images.m3u8")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET hls/images.m3u8: %d %s", resp.StatusCode, b)
		}
		var total float64
		var sheets []string
		for _, l := range strings.Split(string(b), "\n") {
			switch {
			case strings.HasPrefix(l, "#EXTINF:"):
				d, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(l, "#EXTINF:"), ","), 64)
				if err != nil {
					t.Fatal(err)
				}
				total += d
			case strings.HasPrefix(l, "../thumbs/"):
				sheets = append(sheets, l)
			}
		}
		if !strings.Contains(string(b), "#EXT-X-IMAGES-ONLY\n") || !strings.Contains(string(b), "#EXT-X-TILES:RESOLUTION=160x90,LAYOUT=7x1,DURATION=2.000\n") ||
			len(sheets) != 1 || math.Abs(total-a.Duration) > 0.001 {
			t.Errorf("image playlist of %d sheets lasting %.3f s (the asset %.3f s):\n%s", len(sheets), total, a.Duration, b)
		}
		playlist, err := neturl.Parse(root + "hls/images.m3u8")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sheets {
			ref, err := neturl.Parse(s)
			if err != nil {
				t.Fatal(err)
			}
			u := playlist.ResolveReference(ref).String()
			if resp, _ := httpt.Get(t, u); resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/jpeg" {
				t.Errorf("GET %s (%s): %d %s", s, u, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
		}
	})

	// The sprite sheets: the VTT's cues cover the asset without gaps; each
	// tile is inside its sheet and shows the original at its start.
	sheets := map[string][]byte{}
	var cues []cue
	t.Run("sprites", func(t *testing.T) {
		resp, b := httpt.Get(t, root+"thumbs/thumbnails.vtt")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/vtt" ||
			resp.Header.Get("Cache-Control") != streams.CacheImmutable {
			t.Fatalf("GET thumbnails.vtt: %d %v %s", resp.StatusCode, resp.Header, b)
		}
		cues = parseThumbnailVTT(t, b)
		if len(cues) == 0 || cues[0].start != 0 || math.Abs(cues[len(cues)-1].end-a.Duration) > 0.001 {
			t.Fatalf("cues from %v to %v, the asset lasts %.3f:\n%s", cues[0].start, cues[len(cues)-1].end, a.Duration, b)
		}
		for i, c := range cues {
			if c.end <= c.start || (i > 0 && c.start != cues[i-1].end) {
				t.Fatalf("cue %d (%+v) after %+v", i, c, cues[max(i-1, 0)])
			}
		}
		for _, c := range cues {
			if sheets[c.sheet] == nil {
				sb := get(t, root+"thumbs/"+c.sheet)
				sheets[c.sheet] = sb
				codec, w, h := probeJPEG(t, sb)
				t.Logf("%s: %s %dx%d", c.sheet, codec, w, h)
				if codec != "mjpeg" || w != 1120 || h != 90 {
					t.Errorf("%s: %s %dx%d, want mjpeg 1120x90 (7 tiles of 160x90)", c.sheet, codec, w, h)
				}
			}
			if c.w != 160 || c.h != 90 || c.x+c.w > 1120 || c.y+c.h > 90 {
				t.Errorf("tile %+v is not a 160x90 tile of its sheet", c)
			}
			if c.start < 12 { // a picture starts there (the video ends at 12 s)
				crop := fmt.Sprintf("%d:%d:%d:%d", c.w, c.h, c.x, c.y)
				samePicture(t, fmt.Sprintf("the tile at %v s", c.start), grayJPEG(t, sheets[c.sheet], crop), orig, c.start)
			}
		}
		if len(cues) != 7 || len(sheets) != 1 {
			t.Errorf("%d cues on %d sheets, want 7 tiles 2 s apart on 1 sheet", len(cues), len(sheets))
		}
	})

	t.Run("mpd", func(t *testing.T) {
		mpdURL := url + a.URLs.DASH
		b := get(t, mpdURL)
		sets := imageSets(t, b)
		if len(sets) != 1 || len(sets[0].Reps) != 1 {
			t.Fatalf("MPD with %d image sets:\n%s", len(sets), b)
		}
		s, r := sets[0], sets[0].Reps[0]
		tm := r.Template
		if s.MimeType != "image/jpeg" || r.Width != 1120 || r.Height != 90 || r.Bandwidth <= 0 || len(r.Essential) != 1 ||
			r.Essential[0].Scheme != "http://dashif.org/thumbnail_tile" || r.Essential[0].Value != "7x1" ||
			tm.Timescale != 1000 || tm.Duration != 14000 || tm.StartNumber != "0" || tm.Media != "../thumbs/sprite-$Number$.jpg" {
			t.Errorf("image set %+v:\n%s", s, b)
		}
		base, err := neturl.Parse(mpdURL)
		if err != nil {
			t.Fatal(err)
		}
		sheet, err := base.Parse(strings.ReplaceAll(tm.Media, "$Number$", "0"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(get(t, sheet.String()), sheets["sprite-0.jpg"]) {
			t.Errorf("the MPD's sheet 0 (%s) is not the VTT's", sheet)
		}
		// ffmpeg's DASH demuxer passes over the image set.
		cmd := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", mpdURL)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || stderr.Len() > 0 || !strings.Contains(string(out), "video") {
			t.Errorf("ffprobe of the MPD: %v: %s %s", err, out, stderr.String())
		}

		// dash.js picks the VTT's tiles.
		tab := browser.New(t)
		ths := dashThumbnails(t, tab, mpdURL, []float64{1, 5, 11.9})
		t.Logf("dash.js thumbnails: %+v", ths)
		for _, th := range ths {
			var want *cue
			for i := range cues {
				if cues[i].start <= th.At && th.At < cues[i].end {
					want = &cues[i]
				}
			}
			u, _ := neturl.Parse(root + "thumbs/" + want.sheet)
			if th.URL != u.String() || th.X != want.x || th.Y != want.y || th.Width != want.w || th.Height != want.h {
				t.Errorf("dash.js thumbnail at %v s: %+v, want the cue %+v", th.At, th, *want)
			}
		}
	})

	// dash.js plays an MPD with thumbnails. (It plays the small asset:
	// with the 720p one, Chromium on two busy cores sometimes stalls
	// after dash.js's start-up seek, thumbnails or not.)
	t.Run("dash.js", func(t *testing.T) {
		small := jitserver.Ingest[assetURLs](t, e, fixtures.H264AAC(t))
		mpdURL := url + small.URLs.DASH
		if sets := imageSets(t, get(t, mpdURL)); len(sets) != 1 {
			t.Fatalf("the MPD of the small asset has %d image sets", len(sets))
		}
		res := players.PlayDASH(t, browser.New(t), mpdURL)
		t.Logf("%s: %+v", res.Player, res)
	})

	t.Run("concurrent", func(t *testing.T) {
		const n = 6
		bodies := make([][]byte, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				resp, b := httpt.Get(t, root+"thumbs/640/3.jpg")
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET thumbs/640/3.jpg: %d %s", resp.StatusCode, b)
				}
				bodies[i] = b
			})
		}
		wg.Wait()
		for i := range n {
			if !bytes.Equal(bodies[i], bodies[0]) {
				t.Errorf("request %d got other bytes than request 0", i)
			}
		}
		made := 0
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, `msg="transcode: picture made"`) && strings.Contains(l, `picture="thumbnail 640px at 3s"`) {
				made++
			}
		}
		if made != 1 {
			t.Errorf("ffmpeg made the picture %d times for %d requests, want once; log:\n%s", made, n, logs.String())
		}
	})
}

// dashThumbnail is what dash.js's provideThumbnail gives for a time.
type dashThumbnail struct {
	At            float64 `json:"at"`
	URL           string  `json:"url"`
	X             int     `json:"x"`
	Y             int     `json:"y"`
	Width, Height int
}

// dashPage loads dash.js and initializes a player on window.__mpd without
// playing it.
var dashPage = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head><body>
<video id="v" muted></video>
<script src="/dash.all.min.js"></script>
<script>
window.__errors = [];
const p = dashjs.MediaPlayer().create();
window.__player = p;
p.on(dashjs.MediaPlayer.events.ERROR, e => window.__errors.push('dash.js error: ' + JSON.stringify(e.error || e).slice(0, 300)));
p.on(dashjs.MediaPlayer.events.STREAM_INITIALIZED, () => { window.__ready = true; });
p.initialize(document.getElementById('v'), {{.}}, false);
</script></body></html>`))

// dashThumbnails has dash.js (web/players) load the MPD at mpdURL in the
// tab ctx and returns its thumbnails at the given times.
func dashThumbnails(tb testing.TB, ctx context.Context, mpdURL string, times []float64) []dashThumbnail {
	tb.Helper()
	root, err := fixtures.RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	lib, err := os.ReadFile(filepath.Join(root, "web", "players", "node_modules", "dashjs", "dist", "dash.all.min.js"))
	if err != nil {
		tb.Fatalf("dash.js: %v; run `make deps`", err)
	}
	var page bytes.Buffer
	if err := dashPage.Execute(&page, mpdURL); err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write(page.Bytes())
		case "/dash.all.min.js":
			w.Header().Set("Content-Type", "text/javascript")
			w.Write(lib)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	defer browser.Leave(ctx, 10*time.Second)
	nctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	err = chromedp.Do(nctx, chromedp.Navigate(srv.URL+"/"))
	cancel()
	if err != nil {
		tb.Fatalf("loading the dash.js page: %v", err)
	}
	if _, err := browser.Poll[bool](ctx, `window.__ready === true || (window.__errors && window.__errors.length > 0)`, 20*time.Second); err != nil {
		tb.Fatalf("dash.js did not initialize the stream: %v", err)
	}
	errs, err := browser.Eval[[]string](ctx, `window.__errors`, 5*time.Second)
	if err != nil || len(errs) > 0 {
		tb.Fatalf("dash.js: %v %v", err, errs)
	}
	js, _ := json.Marshal(times)
	ths, err := browser.Eval[[]dashThumbnail](ctx, fmt.Sprintf(`%s.map(at => {
  let r = {at: at, url: ''};
  window.__player.provideThumbnail(at, t => { if (t) r = {at: at, url: t.url, x: t.x, y: t.y, Width: t.width, Height: t.height}; });
  return r;
})`, js), 5*time.Second)
	if err != nil {
		tb.Fatalf("dash.js provideThumbnail: %v", err)
	}
	return ths
}
