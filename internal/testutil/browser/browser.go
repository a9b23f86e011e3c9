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
	"runtime"
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
` + VideoStateJS + `
  videoFrames: v.getVideoPlaybackQuality().totalVideoFrames,
  droppedFrames: v.getVideoPlaybackQuality().droppedVideoFrames,
  audioBytes: v.webkitAudioDecodedByteCount || 0,
  error: v.error ? ('MediaError ' + v.error.code + ': ' + v.error.message) : '',
  log: window.__log.join(' '),
});
</script>
</body></html>
`))

// VideoState is what the player pages of this package and of package
// players report of their <video> element, in window.__state().
type VideoState struct {
	Time        float64 `json:"time"` // currentTime
	Duration    float64 `json:"duration"`
	ReadyState  int     `json:"readyState"`
	Seeking     bool    `json:"seeking"`
	Ended       bool    `json:"ended"`
	Paused      bool    `json:"paused"`
	Seeked      int     `json:"seeked"`   // seeked events so far
	SeekedAt    float64 `json:"seekedAt"` // currentTime at the last one
	VideoWidth  int     `json:"videoWidth"`
	VideoHeight int     `json:"videoHeight"`
}

// VideoStateJS is the JavaScript of the properties of a VideoState, for the
// object that a page's window.__state() returns. The page has the <video>
// element in v and counts its seeked events in window.__seeked, keeping its
// currentTime at the last one in window.__seekedAt (-1 before). Duration is
// -1 while unknown and -2 when infinite.
const VideoStateJS = `  time: v.currentTime,
  duration: isFinite(v.duration) ? v.duration : (isNaN(v.duration) ? -1 : -2),
  readyState: v.readyState,
  seeking: v.seeking,
  ended: v.ended,
  paused: v.paused,
  seeked: window.__seeked,
  seekedAt: window.__seekedAt,
  videoWidth: v.videoWidth,
  videoHeight: v.videoHeight,`

func (s VideoState) String() string {
	return fmt.Sprintf("currentTime=%.3f duration=%.3f readyState=%d seeking=%v paused=%v ended=%v seeked=%d seekedAt=%.3f video=%dx%d",
		s.Time, s.Duration, s.ReadyState, s.Seeking, s.Paused, s.Ended, s.Seeked, s.SeekedAt, s.VideoWidth, s.VideoHeight)
}

// state is the result of window.__state() on the page of PlayAndSeek.
type state struct {
	VideoState
	VideoFrames   int    `json:"videoFrames"`
	DroppedFrames int    `json:"droppedFrames"`
	AudioBytes    int    `json:"audioBytes"`
	Error         string `json:"error"`
	Log           string `json:"log"`
}

func (s state) String() string {
	return fmt.Sprintf("%s frames=%d dropped=%d audioBytes=%d error=%q events=[%s]",
		s.VideoState, s.VideoFrames, s.DroppedFrames, s.AudioBytes, s.Error, s.Log)
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
	defer Leave(ctx, stepTimeout)

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
		s, err := Poll[state](ctx, fmt.Sprintf(`(v.error || (%s)) && window.__state()`, cond), stepTimeout)
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
	s, err := Eval[state](ctx, `window.__state ? window.__state() : null`, 5*time.Second)
	if err != nil {
		return fmt.Sprintf("page state unavailable: %v", err)
	}
	return "page state: " + s.String()
}

// Poll evaluates the JavaScript expression expr in the page of the tab ctx
// (from New) every 50 ms until its value is truthy, for at most timeout,
// and returns that value decoded into a T. It runs with Run, so it
// survives the page's JavaScript context changing under chromedp.
func Poll[T any](ctx context.Context, expr string, timeout time.Duration) (T, error) {
	sctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	defer cancel()
	return Run(sctx, chromedp.Poll[T](expr,
		chromedp.WithPollingInterval(pollInterval),
		chromedp.WithPollingTimeout(timeout)))
}

// Eval evaluates the JavaScript expression expr in the page of the tab ctx
// with Run, for at most timeout, and returns its value decoded into a T.
func Eval[T any](ctx context.Context, expr string, timeout time.Duration) (T, error) {
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return Run(sctx, chromedp.Evaluate[T](expr))
}

// Leave navigates the tab ctx to about:blank, waiting at most timeout: it
// stops what the page plays and drops the browser's connections to the
// servers of the page. An error is ignored.
func Leave(ctx context.Context, timeout time.Duration) {
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_ = chromedp.Do(lctx, chromedp.Navigate("about:blank"))
}

// Run runs action and retries it while it fails because the JavaScript
// context that chromedp chose is gone, until ctx ends. Under load, chromedp
// sometimes evaluates in a context of the previous page of the tab just
// after a navigation, and Chromium answers "Cannot find context with
// specified id"; the action did not run then, so it is safe to retry.
func Run[T any](ctx context.Context, action chromedp.Action[T]) (T, error) {
	for {
		v, err := chromedp.Run(ctx, action)
		if err == nil || !strings.Contains(err.Error(), "Cannot find context with specified id") {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(pollInterval):
		}
	}
}

// fatalTB is a testing.TB whose Fatalf records the message and ends the
// goroutine, like testing.T's FailNow, without failing the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// FatalMessage runs fn in a goroutine with a testing.TB that passes
// everything to tb but Fatalf, which records its message and ends fn
// without failing tb. It returns the message, "" if fn returned. It tests
// helpers that fail the test, such as PlayAndSeek.
func FatalMessage(tb testing.TB, fn func(tb testing.TB)) string {
	tb.Helper()
	ft := &fatalTB{TB: tb}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(ft)
	}()
	<-done
	return ft.msg
}
