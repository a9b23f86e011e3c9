// Package browser drives a headless Chromium (Debian's /usr/bin/chromium)
// with chromedp for end-to-end playback tests.
//
// Debian's Chromium (156) plays H.264 + AAC in MP4, progressive (moov first
// or last) and fragmented; the tests of this package check that. It has no
// HEVC or MPEG-4 Part 2 video decoder (canPlayType says "" for hvc1 and mp4v,
// and MediaSource.isTypeSupported is false), yet a <video> with such a file
// plays its AAC audio with videoWidth 0 and no error; PlayAndSeek therefore
// checks that video frames are decoded.
package browser

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Timeouts of the browser steps. They are deadlines for polling, not
// expectations: a healthy run takes a fraction of them.
const (
	startTimeout = 60 * time.Second
	stepTimeout  = 30 * time.Second
	pollInterval = 50 * time.Millisecond
)

// ExecPath returns the Chromium binary: /usr/bin/chromium if it exists,
// else the first of chromium, chromium-browser, google-chrome found on PATH.
func ExecPath() (string, error) {
	const debian = "/usr/bin/chromium"
	if fi, err := os.Stat(debian); err == nil && !fi.IsDir() {
		return debian, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("chromium not found at /usr/bin/chromium or on PATH; run `make deps` to install it")
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of the
// browser's output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// New starts a headless Chromium with a fresh temporary profile and returns
// a chromedp context for one tab of it. The browser runs with --headless
// --no-sandbox --disable-gpu --disable-quic --no-first-run
// --disable-background-networking --disable-component-update --disable-sync
// --autoplay-policy=no-user-gesture-required (plus chromedp's defaults) and
// is stopped when the test ends; if the test failed, the browser's output is
// logged. A missing Chromium fails the test ("run make deps").
//
// The browser is already running when New returns, so a caller may derive
// contexts with timeouts from the result without killing the browser.
func New(tb testing.TB) context.Context {
	tb.Helper()
	path, err := ExecPath()
	if err != nil {
		tb.Fatalf("browser: %v", err)
	}
	profile := tb.TempDir() // removed after the cleanup below stopped Chromium
	output := &syncBuffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.CombinedOutput(output),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	tb.Cleanup(func() {
		cancelCtx()
		cancelAlloc() // waits for the browser process to exit
		if tb.Failed() {
			if out := strings.TrimSpace(output.String()); out != "" {
				tb.Logf("chromium output:\n%s", out)
			}
		}
	})

	// Start the browser now, on a context without a deadline: the first
	// Run's context owns the browser's lifetime.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			tb.Fatalf("browser: starting %s: %v\n%s", path, err, output.String())
		}
	case <-time.After(startTimeout):
		cancelCtx()
		tb.Fatalf("browser: %s did not start within %v\n%s", path, startTimeout, output.String())
	}
	return ctx
}

// pageTemplate is the page of PlayAndSeek: a muted <video> and a log of its
// events, with helpers that the Go side evaluates.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>jitstream player test</title></head>
<body>
<video id="v" muted playsinline preload="auto" src="{{.}}"></video>
<script>
const v = document.getElementById('v');
window.__log = [];
window.__seeked = 0;
window.__seekedAt = -1;
for (const e of ['loadedmetadata', 'canplay', 'playing', 'waiting', 'stalled', 'seeking', 'seeked', 'ended', 'error']) {
  v.addEventListener(e, () => window.__log.push(e + '@' + v.currentTime.toFixed(3)));
}
v.addEventListener('seeked', () => { window.__seeked++; window.__seekedAt = v.currentTime; });
window.__state = () => ({
  time: v.currentTime,
  duration: isFinite(v.duration) ? v.duration : -1,
  readyState: v.readyState,
  seeking: v.seeking,
  ended: v.ended,
  paused: v.paused,
  seeked: window.__seeked,
  seekedAt: window.__seekedAt,
  videoWidth: v.videoWidth,
  videoHeight: v.videoHeight,
  videoFrames: v.getVideoPlaybackQuality().totalVideoFrames,
  droppedFrames: v.getVideoPlaybackQuality().droppedVideoFrames,
  audioBytes: v.webkitAudioDecodedByteCount || 0,
  error: v.error ? ('MediaError ' + v.error.code + ': ' + v.error.message) : '',
  log: window.__log.join(' '),
});
</script>
</body></html>
`))

// state is the result of window.__state() on the page of PlayAndSeek.
type state struct {
	Time          float64 `json:"time"`
	Duration      float64 `json:"duration"`
	ReadyState    int     `json:"readyState"`
	Seeking       bool    `json:"seeking"`
	Ended         bool    `json:"ended"`
	Paused        bool    `json:"paused"`
	Seeked        int     `json:"seeked"`
	SeekedAt      float64 `json:"seekedAt"`
	VideoWidth    int     `json:"videoWidth"`
	VideoHeight   int     `json:"videoHeight"`
	VideoFrames   int     `json:"videoFrames"`
	DroppedFrames int     `json:"droppedFrames"`
	AudioBytes    int     `json:"audioBytes"`
	Error         string  `json:"error"`
	Log           string  `json:"log"`
}

func (s state) String() string {
	return fmt.Sprintf("currentTime=%.3f duration=%.3f readyState=%d seeking=%v paused=%v ended=%v seeked=%d seekedAt=%.3f video=%dx%d frames=%d dropped=%d audioBytes=%d error=%q events=[%s]",
		s.Time, s.Duration, s.ReadyState, s.Seeking, s.Paused, s.Ended, s.Seeked, s.SeekedAt,
		s.VideoWidth, s.VideoHeight, s.VideoFrames, s.DroppedFrames, s.AudioBytes, s.Error, s.Log)
}

// PlayAndSeek plays videoURL in a <video> element of a page that it serves
// from its own httptest server on 127.0.0.1 (the video may be on another
// origin). It waits until currentTime > 1, seeks to the middle
// (duration/2), waits for the seeked event with readyState >= 2 (current
// data), checks that the seek landed within half a second of the middle and
// that playback goes on (currentTime passes the seek point by 0.5 s, or the
// video ends). It fails the test on a video.error, when a step does not
// finish in time, or when no video frames are decoded (before or after the
// seek): Chromium silently plays only the audio of a file whose video codec
// it lacks, such as HEVC or MPEG-4 Part 2. It returns the duration that the
// element reported, in seconds. ctx comes from New.
func PlayAndSeek(tb testing.TB, ctx context.Context, videoURL string) float64 {
	tb.Helper()
	var page bytes.Buffer
	if err := pageTemplate.Execute(&page, videoURL); err != nil {
		tb.Fatalf("browser: rendering page: %v", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(page.Bytes())
	}))
	defer srv.Close()

	// Leave the page on exit so that the browser drops its connections to
	// the video server.
	defer func() {
		lctx, cancel := context.WithTimeout(ctx, stepTimeout)
		defer cancel()
		_ = chromedp.Do(lctx, chromedp.Navigate("about:blank"))
	}()

	step := func(what string, action chromedp.Action[chromedp.Void]) {
		tb.Helper()
		sctx, cancel := context.WithTimeout(ctx, stepTimeout)
		defer cancel()
		if err := chromedp.Do(sctx, action); err != nil {
			tb.Fatalf("browser: %s: %v; %s", what, err, currentState(ctx))
		}
	}
	// wait polls the page until cond (a JavaScript expression) is true or
	// the video has an error, and returns the state at that moment.
	wait := func(what, cond string) state {
		tb.Helper()
		sctx, cancel := context.WithTimeout(ctx, stepTimeout+5*time.Second)
		defer cancel()
		s, err := chromedp.Run(sctx, chromedp.Poll[state](
			fmt.Sprintf(`(v.error || (%s)) && window.__state()`, cond),
			chromedp.WithPollingInterval(pollInterval),
			chromedp.WithPollingTimeout(stepTimeout)))
		if err != nil {
			tb.Fatalf("browser: waiting for %s: %v; %s", what, err, currentState(ctx))
		}
		if s.Error != "" {
			tb.Fatalf("browser: video error while waiting for %s: %s", what, s)
		}
		return s
	}

	step("loading the player page", chromedp.Navigate(srv.URL+"/"))
	// play() is allowed without a gesture (autoplay policy flag, muted).
	step("starting playback", chromedp.Evaluate[chromedp.Void](
		`v.play().catch(e => window.__log.push('play-rejected:' + e.name + ':' + e.message))`))
	s := wait("currentTime > 1", `v.currentTime > 1`)
	duration := s.Duration
	if duration <= 0 || math.IsInf(duration, 0) {
		tb.Fatalf("browser: video has no finite duration: %s", s)
	}

	if s.VideoWidth == 0 || s.VideoFrames == 0 {
		// Chromium plays the audio of a file whose video it cannot decode
		// (HEVC, MPEG-4 Part 2) without an error.
		tb.Fatalf("browser: no video frames decoded (codec not supported by this Chromium?): %s", s)
	}

	target := duration / 2
	step("seeking", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
		`window.__seekedBefore = window.__seeked; v.currentTime = %f`, target)))
	s = wait("the seek to the middle", `window.__seeked > window.__seekedBefore && !v.seeking && v.readyState >= 2`)
	if math.Abs(s.SeekedAt-target) > 0.5 {
		tb.Fatalf("browser: seek to %.3f landed at %.3f: %s", target, s.SeekedAt, s)
	}
	framesAtSeek := s.VideoFrames
	s = wait("playback after the seek", fmt.Sprintf(`v.ended || v.currentTime > %f`, s.SeekedAt+0.5))
	if s.VideoFrames <= framesAtSeek {
		tb.Fatalf("browser: no video frames decoded after the seek: %s", s)
	}
	return duration
}

// currentState returns the page state for a failure message.
func currentState(ctx context.Context) string {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(sctx, chromedp.Evaluate[state](`window.__state ? window.__state() : null`))
	if err != nil {
		return fmt.Sprintf("page state unavailable: %v", err)
	}
	return "page state: " + s.String()
}
