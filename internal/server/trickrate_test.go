package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/delivery"
	"github.com/jitstream/jitstream/internal/server"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/jitserver"
	"github.com/jitstream/jitstream/internal/testutil/pacetest"
	"github.com/jitstream/jitstream/internal/testutil/probe"
)

// videoPackets returns the pts (seconds) and flags of the video packets of
// src, as ffprobe reads them.
func videoPackets(t *testing.T, src string) (pts []float64, flags []string) {
	t.Helper()
	out, stderr := probe.Tool(t, "ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "packet=pts_time,flags", "-of", "json", src)
	if stderr != "" {
		t.Errorf("ffprobe reports errors on %s:\n%s", src, stderr)
	}
	var raw struct {
		Packets []struct {
			PTSTime string `json:"pts_time"`
			Flags   string `json:"flags"`
		} `json:"packets"`
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	for _, p := range raw.Packets {
		f, err := strconv.ParseFloat(p.PTSTime, 64)
		if err != nil {
			t.Fatalf("pts_time %q", p.PTSTime)
		}
		pts, flags = append(pts, f), append(flags, p.Flags)
	}
	return pts, flags
}

// keyframePictures decodes the key frames of src's video and returns the
// MD5 of each picture, in presentation order.
func keyframePictures(t *testing.T, src string) []string {
	t.Helper()
	out, _ := probe.Tool(t, "ffmpeg", "-nostdin", "-v", "error", "-skip_frame", "nokey", "-i", src,
		"-map", "0:v:0", "-fps_mode", "passthrough", "-f", "framemd5", "-")
	frames, err := probe.ParseFrameMD5([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	return probe.MD5s(frames)
}

func TestTrickPlayByRate(t *testing.T) {
	e := jitserver.New(t)
	a := jitserver.Ingest[asset](t, e, fixtures.TwoChapters(t)...)
	// Key frames every second, at 0..7 s.
	keys := keyframePictures(t, fixtures.ChaptersSource(t))
	if len(keys) != 8 {
		t.Fatalf("source has %d key frames, want 8", len(keys))
	}
	for _, tc := range []struct {
		path  string
		pos   float64
		first int // the source's key frame shown first
		n     int // frames
		step  int // +1 forward, -1 rewind
	}{
		{"/files/alice/" + a.ID + ".mp4?rate=8&pos=2", 2, 2, 6, 1},
		{"/files/alice/" + a.ID + ".frag.mp4?rate=2&pos=4.5", 4.5, 5, 3, 1},
		{"/files/alice/" + a.ID + ".mp4?rate=-4&pos=5.3", 5.3, 5, 6, -1},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := e.Get(t, tc.path)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "video/mp4" {
				t.Fatalf("GET: %d %s %.200s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			// A range is a slice of the whole.
			rresp, part := e.Get(t, tc.path, "Range", "bytes=1000-1999")
			if rresp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, body[1000:2000]) {
				t.Errorf("range: %d, %d bytes equal to the slice: %v", rresp.StatusCode, len(part), bytes.Equal(part, body[1000:2000]))
			}
			url := e.URL + tc.path
			if s := probe.Streams(t, url); len(s) != 1 || s[0].CodecType != "video" {
				t.Errorf("streams %+v, want video only", s)
			}
			pts, flags := videoPackets(t, url)
			if len(pts) != tc.n {
				t.Fatalf("%d frames, want %d", len(pts), tc.n)
			}
			if math.Abs(pts[0]-tc.pos) > 1.0/30 {
				t.Errorf("first pts %.4f s, want %.4f s", pts[0], tc.pos)
			}
			for i := range pts {
				if !strings.HasPrefix(flags[i], "K") || (i > 0 && pts[i] <= pts[i-1]) {
					t.Errorf("packet %d: pts %.4f flags %s after %v", i, pts[i], flags[i], pts[:i])
				}
			}
			var want []string
			for k := range tc.n {
				want = append(want, keys[tc.first+k*tc.step])
			}
			if got := decodedFrames(t, url); !slices.Equal(got, want) {
				t.Errorf("decoded frames are not the source's key frames %d, %d, ...", tc.first, tc.first+tc.step)
			}
		})
	}

	// Requests that cannot be served: JSON errors.
	for _, q := range []string{"rate=3", "rate=-1", "rate=x", "rate=8&pos=99", "rate=8&pos=-2", "rate=8&pos=7.9", "rate=8&start=1"} {
		t.Run(q, func(t *testing.T) {
			resp, body := e.Get(t, "/files/alice/"+a.ID+".mp4?"+q)
			checkJSONError(t, resp.StatusCode, body, http.StatusBadRequest)
		})
	}
}

// TestTrickPlaySparseFallback checks the fallback for a recording whose key
// frames are too sparse for the rate (10 s apart): the ordinary stream, as
// a clip from pos for fast forward, from the start for a rewind that
// would go back beyond it; at 16x a trick stream.
func TestTrickPlaySparseFallback(t *testing.T) {
	e := jitserver.New(t)
	a := jitserver.Ingest[asset](t, e, fixtures.SparseKeyframes(t))
	base := "/files/alice/" + a.ID
	for _, tc := range []struct {
		query    string
		streams  int     // 2: the ordinary stream, 1: a trick stream
		duration float64 // of the video, seconds
	}{
		{"rate=4&pos=3", 2, 17},
		{"rate=-8&pos=12", 2, 20},
		{"rate=16&pos=0", 1, 0},
	} {
		t.Run(tc.query, func(t *testing.T) {
			url := e.URL + base + ".mp4?" + tc.query
			streams := probe.Streams(t, url)
			if len(streams) != tc.streams {
				t.Fatalf("%d streams, want %d", len(streams), tc.streams)
			}
			if tc.streams == 1 {
				if pts, _ := videoPackets(t, url); len(pts) != 2 {
					t.Errorf("trick stream of %d frames, want the 2 key frames", len(pts))
				}
				return
			}
			if d := streams[0].Duration; math.Abs(d-tc.duration) > 0.1 {
				t.Errorf("video duration %.3f s, want %.3f s", d, tc.duration)
			}
		})
	}
}

// TestTrickPlaySparseFallbackRate checks that the fallback for too sparse
// key frames sends N × the rate: ID.mp4?rate=4&pos=3 on a recording with
// key frames 10 s apart is the ordinary stream from 3 s (the same bytes as
// ID.mp4?start=3), paced at 4 times its content's rate after a fast start
// of 4 s of media (1 s × 4), where ID.mp4?start=3 goes at 1 ×. Real clients
// over loopback; the content's rate over the measured window comes from
// ffprobe's packet list of the file.
func TestTrickPlaySparseFallbackRate(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test: not in -short")
	}
	e := jitserver.New(t)
	a := jitserver.Ingest[asset](t, e, fixtures.SparseKeyframes(t))
	plain := "/files/" + jitserver.User + "/" + a.ID + ".mp4?start=3"
	media := pacetest.Probe(t, e.URL+plain, 100) // served unpaced
	var mu sync.Mutex
	var ended []delivery.SessionStats
	d, err := delivery.New(delivery.Config{Burst: time.Second, Factor: 1, OnSessionEnd: func(s delivery.SessionStats) {
		mu.Lock()
		ended = append(ended, s)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	paced := e.Serve(t, server.Options{Delivery: d})

	// The fallback is the same file as the plain clip.
	_, want := e.Get(t, plain)
	resp, got := e.Get(t, "/files/"+jitserver.User+"/"+a.ID+".mp4?rate=4&pos=3")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
		t.Fatalf("fallback: %d, %d bytes, not the %d bytes of %s", resp.StatusCode, len(got), len(want), plain)
	}

	ctx := context.Background()
	measure := func(query string, speed float64, limit time.Duration) float64 {
		t.Helper()
		url := paced + "/files/" + jitserver.User + "/" + a.ID + ".mp4?" + query
		start := time.Now()
		status, arr := pacetest.Download(t, ctx, url, "", limit)
		if status != http.StatusOK || len(arr) == 0 {
			t.Fatalf("%s: status %d, %d reads", query, status, len(arr))
		}
		// The fast start: 1 s × speed of media, at once.
		k := pacetest.Knee(arr, 150*time.Millisecond)
		if k < 0 {
			t.Fatalf("%s: no pause after the fast start", query)
		}
		if m := media.MediaAt(k) - media.MediaAt(1); m < speed*0.9-0.1 || m > speed*1.1+0.1 {
			t.Errorf("%s: the fast start carried %.2f s of media, want %.1f s", query, m, speed)
		}
		b0, b1, rate, ok := pacetest.Window(arr, 500*time.Millisecond, 100*time.Millisecond)
		if !ok {
			t.Fatalf("%s: no paced chunks after 0.5 s (%d bytes in %v)", query, arr[len(arr)-1].N, time.Since(start))
		}
		content := media.ContentRate(b0, b1)
		ratio := rate / content
		t.Logf("%s: %d bytes in %v; fast start %d bytes; paced %.0f kbit/s over bytes %d-%d whose content is %.0f kbit/s: %.2f ×",
			query, arr[len(arr)-1].N, time.Since(start).Round(time.Millisecond), k, rate/1e3, b0, b1, content/1e3, ratio)
		if ratio < speed*0.9 || ratio > speed*1.1 {
			t.Errorf("%s: delivered at %.2f × the content's rate, want %.0f × ± 10%%", query, ratio, speed)
		}
		return rate
	}
	// 13 s of media after the fast start at 4 ×: about 3.3 s.
	fast := measure("rate=4&pos=3", 4, 10*time.Second)
	// 16 s at 1 ×: measured over its first 4.5 s.
	normal := measure("start=3", 1, 4500*time.Millisecond)
	t.Logf("fallback %.0f kbit/s, plain %.0f kbit/s: %.2f ×", fast/1e3, normal/1e3, fast/normal)

	// The server's view: the fallback was sent whole, as a paced
	// progressive file with a fast start of 4 s of media; the plain one
	// was cut short by the client.
	sessions := func() []delivery.SessionStats { mu.Lock(); defer mu.Unlock(); return slices.Clone(ended) }
	for deadline := time.Now().Add(5 * time.Second); len(sessions()) < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions ended, want 2", len(sessions()))
		}
	}
	ss := sessions()
	if s := ss[0]; s.Kind != delivery.Progressive || !s.Paced || s.End != delivery.Complete || s.Bytes != int64(len(want)) ||
		media.MediaAt(s.BurstEnd) < 3.5 {
		t.Errorf("fallback session %+v", s)
	}
	if s := ss[1]; !s.Paced || s.End != delivery.ClientGone || s.Bytes >= int64(len(want)) {
		t.Errorf("plain session %+v", s)
	}
}
