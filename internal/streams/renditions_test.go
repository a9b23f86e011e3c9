package streams_test

import (
	"bytes"
	"encoding/json"
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

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/jitstream/jitstream/internal/server"
	"github.com/jitstream/jitstream/internal/testutil/browser"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/httpt"
	"github.com/jitstream/jitstream/internal/testutil/jitserver"
	"github.com/jitstream/jitstream/internal/testutil/players"
	"github.com/jitstream/jitstream/internal/testutil/probe"
	"github.com/jitstream/jitstream/internal/transcode"
)

// probedSegment is what ffprobe reads of an init segment followed by one
// media segment.
type probedSegment struct {
	codec         string
	width, height int
	keyFirst      bool
	start, end    float64 // the earliest presentation time, the latest end
	frames        int
}

// probeSegment fetches init and seg (URLs) and probes them, one after the
// other in one file, with ffprobe.
func probeSegment(t *testing.T, init, seg string) probedSegment {
	t.Helper()
	var body []byte
	for _, u := range []string{init, seg} {
		resp, b := httpt.Get(t, u)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
		}
		body = append(body, b...)
	}
	f := filepath.Join(t.TempDir(), "seg.mp4")
	if err := os.WriteFile(f, body, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_streams", "-show_packets",
		"-of", "json", f).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", seg, err)
	}
	var pr struct {
		Streams []struct {
			Codec  string `json:"codec_name"`
			Width  int    `json:"width"`
			Height int    `json:"height"`
		} `json:"streams"`
		Packets []struct {
			PTS   string `json:"pts_time"`
			Dur   string `json:"duration_time"`
			Flags string `json:"flags"`
		} `json:"packets"`
	}
	if err := json.Unmarshal(out, &pr); err != nil || len(pr.Streams) != 1 || len(pr.Packets) == 0 {
		t.Fatalf("ffprobe %s: %v: %s", seg, err, out)
	}
	p := probedSegment{codec: pr.Streams[0].Codec, width: pr.Streams[0].Width, height: pr.Streams[0].Height,
		keyFirst: strings.HasPrefix(pr.Packets[0].Flags, "K"), start: math.Inf(1), end: math.Inf(-1), frames: len(pr.Packets)}
	for _, pk := range pr.Packets {
		pts, err1 := strconv.ParseFloat(pk.PTS, 64)
		d, err2 := strconv.ParseFloat(pk.Dur, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("ffprobe %s: packet %+v", seg, pk)
		}
		p.start, p.end = min(p.start, pts), max(p.end, pts+d)
	}
	return p
}

// TestRenditions: with a transcoder, an H.264 720p asset's HLS master
// playlist and MPD offer its 480p and 360p renditions beside the original
// (not a 720p one: the original serves that height); their segments, probed with ffprobe, are H.264 of the
// rendition's size, start with a key frame and have the original
// segment's start and duration, so that one rendition's segment n is
// followed without gap or overlap by another's n+1; hls.js switches
// between all of them while it plays; an H.265 asset plays in Chromium
// (which has no HEVC decoder) through its H.264 rendition.
func TestRenditions(t *testing.T) {
	t.Parallel()
	fixtures.RequireTools(t)
	e := jitserver.New(t)
	tc := transcode.New(transcode.Options{Store: e.Store, Concurrency: 2})
	t.Cleanup(func() { tc.Close() })
	url := e.Serve(t, server.Options{Transcoder: tc})
	get := func(u string) (*http.Response, []byte) {
		t.Helper()
		return httpt.Get(t, u)
	}
	a := jitserver.Ingest[assetURLs](t, e, fixtures.HD(t, 720))
	base := url + strings.TrimSuffix(a.URLs.HLS, "master.m3u8")

	t.Run("manifests", func(t *testing.T) {
		_, b := get(url + a.URLs.HLS)
		m := string(b)
		for _, want := range []string{"\nv1/index.m3u8\n", "\n480p/index.m3u8\n", "\n360p/index.m3u8\n",
			"RESOLUTION=854x480", "RESOLUTION=640x360", `CODECS="avc1.64001e,mp4a.40.2"`, `URI="v1/iframes.m3u8"`} {
			if !strings.Contains(m, want) {
				t.Errorf("master playlist lacks %q:\n%s", want, m)
			}
		}
		if strings.Contains(m, "1080p") || strings.Contains(m, "720p") || strings.Contains(m, "480p/iframes") {
			t.Errorf("master playlist with an upscaled rendition or a rendition's I-frames:\n%s", m)
		}
		_, b = get(url + a.URLs.DASH)
		var mpd struct {
			Sets []struct {
				ContentType string `xml:"contentType,attr"`
				Reps        []struct {
					ID     string `xml:"id,attr"`
					Codecs string `xml:"codecs,attr"`
					Width  int    `xml:"width,attr"`
					Height int    `xml:"height,attr"`
				} `xml:"Representation"`
			} `xml:"Period>AdaptationSet"`
		}
		if err := xml.Unmarshal(b, &mpd); err != nil || len(mpd.Sets) == 0 {
			t.Fatalf("MPD: %v\n%s", err, b)
		}
		var ids []string
		for _, r := range mpd.Sets[0].Reps {
			ids = append(ids, r.ID)
			if r.ID == "360p" && (r.Width != 640 || r.Height != 360 || r.Codecs != "avc1.64001e") {
				t.Errorf("360p representation %+v", r)
			}
		}
		if strings.Join(ids, " ") != "v1 480p 360p" {
			t.Errorf("video representations %v, want v1 480p 360p", ids)
		}
		resp, body := get(base + "480p/iframes.m3u8")
		if resp.StatusCode != http.StatusNotFound || !json.Valid(body) {
			t.Errorf("I-frame playlist of a rendition: %d %s", resp.StatusCode, body)
		}
		resp, body = get(base + "480p/99.m4s")
		if resp.StatusCode != http.StatusNotFound || !json.Valid(body) {
			t.Errorf("segment 99 of a rendition: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("segments", func(t *testing.T) {
		sizes := map[string][2]int{"v1": {1280, 720}, "480p": {854, 480}, "360p": {640, 360}}
		probed := map[string][]probedSegment{}
		for _, name := range []string{"v1", "480p", "360p"} {
			for n := range 3 {
				p := probeSegment(t, base+name+"/init.mp4", base+name+"/"+strconv.Itoa(n)+".m4s")
				probed[name] = append(probed[name], p)
				if name == "v1" {
					continue
				}
				o := probed["v1"][n]
				if p.codec != "h264" || p.width != sizes[name][0] || p.height != sizes[name][1] || !p.keyFirst || p.frames != o.frames {
					t.Errorf("%s segment %d: %+v, want h264 %v starting with a key frame, %d frames", name, n, p, sizes[name], o.frames)
				}
				if math.Abs(p.start-o.start) > 1e-3 || math.Abs(p.end-o.end) > 1e-3 {
					t.Errorf("%s segment %d plays %.4f-%.4f, the original's %.4f-%.4f", name, n, p.start, p.end, o.start, o.end)
				}
			}
		}
		// Segment n of one rendition, then n+1 of another: no gap, no overlap.
		for n := range 2 {
			if a, b := probed["480p"][n], probed["360p"][n+1]; math.Abs(a.end-b.start) > 1e-3 {
				t.Errorf("480p segment %d ends at %.4f, 360p segment %d starts at %.4f", n, a.end, n+1, b.start)
			}
		}
	})

	t.Run("hls.js", func(t *testing.T) {
		tab := browser.New(t)
		res := players.PlayHLSLevels(t, tab, url+a.URLs.HLS)
		t.Logf("%s: levels %+v, switches %+v", res.Player, res.Levels, res.Switches)
		heights := map[int]bool{}
		for _, s := range res.Switches {
			heights[s.Height] = true
		}
		if len(res.Levels) != 3 || len(res.Switches) != 3 || !heights[360] || !heights[480] || !heights[720] {
			t.Errorf("hls.js played %+v of levels %+v, want the original and two renditions", res.Switches, res.Levels)
		}
	})

	t.Run("ts", func(t *testing.T) {
		_, b := get(base + "ts/master.m3u8")
		if m := string(b); !strings.Contains(m, "\n480p/index.m3u8\n") || !strings.Contains(m, "RESOLUTION=640x360") {
			t.Fatalf("TS master playlist without the renditions:\n%s", m)
		}
		// A rendition's TS segment: its video and the original's audio,
		// at the original TS segment's times.
		stream := func(u string) (codecs string, width int, start, dur float64) {
			t.Helper()
			out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width:format=start_time,duration",
				"-of", "json", u).Output()
			if err != nil {
				t.Fatalf("ffprobe %s: %v", u, err)
			}
			var pr struct {
				Streams []struct {
					Codec string `json:"codec_name"`
					Width int    `json:"width"`
				} `json:"streams"`
				Format struct {
					Start string `json:"start_time"`
					Dur   string `json:"duration"`
				} `json:"format"`
			}
			if err := json.Unmarshal(out, &pr); err != nil {
				t.Fatal(err)
			}
			for _, s := range pr.Streams {
				codecs += s.Codec + " "
				width = max(width, s.Width)
			}
			start, _ = strconv.ParseFloat(pr.Format.Start, 64)
			dur, _ = strconv.ParseFloat(pr.Format.Dur, 64)
			return codecs, width, start, dur
		}
		oc, _, os, od := stream(base + "ts/1.ts")
		rc, rw, rs, rd := stream(base + "ts/480p/1.ts")
		if rc != "h264 aac " || rw != 854 || oc != rc || math.Abs(rs-os) > 0.05 || math.Abs(rd-od) > 0.05 {
			t.Errorf("480p TS segment 1: %s %d px, %.3f+%.3f; the original's: %s %.3f+%.3f", rc, rw, rs, rd, oc, os, od)
		}
		probe.RequireClean(t, base+"ts/360p/index.m3u8")
	})

	t.Run("smooth", func(t *testing.T) {
		murl := url + a.URLs.Smooth
		_, b := get(murl)
		var m struct {
			Streams []struct {
				Type   string `xml:"Type,attr"`
				Levels []struct {
					Bitrate   int64  `xml:"Bitrate,attr"`
					FourCC    string `xml:"FourCC,attr"`
					MaxHeight int    `xml:"MaxHeight,attr"`
					Private   string `xml:"CodecPrivateData,attr"`
				} `xml:"QualityLevel"`
				C []struct {
					T int64 `xml:"t,attr"`
				} `xml:"c"`
			} `xml:"StreamIndex"`
		}
		if err := xml.Unmarshal(b, &m); err != nil || len(m.Streams) != 2 || m.Streams[0].Type != "video" {
			t.Fatalf("Smooth manifest: %v\n%s", err, b)
		}
		v := m.Streams[0]
		var heights []int
		for _, l := range v.Levels {
			heights = append(heights, l.MaxHeight)
			if l.FourCC != "H264" || !strings.HasPrefix(l.Private, "00000001") {
				t.Errorf("quality level %+v", l)
			}
		}
		if fmt.Sprint(heights) != "[720 480 360]" {
			t.Fatalf("video quality levels of heights %v, want [720 480 360]:\n%s", heights, b)
		}
		// A rendition's fragment: H.264 of its size at the chunk's time.
		frag := fmt.Sprintf("%sQualityLevels(%d)/Fragments(video=%d)", strings.TrimSuffix(murl, "Manifest"), v.Levels[2].Bitrate, v.C[1].T)
		resp, body := get(frag)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", frag, resp.StatusCode, body)
		}
		f, err := mp4.DecodeFile(bytes.NewReader(body))
		if err != nil || len(f.Segments) != 1 || len(f.Segments[0].Fragments) != 1 {
			t.Fatalf("rendition fragment: %v", err)
		}
		traf := f.Segments[0].Fragments[0].Moof.Traf
		var tfxd *mp4.TfxdData
		for _, c := range traf.Children {
			if u, ok := c.(*mp4.UUIDBox); ok && u.SubType() == "tfxd" {
				tfxd = u.Tfxd
			}
		}
		if tfxd == nil || tfxd.FragmentAbsoluteTime != uint64(v.C[1].T) || traf.Tfdt.BaseMediaDecodeTime() != uint64(v.C[1].T) {
			t.Errorf("rendition fragment: tfxd %+v tfdt %d, want time %d", tfxd, traf.Tfdt.BaseMediaDecodeTime(), v.C[1].T)
		}
		tab := browser.New(t)
		res := players.PlaySmooth(t, tab, murl)
		t.Logf("%s: %+v", res.Player, res)
	})

	t.Run("h265", func(t *testing.T) {
		h := jitserver.Ingest[assetURLs](t, e, fixtures.H265AAC(t))
		_, b := get(url + h.URLs.HLS)
		if m := string(b); !strings.Contains(m, "hvc1.") || !strings.Contains(m, "\n240p/index.m3u8\n") {
			t.Fatalf("master playlist of an H.265 asset without its H.264 rendition:\n%s", m)
		}
		tab := browser.New(t)
		res := players.PlayHLSLevels(t, tab, url+h.URLs.HLS)
		t.Logf("%s: levels %+v, switches %+v", res.Player, res.Levels, res.Switches)
		if len(res.Levels) != 1 || !strings.HasPrefix(res.Levels[0].Codecs, "avc1.") || len(res.Switches) != 1 || res.Switches[0].Height != 240 {
			t.Errorf("hls.js levels %+v, played %+v; want the H.264 rendition only", res.Levels, res.Switches)
		}
		// Smooth Streaming, H.264 only: the rendition alone.
		_, b = get(url + h.URLs.Smooth)
		if m := string(b); strings.Count(m, "<QualityLevel ") != 2 || !strings.Contains(m, `FourCC="H264"`) || strings.Contains(m, "hvc1") {
			t.Errorf("Smooth manifest of an H.265 asset:\n%s", m)
		}
		sres := players.PlaySmooth(t, tab, url+h.URLs.Smooth)
		if sres.Height != 240 {
			t.Errorf("dash.js (MSS) played %dx%d", sres.Width, sres.Height)
		}
	})
}
