package players_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/testutil/browser"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/players"
)

// checkResult checks a passing run against the 20 s source.
func checkResult(t *testing.T, res players.Result, start time.Time) {
	t.Helper()
	t.Logf("%s: duration %.3f s, seeked to %.3f, ended at %.3f, %dx%d, %d frames (%d dropped, %d callbacks), startup %v, total %v, %d warnings",
		res.Player, res.Duration, res.SeekedTo, res.EndTime, res.Width, res.Height,
		res.Frames, res.DroppedFrames, res.FrameCallbacks, res.Startup.Round(time.Millisecond),
		time.Since(start).Round(time.Millisecond), len(res.Warnings))
	for _, w := range res.Warnings {
		t.Logf("warning: %s", w)
	}
	if math.Abs(res.Duration-20) > 0.2 {
		t.Errorf("duration %.3f s, want about 20", res.Duration)
	}
	if math.Abs(res.SeekedTo-res.Duration/2) > 1 {
		t.Errorf("seeked to %.3f, want about %.3f", res.SeekedTo, res.Duration/2)
	}
	if res.EndTime <= res.SeekedTo {
		t.Errorf("ended at %.3f, not after the seek point %.3f", res.EndTime, res.SeekedTo)
	}
	if res.Width != 320 || res.Height != 240 {
		t.Errorf("video is %dx%d, want 320x240", res.Width, res.Height)
	}
	if res.Frames <= 0 {
		t.Errorf("no decoded frames")
	}
}

// TestPlayHLS plays ffmpeg's HLS of the 20 s source with hls.js: fMP4
// segments through the master playlist (which has no CODECS) and directly
// through the media playlist, and MPEG-TS segments.
func TestPlayHLS(t *testing.T) {
	t.Parallel()
	src := source(t)
	ctx := browser.New(t)
	for _, tc := range []struct {
		name, playlist string
		fmp4           bool
	}{
		{"fmp4-master", "master.m3u8", true},
		{"fmp4-media", "index.m3u8", true},
		{"ts-master", "master.m3u8", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			base := serveDir(t, makeHLS(t, src, tc.fmp4), true)
			res := players.PlayHLS(t, ctx, base+"/"+tc.playlist)
			checkResult(t, res, start)
		})
	}
}

// TestPlayDASH plays ffmpeg's DASH of the 20 s source (SegmentTemplate
// with SegmentTimeline, separate video and audio adaptation sets) with
// dash.js.
func TestPlayDASH(t *testing.T) {
	t.Parallel()
	src := source(t)
	ctx := browser.New(t)
	start := time.Now()
	base := serveDir(t, makeDASH(t, src), true)
	res := players.PlayDASH(t, ctx, base+"/manifest.mpd")
	checkResult(t, res, start)
}

// TestPlaySmooth plays ffmpeg's Smooth Streaming of the 20 s source (with
// the start times fixed, see makeSmooth) with dash.js and its MSS module.
func TestPlaySmooth(t *testing.T) {
	t.Parallel()
	src := source(t)
	ctx := browser.New(t)
	start := time.Now()
	base := serveDir(t, makeSmooth(t, src, false), true)
	res := players.PlaySmooth(t, ctx, base+"/Manifest")
	checkResult(t, res, start)
}

// TestFailures checks that the helpers fail, with the player's error in the
// message, on streams that do not play.
func TestFailures(t *testing.T) {
	t.Parallel()
	src := source(t)
	ctx := browser.New(t)
	hlsDir := makeHLS(t, src, true)
	dashDir := makeDASH(t, src)
	audioOnly := makeHLS(t, src, true, "-map", "0:a")
	smoothAsIs := makeSmooth(t, src, true)
	hevc := makeHLS(t, fixtures.H265AAC(t), true)
	for _, tc := range []struct {
		name string
		play func(testing.TB, context.Context, string) players.Result
		url  string
		want []string // substrings of the message
	}{
		{"hls-no-cors", players.PlayHLS, serveDir(t, hlsDir, false) + "/master.m3u8",
			[]string{"hls.js networkError manifestLoadError (fatal) HTTP 0", "blocked by CORS policy", "console lines"}},
		{"hls-missing", players.PlayHLS, serveDir(t, hlsDir, true) + "/nothing.m3u8",
			[]string{"manifestLoadError (fatal) HTTP 404"}},
		{"hls-audio-only", players.PlayHLS, serveDir(t, audioOnly, true) + "/master.m3u8",
			[]string{"no video frames decoded"}},
		{"hls-hevc-master", players.PlayHLS, serveDir(t, hevc, true) + "/master.m3u8",
			[]string{"manifestIncompatibleCodecsError (fatal)", "hvc1"}},
		{"hls-hevc-media", players.PlayHLS, serveDir(t, hevc, true) + "/index.m3u8",
			[]string{"bufferAddCodecError (fatal)", "hvc1"}},
		{"dash-no-cors", players.PlayDASH, serveDir(t, dashDir, false) + "/manifest.mpd",
			[]string{"dash.js error: code 25", "status=0", "blocked by CORS policy"}},
		{"dash-missing", players.PlayDASH, serveDir(t, dashDir, true) + "/nothing.mpd",
			[]string{"dash.js error: code 25", "status=404"}},
		{"smooth-bad-fragment-times", players.PlaySmooth, serveDir(t, smoothAsIs, true) + "/Manifest",
			[]string{"dash.js error: code 27", "=0) is not available", "status=404"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			msg := browser.FatalMessage(t, func(tb testing.TB) { tc.play(tb, ctx, tc.url) })
			t.Logf("failed after %v with:\n%s", time.Since(start).Round(time.Millisecond), msg)
			if msg == "" {
				t.Fatalf("%s passed", tc.url)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message lacks %q", w)
				}
			}
		})
	}
}

// TestNotInstalled checks the message when web/players/node_modules lacks a
// library or has another version than package.json pins. It changes the
// working directory (so that the helpers find another repo root) and
// therefore does not run in parallel; it needs no browser.
func TestNotInstalled(t *testing.T) {
	root := t.TempDir()
	webDir := filepath.Join(root, "web", "players")
	pkgDir := filepath.Join(webDir, "node_modules", "hls.js")
	for _, d := range []string{webDir, pkgDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "go.mod"), "module example.com/notinstalled\n")
	write(filepath.Join(webDir, "package.json"), `{"dependencies": {"hls.js": "1.0.0", "dashjs": "4.0.0"}}`)
	write(filepath.Join(pkgDir, "package.json"), `{"version": "0.9.0"}`)
	t.Chdir(root)

	for _, tc := range []struct {
		name string
		play func(testing.TB, context.Context, string) players.Result
		want []string
	}{
		{"missing", players.PlayDASH, []string{"dash.js (dashjs) is not installed", "run `make deps`"}},
		{"other-version", players.PlayHLS, []string{"hls.js 0.9.0, package.json pins 1.0.0", "run `make deps`"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := browser.FatalMessage(t, func(tb testing.TB) { tc.play(tb, context.Background(), "http://127.0.0.1:1/x") })
			t.Logf("message: %s", msg)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message lacks %q", w)
				}
			}
		})
	}
}
