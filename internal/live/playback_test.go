package live_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/auth"
	"github.com/jitstream/jitstream/internal/live"
	"github.com/jitstream/jitstream/internal/server"
	"github.com/jitstream/jitstream/internal/testutil/browser"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/httpt"
	"github.com/jitstream/jitstream/internal/testutil/jitserver"
	"github.com/jitstream/jitstream/internal/testutil/players"
	"github.com/jitstream/jitstream/internal/testutil/probe"
)

// playlist is what a test reads of a media playlist.
type playlist struct {
	seq       int       // EXT-X-MEDIA-SEQUENCE
	target    int       // EXT-X-TARGETDURATION
	typ       string    // EXT-X-PLAYLIST-TYPE
	durations []float64 // EXTINF
	uris      []string
	hasMap    bool
	maps      int // EXT-X-MAP lines
	pdt       int // EXT-X-PROGRAM-DATE-TIME lines
	ended     bool
}

// total is the playlist's duration.
func (p playlist) total() float64 {
	s := 0.0
	for _, d := range p.durations {
		s += d
	}
	return s
}

func parsePlaylist(t *testing.T, b []byte) playlist {
	t.Helper()
	p, err := readPlaylist(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// readPlaylist reads a media playlist.
func readPlaylist(b []byte) (playlist, error) {
	var p playlist
	sc := bufio.NewScanner(bytes.NewReader(b))
	first := true
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if first && l != "#EXTM3U" {
			return p, fmt.Errorf("playlist does not start with #EXTM3U:\n%s", b)
		}
		first = false
		v, _ := strconv.Atoi(l[strings.Index(l, ":")+1:])
		switch {
		case strings.HasPrefix(l, "#EXT-X-MEDIA-SEQUENCE:"):
			p.seq = v
		case strings.HasPrefix(l, "#EXT-X-TARGETDURATION:"):
			p.target = v
		case strings.HasPrefix(l, "#EXT-X-PLAYLIST-TYPE:"):
			p.typ = strings.TrimPrefix(l, "#EXT-X-PLAYLIST-TYPE:")
		case strings.HasPrefix(l, "#EXT-X-MAP:"):
			p.hasMap = true
			p.maps++
		case strings.HasPrefix(l, "#EXT-X-PROGRAM-DATE-TIME:"):
			p.pdt++
		case strings.HasPrefix(l, "#EXTINF:"):
			d, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(l, "#EXTINF:"), ","), 64)
			if err != nil {
				return p, fmt.Errorf("%s: %w", l, err)
			}
			p.durations = append(p.durations, d)
		case l == "#EXT-X-ENDLIST":
			p.ended = true
		case l != "" && !strings.HasPrefix(l, "#"):
			p.uris = append(p.uris, l)
		}
	}
	if len(p.durations) == 0 || len(p.durations) != len(p.uris) {
		return p, fmt.Errorf("playlist with %d EXTINF and %d URIs:\n%s", len(p.durations), len(p.uris), b)
	}
	return p, nil
}

// get fetches url and fails the test unless it answers want.
func get(t *testing.T, url string, want int, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	resp, body := httpt.Get(t, url, hdr...)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d %s, want %d", url, resp.StatusCode, body, want)
	}
	return resp, body
}

// mpdInfo is what a test reads of an MPD.
type mpdInfo struct {
	Type     string `xml:"type,attr"`
	Duration string `xml:"mediaPresentationDuration,attr"`
	AST      string `xml:"availabilityStartTime,attr"`
	TSBD     string `xml:"timeShiftBufferDepth,attr"`
	Sets     []struct {
		ContentType string `xml:"contentType,attr"`
		Reps        []struct {
			ID       string `xml:"id,attr"`
			Codecs   string `xml:"codecs,attr"`
			Template struct {
				StartNumber int `xml:"startNumber,attr"`
				S           []struct {
					T int64 `xml:"t,attr"`
					D int64 `xml:"d,attr"`
					R int   `xml:"r,attr"`
				} `xml:"SegmentTimeline>S"`
			} `xml:"SegmentTemplate"`
		} `xml:"Representation"`
	} `xml:"Period>AdaptationSet"`
}

func parseMPD(t *testing.T, b []byte) mpdInfo {
	t.Helper()
	var m mpdInfo
	if err := xml.Unmarshal(b, &m); err != nil {
		t.Fatalf("MPD: %v\n%s", err, b)
	}
	return m
}

// pushFixture pushes the init segments and the first n fragments (all
// for n < 0) of each representation of d to the stream of key.
func pushFixture(t *testing.T, e *env, key string, d fixtures.DASH, n int) {
	t.Helper()
	for _, rep := range d.Reps {
		if status, body := e.put(t, "alice", key, "init-"+rep+".m4s", readFile(t, d.Init[rep])); status != http.StatusNoContent {
			t.Fatalf("init of %s: %d %s", rep, status, body)
		}
		fs := d.Fragments[rep]
		if n >= 0 {
			fs = fs[:n]
		}
		for _, p := range fs {
			if status, body := e.put(t, "alice", key, filepath.Base(p), readFile(t, p)); status != http.StatusNoContent {
				t.Fatalf("%s: %d %s", filepath.Base(p), status, body)
			}
		}
	}
}

// TestLiveManifests: the live playlists of a stream being pushed, from
// the ingesting node and from another node over the same store, before
// and after the end.
func TestLiveManifests(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	other := e.Serve(t, server.Options{Live: live.New(e.Library, live.Options{})})
	d := fixtures.LiveDASH(t)
	key := live.Key(e.secret, "alice", "cam")
	base := "/live/alice/cam/"
	for _, u := range []string{e.url, other} {
		get(t, u+base+"hls/master.m3u8", http.StatusNotFound)
	}
	pushFixture(t, e, key, d, 1)

	// The ingesting node and the other one (within its cache lifetime)
	// serve the same playlists.
	for _, node := range []struct{ name, url string }{{"ingest", e.url}, {"other", other}} {
		t.Run(node.name, func(t *testing.T) {
			resp, b := get(t, node.url+base+"hls/master.m3u8", http.StatusOK)
			if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=1" {
				t.Errorf("master Cache-Control %q", cc)
			}
			for _, want := range []string{`CODECS="avc1.`, `,mp4a.40.2"`, "RESOLUTION=320x240", `AUDIO="audio"`,
				`#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio"`, `URI="stream1/index.m3u8"`, "\nstream0/index.m3u8\n"} {
				if !strings.Contains(string(b), want) {
					t.Errorf("master playlist lacks %q:\n%s", want, b)
				}
			}
			resp, b = get(t, node.url+base+"hls/stream0/index.m3u8", http.StatusOK)
			p := parsePlaylist(t, b)
			if p.seq != 1 || p.target != 2 || !p.hasMap || p.pdt != 1 || p.ended || p.typ != "" || len(p.uris) != 1 || p.uris[0] != "1.m4s" {
				t.Errorf("live playlist %+v:\n%s", p, b)
			}
			etag := resp.Header.Get("ETag")
			get(t, node.url+base+"hls/stream0/index.m3u8", http.StatusNotModified, "If-None-Match", etag)
			resp, seg := get(t, node.url+base+"hls/stream0/1.m4s", http.StatusOK)
			if !bytes.Equal(seg, readFile(t, d.Fragments["stream0"][0])) {
				t.Error("fragment 1 differs from the one pushed")
			}
			if cc := resp.Header.Get("Cache-Control"); cc != live.CacheSegment {
				t.Errorf("fragment Cache-Control %q", cc)
			}
			_, init := get(t, node.url+base+"dash/stream1/init.mp4", http.StatusOK)
			if !bytes.Equal(init, readFile(t, d.Init["stream1"])) {
				t.Error("init segment differs from the one pushed")
			}
			_, body := get(t, node.url+base+"hls/stream0/2.m4s", http.StatusNotFound)
			if !bytes.Contains(body, []byte(`"error"`)) {
				t.Errorf("404 body %s", body)
			}
			_, b = get(t, node.url+base+"dash/manifest.mpd", http.StatusOK)
			m := parseMPD(t, b)
			if m.Type != "dynamic" || m.AST == "" || m.TSBD == "" || len(m.Sets) != 2 || m.Sets[0].ContentType != "video" ||
				m.Sets[0].Reps[0].Template.StartNumber != 1 || len(m.Sets[0].Reps[0].Template.S) != 1 {
				t.Errorf("live MPD %+v:\n%s", m, b)
			}
			get(t, node.url+base+"hls/stream0/index.m3u8?dvr=x", http.StatusBadRequest)
		})
	}

	// The rest of the fragments (an init segment again would start a
	// new epoch: an encoder that reconnected), then the end.
	for _, rep := range d.Reps {
		for _, p := range d.Fragments[rep][1:] {
			if status, body := e.put(t, "alice", key, filepath.Base(p), readFile(t, p)); status != http.StatusNoContent {
				t.Fatalf("%s: %d %s", filepath.Base(p), status, body)
			}
		}
	}
	if status, body := e.put(t, "alice", key, "stream.mpd", readFile(t, d.MPD)); status != http.StatusOK {
		t.Fatalf("static manifest: %d %s", status, body)
	}
	n := len(d.Fragments["stream0"])
	for _, u := range []string{e.url, other} {
		var p playlist
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, b := get(t, u+base+"hls/stream0/index.m3u8?dvr=0", http.StatusOK)
			if p = parsePlaylist(t, b); p.ended || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond) // polling interval, with a deadline (the other node's cache)
		}
		if !p.ended || p.typ != "VOD" || len(p.uris) != n || p.seq != 1 {
			t.Errorf("%s: ended playlist %+v", u, p)
		}
		_, b := get(t, u+base+"dash/manifest.mpd", http.StatusOK)
		if m := parseMPD(t, b); m.Type != "static" || m.Duration == "" {
			t.Errorf("%s: MPD after the end %+v:\n%s", u, m, b)
		}
	}
	st, err := live.LoadState(context.Background(), e.Store, "alice", "cam")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Ended || st.Archived != "cam" || len(st.Reps) != 2 || len(st.Reps[0].Frags) != n {
		t.Errorf("state after the end: %+v", st)
	}
	// The archived stream plays from the live URLs.
	probe.RequireClean(t, e.url+base+"hls/master.m3u8?dvr=0")
}

// Parameters of the push of TestLivePlayback. Players stay about two
// segment durations behind the live edge (hls.js with
// liveSyncDurationCount 2, dash.js; dash.js on Smooth can do no better,
// as it learns of each fragment from the tfrf of the one before, which
// names it only once it is stored): with 4 s segments that leaves about
// 3 s to the bound of three segment durations for the load of the
// parallel tests on a 2-core machine; with 2 s segments dash.js on
// Smooth measured 5.6 s against 6 s.
const (
	livePush    = 60 // seconds
	liveSegment = 4  // seconds
)

// TestLivePlayback: while ffmpeg pushes 60 s in real time, 4 s segments,
// two video bit rates and audio:
//   - ffmpeg reads the live HLS (ffprobe starting from its last segment),
//     hls.js plays it, dash.js the live DASH (from another node) and the
//     live Smooth, each within three segment durations of the live edge;
//   - the other node's sliding window slides;
//   - the live Smooth fragments carry tfrf boxes naming the fragments that
//     really follow (checkLiveSmooth);
//   - a time-shift range that the stream has passed is an on-demand
//     playlist that ffmpeg reads, and a static MPD.
//
// After the end the playlists end, the MPD and the Smooth manifest turn
// on-demand.
func TestLivePlayback(t *testing.T) {
	t.Parallel()
	fixtures.RequireTools(t)
	e := newEnv(t, 0)
	other := e.Serve(t, server.Options{Live: live.New(e.Library, live.Options{})})
	key := live.Key(e.secret, "alice", "show")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d := strconv.Itoa(livePush)
	cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration="+d,
		"-f", "lavfi", "-i", "sine=frequency=440:duration="+d,
		"-map", "0:v", "-map", "0:v", "-map", "1:a",
		"-c:v", "libx264", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0",
		"-b:v:0", "400k", "-b:v:1", "120k", "-s:v:1", "160x120", "-c:a", "aac",
		"-f", "dash", "-method", "PUT", "-seg_duration", strconv.Itoa(liveSegment), "-use_timeline", "1", "-use_template", "1",
		"-adaptation_sets", "id=0,streams=v id=1,streams=a",
		e.url+"/live/alice/"+key+"/stream.mpd")
	var pushOut []byte
	var pushErr error
	var wg sync.WaitGroup
	wg.Go(func() { pushOut, pushErr = cmd.CombinedOutput() })
	defer wg.Wait()

	base := "/live/alice/show/"
	// Wait for four fragments, so that the players start at their
	// target latency rather than at the stream's start, and the
	// time-shift range below has passed.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, b := httpt.Get(t, e.url+base+"hls/stream0/index.m3u8")
		if resp.StatusCode == http.StatusOK && len(parsePlaylist(t, b).uris) >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no live playlist within 30 s: %d %s", resp.StatusCode, b)
		}
		time.Sleep(100 * time.Millisecond) // polling interval, with a deadline
	}
	_, b := get(t, e.url+base+"hls/master.m3u8", http.StatusOK)
	if n := strings.Count(string(b), "#EXT-X-STREAM-INF:"); n != 2 {
		t.Errorf("master playlist with %d variants, want 2:\n%s", n, b)
	}

	// ffmpeg reads the live HLS and the other node's sliding window is
	// watched while the players play, one after the other.
	st, err := live.LoadState(ctx, e.Store, "alice", "show")
	if err != nil {
		t.Fatal(err)
	}
	ffmpegErr := make(chan error, 1)
	var ffmpegLatency float64
	go func() {
		var err error
		ffmpegLatency, err = readLive(ctx, e.url+base+"hls/master.m3u8", st.Start)
		ffmpegErr <- err
	}()
	windowErr := make(chan error, 1)
	go func() { windowErr <- watchWindow(ctx, other+base+"hls/stream0/index.m3u8", 3*liveSegment) }()
	t.Run("smooth", func(t *testing.T) { checkLiveSmooth(t, e, e.url+base+"smooth/", 2) })
	tab := browser.New(t)
	results := []players.LiveResult{
		players.PlayLiveHLS(t, tab, e.url+base+"hls/master.m3u8"),
		players.PlayLiveDASH(t, tab, other+base+"dash/manifest.mpd"),
		players.PlayLiveSmooth(t, tab, e.url+base+"smooth/Manifest"),
	}
	for _, res := range results {
		t.Logf("%s: latency %.2f s, played %.2f-%.2f, startup %v", res.Player, res.Latency, res.StartTime, res.EndTime, res.Startup)
		if limit := 3.0 * liveSegment; res.Latency > limit {
			t.Errorf("%s plays %.2f s behind the live edge, want at most %g s (three segment durations)", res.Player, res.Latency, limit)
		}
	}
	if err := <-ffmpegErr; err != nil {
		t.Errorf("ffmpeg reading the live HLS: %v", err)
	} else {
		t.Logf("ffprobe: latency %.2f s", ffmpegLatency)
		if limit := 3.0 * liveSegment; ffmpegLatency > limit || ffmpegLatency < 0 {
			t.Errorf("ffprobe reads %.2f s behind the live edge, want at most %g s (three segment durations)", ffmpegLatency, limit)
		}
	}
	if err := <-windowErr; err != nil {
		t.Errorf("sliding window: %v", err)
	}
	// The ingesting node's event playlist starts at the start.
	_, b = get(t, e.url+base+"hls/stream2/index.m3u8?type=event", http.StatusOK)
	if p := parsePlaylist(t, b); p.seq != 1 || p.typ != "EVENT" || p.ended {
		t.Errorf("event playlist during the stream: %+v", p)
	}
	t.Run("time-shift", func(t *testing.T) { checkTimeShift(t, e, other+base) })

	wg.Wait()
	checkPush(t, pushOut, pushErr)
	e.waitAsset(t, "show")
	for _, u := range []string{e.url, other} {
		var p playlist
		deadline := time.Now().Add(10 * time.Second)
		for !p.ended {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no ENDLIST within 10 s of the end: %+v", u, p)
			}
			_, b := get(t, u+base+"hls/stream0/index.m3u8", http.StatusOK)
			p = parsePlaylist(t, b)
			time.Sleep(50 * time.Millisecond) // polling interval, with a deadline
		}
		_, b := get(t, u+base+"dash/manifest.mpd", http.StatusOK)
		if m := parseMPD(t, b); m.Type != "static" {
			t.Errorf("%s: MPD after the end is %q", u, m.Type)
		}
	}
	_, b = get(t, e.url+base+"hls/stream0/index.m3u8?dvr=0", http.StatusOK)
	if p := parsePlaylist(t, b); p.seq != 1 || !p.ended || len(p.uris) < livePush/liveSegment-1 {
		t.Errorf("full playlist after the end: %+v", p)
	}
	checkEndedSmooth(t, e.url+base+"smooth/", livePush, liveSegment)
}

// checkTimeShift checks, on the stream at base (ending in show/), whose
// first four fragments have been pushed: the time-shift range from 1.5 to
// 3.5 segment durations after the stream's start is an on-demand HLS
// playlist of the fragments playing then (the second to the fourth),
// which ffmpeg reads cleanly, and a static MPD as long; a range after the
// live edge answers 404, a range with a window 400.
func checkTimeShift(t *testing.T, e *env, base string) {
	st, err := live.LoadState(context.Background(), e.Store, "alice", "show")
	if err != nil {
		t.Fatal(err)
	}
	at := func(segments float64) string {
		return st.Start.Add(time.Duration(segments * liveSegment * float64(time.Second))).UTC().Format(time.RFC3339Nano)
	}
	q := "?vbegin=" + at(1.5) + "&vend=" + at(3.5)
	want := 3.0 * liveSegment
	_, b := get(t, base+"hls/stream0/index.m3u8"+q, http.StatusOK)
	p := parsePlaylist(t, b)
	if p.seq != 2 || p.typ != "VOD" || !p.ended || len(p.uris) != 3 || math.Abs(p.total()-want) > 0.1 {
		t.Errorf("time-shift playlist %+v:\n%s", p, b)
	}
	_, b = get(t, base+"dash/manifest.mpd"+q, http.StatusOK)
	m := parseMPD(t, b)
	var d float64
	if _, err := fmt.Sscanf(m.Duration, "PT%fS", &d); err != nil || m.Type != "static" || math.Abs(d-want) > 0.1 {
		t.Errorf("time-shift MPD of %s, want %g s: %+v:\n%s", m.Duration, want, m, b)
	}
	// ffmpeg reads the range whole, from the master playlist.
	probe.RequireClean(t, base+"hls/master.m3u8"+q)
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", base+"hls/master.m3u8"+q).Output()
	if d, perr := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err != nil || perr != nil || math.Abs(d-want) > 0.5 {
		t.Errorf("ffprobe: duration of the time-shift range %q (%v), want %g s", out, err, want)
	}
	_, body := get(t, base+"hls/stream0/index.m3u8?vbegin="+at(3600), http.StatusNotFound)
	if !bytes.Contains(body, []byte("requested time range")) {
		t.Errorf("range after the live edge: %s", body)
	}
	get(t, base+"hls/stream0/index.m3u8?vbegin="+at(1)+"&dvr=4", http.StatusBadRequest)
}

// readLive reads 4 s of the live HLS at url with ffmpeg (any message is
// an error) and, at the same time, measures how far behind the live edge
// ffprobe starts reading it, from its last segment (-live_start_index -1,
// ffmpeg's HLS client option, as hls.js's liveSyncDurationCount): the
// wall-clock time since start (the stream's media time 0) when its first
// video packet arrives, less that packet's presentation time.
func readLive(ctx context.Context, url string, start time.Time) (latency float64, err error) {
	probe := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-live_start_index", "-1", "-select_streams", "v:0",
		"-show_entries", "packet=pts_time", "-of", "csv=p=0", "-read_intervals", "%+1", url)
	stdout, err := probe.StdoutPipe()
	if err != nil {
		return 0, err
	}
	var stderr bytes.Buffer
	probe.Stderr = &stderr
	if err := probe.Start(); err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		probe.Wait()
		return 0, fmt.Errorf("ffprobe read no packet of %s: %s", url, stderr.Bytes())
	}
	now := time.Now()
	pts, perr := strconv.ParseFloat(strings.TrimSpace(sc.Text()), 64)
	for sc.Scan() {
	}
	if err := probe.Wait(); err != nil || perr != nil {
		return 0, fmt.Errorf("ffprobe %s: %v %v: %s", url, err, perr, stderr.Bytes())
	}
	latency = now.Sub(start).Seconds() - pts

	out, err := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-t", "4",
		"-i", url, "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		return latency, fmt.Errorf("%v: %s", err, out)
	}
	return latency, nil
}

// watchWindow polls the live media playlist at url with ?dvr=dvr until its
// media sequence increased three times past 1: the window must last at
// least dvr seconds once the stream is that long, and less than one
// fragment more; the media sequence must never go back.
func watchWindow(ctx context.Context, url string, dvr float64) error {
	var seqs []int
	for len(seqs) < 3 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s?dvr=%g", url, dvr), nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("after %v: %w", seqs, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %d %s %v", req.URL, resp.StatusCode, b, err)
		}
		p, err := readPlaylist(b)
		if err != nil {
			return err
		}
		if p.ended {
			return fmt.Errorf("the stream ended before the window slid 3 times: %v\n%s", seqs, b)
		}
		if tot, longest := p.total(), slices.Max(p.durations); tot < dvr && p.seq > 1 || tot-longest >= dvr {
			return fmt.Errorf("window of %.3f s (%d segments), want %g s to %g s plus a fragment:\n%s", tot, len(p.uris), dvr, dvr, b)
		}
		if n := len(seqs); n > 0 && p.seq < seqs[n-1] {
			return fmt.Errorf("media sequence went back from %d to %d", seqs[n-1], p.seq)
		}
		if p.seq > 1 && (len(seqs) == 0 || p.seq > seqs[len(seqs)-1]) {
			seqs = append(seqs, p.seq)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the window did not slide 3 times: %v: %w", seqs, ctx.Err())
		case <-time.After(200 * time.Millisecond): // polling interval, within ctx's deadline
		}
	}
	return nil
}

// TestLiveAuth: on a server with access control, live playback asks for
// the user's token, as the API does; pushing needs only the stream key.
func TestLiveAuth(t *testing.T) {
	t.Parallel()
	e := jitserver.New(t, jitserver.WithAuth())
	url := e.Serve(t, server.Options{Auth: e.Auth, Live: live.New(e.Library, live.Options{})})
	d := fixtures.LiveDASH(t)
	secret, err := auth.LoadSecret(context.Background(), e.Store, nil)
	if err != nil {
		t.Fatal(err)
	}
	key := live.Key(secret, "alice", "cam")
	resp, body := httpt.Do(t, http.MethodPut, url+"/live/alice/"+key+"/init-stream0.m4s", bytes.NewReader(readFile(t, d.Init["stream0"])))
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("push without a token: %d %s", resp.StatusCode, body)
	}
	resp, body = httpt.Do(t, http.MethodPut, url+"/live/alice/"+key+"/chunk-stream0-00001.m4s", bytes.NewReader(readFile(t, d.Fragments["stream0"][0])))
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("push without a token: %d %s", resp.StatusCode, body)
	}
	e.AddUser(t, "bob")
	tests := []struct {
		name, token, path string
		want              int
	}{
		{"no token", "", "/live/alice/cam/hls/master.m3u8", http.StatusUnauthorized},
		{"other user's token", e.CreateToken(t, "bob", 0), "/live/alice/cam/hls/master.m3u8", http.StatusNotFound},
		{"token", e.Token, "/live/alice/cam/hls/master.m3u8", http.StatusOK},
		{"token, fragment", e.Token, "/live/alice/cam/hls/stream0/1.m4s", http.StatusOK},
		{"token, MPD", e.Token, "/live/alice/cam/dash/manifest.mpd", http.StatusOK},
		{"token, unknown stream", e.Token, "/live/alice/nope/hls/master.m3u8", http.StatusNotFound},
	}
	for _, tc := range tests {
		var hdr []string
		if tc.token != "" {
			hdr = []string{"Authorization", "Bearer " + tc.token}
		}
		resp, body := httpt.Get(t, url+tc.path, hdr...)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: GET %s: %d %s, want %d", tc.name, tc.path, resp.StatusCode, body, tc.want)
		}
		if tc.want == http.StatusOK && !strings.HasPrefix(resp.Header.Get("Cache-Control"), "private") {
			t.Errorf("%s: Cache-Control %q for a token request", tc.name, resp.Header.Get("Cache-Control"))
		}
	}
}
