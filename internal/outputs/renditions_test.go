package outputs_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/internal/outputs"
	"github.com/jitstream/jitstream/internal/server"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/httpt"
	"github.com/jitstream/jitstream/internal/testutil/jitserver"
	"github.com/jitstream/jitstream/internal/testutil/probe"
	"github.com/jitstream/jitstream/internal/transcode"
)

// renditionServer serves e's library with a transcoder whose renditions
// the file-system view offers; its log goes to the returned buffer.
func renditionServer(t *testing.T, e *jitserver.Env) (string, *httpt.SyncBuffer) {
	t.Helper()
	var logs httpt.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tc := transcode.New(transcode.Options{Store: e.Store, Concurrency: 2, Logger: log})
	t.Cleanup(func() { tc.Close() })
	out := outputs.New(e.Library, 0)
	out.SetRenditions(outputs.RenditionOptions{Transcoder: tc, Logger: log})
	srv := httptest.NewUnstartedServer(server.New(out, server.Options{Transcoder: tc, Logger: log}))
	srv.Config.ConnContext = httpserve.WithConn
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return srv.URL, &logs
}

// listing returns the entries of user's JSON listing, by name.
func listing(t *testing.T, url string) map[string]outputs.Entry {
	t.Helper()
	resp, b := httpt.Get(t, url+"/files/"+jitserver.User+"/?format=json")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("listing: %d %s", resp.StatusCode, b)
	}
	var l struct {
		Files []outputs.Entry `json:"files"`
	}
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatalf("listing: %v: %s", err, b)
	}
	m := map[string]outputs.Entry{}
	for _, e := range l.Files {
		m[e.Name] = e
	}
	return m
}

// save writes b to a new file and returns its path.
func save(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// md5s are the packet MD5s of the streams of src selected by spec ("0:v",
// "0:a"), with stream copy.
func md5s(t *testing.T, src, spec string) []string {
	t.Helper()
	return probe.MD5s(probe.FrameMD5(t, "-i", src, "-map", spec, "-c", "copy"))
}

// TestRenditionFiles: the file-system view lists ID.480p.mp4 and
// ID.360p.mp4 for a 720p H.264 asset. Before any segment is transcoded,
// ID.480p.mp4 streams as a fragmented MP4 (chunked, no size, no ranges)
// that ffprobe reads as 854x480 H.264 with the original's AAC packets;
// once that download made every segment, the same name is a progressive
// MP4 (moov first) with an exact size, ETag and byte ranges, holding the
// same video packets as the stream and the original's audio packets, and
// the listing shows its size. WebDAV answers a PROPFIND of the complete
// file, 404 for an incomplete one, and its listing still works. A 320x240
// H.264 asset has no renditions (the ladder's lowest rung is 360p); an
// H.265 one has its H.264 240p rendition.
func TestRenditionFiles(t *testing.T) {
	t.Parallel()
	fixtures.RequireTools(t)
	e := jitserver.New(t)
	url, logs := renditionServer(t, e)
	src := fixtures.HD(t, 720)
	a := jitserver.Ingest[struct{ ID string }](t, e, src)
	name := a.ID + ".480p.mp4"
	fileURL := url + "/files/" + jitserver.User + "/" + name

	t.Run("listed before", func(t *testing.T) {
		l := listing(t, url)
		for _, r := range []string{"480p", "360p"} {
			en, ok := l[a.ID+"."+r+".mp4"]
			if !ok || en.Kind != outputs.KindRendition || en.Rendition != r || en.Size != 0 || en.Note == "" || en.Asset != a.ID {
				t.Errorf("listing of %s_%s.mp4: %+v (present %v), want a rendition without size and a note", a.ID, r, en, ok)
			}
		}
		for _, r := range []string{"720p", "1080p"} {
			if _, ok := l[a.ID+"."+r+".mp4"]; ok {
				t.Errorf("listing has %s_%s.mp4, a rendition not below the original's height", a.ID, r)
			}
		}
		resp, b := httpt.Get(t, url+"/files/"+jitserver.User+"/")
		if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(name)) || !bytes.Contains(b, []byte(">transcoding<")) {
			t.Errorf("HTML listing: %d, lacks %s marked as transcoding:\n%s", resp.StatusCode, name, b)
		}
		resp, b = httpt.Do(t, "PROPFIND", url+"/dav/"+jitserver.User+"/"+a.ID+".360p.mp4", nil, "Depth", "0")
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("PROPFIND of an incomplete rendition: %d %s, want 404", resp.StatusCode, b)
		}
	})

	var stream []byte
	t.Run("streamed", func(t *testing.T) {
		resp, _ := httpt.Do(t, http.MethodHead, fileURL, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Length") != "" || resp.Header.Get("Accept-Ranges") != "none" {
			t.Errorf("HEAD while transcoding: %d %v", resp.StatusCode, resp.Header)
		}
		// A Range is ignored: the whole body, 200.
		resp, stream = httpt.Get(t, fileURL, "Range", "bytes=100-199")
		h := resp.Header
		if resp.StatusCode != http.StatusOK || resp.ContentLength != -1 || !slices.Equal(resp.TransferEncoding, []string{"chunked"}) ||
			h.Get("Content-Length") != "" || h.Get("Accept-Ranges") != "none" || h.Get("Cache-Control") != "no-store" ||
			h.Get("ETag") != "" || h.Get("Content-Type") != "video/mp4" {
			t.Fatalf("GET while transcoding: %d, length %d, transfer encoding %v, header %v (%d bytes)",
				resp.StatusCode, resp.ContentLength, resp.TransferEncoding, h, len(stream))
		}
		p := save(t, "stream.mp4", stream)
		boxes, err := fixtures.TopLevelBoxes(p)
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		var seqs []uint32
		for _, b := range boxes {
			types = append(types, b.Type)
			if b.Type == "moof" {
				seqs = append(seqs, binary.BigEndian.Uint32(stream[b.Offset+20:]))
			}
		}
		// Three 4 s segments, each a video and an audio fragment.
		if want := "ftyp moov moof mdat moof mdat moof mdat moof mdat moof mdat moof mdat"; strings.Join(types, " ") != want {
			t.Errorf("boxes %v, want %s", types, want)
		}
		if !slices.Equal(seqs, []uint32{1, 2, 3, 4, 5, 6}) {
			t.Errorf("fragment sequence numbers %v, want 1 to 6", seqs)
		}
		checkRendition(t, p, src)
		probe.RequireClean(t, p)
		if n := strings.Count(logs.String(), "rendition=480p"); n == 0 {
			t.Errorf("no transcode of 480p in the log")
		}
	})
	if t.Failed() {
		return
	}
	made := func() int { return strings.Count(logs.String(), "msg=\"transcode: segment made\"") }
	if n := made(); n != 3 {
		t.Errorf("%d segments transcoded for the download, want 3 (one run each)", n)
	}

	t.Run("complete", func(t *testing.T) {
		// The download transcoded every segment: the listing knows.
		var en outputs.Entry
		deadline := time.Now().Add(30 * time.Second)
		for en = listing(t, url)[name]; en.Size == 0; en = listing(t, url)[name] {
			if time.Now().After(deadline) {
				t.Fatalf("listing of %s after the download: %+v, want a size", name, en)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if en.Note != "" || en.Kind != outputs.KindRendition {
			t.Errorf("listing of the complete %s: %+v", name, en)
		}
		resp, _ := httpt.Do(t, http.MethodHead, fileURL, nil)
		h := resp.Header
		size, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
		if resp.StatusCode != http.StatusOK || err != nil || size != en.Size || h.Get("Accept-Ranges") != "bytes" ||
			h.Get("ETag") == "" || h.Get("Last-Modified") == "" {
			t.Fatalf("HEAD of the complete file: %d %v, want Content-Length %d, ranges, ETag, Last-Modified", resp.StatusCode, h, en.Size)
		}
		etag := h.Get("ETag")
		resp, full := httpt.Get(t, fileURL+"?pace=0")
		if resp.StatusCode != http.StatusOK || int64(len(full)) != size || resp.Header.Get("ETag") != etag {
			t.Fatalf("GET of the complete file: %d, %d bytes of %d, ETag %q", resp.StatusCode, len(full), size, resp.Header.Get("ETag"))
		}
		p := save(t, "complete.mp4", full)
		boxes, err := fixtures.TopLevelBoxes(p)
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, b := range boxes {
			types = append(types, b.Type)
		}
		if strings.Join(types, " ") != "ftyp moov mdat" {
			t.Errorf("boxes %v, want ftyp moov mdat (progressive, moov first)", types)
		}
		checkRendition(t, p, src)
		probe.RequireClean(t, p)
		sp := save(t, "stream.mp4", stream)
		if got, want := md5s(t, p, "0:v"), md5s(t, sp, "0:v"); !slices.Equal(got, want) {
			t.Errorf("video packets of the complete file differ from the stream's (%d and %d packets)", len(got), len(want))
		}

		mid := size / 2
		for _, tc := range []struct {
			name   string
			hdr    []string
			status int
			body   []byte
		}{
			{"range", []string{"Range", "bytes=" + strconv.FormatInt(mid, 10) + "-" + strconv.FormatInt(mid+9999, 10)},
				http.StatusPartialContent, full[mid : mid+10000]},
			{"suffix", []string{"Range", "bytes=-500"}, http.StatusPartialContent, full[size-500:]},
			{"if-range match", []string{"Range", "bytes=" + strconv.FormatInt(mid, 10) + "-", "If-Range", etag},
				http.StatusPartialContent, full[mid:]},
			{"if-range stale", []string{"Range", "bytes=" + strconv.FormatInt(mid, 10) + "-", "If-Range", `"stale"`},
				http.StatusOK, full},
			{"revalidation", []string{"If-None-Match", etag}, http.StatusNotModified, nil},
		} {
			resp, b := httpt.Get(t, fileURL+"?pace=0", tc.hdr...)
			if resp.StatusCode != tc.status || !bytes.Equal(b, tc.body) {
				t.Errorf("%s: %d with %d bytes, want %d with %d bytes", tc.name, resp.StatusCode, len(b), tc.status, len(tc.body))
			}
		}

		// The streams share the transcoder's cache: nothing is made again.
		resp, b := httpt.Get(t, url+"/streams/"+jitserver.User+"/"+a.ID+"/hls/480p/1.m4s")
		if resp.StatusCode != http.StatusOK || made() != 3 {
			t.Errorf("HLS segment 1 of 480p: %d (%d bytes), %d segments transcoded in all, want 3", resp.StatusCode, len(b), made())
		}

		resp, b = httpt.Do(t, "PROPFIND", url+"/dav/"+jitserver.User+"/"+name, nil, "Depth", "0")
		if resp.StatusCode != http.StatusMultiStatus || !bytes.Contains(b, []byte("<D:getcontentlength>"+strconv.FormatInt(size, 10)+"<")) {
			t.Errorf("PROPFIND of the complete rendition: %d %s", resp.StatusCode, b)
		}
		resp, b = httpt.Do(t, "PROPFIND", url+"/dav/"+jitserver.User+"/", nil, "Depth", "1")
		if resp.StatusCode != http.StatusMultiStatus || !bytes.Contains(b, []byte(a.ID+".mp4")) {
			t.Errorf("PROPFIND of the library: %d %s", resp.StatusCode, b)
		}
		resp, b = httpt.Get(t, fileURL+"?start=2")
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("a clip of a rendition file: %d %s, want 400", resp.StatusCode, b)
		}
		resp, b = httpt.Get(t, url+"/files/"+jitserver.User+"/"+a.ID+"_1080p.mp4")
		if resp.StatusCode != http.StatusNotFound || !json.Valid(b) {
			t.Errorf("a rendition the asset does not have: %d %s, want 404", resp.StatusCode, b)
		}
	})

	t.Run("other codecs", func(t *testing.T) {
		small := jitserver.Ingest[struct{ ID string }](t, e, fixtures.H264AAC(t))
		hevc := jitserver.Ingest[struct{ ID string }](t, e, fixtures.H265AAC(t))
		l := listing(t, url)
		for n, en := range l {
			if en.Asset == small.ID && en.Kind == outputs.KindRendition {
				t.Errorf("a 320x240 H.264 asset lists rendition %s", n)
			}
		}
		var hevcRends []string
		for n, en := range l {
			if en.Asset == hevc.ID && en.Kind == outputs.KindRendition {
				hevcRends = append(hevcRends, n)
			}
		}
		if !slices.Equal(hevcRends, []string{hevc.ID + ".240p.mp4"}) {
			t.Errorf("an H.265 asset lists renditions %v, want %s.240p.mp4", hevcRends, hevc.ID)
		}
	})
}

// checkRendition checks with ffprobe that the file at p holds 854x480
// H.264 and AAC, as long as the original src, with the original's audio
// packets.
func checkRendition(t *testing.T, p, src string) {
	t.Helper()
	var kinds []string
	for _, s := range probe.Streams(t, p) {
		kinds = append(kinds, s.CodecName)
		if s.CodecType == "video" && (s.Width != 854 || s.Height != 480) {
			t.Errorf("%s: video %dx%d, want 854x480", filepath.Base(p), s.Width, s.Height)
		}
	}
	if !slices.Equal(kinds, []string{"h264", "aac"}) {
		t.Errorf("%s: streams %v, want h264 and aac", filepath.Base(p), kinds)
	}
	if got, want := probe.Format(t, p).Duration, probe.Format(t, src).Duration; math.Abs(got-want) > 0.1 {
		t.Errorf("%s: %.3f s, the original %.3f s", filepath.Base(p), got, want)
	}
	if got, want := md5s(t, p, "0:a"), md5s(t, src, "0:a"); !slices.Equal(got, want) {
		t.Errorf("%s: audio packets differ from the original's (%d and %d packets)", filepath.Base(p), len(got), len(want))
	}
}
