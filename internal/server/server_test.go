package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jitstream/jitstream/internal/outputs"
	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/testutil/browser"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/jitserver"
	"github.com/jitstream/jitstream/internal/testutil/mediatest"
	"github.com/jitstream/jitstream/internal/testutil/probe"
)

// asset is the part of the API's asset JSON the tests read.
type asset struct {
	ID       string  `json:"id"`
	Duration float64 `json:"duration"`
	Segments int     `json:"segments"`
	Tracks   []struct {
		Kind  string `json:"kind"`
		Codec string `json:"codec"`
	} `json:"tracks"`
	Chapters []struct {
		Name string `json:"name"`
	} `json:"chapters"`
	URLs struct {
		Original     []string `json:"original"`
		Consolidated string   `json:"consolidated"`
		FMP4         string   `json:"fmp4"`
		Clip         string   `json:"clip"`
	} `json:"urls"`
}

// download fetches path into a temporary file and returns its name.
func download(t *testing.T, e *jitserver.Env, path string) string {
	t.Helper()
	resp, b := e.Get(t, path)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if resp.ContentLength != int64(len(b)) {
		t.Fatalf("GET %s: Content-Length %d, got %d bytes", path, resp.ContentLength, len(b))
	}
	return mediatest.WriteTemp(t, b, "out.mp4")
}

func TestOutputsCarryEverySampleOfTheOriginals(t *testing.T) {
	e := jitserver.New(t)
	cases := []struct {
		name  string
		files []string
	}{
		{"h264-aac", []string{fixtures.H264AAC(t)}},
		{"h265-aac", []string{fixtures.H265AAC(t)}},
		{"two-chapters", fixtures.TwoChapters(t)},
		{"moov-at-end", []string{fixtures.MoovAtEnd(t)}},
		{"fragmented", []string{fixtures.Fragmented(t)}},
		{"metadata-track", []string{fixtures.WithMetadataTrack(t)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := jitserver.Ingest[asset](t, e, tc.files...)
			if len(a.URLs.Original) != len(tc.files) || a.URLs.Consolidated == "" || a.URLs.FMP4 == "" || !strings.Contains(a.URLs.Clip, "{start}") {
				t.Fatalf("urls = %+v", a.URLs)
			}
			// Originals come back byte-exact.
			var wantDur float64
			for i, f := range tc.files {
				want, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				resp, got := e.Get(t, a.URLs.Original[i])
				if resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
					t.Errorf("original %d: status %d, %d bytes, identical=%v", i, resp.StatusCode, len(got), bytes.Equal(got, want))
				}
				wantDur += probe.Duration(t, f)
			}
			want := probe.ConcatMD5s(t, tc.files)
			streams := len(probe.Streams(t, tc.files[0]))
			for _, out := range []string{a.URLs.Consolidated, a.URLs.FMP4} {
				// ffprobe reads it straight over HTTP.
				url := e.URL + out
				if got := len(probe.Streams(t, url)); got != streams {
					t.Errorf("%s: ffprobe sees %d streams, want %d", out, got, streams)
				}
				probe.EqualStreams(t, out, probe.PacketMD5s(t, url), want)
				if d := probe.Duration(t, url); math.Abs(d-wantDur) > 0.1 {
					t.Errorf("%s: duration %.3f s, want %.3f s", out, d, wantDur)
				}
			}
			// The consolidated file is progressive with moov first.
			boxes, err := fixtures.TopLevelBoxes(download(t, e, a.URLs.Consolidated))
			if err != nil {
				t.Fatal(err)
			}
			var order []string
			for _, b := range boxes {
				order = append(order, b.Type)
			}
			if mi, di := slices.Index(order, "moov"), slices.Index(order, "mdat"); mi < 0 || di < 0 || mi > di {
				t.Errorf("consolidated top-level boxes %v: want moov before mdat", order)
			}
		})
	}
}

func TestRangesEqualSlicesOfTheFullResponse(t *testing.T) {
	e := jitserver.New(t)
	a := jitserver.Ingest[asset](t, e, fixtures.TwoChapters(t)...)
	for _, path := range []string{a.URLs.Consolidated, a.URLs.FMP4, a.URLs.Original[1], a.URLs.Consolidated + "?start=1.5&end=6"} {
		resp, full := e.Get(t, path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		etag := resp.Header.Get("ETag")
		if etag == "" || resp.Header.Get("Accept-Ranges") != "bytes" {
			t.Errorf("GET %s: ETag %q, Accept-Ranges %q", path, etag, resp.Header.Get("Accept-Ranges"))
		}
		n := int64(len(full))
		rng := rand.New(rand.NewSource(int64(len(path))))
		type span struct{ lo, hi int64 }
		var spans []span
		for range 20 {
			lo := rng.Int63n(n)
			hi := lo + rng.Int63n(min(n-lo, 300000))
			spans = append(spans, span{lo, hi})
		}
		spans = append(spans, span{0, 0}, span{n - 1, n - 1}, span{0, n - 1})
		for _, s := range spans {
			resp, got := e.Get(t, path, "Range", fmt.Sprintf("bytes=%d-%d", s.lo, s.hi))
			if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, full[s.lo:s.hi+1]) {
				t.Errorf("%s bytes=%d-%d: status %d, equal=%v", path, s.lo, s.hi, resp.StatusCode, bytes.Equal(got, full[s.lo:s.hi+1]))
			}
		}
		// Suffix and open ranges.
		if resp, got := e.Get(t, path, "Range", "bytes=-1000"); resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, full[n-1000:]) {
			t.Errorf("%s suffix range: status %d", path, resp.StatusCode)
		}
		if resp, got := e.Get(t, path, "Range", fmt.Sprintf("bytes=%d-", n/2)); resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, full[n/2:]) {
			t.Errorf("%s open range: status %d", path, resp.StatusCode)
		}
		// Several ranges in one multipart/byteranges response.
		resp, body := e.Get(t, path, "Range", fmt.Sprintf("bytes=0-99,%d-%d,%d-", n/3, n/3+5000, n-10))
		mt, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if resp.StatusCode != http.StatusPartialContent || mt != "multipart/byteranges" {
			t.Fatalf("%s multi-range: %d %s", path, resp.StatusCode, mt)
		}
		if resp.ContentLength != int64(len(body)) {
			t.Errorf("%s multi-range: Content-Length %d, body %d", path, resp.ContentLength, len(body))
		}
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		wants := [][]byte{full[:100], full[n/3 : n/3+5001], full[n-10:]}
		for i, w := range wants {
			p, err := mr.NextPart()
			if err != nil {
				t.Fatalf("%s multi-range part %d: %v", path, i, err)
			}
			got, _ := io.ReadAll(p)
			if !bytes.Equal(got, w) {
				t.Errorf("%s multi-range part %d (%s) differs", path, i, p.Header.Get("Content-Range"))
			}
		}
		// Conditionals.
		if resp, _ := e.Get(t, path, "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
			t.Errorf("%s If-None-Match: %d, want 304", path, resp.StatusCode)
		}
		if resp, got := e.Get(t, path, "Range", "bytes=0-9", "If-Range", `"other"`); resp.StatusCode != http.StatusOK || int64(len(got)) != n {
			t.Errorf("%s If-Range mismatch: %d, want 200 full", path, resp.StatusCode)
		}
		if resp, _ := e.Get(t, path, "Range", "bytes=0-9", "If-Range", etag); resp.StatusCode != http.StatusPartialContent {
			t.Errorf("%s If-Range match: %d, want 206", path, resp.StatusCode)
		}
		if resp, _ := e.Get(t, path, "Range", fmt.Sprintf("bytes=%d-", n+10)); resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
			t.Errorf("%s unsatisfiable range: %d, want 416", path, resp.StatusCode)
		}
	}
}

func TestClipsStartExactlyAndLastTheirLength(t *testing.T) {
	e := jitserver.New(t)
	a := jitserver.Ingest[asset](t, e, fixtures.TwoChapters(t)...)
	// The recording the chapters were cut from, decoded frame by frame.
	source := decodedFrames(t, fixtures.ChaptersSource(t))
	const fps = 30
	for _, c := range []struct{ start, end float64 }{{0, 2}, {1.5, 4}, {2.2, 7.3}, {3.9, 4.6}} {
		path := strings.NewReplacer("{start}", strconv.FormatFloat(c.start, 'f', -1, 64), "{end}", strconv.FormatFloat(c.end, 'f', -1, 64)).Replace(a.URLs.Clip)
		url := e.URL + path
		var video probe.Stream
		for _, s := range probe.Streams(t, url) {
			if s.CodecType == "video" {
				video = s
			}
		}
		if math.Abs(video.Duration-(c.end-c.start)) > 1.0/fps+1e-3 {
			t.Errorf("clip %v-%v: video duration %.4f s, want %.4f within a frame", c.start, c.end, video.Duration, c.end-c.start)
		}
		// Decoding honours the edit list: the first frame shown is the
		// source's frame at start, and the frames run on to end.
		got := decodedFrames(t, url)
		first := int(math.Round(c.start * fps))
		want := int(math.Round((c.end - c.start) * fps))
		if abs(len(got)-want) > 1 {
			t.Errorf("clip %v-%v: %d frames decoded, want %d±1", c.start, c.end, len(got), want)
		}
		for i := range min(len(got), len(source)-first) {
			if got[i] != source[first+i] {
				t.Errorf("clip %v-%v: frame %d differs from the source's frame %d", c.start, c.end, i, first+i)
				break
			}
		}
	}
}

func abs(n int) int { return max(n, -n) }

// decodedFrames decodes the first video stream of src with ffmpeg and
// returns the MD5 of every frame shown, in presentation order.
func decodedFrames(t *testing.T, src string) []string {
	t.Helper()
	out, _ := probe.Tool(t, "ffmpeg", "-nostdin", "-v", "error", "-i", src, "-map", "0:v:0", "-f", "framemd5", "-")
	frames, err := probe.ParseFrameMD5([]byte(out))
	if err != nil {
		t.Fatalf("ffmpeg framemd5 of %s: %v", src, err)
	}
	return probe.MD5s(frames)
}

func TestBadInputGetsClearErrorsAndLosesNothing(t *testing.T) {
	e := jitserver.New(t)
	good := jitserver.Ingest[asset](t, e, fixtures.H264AAC(t))
	before, err := e.Store.List(context.Background(), "users/alice/")
	if err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "EMPTY.MP4")
	os.WriteFile(empty, nil, 0o644)
	uploads := []struct {
		name   string
		user   string
		files  []string
		status int
	}{
		{"not media", "alice", []string{fixtures.NotMedia(t)}, http.StatusUnprocessableEntity},
		{"truncated moov", "alice", []string{fixtures.TruncatedMoovAtEnd(t)}, http.StatusUnprocessableEntity},
		{"truncated mdat", "alice", []string{fixtures.TruncatedMdat(t)}, http.StatusUnprocessableEntity},
		{"empty file", "alice", []string{empty}, http.StatusBadRequest},
		{"no files", "alice", nil, http.StatusBadRequest},
		{"unsupported codec", "alice", []string{fixtures.Unsupported(t)}, http.StatusUnsupportedMediaType},
		{"good then bad chapter", "alice", []string{fixtures.H264AAC(t), fixtures.NotMedia(t)}, http.StatusUnprocessableEntity},
		{"unknown user", "mallory", []string{fixtures.H264AAC(t)}, http.StatusNotFound},
	}
	for _, u := range uploads {
		t.Run(u.name, func(t *testing.T) {
			status, body := e.Upload(t, u.user, u.files...)
			checkJSONError(t, status, body, u.status)
		})
	}
	after, err := e.Store.List(context.Background(), "users/alice/")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(before, after, func(a, b store.Info) bool { return a.Key == b.Key && a.Size == b.Size }) {
		t.Errorf("failed uploads changed the store:\nbefore %v\nafter  %v", before, after)
	}
	gets := []struct {
		name, path string
		hdr        []string
		status     int
	}{
		{"unknown asset", "/files/alice/NOPE.mp4", nil, http.StatusNotFound},
		{"unknown asset api", "/api/v1/users/alice/assets/NOPE", nil, http.StatusNotFound},
		{"unknown user", "/files/mallory/", nil, http.StatusNotFound},
		{"unknown user api", "/api/v1/users/mallory/assets", nil, http.StatusNotFound},
		{"unknown original", "/files/alice/" + good.ID + "/OTHER.MP4", nil, http.StatusNotFound},
		{"unknown kind", "/files/alice/" + good.ID + ".avi", nil, http.StatusNotFound},
		{"clip not a number", good.URLs.Consolidated + "?start=abc", nil, http.StatusBadRequest},
		{"clip end before start", good.URLs.Consolidated + "?start=4&end=2", nil, http.StatusBadRequest},
		{"clip beyond the end", good.URLs.Consolidated + "?start=500&end=600", nil, http.StatusBadRequest},
		{"malformed range", good.URLs.Consolidated, []string{"Range", "bytes=abc"}, http.StatusRequestedRangeNotSatisfiable},
		{"unsatisfiable range", good.URLs.Consolidated, []string{"Range", "bytes=99999999-"}, http.StatusRequestedRangeNotSatisfiable},
	}
	for _, g := range gets {
		t.Run(g.name, func(t *testing.T) {
			resp, body := e.Get(t, g.path, g.hdr...)
			checkJSONError(t, resp.StatusCode, body, g.status)
		})
	}
	// The server goes on serving the good asset.
	if resp, _ := e.Get(t, good.URLs.Consolidated); resp.StatusCode != http.StatusOK {
		t.Errorf("good asset after bad input: %d", resp.StatusCode)
	}
}

func checkJSONError(t *testing.T, status int, body []byte, want int) {
	t.Helper()
	if status != want {
		t.Errorf("status %d, want %d (%s)", status, want, body)
		return
	}
	var e struct {
		Error  string `json:"error"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Errorf("error body is not JSON naming the problem: %q", body)
	}
}

func TestListingAndMetadata(t *testing.T) {
	e := jitserver.New(t)
	a := jitserver.Ingest[asset](t, e, fixtures.TwoChapters(t)...)
	if a.ID != "GX010042" || len(a.Chapters) != 2 || a.Segments < 2 || a.Duration < 7 {
		t.Errorf("asset = %+v", a)
	}
	var codecs []string
	for _, tr := range a.Tracks {
		codecs = append(codecs, tr.Kind+":"+tr.Codec)
	}
	if !slices.ContainsFunc(codecs, func(c string) bool { return strings.HasPrefix(c, "video:avc1.") }) ||
		!slices.Contains(codecs, "audio:mp4a.40.2") {
		t.Errorf("tracks = %v", codecs)
	}
	resp, body := e.Get(t, "/files/alice/", "Accept", "application/json")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("listing: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var listing struct {
		Files []outputs.Entry `json:"files"`
	}
	if err := json.Unmarshal(body, &listing); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]outputs.Kind{}
	for _, f := range listing.Files {
		kinds[f.Name] = f.Kind
		resp, _ := e.Get(t, f.URL)
		if resp.StatusCode != http.StatusOK || resp.ContentLength != f.Size {
			t.Errorf("listed %s: GET %d, Content-Length %d, listed size %d", f.Name, resp.StatusCode, resp.ContentLength, f.Size)
		}
	}
	want := map[string]outputs.Kind{
		"GX010042.mp4": outputs.KindConsolidated, "GX010042.frag.mp4": outputs.KindFMP4,
		"GX010042/GX010042.MP4": outputs.KindOriginal, "GX010042/GX020042.MP4": outputs.KindOriginal,
	}
	for n, k := range want {
		if kinds[n] != k {
			t.Errorf("listing: %s has kind %q, want %q (all: %v)", n, kinds[n], k, kinds)
		}
	}
	resp, body = e.Get(t, "/files/alice/", "Accept", "text/html")
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(body), "GX020042.MP4") {
		t.Errorf("HTML listing: %s", resp.Header.Get("Content-Type"))
	}
	// A second upload of the same recording gets a new id.
	if b := jitserver.Ingest[asset](t, e, fixtures.TwoChapters(t)...); b.ID == a.ID {
		t.Errorf("second ingest reused id %s", b.ID)
	}
	// Deleting removes it from the listing and the store.
	req, _ := http.NewRequest(http.MethodDelete, e.URL+"/api/v1/users/alice/assets/"+a.ID, nil)
	dr, err := http.DefaultClient.Do(req)
	if err != nil || dr.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %v %v", err, dr)
	}
	if resp, _ := e.Get(t, a.URLs.Consolidated); resp.StatusCode != http.StatusNotFound {
		t.Errorf("deleted asset still served: %d", resp.StatusCode)
	}
	if objs, _ := e.Store.List(context.Background(), "users/alice/assets/"+a.ID+"/"); len(objs) != 1 || !strings.HasSuffix(objs[0].Key, "/deleted") {
		t.Errorf("deleted asset left %v, want only its tombstone", objs)
	}
	// Its id is never reused, so cached URLs never change meaning.
	if c := jitserver.Ingest[asset](t, e, fixtures.TwoChapters(t)...); c.ID == a.ID {
		t.Errorf("id %s of a deleted asset was reused", a.ID)
	}
}

func TestChromiumPlaysAndSeeksTheConsolidatedFile(t *testing.T) {
	e := jitserver.New(t)
	a := jitserver.Ingest[asset](t, e, fixtures.TwoChapters(t)...)
	ctx := browser.New(t)
	got := browser.PlayAndSeek(t, ctx, e.URL+a.URLs.Consolidated)
	if math.Abs(got-a.Duration) > 0.1 {
		t.Errorf("browser reports duration %.3f s, want %.3f s", got, a.Duration)
	}
}
