package browser_test

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitstream/jitstream/internal/testutil/browser"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/probe"
)

// serveFile serves path at /<base name> with http.ServeContent (range
// requests included) from a server on 127.0.0.1 and returns its URL.
func serveFile(t *testing.T, path string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "video/mp4")
		http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/" + filepath.Base(path)
}

func TestPlayAndSeek(t *testing.T) {
	t.Parallel()
	ctx := browser.New(t)
	for _, tc := range []struct {
		name string
		path func(testing.TB) string
	}{
		{"h264aac", fixtures.H264AAC},
		{"moov-at-end", fixtures.MoovAtEnd},
		{"fragmented", fixtures.Fragmented},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path(t)
			got := browser.PlayAndSeek(t, ctx, serveFile(t, path))
			if want := probe.Duration(t, path); math.Abs(got-want) > 0.1 {
				t.Errorf("browser duration %.3f s, ffprobe %.3f s", got, want)
			}
		})
	}
}

// failsWith runs PlayAndSeek for videoURL on a fake TB and returns its
// failure message ("" if it passed).
func failsWith(t *testing.T, ctx context.Context, videoURL string) string {
	t.Helper()
	return browser.FatalMessage(t, func(tb testing.TB) { browser.PlayAndSeek(tb, ctx, videoURL) })
}

func TestPlayAndSeekFailures(t *testing.T) {
	t.Parallel()
	ctx := browser.New(t)
	if msg := failsWith(t, ctx, serveFile(t, fixtures.NotMedia(t))); !strings.Contains(msg, "MediaError") {
		t.Errorf("random bytes: want a MediaError, got %q", msg)
	}
	if msg := failsWith(t, ctx, serveFile(t, fixtures.Unsupported(t))); !strings.Contains(msg, "no video frames") {
		t.Errorf("MPEG-4 Part 2 video: want \"no video frames\", got %q", msg)
	}
}
