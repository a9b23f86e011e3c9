package streams_test

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strings"
	"testing"

	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/jitserver"
	"github.com/jitstream/jitstream/internal/testutil/mediatest"
)

// assetURLs is the part of the API's asset JSON the tests read.
type assetURLs struct {
	ID       string  `json:"id"`
	Duration float64 `json:"duration"`
	URLs     struct {
		HLS        string `json:"hls"`
		HLSTS      string `json:"hls_ts"`
		HLSIFrames string `json:"hls_iframes"`
		DASH       string `json:"dash"`
		Smooth     string `json:"smooth"`
		Play       string `json:"play"`
	} `json:"urls"`
}

// smoothChunks parses a Smooth manifest into per-stream-type chunk times in
// seconds.
func smoothChunks(t *testing.T, manifest []byte) map[string][]float64 {
	t.Helper()
	var m struct {
		StreamIndex []struct {
			Type      string `xml:"Type,attr"`
			TimeScale int64  `xml:"TimeScale,attr"`
			Quality   []struct {
				Bitrate int64 `xml:"Bitrate,attr"`
			} `xml:"QualityLevel"`
			C []mediatest.SmoothChunk `xml:"c"`
		} `xml:"StreamIndex"`
	}
	if err := xml.Unmarshal(manifest, &m); err != nil {
		t.Fatalf("smooth manifest: %v", err)
	}
	out := map[string][]float64{}
	for _, si := range m.StreamIndex {
		ts := si.TimeScale
		if ts == 0 {
			ts = 10_000_000
		}
		mediatest.EachSmoothChunk(si.C, func(t, _ int64) {
			out[si.Type] = append(out[si.Type], float64(t)/float64(ts))
		})
	}
	return out
}

func checkJSON404(t *testing.T, e *jitserver.Env, path string) {
	t.Helper()
	resp, body := e.Get(t, path)
	var j struct{ Error, Detail string }
	if resp.StatusCode != http.StatusNotFound || json.Unmarshal(body, &j) != nil || j.Error == "" {
		t.Errorf("GET %s: %d %q, want 404 with a JSON reason", path, resp.StatusCode, body)
	}
}

func TestSmoothServesFragmentsAndRejectsUnknownOnes(t *testing.T) {
	e := jitserver.New(t)
	a := jitserver.Ingest[assetURLs](t, e, fixtures.TwoChapters(t)...)
	resp, manifest := e.Get(t, a.URLs.Smooth)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/vnd.ms-sstr+xml" {
		t.Fatalf("manifest: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	chunks := smoothChunks(t, manifest)
	if len(chunks["video"]) < 2 || len(chunks["audio"]) < 2 {
		t.Fatalf("chunks = %v", chunks)
	}
	root := strings.TrimSuffix(a.URLs.Smooth, "Manifest")
	checkJSON404(t, e, root+"QualityLevels(1)/Fragments(video=0)")
	checkJSON404(t, e, root+"QualityLevels(abc)/Fragments(video=0)")
	checkJSON404(t, e, root+"Nothing")
}

func TestUnknownStreamResourcesAre404(t *testing.T) {
	e := jitserver.New(t)
	a := jitserver.Ingest[assetURLs](t, e, fixtures.H264AAC(t))
	root := strings.TrimSuffix(a.URLs.DASH, "dash/manifest.mpd")
	for _, p := range []string{
		"hls/v1/999.m4s", "hls/v1/-1.m4s", "hls/v1/01.m4s", "hls/v1/x.m4s", "hls/v9/0.m4s", "hls/a1/0.m4s",
		"hls/v1/index.m3u9", "dash/v3/init.mp4", "dash/trick/a2/init.mp4", "hls/ts/999.ts", "nothing",
	} {
		checkJSON404(t, e, root+p)
	}
	checkJSON404(t, e, "/streams/alice/NOPE/hls/master.m3u8")
	checkJSON404(t, e, "/streams/mallory/"+a.ID+"/hls/master.m3u8")
	checkJSON404(t, e, "/streams/alice/"+a.ID+",500-600/hls/master.m3u8")
	if resp, _ := e.Get(t, "/streams/alice/"+a.ID+",4-2/hls/master.m3u8"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("clip ending before it starts: %d, want 400", resp.StatusCode)
	}
}

func TestSegmentsAreCacheable(t *testing.T) {
	e := jitserver.New(t)
	a := jitserver.Ingest[assetURLs](t, e, fixtures.H264AAC(t))
	root := strings.TrimSuffix(a.URLs.DASH, "dash/manifest.mpd")
	for _, p := range []string{"hls/v1/init.mp4", "hls/v1/0.m4s", "hls/a2/1.m4s", "dash/v1/0.m4s"} {
		resp, full := e.Get(t, root+p, "Origin", "http://player.example")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
		h := resp.Header
		if !strings.Contains(h.Get("Cache-Control"), "immutable") || !strings.HasPrefix(h.Get("ETag"), `"`) ||
			h.Get("Access-Control-Allow-Origin") != "*" || !strings.HasPrefix(h.Get("Content-Type"), "video/mp4") && !strings.HasPrefix(h.Get("Content-Type"), "audio/mp4") {
			t.Errorf("%s: headers %v", p, h)
		}
		// The same URL gives the same bytes, and byte ranges work.
		_, again := e.Get(t, root+p)
		if string(again) != string(full) {
			t.Errorf("%s: two requests gave different bytes", p)
		}
		resp, part := e.Get(t, root+p, "Range", "bytes=10-99")
		if resp.StatusCode != http.StatusPartialContent || string(part) != string(full[10:100]) {
			t.Errorf("%s: range: %d", p, resp.StatusCode)
		}
		if resp, _ := e.Get(t, root+p, "If-None-Match", h.Get("ETag")); resp.StatusCode != http.StatusNotModified {
			t.Errorf("%s: If-None-Match: %d", p, resp.StatusCode)
		}
	}
}

func TestPlayPicksADelivery(t *testing.T) {
	e := jitserver.New(t)
	a := jitserver.Ingest[assetURLs](t, e, fixtures.H264AAC(t))
	for _, tc := range []struct {
		query, accept, ua, want string
	}{
		{"", "*/*", "curl/8", "/files/alice/" + a.ID + ".mp4"},
		{"", "application/dash+xml", "", a.URLs.DASH},
		{"", "", "AppleCoreMedia/1.0", a.URLs.HLS},
		{"?format=smooth", "application/dash+xml", "", a.URLs.Smooth},
		{"?format=hls_ts", "", "", a.URLs.HLSTS},
	} {
		resp, _ := e.Get(t, a.URLs.Play+tc.query, "Accept", tc.accept, "User-Agent", tc.ua)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != tc.want {
			t.Errorf("play%s Accept %q UA %q: %d -> %q, want %q", tc.query, tc.accept, tc.ua, resp.StatusCode, resp.Header.Get("Location"), tc.want)
		}
	}
	checkJSON404(t, e, a.URLs.Play+"?format=flv")
	checkJSON404(t, e, "/play/alice/NOPE")
}
