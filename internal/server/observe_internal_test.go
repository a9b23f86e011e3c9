package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jitstream/jitstream/internal/metrics"
)

func TestFormatOf(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want metrics.Format
	}{
		{"/files/alice/", metrics.Listing},
		{"/files/alice/GX01/", metrics.Listing},
		{"/files/alice/GX01.mp4", metrics.Consolidated},
		{"/files/alice/GX01.mp4?pace=0", metrics.Consolidated},
		{"/files/alice/GX01.mp4?start=12.5&end=40", metrics.Clip},
		{"/files/alice/GX01.mp4?end=40", metrics.Clip},
		{"/files/alice/GX01.mp4?rate=4&pos=3", metrics.Trick},
		{"/files/alice/GX01.frag.mp4?pos=3&rate=-8", metrics.Trick},
		{"/files/alice/GX01.frag.mp4", metrics.FMP4},
		{"/files/alice/GX01.frag.mp4?start=3", metrics.FMP4},
		{"/files/alice/GX01/GX02.MP4", metrics.Original},
		{"/files/alice/GX01/GX02.MP4?rate=4", metrics.Original},
		{"/files/alice/GX01.mov", metrics.Other},
		{"/files/alice", metrics.Other},
		{"/files/alice/a/b/c", metrics.Other},
		{"/streams/alice/GX01/hls/master.m3u8", metrics.HLS},
		{"/streams/alice/GX01,10-20/hls/v1/3.m4s", metrics.HLS},
		{"/streams/alice/GX01/hls/ts/master.m3u8", metrics.HLSTS},
		{"/streams/alice/GX01/hls/ts/4.ts", metrics.HLSTS},
		{"/streams/alice/GX01/dash/manifest.mpd", metrics.DASH},
		{"/streams/alice/GX01/dash/trick/v1/2.m4s", metrics.DASH},
		{"/streams/alice/GX01/smooth/QualityLevels(1000)/Fragments(video=0)", metrics.Smooth},
		{"/streams/alice/GX01/other", metrics.Other},
		{"/api/v1/users/alice/assets", metrics.API},
		{"/play/alice/GX01", metrics.Other},
		{"/watch/alice/GX01", metrics.Other},
		{"/healthz", metrics.Other},
		{"/", metrics.Other},
	} {
		path, query, _ := strings.Cut(tc.url, "?")
		if got := formatOf(path, query); got != tc.want {
			t.Errorf("formatOf(%s) = %v, want %v", tc.url, got, tc.want)
		}
	}
}

// TestRecorder checks that the recorder notes the status and the body
// bytes, written or read from, and keeps ReadFrom.
func TestRecorder(t *testing.T) {
	var p recorders
	w := httptest.NewRecorder()
	rec := p.get(w)
	rec.WriteHeader(http.StatusPartialContent)
	rec.WriteHeader(http.StatusOK) // superfluous: ignored
	rec.Write([]byte("abc"))
	var rw http.ResponseWriter = rec
	if _, ok := rw.(io.ReaderFrom); !ok {
		t.Fatal("the recorder hides ReadFrom")
	}
	io.Copy(rw, strings.NewReader("defgh"))
	if rec.statusOrOK() != http.StatusPartialContent || rec.n != 8 || w.Body.String() != "abcdefgh" {
		t.Errorf("status %d, %d bytes, body %q", rec.statusOrOK(), rec.n, w.Body.String())
	}
	if http.NewResponseController(rw).Flush() != nil || !w.Flushed {
		t.Error("Flush does not reach the writer")
	}
	p.put(rec)
	rec = p.get(httptest.NewRecorder())
	if rec.statusOrOK() != http.StatusOK || rec.n != 0 {
		t.Errorf("a recycled recorder: %+v", rec)
	}
}

// TestRequestMetricsDoNotAllocate checks that classifying and counting a
// request allocates nothing, recorder included.
func TestRequestMetricsDoNotAllocate(t *testing.T) {
	m := metrics.New(nil)
	var p recorders
	w := httptest.NewRecorder()
	p.put(p.get(w))
	allocs := testing.AllocsPerRun(1000, func() {
		rec := p.get(w)
		rec.status, rec.n = http.StatusPartialContent, 1<<20
		m.Request(formatOf("/streams/alice/GX01/hls/ts/4.ts", ""), rec.statusOrOK(), rec.n)
		m.Request(formatOf("/files/alice/GX01.mp4", "start=3&end=10"), http.StatusNotFound, 80)
		p.put(rec)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per request", allocs)
	}
}
