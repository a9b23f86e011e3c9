// Package players plays HLS, MPEG-DASH and Smooth Streaming presentations in
// headless Chromium with real player libraries, hls.js and dash.js, and
// checks that they play and seek.
//
// The libraries are npm packages pinned in web/players/package.json (with
// its package-lock.json); `make deps` installs them into
// web/players/node_modules with npm ci. A helper that does not find them, or
// finds other versions than the pinned ones, fails the test and says "run
// make deps": it never skips.
//
// Each helper serves a small page and the player's dist files from its own
// httptest server on 127.0.0.1, so the stream is on another origin and the
// stream's server must send CORS headers (Access-Control-Allow-Origin: *).
// The page attaches the player to a muted <video autoplay>. The helper then
// polls the page (deadlines, no sleeps) until currentTime > 1 s, seeks to the
// middle of the duration, waits for the seeked event and for playback to go
// on past the seek point, and checks that video frames were decoded before
// and after the seek, so that a stream whose video does not play (no video
// track, or a codec that this Chromium lacks and the player did not reject)
// fails. Debian's Chromium has no HEVC decoder; hls.js rejects HEVC itself
// (manifestIncompatibleCodecsError when the master playlist has CODECS,
// bufferAddCodecError otherwise). It fails the test on a fatal player error
// (hls.js Hls.Events.ERROR with fatal set, a dash.js "error" or
// "playbackError" event, a video.error) or when a step does not finish in
// time, with the player's errors, the page state and the last 20 lines of
// the browser console in the message.
//
// Pinned libraries (web/players/package.json): hls.js 1.7.4 (dist/hls.min.js)
// and dash.js 4.7.4, whose npm package is named "dashjs" ("dash.js" on npm is
// an unrelated package). DASH uses dashjs/dist/dash.all.min.js; Smooth
// Streaming also needs dashjs/dist/dash.mss.min.js, which sets
// dashjs.MssHandler: without it dash.js fails on a Smooth manifest with
// error code 10, "parsing failed".
//
// Live presentations (a sliding window or an EVENT playlist, a dynamic MPD)
// have no finite duration to seek in: PlayLiveHLS and PlayLiveDASH (live.go)
// wait until playback has advanced by more than 2 s and report the
// player's own estimate of the distance to the live edge.
//
// The helpers take the tab context of browser.New and use it one at a time:
// play streams one after the other in a tab, or start one browser per
// parallel test.
//
// Timings on the 2-core development machine, for 20 s streams with 2 s
// segments on loopback: a check takes about 2.5 s (about 1.5 s until
// currentTime passes 1 s, then the seek and 0.5 s of playback), plus under
// a second to start the browser. A player that fails to load a manifest
// reports it after its retries: hls.js at once, dash.js after about 1.7 s.
package players

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/jitstream/jitstream/internal/testutil/browser"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
)

// Deadlines of the steps of a check. They are limits for polling, not
// expectations: a healthy stream on loopback passes each step in about a
// second.
const (
	stepTimeout = 20 * time.Second
	// seekTolerance is how far (in seconds) the position after the seek may
	// be from the requested one: a player may jump a small gap at the seek
	// point.
	seekTolerance = 1.0
	// consoleLines is the number of console lines in a failure message;
	// consoleKeep is the number kept while playing.
	consoleLines = 20
	consoleKeep  = 200
)

// Result is what a check measured.
type Result struct {
	// Player is the library and its installed version, e.g. "hls.js 1.7.4".
	Player string
	// Duration is the duration of the presentation in seconds, as the media
	// element reported it.
	Duration float64
	// SeekedTo is the media element's currentTime at the seeked event that
	// followed the seek to Duration/2.
	SeekedTo float64
	// EndTime is the currentTime when the check ended (past SeekedTo + 0.5,
	// or at the end).
	EndTime float64
	// Frames is the number of decoded video frames at the end
	// (getVideoPlaybackQuality().totalVideoFrames), DroppedFrames the number
	// of dropped ones among them.
	Frames, DroppedFrames int
	// FrameCallbacks is the number of requestVideoFrameCallback calls, that
	// is of video frames presented for composition.
	FrameCallbacks int
	// Width and Height are videoWidth and videoHeight.
	Width, Height int
	// Startup is the time from loading the page until currentTime > 1 s.
	Startup time.Duration
	// Warnings are the non-fatal errors that the player reported (hls.js
	// errors without fatal set), at most the last 50.
	Warnings []string
}

// PlayHLS plays the HLS presentation (master or media playlist, fMP4 or
// MPEG-TS segments) at manifestURL with hls.js, seeks to the middle and
// checks playback; see the package documentation. ctx comes from
// browser.New. It fails the test on a fatal hls.js error, a media error, a
// timeout or when no video frames are decoded.
func PlayHLS(tb testing.TB, ctx context.Context, manifestURL string) Result {
	tb.Helper()
	return play(tb, ctx, hlsPlayer, manifestURL, 0)
}

// PlayDASH plays the MPEG-DASH presentation at mpdURL with dash.js, seeks to
// the middle and checks playback like PlayHLS. Any dash.js "error" or
// "playbackError" event fails the test.
func PlayDASH(tb testing.TB, ctx context.Context, mpdURL string) Result {
	tb.Helper()
	return play(tb, ctx, dashPlayer, mpdURL, 0)
}

// PlayThroughHLS plays the HLS presentation at manifestURL with hls.js
// from its start to its end, without seeking, at rate times the normal
// speed once it started (Chromium allows up to 16): what a viewer who
// watches everything does, for presentations whose server forbids
// skipping (server-side playlists). It fails the test as PlayHLS does,
// and when the end is not reached.
func PlayThroughHLS(tb testing.TB, ctx context.Context, manifestURL string, rate float64) Result {
	tb.Helper()
	return play(tb, ctx, hlsPlayer, manifestURL, rate)
}

// PlayThroughDASH is PlayThroughHLS with dash.js, for MPEG-DASH.
func PlayThroughDASH(tb testing.TB, ctx context.Context, mpdURL string, rate float64) Result {
	tb.Helper()
	return play(tb, ctx, dashPlayer, mpdURL, rate)
}

// PlaySmooth plays the Smooth Streaming presentation whose client manifest
// is at manifestURL (…/Manifest) with dash.js and its MSS module, seeks to
// the middle and checks playback like PlayDASH.
func PlaySmooth(tb testing.TB, ctx context.Context, manifestURL string) Result {
	tb.Helper()
	return play(tb, ctx, smoothPlayer, manifestURL, 0)
}

// player describes a player library and how the page attaches it.
type player struct {
	name    string   // library name for messages, e.g. "hls.js"
	pkg     string   // npm package, a directory of node_modules
	scripts []string // dist files, relative to node_modules/<pkg>, in load order
	setup   string   // JavaScript that plays window.__url in v
}

// hlsSetup is the setup of hls.js. An ERROR event with fatal set fails the
// check; another one is a warning.
const hlsSetup = `
if (!Hls.isSupported()) throw new Error('Hls.isSupported() is false (no MediaSource?)');
const hls = new Hls({debug: false});
window.__player = hls;
hls.on(Hls.Events.ERROR, (event, data) => {
  let m = 'hls.js ' + data.type + ' ' + data.details + (data.fatal ? ' (fatal)' : '');
  if (data.response && data.response.code !== undefined) m += ' HTTP ' + data.response.code + (data.response.text ? ' ' + String(data.response.text).slice(0, 200) : '');
  const u = data.url || (data.frag && data.frag.url) || (data.context && data.context.url) || (data.part && data.part.url);
  if (u) m += ' url=' + u;
  if (data.reason) m += ' reason=' + data.reason;
  if (data.mimeType) m += ' mimeType=' + data.mimeType;
  if (data.parent) m += ' parent=' + data.parent;
  if (data.error) m += ' error=' + (data.error.message || data.error);
  if (data.err) m += ' err=' + (data.err.message || data.err);
  if (data.fatal) window.__fatal(m); else window.__warn(m);
});
hls.on(Hls.Events.MANIFEST_PARSED, (event, data) => {
  window.__log.push('manifest-parsed:' + data.levels.length + '-levels');
});
hls.loadSource(window.__url);
hls.attachMedia(v);
`

// dashSetup is the setup of dash.js, for DASH and (with the MSS module)
// Smooth Streaming.
const dashSetup = `
const p = dashjs.MediaPlayer().create();
window.__player = p;
p.updateSettings({debug: {logLevel: dashjs.Debug.LOG_LEVEL_WARNING}});
const describe = e => {
  const er = (e && e.error) || e || {};
  let m = '';
  if (er.code !== undefined) m += 'code ' + er.code + ' ';
  m += er.message || '';
  const d = er.data;
  if (d && d.request) {
    // A download error: the message has the URL.
    const r = d.request;
    m += ' (request type=' + r.type + ' mediaType=' + r.mediaType;
    if (d.response && d.response.status !== undefined) m += ' status=' + d.response.status;
    m += ')';
  } else if (d) {
    try { m += ' data=' + JSON.stringify(d).slice(0, 300); } catch (x) {}
  }
  if (!m) {
    try { m = JSON.stringify(er).slice(0, 300); } catch (x) { m = String(er); }
  }
  return m;
};
p.on(dashjs.MediaPlayer.events.ERROR, e => window.__fatal('dash.js error: ' + describe(e)));
p.on(dashjs.MediaPlayer.events.PLAYBACK_ERROR, e => window.__fatal('dash.js playbackError: ' + describe(e)));
p.on(dashjs.MediaPlayer.events.STREAM_INITIALIZED, () => window.__log.push('stream-initialized'));
p.initialize(v, window.__url, true);
`

var (
	hlsPlayer = player{
		name:    "hls.js",
		pkg:     "hls.js",
		scripts: []string{"dist/hls.min.js"},
		setup:   hlsSetup,
	}
	dashPlayer = player{
		name:    "dash.js",
		pkg:     "dashjs",
		scripts: []string{"dist/dash.all.min.js"},
		setup:   dashSetup,
	}
	smoothPlayer = player{
		name:    "dash.js (MSS)",
		pkg:     "dashjs",
		scripts: []string{"dist/dash.all.min.js", "dist/dash.mss.min.js"},
		setup: `if (typeof dashjs.MssHandler !== 'function') throw new Error('dash.mss.min.js did not set dashjs.MssHandler');
` + dashSetup,
	}
)

// pageData is the input of pageTemplate.
type pageData struct {
	Title   string
	Scripts []string // URL paths of the player's scripts
	URL     string   // the manifest
	Setup   template.JS
}

// pageTemplate is the player page: a muted autoplay <video>, the player's
// scripts, an event log and window.__state(), which the Go side polls.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title><link rel="icon" href="data:,"></head>
<body>
<video id="v" muted autoplay playsinline preload="auto" width="320" height="240"></video>
<script>
window.__url = {{.URL}};
window.__errors = [];
window.__warnings = [];
window.__log = [];
window.__seeked = 0;
window.__seekedAt = -1;
window.__frameCallbacks = 0;
window.__fatal = m => { window.__errors.push(String(m)); console.error('FATAL: ' + m); };
window.__warn = m => {
  window.__warnings.push(String(m));
  if (window.__warnings.length > 50) window.__warnings.shift();
  console.warn('player warning: ' + m);
};
window.addEventListener('error', e => {
  if (e.target && e.target.tagName === 'SCRIPT') window.__fatal('cannot load script ' + e.target.src);
}, true);
</script>
{{range .Scripts}}<script src="{{.}}"></script>
{{end}}<script>
const v = document.getElementById('v');
const mediaError = () => v.error ? ('MediaError ' + v.error.code + ': ' + v.error.message) : '';
for (const e of ['loadedmetadata', 'canplay', 'playing', 'waiting', 'stalled', 'seeking', 'seeked', 'ended', 'error']) {
  v.addEventListener(e, () => {
    window.__log.push(e + '@' + v.currentTime.toFixed(3));
    if (window.__log.length > 200) window.__log.shift();
  });
}
v.addEventListener('error', () => window.__fatal('video element: ' + mediaError()));
v.addEventListener('seeked', () => { window.__seeked++; window.__seekedAt = v.currentTime; });
// The autoplay attribute starts playback; play() once more in case the
// player attached the media after the element decided not to autoplay.
v.addEventListener('canplay', () => {
  if (v.paused && !window.__playCalled) {
    window.__playCalled = true;
    v.play().catch(e => window.__log.push('play-rejected:' + e.name + ':' + e.message));
  }
});
if (v.requestVideoFrameCallback) {
  const onFrame = () => { window.__frameCallbacks++; v.requestVideoFrameCallback(onFrame); };
  v.requestVideoFrameCallback(onFrame);
}
window.__state = () => {
  const q = v.getVideoPlaybackQuality();
  const ranges = [];
  for (let i = 0; i < v.buffered.length; i++) ranges.push(v.buffered.start(i).toFixed(2) + '-' + v.buffered.end(i).toFixed(2));
  return {
` + browser.VideoStateJS + `
    networkState: v.networkState,
    frames: q.totalVideoFrames,
    dropped: q.droppedVideoFrames,
    frameCallbacks: window.__frameCallbacks,
    buffered: ranges.join(' '),
    mediaError: mediaError(),
    errors: window.__errors.slice(),
    warnings: window.__warnings.slice(),
    log: window.__log.join(' '),
  };
};
try {
{{.Setup}}
} catch (e) {
  window.__fatal('player setup: ' + (e && e.stack || e));
}
</script>
</body></html>
`))

// state is the result of window.__state().
type state struct {
	browser.VideoState
	NetworkState   int      `json:"networkState"`
	Frames         int      `json:"frames"`
	Dropped        int      `json:"dropped"`
	FrameCallbacks int      `json:"frameCallbacks"`
	Buffered       string   `json:"buffered"`
	MediaError     string   `json:"mediaError"`
	Errors         []string `json:"errors"`
	Warnings       []string `json:"warnings"`
	Log            string   `json:"log"`
}

func (s state) String() string {
	return fmt.Sprintf("%s networkState=%d frames=%d dropped=%d frameCallbacks=%d buffered=[%s] mediaError=%q events=[%s]",
		s.VideoState, s.NetworkState, s.Frames, s.Dropped, s.FrameCallbacks, s.Buffered, s.MediaError, s.Log)
}

// consoleLog keeps the last lines of the browser console.
type consoleLog struct {
	mu    sync.Mutex
	lines []string
}

func (c *consoleLog) add(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(line) > 600 {
		line = line[:600] + "…"
	}
	c.lines = append(c.lines, line)
	if len(c.lines) > consoleKeep {
		c.lines = c.lines[len(c.lines)-consoleKeep:]
	}
}

// last returns the last n lines.
func (c *consoleLog) last(n int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines[max(0, len(c.lines)-n):]...)
}

// library is a player library read from node_modules.
type library struct {
	version string
	files   map[string][]byte // URL path -> content
	order   []string          // URL paths in load order
}

// loadLibrary reads the dist files of p from web/players/node_modules and
// checks that the installed version is the one that package.json pins.
func loadLibrary(tb testing.TB, p player) library {
	tb.Helper()
	root, err := fixtures.RepoRoot()
	if err != nil {
		tb.Fatalf("players: %v", err)
	}
	dir := filepath.Join(root, "web", "players")
	var manifest struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := readJSON(filepath.Join(dir, "package.json"), &manifest); err != nil {
		tb.Fatalf("players: %v", err)
	}
	want := manifest.Dependencies[p.pkg]
	if want == "" {
		tb.Fatalf("players: %s does not list the npm package %q", filepath.Join(dir, "package.json"), p.pkg)
	}
	pkgDir := filepath.Join(dir, "node_modules", p.pkg)
	var installed struct {
		Version string `json:"version"`
	}
	if err := readJSON(filepath.Join(pkgDir, "package.json"), &installed); err != nil {
		tb.Fatalf("players: %s (%s) is not installed in %s: %v; run `make deps`", p.name, p.pkg, filepath.Join(dir, "node_modules"), err)
	}
	if installed.Version != want {
		tb.Fatalf("players: %s has %s %s, package.json pins %s; run `make deps`", filepath.Join(dir, "node_modules"), p.pkg, installed.Version, want)
	}
	lib := library{version: installed.Version, files: map[string][]byte{}}
	for _, s := range p.scripts {
		b, err := os.ReadFile(filepath.Join(pkgDir, filepath.FromSlash(s)))
		if err != nil {
			tb.Fatalf("players: reading %s of %s: %v; run `make deps`", s, p.pkg, err)
		}
		u := "/lib/" + p.pkg + "/" + path.Base(s)
		lib.files[u] = b
		lib.order = append(lib.order, u)
	}
	return lib
}

func readJSON(name string, v any) error {
	b, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decoding %s: %w", name, err)
	}
	return nil
}

// session is a player page loaded in the tab: its failure and polling
// helpers.
type session struct {
	res Result
	// fail fails the test with the page state and the console.
	fail func(format string, args ...any)
	// wait polls the page until cond (a JavaScript expression) is true or
	// the player reported a fatal error, and returns the state then.
	wait func(what, cond string) state
	// start is when the page began loading.
	start time.Time
}

// open serves the page of player p playing manifestURL, loads it in the
// tab of ctx and returns the session; stop stops it.
func open(tb testing.TB, ctx context.Context, p player, manifestURL string) (ss *session, stop func()) {
	tb.Helper()
	lib := loadLibrary(tb, p)
	res := Result{Player: p.name + " " + lib.version}

	var page bytes.Buffer
	if err := pageTemplate.Execute(&page, pageData{
		Title:   "jitstream " + res.Player + " test",
		Scripts: lib.order,
		URL:     manifestURL,
		Setup:   template.JS(p.setup),
	}); err != nil {
		tb.Fatalf("players: rendering page: %v", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.URL.Path == "/" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write(page.Bytes())
			return
		}
		if b, ok := lib.files[r.URL.Path]; ok {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			w.Write(b)
			return
		}
		http.NotFound(w, r)
	}))

	// Collect the console (calls, uncaught exceptions, browser log entries
	// such as CORS and network errors) from before the navigation on.
	console := &consoleLog{}
	cctx, stopConsole := context.WithCancel(ctx)
	messages := chromedp.Console(cctx)
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			line := m.String()
			if m.URL != "" {
				line += fmt.Sprintf(" (%s:%d)", shortURL(m.URL), m.Line+1)
			}
			console.add(line)
		}
	}()
	stop = func() {
		// Leave the page: it stops the player and drops the browser's
		// connections to the stream's server.
		browser.Leave(ctx, stepTimeout)
		stopConsole()
		<-consoleDone
		srv.Close()
	}

	ss = &session{res: res}
	ss.fail = func(format string, args ...any) {
		tb.Helper()
		var b strings.Builder
		fmt.Fprintf(&b, "players: %s, %s: ", res.Player, manifestURL)
		fmt.Fprintf(&b, format, args...)
		s, err := currentState(ctx)
		if err != nil {
			fmt.Fprintf(&b, "\npage state unavailable: %v", err)
		} else {
			if len(s.Errors) > 0 {
				fmt.Fprintf(&b, "\nplayer errors:\n  %s", strings.Join(s.Errors, "\n  "))
			}
			if len(s.Warnings) > 0 {
				w := s.Warnings[max(0, len(s.Warnings)-10):]
				fmt.Fprintf(&b, "\nplayer warnings (last %d of %d):\n  %s", len(w), len(s.Warnings), strings.Join(w, "\n  "))
			}
			fmt.Fprintf(&b, "\nstate: %s", s)
		}
		if lines := console.last(consoleLines); len(lines) > 0 {
			fmt.Fprintf(&b, "\nlast %d console lines:\n  %s", len(lines), strings.Join(lines, "\n  "))
		} else {
			b.WriteString("\nconsole: empty")
		}
		tb.Fatalf("%s", b.String())
	}
	ss.wait = func(what, cond string) state {
		tb.Helper()
		s, err := browser.Poll[state](ctx,
			fmt.Sprintf(`window.__state && (window.__errors.length > 0 || v.error || (%s)) && window.__state()`, cond),
			stepTimeout)
		if err != nil {
			ss.fail("waiting for %s: not within %v: %v", what, stepTimeout, err)
		}
		if len(s.Errors) > 0 || s.MediaError != "" {
			ss.fail("fatal error while waiting for %s", what)
		}
		return s
	}

	ss.start = time.Now()
	nctx, cancel := context.WithTimeout(ctx, stepTimeout)
	err := chromedp.Do(nctx, chromedp.Navigate(srv.URL+"/"))
	cancel()
	if err != nil {
		stop()
		tb.Fatalf("players: %s, %s: loading the player page: %v", res.Player, manifestURL, err)
	}
	return ss, stop
}

// play runs the check of the package documentation with player p; with
// a rate > 0, it plays the presentation through at that rate instead of
// seeking (see PlayThroughHLS).
func play(tb testing.TB, ctx context.Context, p player, manifestURL string, rate float64) Result {
	tb.Helper()
	ss, stop := open(tb, ctx, p, manifestURL)
	defer stop()
	res, wait, fail := ss.res, ss.wait, ss.fail
	s := wait("currentTime > 1 s", `v.currentTime > 1`)
	res.Startup = time.Since(ss.start)
	if s.Duration <= 0 || math.IsInf(s.Duration, 0) {
		fail("the presentation has no finite duration (%.3f; live?)", s.Duration)
	}
	res.Duration = s.Duration
	if s.VideoWidth == 0 || (s.Frames == 0 && s.FrameCallbacks == 0) {
		// A stream without a playable video track plays its audio
		// without an error.
		fail("no video frames decoded (no video track, or a codec that this Chromium lacks, such as HEVC?)")
	}

	if rate > 0 {
		return playThrough(tb, ctx, res, s, rate, wait, fail)
	}
	target := s.Duration / 2
	_, err := browser.Eval[chromedp.Void](ctx, fmt.Sprintf(
		`window.__seekedBefore = window.__seeked; v.currentTime = %f`, target), stepTimeout)
	if err != nil {
		fail("seeking to %.3f: %v", target, err)
	}
	s = wait(fmt.Sprintf("the seek to %.3f", target),
		`window.__seeked > window.__seekedBefore && !v.seeking && v.readyState >= 2`)
	if math.Abs(s.SeekedAt-target) > seekTolerance {
		fail("the seek to %.3f landed at %.3f", target, s.SeekedAt)
	}
	res.SeekedTo = s.SeekedAt
	framesAtSeek, callbacksAtSeek := s.Frames, s.FrameCallbacks
	s = wait(fmt.Sprintf("playback past %.3f after the seek", s.SeekedAt+0.5),
		fmt.Sprintf(`v.ended || v.currentTime > %f`, s.SeekedAt+0.5))
	if s.Frames <= framesAtSeek && s.FrameCallbacks <= callbacksAtSeek {
		fail("no video frames decoded after the seek (frames %d, frame callbacks %d at the seek)", framesAtSeek, callbacksAtSeek)
	}
	res.EndTime = s.Time
	res.Frames, res.DroppedFrames, res.FrameCallbacks = s.Frames, s.Dropped, s.FrameCallbacks
	res.Width, res.Height = s.VideoWidth, s.VideoHeight
	res.Warnings = s.Warnings
	return res
}

// playThrough plays on from s at rate until the end, for play.
func playThrough(tb testing.TB, ctx context.Context, res Result, s state, rate float64,
	wait func(what, cond string) state, fail func(format string, args ...any)) Result {
	tb.Helper()
	if _, err := browser.Eval[chromedp.Void](ctx, fmt.Sprintf(`v.playbackRate = %f`, rate), stepTimeout); err != nil {
		fail("setting the playback rate to %.1f: %v", rate, err)
	}
	// The step deadline applies to the stretch of media of one step:
	// wait for the end in steps of stepTimeout of media at the rate.
	end := s.Duration - 0.3
	for pos := s.Time; ; {
		next := min(end, pos+(stepTimeout.Seconds()/2)*rate)
		s = wait(fmt.Sprintf("playback past %.3f of %.3f", next, s.Duration), fmt.Sprintf(`v.ended || v.currentTime >= %f`, next))
		if s.Ended || s.Time >= end {
			break
		}
		pos = s.Time
	}
	res.EndTime = s.Time
	res.Frames, res.DroppedFrames, res.FrameCallbacks = s.Frames, s.Dropped, s.FrameCallbacks
	res.Width, res.Height = s.VideoWidth, s.VideoHeight
	res.Warnings = s.Warnings
	return res
}

// currentState evaluates window.__state() for a failure message.
func currentState(ctx context.Context) (state, error) {
	return browser.Eval[state](ctx, `window.__state ? window.__state() : {log: 'page has no __state'}`, 5*time.Second)
}

// shortURL returns u without a long query, for console lines.
func shortURL(u string) string {
	if len(u) > 120 {
		return u[:120] + "…"
	}
	return u
}
