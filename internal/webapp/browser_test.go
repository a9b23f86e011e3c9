package webapp_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/jitstream/jitstream/internal/outputs"
	"github.com/jitstream/jitstream/internal/server"
	"github.com/jitstream/jitstream/internal/testutil/browser"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/httpt"
	"github.com/jitstream/jitstream/internal/testutil/jitserver"
	"github.com/jitstream/jitstream/internal/testutil/probe"
	"github.com/jitstream/jitstream/internal/transcode"
	"github.com/jitstream/jitstream/internal/tusupload"
)

// stepTimeout bounds each wait of the browser test: a deadline for
// polling, not an expectation (each step takes well under a second on
// loopback, but the first renditions and thumbnails wait for ffmpeg).
const stepTimeout = 30 * time.Second

// pageProbe runs in every page before its scripts: it records the
// Content-Security-Policy violations and the uncaught errors, which the
// test requires to stay empty.
const pageProbe = `
window.__csp = [];
window.__errors = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
window.addEventListener('error', e => window.__errors.push(String(e.message || e)));
window.addEventListener('unhandledrejection', e => window.__errors.push('unhandled rejection: ' + String(e.reason && e.reason.message || e.reason)));
`

// tab drives the app in one browser tab.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string
}

// diagnose is the page's state for a failure message.
func (b *tab) diagnose() string {
	v, err := browser.Eval[any](b.ctx, `({
		hash: location.hash,
		alerts: document.getElementById('alerts') && document.getElementById('alerts').innerText,
		main: document.getElementById('main') && document.getElementById('main').innerText.slice(0, 600),
		csp: window.__csp, errors: window.__errors,
		video: (v => v && {t: v.currentTime, paused: v.paused, rs: v.readyState, h: v.videoHeight, err: v.error && v.error.message})(document.getElementById('video')),
	})`, 5*time.Second)
	if err != nil {
		return fmt.Sprintf("(page state unavailable: %v)", err)
	}
	out, _ := json.MarshalIndent(v, "", "  ")
	return string(out)
}

// do runs actions, failing the test on an error.
func (b *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\npage: %s", what, err, b.diagnose())
	}
}

// poll waits until the JavaScript expression is truthy and returns its value.
func poll[T any](b *tab, what, expr string) T {
	b.t.Helper()
	v, err := browser.Poll[T](b.ctx, expr, stepTimeout)
	if err != nil {
		b.t.Fatalf("waiting for %s: %v\npage: %s", what, err, b.diagnose())
	}
	return v
}

// eval evaluates the JavaScript expression.
func eval[T any](b *tab, expr string) T {
	b.t.Helper()
	v, err := browser.Eval[T](b.ctx, expr, stepTimeout)
	if err != nil {
		b.t.Fatalf("evaluating %s: %v\npage: %s", expr, err, b.diagnose())
	}
	return v
}

// await evaluates the JavaScript expression, a promise, and returns what
// it resolves to.
func await[T any](b *tab, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := browser.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v\npage: %s", expr, err, b.diagnose())
	}
	return v
}

// key types a key (a kb constant or a character) to the page.
func (b *tab) key(k string) {
	b.t.Helper()
	b.do("key "+k, chromedp.KeyEvent(k))
}

// seekBarPoint is the viewport point at fraction f of the seek bar.
func (b *tab) seekBarPoint(f float64) (x, y float64) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	box, err := chromedp.Run(ctx, chromedp.Dimensions("#seek"))
	if err != nil {
		b.t.Fatalf("seek bar: %v", err)
	}
	q := box.Border // x1,y1 x2,y2 x3,y3 x4,y4 clockwise from the top left
	return q[0] + (q[2]-q[0])*f, (q[1] + q[5]) / 2
}

// screenshot saves the viewport as name in dir.
func (b *tab) screenshot(dir, name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", p)
}

// checkClean fails the test on CSP violations or uncaught errors so far.
func (b *tab) checkClean(when string) {
	b.t.Helper()
	v := eval[struct{ CSP, Errors []string }](b, `({csp: window.__csp, errors: window.__errors})`)
	if len(v.CSP) > 0 {
		b.t.Errorf("%s: Content-Security-Policy violations: %q", when, v.CSP)
	}
	if len(v.Errors) > 0 {
		b.t.Errorf("%s: uncaught errors: %q", when, v.Errors)
	}
}

// noHorizontalScroll fails the test when the page is wider than the
// viewport, naming the elements that stick out.
func (b *tab) noHorizontalScroll(when string) {
	b.t.Helper()
	v := eval[struct {
		Inner, Scroll int
		Out           []string
	}](b, `(() => {
		const w = window.innerWidth;
		const out = [];
		for (const el of document.querySelectorAll('body *')) {
			const r = el.getBoundingClientRect();
			if (r.width > 1 && r.height > 1 && r.right > w + 1 && getComputedStyle(el).visibility !== 'hidden') {
				out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + '.' + el.className + ' right=' + Math.round(r.right));
			}
		}
		return {inner: w, scroll: document.documentElement.scrollWidth, out: out.slice(0, 10)};
	})()`)
	if v.Scroll > v.Inner || len(v.Out) > 0 {
		b.t.Errorf("%s: the page scrolls horizontally (scrollWidth %d > %d) or elements stick out: %q", when, v.Scroll, v.Inner, v.Out)
	}
}

// artifactsDir is where the screenshots go: $JITSTREAM_ARTIFACTS/webapp,
// else artifacts/webapp at the repository's root (ignored by git).
func artifactsDir(t *testing.T) string {
	t.Helper()
	root := os.Getenv("JITSTREAM_ARTIFACTS")
	if root == "" {
		repo, err := fixtures.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		root = filepath.Join(repo, "artifacts")
	}
	dir := filepath.Join(root, "webapp")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestWebApp drives the web app in headless Chromium against a real
// server with access control, a transcoder (renditions and thumbnails) and
// tus uploads: a wrong token gets a clear message; the right one shows the
// library; a file uploaded through the file input shows its progress to
// 100 % and appears in the grid with its thumbnail, and two files become
// one recording of two chapters; the player plays (currentTime advances),
// switches to the 360p rendition (hls.js's level and the video's height),
// previews the sprite thumbnail under the pointer, seeks where the seek bar
// is clicked, fast-forwards and rewinds through the trick streams, obeys
// the keyboard; a clip made with I and O downloads and lasts out - in
// (ffprobe); the downloads list what the server's file listing offers; on
// a 390x844 screen nothing scrolls sideways; a missing recording and
// signing out give clear pages. No page violates the Content Security
// Policy. Screenshots of the library and the player go to artifacts/webapp.
func TestWebApp(t *testing.T) {
	fixtures.RequireTools(t)
	hd := fixtures.HD(t, 720)
	chapters := fixtures.TwoChapters(t)
	hdID := strings.TrimSuffix(filepath.Base(hd), filepath.Ext(hd))
	chaptersID := strings.TrimSuffix(filepath.Base(chapters[0]), filepath.Ext(chapters[0]))

	e := jitserver.New(t, jitserver.WithAuth())
	tc := transcode.New(transcode.Options{Store: e.Store})
	t.Cleanup(func() { tc.Close() })
	up, err := tusupload.New(outputs.New(e.Library, 0), tusupload.Options{Dir: tusupload.DefaultDir(e.Dir)})
	if err != nil {
		t.Fatal(err)
	}
	base := e.Serve(t, server.Options{Auth: e.Auth, Transcoder: tc, Uploads: up})
	shots := artifactsDir(t)
	downloads := t.TempDir()

	ctx := browser.New(t)
	b := &tab{t: t, ctx: ctx, base: base}
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: pageProbe}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.CallBrowser(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads, EventsEnabled: new(true)}); err != nil {
		t.Fatal(err)
	}
	defer browser.Leave(ctx, stepTimeout)
	b.do("desktop viewport", chromedp.EmulateViewport(1280, 800))

	// / sends a browser to the app, which asks for a token.
	b.do("open /", chromedp.Navigate(base+"/"))
	poll[bool](b, "the sign-in form", `!!document.getElementById('token') && location.pathname === '/app/'`)

	// Each step builds on the ones before: stop at the first that fails.
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	step("wrong token", func(t *testing.T) {
		b.t = t
		wrong := "jst_alice_000000000000_" + strings.Repeat("a", 52)
		b.do("type a wrong token", chromedp.SendKeys("#token", wrong), chromedp.Click("#signin-submit"))
		msg := poll[string](b, "the error message", `document.getElementById('signin-error').innerText`)
		if !strings.Contains(msg, "This token is not valid") || !strings.Contains(msg, "unauthorized") {
			t.Errorf("wrong token: message %q", msg)
		}
		if eval[bool](b, `!!localStorage.getItem('jitstream.token') || !document.getElementById('token')`) {
			t.Error("a wrong token was kept, or the form went away")
		}
	})

	step("sign in", func(t *testing.T) {
		b.t = t
		eval[bool](b, `(document.getElementById('token').value = '', true)`)
		b.do("type the token", chromedp.SendKeys("#token", e.Token), chromedp.Click("#signin-submit"))
		poll[bool](b, "the empty library", `!!document.querySelector('#grid .empty') && document.getElementById('who').textContent === 'alice'`)
		if got := eval[string](b, `localStorage.getItem('jitstream.token')`); got != e.Token {
			t.Errorf("the token in localStorage is %q", got)
		}
		// The sign-in set the media cookie: GETs work without a header.
		if st := await[int](b, `fetch('/files/alice/', {headers: {Accept: 'application/json'}}).then(r => r.status)`); st != 200 {
			t.Errorf("GET /files/alice/ with the cookie: %d", st)
		}
	})

	step("upload", func(t *testing.T) {
		b.t = t
		eval[bool](b, `(() => {
			window.__progress = [];
			new MutationObserver(ms => { for (const m of ms) window.__progress.push(Number(m.target.dataset.progress)); })
				.observe(document.getElementById('upload-list'), {subtree: true, attributes: true, attributeFilter: ['data-progress']});
			return true;
		})()`)
		b.do("choose the file", chromedp.SetUploadFiles("#file-input", []string{hd}))
		row := poll[struct{ State, Progress, Status string }](b, "the upload to finish",
			`(r => r && (r.dataset.state === 'done' || r.dataset.state === 'error') && {state: r.dataset.state, progress: r.dataset.progress, status: r.querySelector('.status').textContent})(document.querySelector('.upload[data-name="`+filepath.Base(hd)+`"]'))`)
		if row.State != "done" || row.Progress != "100" {
			t.Fatalf("upload: %+v", row)
		}
		progress := eval[[]float64](b, `window.__progress`)
		if len(progress) == 0 || progress[len(progress)-1] != 100 || !sort.Float64sAreSorted(progress) {
			t.Errorf("progress went %v, want up to 100", progress)
		}
		poll[bool](b, "the new card", `!!document.querySelector('#grid [data-id="`+hdID+`"]')`)
		// The thumbnail, not the placeholder.
		poll[bool](b, "its thumbnail", `(i => i && i.complete && i.naturalWidth > 0)(document.querySelector('#grid [data-id="`+hdID+`"] img'))`)
		if n := eval[int](b, `Object.keys(localStorage).filter(k => k.startsWith('tus::')).length`); n != 0 {
			t.Errorf("%d tus fingerprints left after the upload", n)
		}
	})

	step("upload error", func(t *testing.T) {
		b.t = t
		bad := fixtures.NotMedia(t)
		b.do("choose a file that is not media", chromedp.SetUploadFiles("#file-input", []string{bad}))
		row := poll[struct{ State, Status string }](b, "the upload's answer",
			`(r => r && (r.dataset.state === 'done' || r.dataset.state === 'error') && {state: r.dataset.state, status: r.querySelector('.status').textContent})(document.querySelector('.upload[data-name="`+filepath.Base(bad)+`"]'))`)
		if row.State != "error" || !(strings.Contains(row.Status, "not a kind of media jitstream stores") || strings.Contains(row.Status, "could not be read as a video")) {
			t.Errorf("upload of a file that is not media: %+v", row)
		}
		t.Logf("the upload of a file that is not media says: %s", row.Status)
		if n := eval[int](b, `document.querySelectorAll('#grid .item').length`); n != 1 {
			t.Errorf("%d recordings after a failed upload, want 1", n)
		}
	})

	step("upload as one recording", func(t *testing.T) {
		b.t = t
		b.do("choose two files", chromedp.SetUploadFiles("#file-input", chapters))
		poll[bool](b, "the choice", `!document.getElementById('upload-choice').hidden`)
		b.do("as one recording", chromedp.SendKeys("#group-title", "Two chapters"), chromedp.Click("#as-one"))
		got := poll[string](b, "the recording of two chapters",
			`(c => c && c.innerText)(document.querySelector('#grid [data-id="`+chaptersID+`"]'))`)
		if !strings.Contains(got, "2 chapters") || !strings.Contains(got, "Two chapters") {
			t.Errorf("the card of the two-chapter recording reads %q", got)
		}
		for _, c := range chapters {
			if st := eval[string](b, `document.querySelector('.upload[data-name="`+filepath.Base(c)+`"]').dataset.state`); st != "done" {
				t.Errorf("the upload of %s is %q, want done", filepath.Base(c), st)
			}
		}
	})

	step("resume after a reload", func(t *testing.T) {
		b.t = t
		// Half of a file was sent by this browser before a reload: the
		// server holds the bytes, tus-js-client's localStorage the
		// upload's URL under the file's fingerprint.
		file := fixtures.H264AAC(t)
		uploadURL, size := startTusUpload(t, base, e.Token, file)
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		fingerprint := strings.Join([]string{"tus-br", filepath.Base(file), "video/mp4", fmt.Sprint(size),
			fmt.Sprint(fi.ModTime().UnixMilli()), base + "/api/v1/users/alice/uploads/"}, "-")
		stored, _ := json.Marshal(map[string]any{"size": size, "metadata": map[string]string{"filename": filepath.Base(file)},
			"creationTime": time.Now().String(), "uploadUrl": uploadURL})
		eval[bool](b, fmt.Sprintf(`(localStorage.setItem(%q, %q), true)`, "tus::"+fingerprint+"::1", stored))
		b.do("reload", chromedp.Navigate(base+"/app/"))
		pending := poll[string](b, "the unfinished upload", `(p => p && p.innerText)(document.getElementById('pending'))`)
		if !strings.Contains(pending, filepath.Base(file)) {
			t.Errorf("unfinished uploads: %q", pending)
		}
		eval[bool](b, `(() => {
			window.__progress = [];
			new MutationObserver(ms => { for (const m of ms) window.__progress.push(Number(m.target.dataset.progress)); })
				.observe(document.getElementById('upload-list'), {subtree: true, attributes: true, attributeFilter: ['data-progress']});
			return true;
		})()`)
		b.do("choose the same file", chromedp.SetUploadFiles("#file-input", []string{file}))
		row := poll[struct{ State, Status string }](b, "the resumed upload",
			`(r => r && (r.dataset.state === 'done' || r.dataset.state === 'error') && {state: r.dataset.state, status: r.querySelector('.status').textContent})(document.querySelector('.upload[data-name="`+filepath.Base(file)+`"]'))`)
		if row.State != "done" {
			t.Fatalf("resumed upload: %+v", row)
		}
		// It went on from the middle: no progress below half was shown.
		if progress := eval[[]float64](b, `window.__progress.filter(p => p > 0)`); len(progress) == 0 || progress[0] < 49 || progress[len(progress)-1] != 100 {
			t.Errorf("progress of the resumed upload: %v, want from about 50 to 100", progress)
		}
		id := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
		poll[bool](b, "its card", `!!document.querySelector('#grid [data-id="`+id+`"]') && !document.getElementById('pending').innerText`)
	})

	step("search and sort", func(t *testing.T) {
		b.t = t
		b.do("search", chromedp.SendKeys("#search", "two"))
		if ids := eval[[]string](b, `[...document.querySelectorAll('#grid .item')].map(i => i.dataset.id)`); len(ids) != 1 || ids[0] != chaptersID {
			t.Errorf("search 'two': %q", ids)
		}
		eval[bool](b, `(s => { s.value = ''; s.dispatchEvent(new Event('input')); return true; })(document.getElementById('search'))`)
		eval[bool](b, `(s => { s.value = 'longest'; s.dispatchEvent(new Event('change')); return true; })(document.getElementById('sort'))`)
		// HD is 12 s, the two chapters 8 s, H264AAC 6 s.
		if ids := eval[[]string](b, `[...document.querySelectorAll('#grid .item')].map(i => i.dataset.id)`); len(ids) != 3 || ids[0] != hdID {
			t.Errorf("sorted by duration: %q", ids)
		}
		poll[bool](b, "every thumbnail", `[...document.querySelectorAll('#grid .card img')].every(i => i.complete && i.naturalWidth > 0)`)
		b.screenshot(shots, "library.png")
		b.checkClean("library")
	})

	step("play", func(t *testing.T) {
		b.t = t
		b.do("open the recording", chromedp.Click(`#grid [data-id="`+hdID+`"] .card`))
		t1 := poll[float64](b, "playback", `(v => v && v.currentTime > 1 && !v.paused && v.readyState >= 2 && v.currentTime)(document.getElementById('video'))`)
		poll[bool](b, "currentTime to advance", fmt.Sprintf(`document.getElementById('video').currentTime > %f`, t1+0.5))
		if title := eval[string](b, `document.getElementById('player-title').textContent`); title != hdID {
			t.Errorf("title %q", title)
		}
	})

	step("quality", func(t *testing.T) {
		b.t = t
		opts := poll[[]string](b, "the quality menu", `(o => o.length >= 4 && o.map(x => x.value + '=' + x.textContent))([...document.querySelectorAll('#quality option')])`)
		idx := ""
		for _, o := range opts {
			v, label, _ := strings.Cut(o, "=")
			if strings.HasPrefix(label, "360p") {
				idx = v
			}
		}
		joined := strings.Join(opts, ",")
		if idx == "" || !strings.Contains(joined, "720p · original") || !strings.Contains(joined, "=480p") || !strings.Contains(joined, "=Auto") {
			t.Fatalf("quality menu %q, want Auto, 720p · original, 480p and 360p", opts)
		}
		eval[bool](b, `(q => { q.value = '`+idx+`'; q.dispatchEvent(new Event('change')); return true; })(document.getElementById('quality'))`)
		poll[bool](b, "the 360p rendition", `(p => p.hls.currentLevel === `+idx+` && p.video.videoHeight === 360 && !p.video.paused)(window.__jitstreamPlayer)`)
	})

	step("scrub", func(t *testing.T) {
		b.t = t
		poll[bool](b, "the thumbnail track", `Number(document.getElementById('seek').dataset.thumbnails) > 0`)
		x, y := b.seekBarPoint(0.6)
		b.do("hover the seek bar", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x, y))
		pv := poll[struct{ Time, URL, XYWH string }](b, "the preview",
			`(p => !p.hidden && {time: document.getElementById('preview-time').textContent, url: document.getElementById('preview-img').dataset.url, xywh: document.getElementById('preview-img').dataset.xywh})(document.getElementById('preview'))`)
		if pv.Time != "0:07" || !strings.Contains(pv.URL, "/thumbs/sprite-0.jpg") || pv.XYWH == "" {
			t.Errorf("preview at 60%% of 12 s: %+v", pv)
		}
		// The sprite sheet was fetched (a CSS background image).
		poll[bool](b, "the sprite sheet", `performance.getEntriesByType('resource').some(e => e.name === '`+pv.URL+`' && e.responseStatus === 200)`)
		x, y = b.seekBarPoint(0.75)
		b.do("click the seek bar", chromedp.MouseClickXY(x, y))
		poll[bool](b, "the seek to 9 s", `(v => !v.seeking && v.readyState >= 2 && Math.abs(v.currentTime - 9) < 1)(document.getElementById('video'))`)
	})

	step("keyboard", func(t *testing.T) {
		b.t = t
		poll[bool](b, "playback", `!document.getElementById('video').paused`)
		b.key(" ")
		poll[bool](b, "space to pause", `document.getElementById('video').paused`)
		b.key(" ")
		poll[bool](b, "space to play", `!document.getElementById('video').paused`)
		b.key("m")
		poll[bool](b, "M to mute", `document.getElementById('video').muted`)
		b.key("m")
		poll[bool](b, "M to unmute", `!document.getElementById('video').muted`)
		now := eval[float64](b, `document.getElementById('video').currentTime`)
		b.key(kb.ArrowLeft)
		poll[bool](b, "← to go back 5 s", fmt.Sprintf(`(v => !v.seeking && v.currentTime < %f)(document.getElementById('video'))`, now-3))
	})

	step("trick play", func(t *testing.T) {
		b.t = t
		seekTo := func(pos float64) {
			t.Helper()
			eval[bool](b, fmt.Sprintf(`(document.getElementById('video').currentTime = %f, true)`, pos))
			poll[bool](b, "the seek", fmt.Sprintf(`(v => !v.seeking && Math.abs(v.currentTime - %f) < 0.1)(document.getElementById('video'))`, pos))
		}
		type trickState struct {
			Rate     int
			Fallback bool
			Position float64
		}
		// trickTo waits until trick play at rate has covered the content
		// up to (forward) or back to target, stops it with Esc, and
		// returns where the main video goes on.
		trickTo := func(rate int, target float64) (trickState, float64) {
			t.Helper()
			cmp := ">"
			if rate < 0 {
				cmp = "<"
			}
			ts := poll[trickState](b, fmt.Sprintf("trick play at %dx to %.0f s", rate, target), fmt.Sprintf(
				`(p => p.state.trick && p.state.trick.rate === %d && p.state.trick.base != null && !p.trick.hidden && p.position() %s %f &&
				{rate: p.state.trick.rate, fallback: p.state.trick.fallback, position: p.position()})(window.__jitstreamPlayer)`, rate, cmp, target))
			if badge := eval[string](b, `document.getElementById('rate-badge').textContent`); strings.TrimSpace(badge) != fmt.Sprintf("%d×", max(rate, -rate)) {
				t.Errorf("rate badge %q at rate %d", badge, rate)
			}
			b.key(kb.Escape)
			at := poll[float64](b, "the return to HLS", `(p => p.trick.hidden && !p.state.trick && p.video.readyState >= 2 && !p.video.seeking && p.video.currentTime)(window.__jitstreamPlayer)`)
			return ts, at
		}
		// Where the main video goes on is where trick play stood when Esc
		// was pressed, within the main video's seek precision (a frame or
		// so): tolerance, in seconds.
		const tol = 0.1
		// The fixture's key frames are 2 s apart: at 2x they are too
		// sparse, and the server sends the ordinary clip, which the
		// player plays twice as fast; at 4x it sends the keyframe stream.
		seekTo(2)
		b.key("l")
		ts, at := trickTo(2, 3)
		if !ts.Fallback || at < 3-tol {
			t.Errorf("fast forward at 2x from 2 s: %+v, then at %.3f s, want the ordinary clip sped up, then at 3 s or later", ts, at)
		}
		seekTo(2)
		b.key("l")
		b.key("l")
		ts, at = trickTo(4, 4)
		if ts.Fallback || at < 4-tol {
			t.Errorf("fast forward at 4x from 2 s: %+v, then at %.3f s, want the keyframe stream, then at 4 s or later", ts, at)
		}
		// Rewinding at 2x falls back too, and the player goes on at 4x.
		seekTo(8)
		b.key("j")
		ts, at = trickTo(-4, 7)
		if ts.Fallback || at > 7+tol {
			t.Errorf("rewind from 8 s: %+v, then at %.3f s, want the keyframe stream at 4x, then at 7 s or before", ts, at)
		}
	})

	step("clip", func(t *testing.T) {
		b.t = t
		if !eval[bool](b, `document.getElementById('video').paused`) {
			b.key(" ")
		}
		poll[bool](b, "pause", `document.getElementById('video').paused`)
		for _, p := range []struct {
			pos float64
			key string
		}{{2, "i"}, {7, "o"}} {
			eval[bool](b, fmt.Sprintf(`(document.getElementById('video').currentTime = %f, true)`, p.pos))
			poll[bool](b, "the seek", fmt.Sprintf(`(v => !v.seeking && Math.abs(v.currentTime - %f) < 0.001)(document.getElementById('video'))`, p.pos))
			b.key(p.key)
		}
		href := poll[string](b, "the clip link", `(a => !a.classList.contains('disabled') && a.getAttribute('href'))(document.getElementById('clip-download'))`)
		if want := "/files/alice/" + hdID + ".mp4?start=2&end=7"; href != want {
			t.Fatalf("clip link %q, want %q", href, want)
		}
		name := eval[string](b, `document.getElementById('clip-download').download`)
		// A screenshot with the clip range and a preview on the bar.
		eval[bool](b, `(window.scrollTo(0, 0), true)`)
		x, y := b.seekBarPoint(0.4)
		b.do("hover", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x, y))
		poll[bool](b, "the preview", `!document.getElementById('preview').hidden && document.getElementById('preview-time').textContent === '0:04'`)
		b.screenshot(shots, "player.png")

		dctx, cancel := context.WithTimeout(ctx, stepTimeout)
		defer cancel()
		events := chromedp.BrowserEvents(dctx, cdpbrowser.DownloadProgress)
		b.do("download the clip", chromedp.Click("#clip-download"))
		for ev, err := range events {
			if err != nil {
				t.Fatalf("waiting for the download: %v\npage: %s", err, b.diagnose())
			}
			if ev.State == cdpbrowser.DownloadProgressStateCanceled {
				t.Fatalf("the download was cancelled\npage: %s", b.diagnose())
			}
			if ev.State == cdpbrowser.DownloadProgressStateCompleted {
				break
			}
		}
		file := filepath.Join(downloads, name)
		d := probe.Duration(t, file)
		if math.Abs(d-5) > 0.1 {
			t.Errorf("the clip from 2 s to 7 s lasts %.3f s (ffprobe)", d)
		}
		if s := probe.Streams(t, file); len(s) != 2 {
			t.Errorf("the clip has %d streams, want video and audio", len(s))
		}
	})

	step("downloads", func(t *testing.T) {
		b.t = t
		links := poll[[]string](b, "the downloads", `(l => l.length && l.map(a => a.getAttribute('href')))([...document.querySelectorAll('#downloads a.dl')])`)
		// The listing of the app's server (the one with the transcoder:
		// rendition files included).
		resp, body := httpt.Get(t, base+"/files/alice/"+hdID+"/", "Accept", "application/json", "Authorization", "Bearer "+e.Token)
		var listing struct{ Files []outputs.Entry }
		if err := json.Unmarshal(body, &listing); err != nil || resp.StatusCode != 200 {
			t.Fatalf("listing: %d %s", resp.StatusCode, body)
		}
		var want []string
		for _, f := range listing.Files {
			if f.Kind != outputs.KindClip { // the app makes its own clips
				want = append(want, f.URL)
			}
		}
		sort.Strings(want)
		sort.Strings(links)
		if strings.Join(links, "\n") != strings.Join(want, "\n") {
			t.Errorf("download links:\n%s\nwant (the listing's files):\n%s", strings.Join(links, "\n"), strings.Join(want, "\n"))
		}
		b.checkClean("player")
	})

	step("phone", func(t *testing.T) {
		b.t = t
		b.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile))
		b.do("library", chromedp.Navigate(base+"/app/#/"))
		poll[bool](b, "the grid", `document.querySelectorAll('#grid .card img').length === 3 && [...document.querySelectorAll('#grid .card img')].every(i => i.complete)`)
		b.noHorizontalScroll("library at 390x844")
		b.screenshot(shots, "library-phone.png")
		b.do("open the recording", chromedp.Click(`#grid [data-id="`+hdID+`"] .card`))
		poll[bool](b, "playback", `(v => v && v.currentTime > 0.5 && v.readyState >= 2)(document.getElementById('video'))`)
		b.noHorizontalScroll("player at 390x844")
		b.screenshot(shots, "player-phone.png")
		b.checkClean("phone")
		b.do("desktop viewport", chromedp.EmulateViewport(1280, 800))
	})

	step("errors", func(t *testing.T) {
		b.t = t
		b.do("a missing recording", chromedp.Navigate(base+"/app/#/watch/NOPE"))
		msg := poll[string](b, "the error page", `(e => e && e.innerText)(document.getElementById('player-error'))`)
		if !strings.Contains(msg, "This recording was not found") || !strings.Contains(msg, "unknown asset") {
			t.Errorf("missing recording: %q", msg)
		}
		b.do("sign out", chromedp.Navigate(base+"/app/#/"), chromedp.WaitVisible("#signout"), chromedp.Click("#signout"))
		poll[bool](b, "the sign-in form", `!!document.getElementById('token')`)
		// Both the token and the cookie are gone.
		if got := eval[string](b, `localStorage.getItem('jitstream.token') || ''`); got != "" {
			t.Errorf("token still stored after signing out")
		}
		if st := await[int](b, `fetch('/files/alice/', {headers: {Accept: 'application/json'}}).then(r => r.status)`); st != 401 {
			t.Errorf("GET /files/alice/ after signing out: %d, want 401", st)
		}
		b.do("reload", chromedp.Navigate(base+"/app/"))
		poll[bool](b, "the sign-in form after a reload", `!!document.getElementById('token')`)
		b.checkClean("errors")
	})

	step("sign in by link", func(t *testing.T) {
		b.t = t
		// The token in the fragment (which no server sees) signs in, and
		// leaves the address bar.
		b.do("open the link", chromedp.Navigate(base+"/app/#token="+e.Token))
		poll[bool](b, "the library", `document.querySelectorAll('#grid .card').length === 3 && location.hash === '#/'`)
		if got := eval[string](b, `localStorage.getItem('jitstream.token')`); got != e.Token {
			t.Errorf("token in localStorage: %q", got)
		}
		b.checkClean("sign in by link")
	})
}

// startTusUpload creates a tus upload of file for alice and sends its
// first half, as a browser would have before a reload; it returns the
// upload's URL and the file's size.
func startTusUpload(t *testing.T, base, token, file string) (string, int64) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, u string, body []byte, hdr ...string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, u, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Tus-Resumable", "1.0.0")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := do(http.MethodPost, base+"/api/v1/users/alice/uploads/", nil, "Upload-Length", fmt.Sprint(len(data)),
		"Upload-Metadata", "filename "+base64.StdEncoding.EncodeToString([]byte(filepath.Base(file))))
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusCreated || loc == "" {
		t.Fatalf("tus creation: %s, Location %q", resp.Status, loc)
	}
	if u, err := url.Parse(loc); err == nil && !u.IsAbs() {
		loc = base + loc
	}
	half := len(data) / 2
	resp = do(http.MethodPatch, loc, data[:half], "Upload-Offset", "0", "Content-Type", "application/offset+octet-stream")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Upload-Offset") != fmt.Sprint(half) {
		t.Fatalf("tus PATCH of the first half: %s, Upload-Offset %q", resp.Status, resp.Header.Get("Upload-Offset"))
	}
	return loc, int64(len(data))
}
