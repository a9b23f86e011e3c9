package playback_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/playlist"
	"github.com/jitstream/jitstream/internal/server"
	"github.com/jitstream/jitstream/internal/state"
	"github.com/jitstream/jitstream/internal/testutil/browser"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/httpt"
	"github.com/jitstream/jitstream/internal/testutil/jitserver"
	"github.com/jitstream/jitstream/internal/testutil/players"
	"github.com/jitstream/jitstream/internal/testutil/probe"
	"github.com/jitstream/jitstream/internal/testutil/redis"
)

// media are the recordings of the tests, ingested once per server.
type media struct {
	bumper, pre, mid, post, adDE, content, long string // asset ids
	files                                       map[string]string
}

// ingestAll ingests the test recordings into e.
func ingestAll(t *testing.T, e *jitserver.Env) *media {
	t.Helper()
	m := &media{files: map[string]string{}}
	for _, x := range []struct {
		id   *string
		path string
	}{
		{&m.bumper, fixtures.Clip(t, 2, "rgbtestsrc", 880)},
		{&m.pre, fixtures.Clip(t, 4, "smptebars", 660)},
		{&m.mid, fixtures.Clip(t, 4, "smptehdbars", 550)},
		{&m.post, fixtures.Clip(t, 4, "yuvtestsrc", 330)},
		{&m.adDE, fixtures.Clip(t, 4, "pal100bars", 990)},
		{&m.content, fixtures.Clip(t, 12, "testsrc2", 440)},
		{&m.long, fixtures.Clip(t, 30, "testsrc", 220)},
	} {
		a := jitserver.Ingest[struct{ ID string }](t, e, x.path)
		*x.id = a.ID
		m.files[a.ID] = x.path
	}
	return m
}

// putPlaylist creates playlist id of jitserver.User on the server at base.
func putPlaylist(t *testing.T, base, token, id string, p map[string]any) {
	t.Helper()
	b, _ := json.Marshal(p)
	resp, body := httpt.Do(t, http.MethodPut, base+"/api/v1/users/"+jitserver.User+"/playlists/"+id, bytes.NewReader(b), auth(token)...)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT playlist %s: %d %s", id, resp.StatusCode, body)
	}
}

func auth(token string) []string {
	if token == "" {
		return nil
	}
	return []string{"Authorization", "Bearer " + token}
}

// sessionView is the answer to starting a session.
type sessionView struct {
	ID    string `json:"id"`
	HLS   string `json:"hls"`
	HLSTS string `json:"hls_ts"`
	DASH  string `json:"dash"`
	MP4   string `json:"mp4"`
	Items []struct {
		Kind     string  `json:"kind"`
		Slot     string  `json:"slot"`
		Duration float64 `json:"duration"`
	} `json:"items"`
}

// startSession starts a session of playlist id for viewer v.
func startSession(t *testing.T, base, token, id string, v playlist.Viewer) sessionView {
	t.Helper()
	b, _ := json.Marshal(v)
	resp, body := httpt.Do(t, http.MethodPost, base+"/api/v1/users/"+jitserver.User+"/playlists/"+id+"/sessions", bytes.NewReader(b), auth(token)...)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("start a session: %d %s", resp.StatusCode, body)
	}
	var s sessionView
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("session answer: %v: %s", err, body)
	}
	if strings.Contains(string(body), "\"asset\"") {
		t.Errorf("the session answer shows asset ids: %s", body)
	}
	return s
}

// adsPlaylist is the playlist of the issue: a bumper that cannot be
// skipped, a pre-roll, the program with a mid-roll at 6 s, a post-roll;
// viewers in Germany get their own pre-roll.
func adsPlaylist(m *media) map[string]any {
	return map[string]any{
		"title": "program with ads",
		"entries": []any{
			map[string]any{"asset": m.bumper, "rules": map[string]any{"no_skip_forward": true}},
			map[string]any{"ad": map[string]any{"position": "pre",
				"pools":   []any{map[string]any{"when": map[string]any{"country": []string{"DE"}}, "ads": []any{map[string]any{"asset": m.adDE}}}},
				"default": []any{map[string]any{"asset": m.pre}}}},
			map[string]any{"asset": m.content},
			map[string]any{"ad": map[string]any{"position": "mid", "at": 6, "default": []any{map[string]any{"asset": m.mid}}}},
			map[string]any{"ad": map[string]any{"position": "post", "default": []any{map[string]any{"asset": m.post}}}},
		},
	}
}

// showServer starts a server writing its beacons to a file, with the
// test recordings and the playlist "show" (adsPlaylist) of them.
func showServer(t *testing.T) (e *jitserver.Env, m *media, beaconsFile string) {
	t.Helper()
	beaconsFile = filepath.Join(t.TempDir(), "beacons.jsonl")
	b, err := playlist.NewBeacons(playlist.BeaconOptions{File: beaconsFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	e = jitserver.New(t, jitserver.WithOptions(server.Options{Beacons: b}))
	m = ingestAll(t, e)
	putPlaylist(t, e.URL, e.Token, "show", adsPlaylist(m))
	return e, m, beaconsFile
}

// showFrames returns the decoded video frames of a session of "show" in
// order: the bumper, the pre-roll, the program up to the mid-roll (at 6 s
// of the program, the bumper's 2 s included: 4 s of the asset), the
// mid-roll, the rest of the program, the post-roll.
func showFrames(t *testing.T, m *media) []string {
	t.Helper()
	content := frames(t, m.files[m.content])
	var want []string
	for _, part := range [][]string{
		frames(t, m.files[m.bumper]), frames(t, m.files[m.pre]), content[:4*30],
		frames(t, m.files[m.mid]), content[4*30:], frames(t, m.files[m.post]),
	} {
		want = append(want, part...)
	}
	return want
}

// mediaURIs returns the segment URIs of a session media playlist by item.
func mediaURIs(t *testing.T, body []byte) map[int][]string {
	t.Helper()
	out := map[int][]string{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var item, n int
		if _, err := fmt.Sscanf(line, "%d/%d.m4s", &item, &n); err != nil {
			t.Fatalf("media playlist line %q: %v", line, err)
		}
		out[item] = append(out[item], line)
	}
	return out
}

// frames returns the MD5s of the decoded video frames of src.
func frames(t *testing.T, src string) []string {
	t.Helper()
	return probe.MD5s(probe.FrameMD5(t, "-i", src, "-map", "0:v:0", "-fps_mode", "passthrough"))
}

// TestPlayThroughFFmpeg: ffmpeg plays a session (its MPEG-TS playlist)
// from start to end: the bumper, the pre-roll, the program up to the
// mid-roll (at 6 s of the program, the bumper's 2 s included: cut at the
// first segment boundary after 4 s of the asset, 4 s), the mid-roll, the
// rest of the program and the post-roll, frame for frame; the server held the program
// back until each ad had played, and the beacons file has each quartile of
// each ad once.
func TestPlayThroughFFmpeg(t *testing.T) {
	e, m, beaconsFile := showServer(t)
	s := startSession(t, e.URL, e.Token, "show", playlist.Viewer{Country: "US"})
	var kinds []string
	for _, it := range s.Items {
		kinds = append(kinds, it.Kind+"/"+it.Slot)
	}
	want := []string{"content/", "ad/pre", "content/", "ad/mid@6", "content/", "ad/post"}
	if !slices.Equal(kinds, want) {
		t.Fatalf("items %v, want %v", kinds, want)
	}

	got := frames(t, e.URL+s.HLSTS)
	wantFrames := showFrames(t, m)
	if !slices.Equal(got, wantFrames) {
		t.Fatalf("ffmpeg decoded %d frames from the session, want the %d of its parts in order (first difference at %d)",
			len(got), len(wantFrames), firstDiff(got, wantFrames))
	}

	// Every ad's five events, once each, once the server recorded them.
	waitBeacons(t, beaconsFile, []string{"impression", "first_quartile", "midpoint", "third_quartile", "complete"})
}

// waitBeacons waits until the beacons file has each of events once for
// each ad of adsPlaylist, and fails the test if one is there twice, or
// if some are missing at the deadline.
func waitBeacons(t *testing.T, file string, events []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		seen := readBeacons(t, file)
		done := true
		for _, slot := range []string{"pre", "mid@6", "post"} {
			for _, ev := range events {
				n := seen[slot+" "+ev]
				if n > 1 {
					t.Fatalf("beacon %s %s sent %d times", slot, ev, n)
				}
				done = done && n == 1
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("beacons after playback: %v, want each of %v once for pre, mid@6 and post", seen, events)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// readBeacons counts the beacons of the file by "slot event".
func readBeacons(t *testing.T, path string) map[string]int {
	t.Helper()
	return countBeacons(t, path, func(playlist.Beacon) bool { return true })
}

// countBeacons counts the beacons of the file that keep says to count, by
// "slot event".
func countBeacons(t *testing.T, path string, keep func(playlist.Beacon) bool) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return map[string]int{}
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var bc playlist.Beacon
		if err := json.Unmarshal(sc.Bytes(), &bc); err != nil {
			t.Fatalf("beacon line %q: %v", sc.Text(), err)
		}
		if keep(bc) {
			out[bc.Slot+" "+bc.Event]++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// get requests url without following redirects.
func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	return httpt.Get(t, url)
}

// viewer plays a session by hand, request by request, over the nodes
// given (alternating between them when there are several).
type viewer struct {
	t     *testing.T
	nodes []string
	next  int
	s     sessionView
	uris  map[int][]string // video segment URIs by item
}

func newViewer(t *testing.T, nodes []string, s sessionView) *viewer {
	v := &viewer{t: t, nodes: nodes, s: s}
	resp, body := get(t, v.node()+"/session/"+s.ID+"/hls/v/index.m3u8")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("media playlist: %d %s", resp.StatusCode, body)
	}
	v.uris = mediaURIs(t, body)
	return v
}

func (v *viewer) node() string {
	n := v.nodes[v.next%len(v.nodes)]
	v.next++
	return n
}

// segment requests video segment n of item i.
func (v *viewer) segment(i, n int) (*http.Response, []byte) {
	v.t.Helper()
	return get(v.t, v.node()+"/session/"+v.s.ID+"/hls/v/"+v.uris[i][n])
}

// play requests every video segment of item i and checks they are served.
func (v *viewer) play(i int) {
	v.t.Helper()
	for n := range v.uris[i] {
		resp, body := v.segment(i, n)
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusFound {
			v.t.Fatalf("item %d segment %d: %d %s", i, n, resp.StatusCode, body)
		}
	}
}

// refused checks that video segment n of item i is refused with 403 and a
// JSON reason.
func (v *viewer) refused(i, n int, why string) {
	v.t.Helper()
	resp, body := v.segment(i, n)
	if resp.StatusCode != http.StatusForbidden {
		v.t.Fatalf("%s: item %d segment %d: %d, want 403", why, i, n, resp.StatusCode)
	}
	var e struct{ Error, Detail string }
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" || e.Detail == "" {
		v.t.Fatalf("%s: 403 body %q is not a JSON error with a reason", why, body)
	}
}

// enforcement runs the checks of one viewer's session over nodes, and
// returns the viewer, who played up to the mid-roll.
func enforcement(t *testing.T, nodes []string, token string, m *media) *viewer {
	s := startSession(t, nodes[0], token, "show", playlist.Viewer{Country: "US"})
	v := newViewer(t, nodes, s)
	// Content past an unplayed bumper (no skip forward), then past an
	// unplayed ad: refused.
	v.refused(2, 0, "content before the bumper")
	v.play(0)
	v.refused(2, 0, "content before the pre-roll")
	// The pre-roll fetched faster than it plays: the content waits for
	// it, until its duration (less the 2 s tolerance) has passed since
	// its first byte.
	t0 := time.Now()
	v.play(1)
	resp, body := v.segment(2, 0)
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/c/") {
		t.Fatalf("content after the pre-roll: %d %s (Location %q), want a redirect to /c/", resp.StatusCode, body, resp.Header.Get("Location"))
	}
	if waited := time.Since(t0); waited < 4*time.Second-2*time.Second {
		t.Fatalf("content released %v after the pre-roll's first byte, before its 4 s (less 2 s of tolerance) had passed", waited)
	}
	// The shared content URL serves the content, cacheable by anyone.
	cresp, cbody := get(t, nodes[0]+resp.Header.Get("Location"))
	if cresp.StatusCode != http.StatusOK || len(cbody) == 0 || !strings.Contains(cresp.Header.Get("Cache-Control"), "public") {
		t.Fatalf("shared content URL: %d, %d bytes, Cache-Control %q", cresp.StatusCode, len(cbody), cresp.Header.Get("Cache-Control"))
	}
	// Past the mid-roll (item 3) before it was played: refused.
	v.play(2)
	v.refused(4, 0, "content after an unplayed mid-roll")
	return v
}

// TestEnforcement: content past an unserved ad is refused with 403 and a
// reason; content after an ad fetched faster than its duration waits for
// its release.
func TestEnforcement(t *testing.T) {
	e := jitserver.New(t)
	m := ingestAll(t, e)
	putPlaylist(t, e.URL, e.Token, "show", adsPlaylist(m))
	enforcement(t, []string{e.URL}, e.Token, m)
}

// TestTwoNodesShareSessions: the requests of one session alternate between
// two nodes sharing Redis, and behave as on one node; a node started later
// (as after a restart) continues the session.
func TestTwoNodesShareSessions(t *testing.T) {
	rs := redis.Start(t)
	sh, err := state.Open(context.Background(), rs.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	e := jitserver.New(t)
	m := ingestAll(t, e)
	a := e.Serve(t, server.Options{State: sh, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	b := e.Serve(t, server.Options{State: sh})
	putPlaylist(t, a, e.Token, "show", adsPlaylist(m))
	v := enforcement(t, []string{a, b}, e.Token, m)
	// A node started afterwards (a restarted one: nothing in its memory)
	// goes on with the session where the others left it.
	v.nodes = []string{e.Serve(t, server.Options{State: sh})}
	v.refused(4, 0, "content after an unplayed mid-roll, on a new node")
	v.play(3)
	v.play(4)
	v.play(5)
}

// TestSkipAfterHalf: a program that may be skipped once half of it was
// delivered refuses a jump ahead before, and allows it after.
func TestSkipAfterHalf(t *testing.T) {
	e := jitserver.New(t)
	m := ingestAll(t, e)
	putPlaylist(t, e.URL, e.Token, "half", map[string]any{"entries": []any{
		map[string]any{"asset": m.long, "rules": map[string]any{"no_skip_forward": true, "skip_after_percent": 50}},
		map[string]any{"ad": map[string]any{"position": "post", "default": []any{map[string]any{"asset": m.post}}}},
	}})
	s := startSession(t, e.URL, e.Token, "half", playlist.Viewer{})
	v := newViewer(t, []string{e.URL}, s)
	last := len(v.uris[0]) - 1 // 30 s in 4 s segments: 8
	v.refused(0, last, "a jump to the end of the program before half of it was played")
	v.refused(1, 0, "the post-roll before the program was played")
	for n := range 4 { // 0-16 s: more than half of 30 s
		if resp, body := v.segment(0, n); resp.StatusCode != http.StatusFound {
			t.Fatalf("segment %d: %d %s", n, resp.StatusCode, body)
		}
	}
	if resp, body := v.segment(0, last); resp.StatusCode != http.StatusFound {
		t.Fatalf("a jump after half of the program was played: %d %s", resp.StatusCode, body)
	}
}

// TestViewersGetTheirAds: two viewers with different attributes get
// different ads, and the same shared URLs for the program.
func TestViewersGetTheirAds(t *testing.T) {
	e := jitserver.New(t)
	m := ingestAll(t, e)
	putPlaylist(t, e.URL, e.Token, "show", adsPlaylist(m))
	var ads [2][]byte
	var content [2]string
	for i, country := range []string{"DE", "US"} {
		s := startSession(t, e.URL, e.Token, "show", playlist.Viewer{Country: country})
		v := newViewer(t, []string{e.URL}, s)
		v.play(0)
		resp, body := v.segment(1, 0)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: pre-roll: %d %s", country, resp.StatusCode, body)
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "private") && !strings.Contains(cc, "no-store") {
			t.Errorf("%s: an ad of one viewer is cacheable by others: Cache-Control %q", country, cc)
		}
		ads[i] = body
		resp, body = v.segment(2, 0)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("%s: content: %d %s", country, resp.StatusCode, body)
		}
		content[i] = resp.Header.Get("Location")
	}
	if bytes.Equal(ads[0], ads[1]) {
		t.Error("viewers in Germany and the US got the same pre-roll")
	}
	if content[0] != content[1] || content[0] == "" {
		t.Errorf("the program's URLs differ between viewers: %q and %q", content[0], content[1])
	}
}

// TestPlayersPlayThrough: hls.js (fMP4, with the audio as its own
// rendition) and dash.js (one Period per item) play a session from start to
// end in Chromium, at 8 times the normal speed: the server holds the
// program back until each ad has played, and the players wait for it;
// every ad was delivered whole (its completion beacon), none was skipped.
func TestPlayersPlayThrough(t *testing.T) {
	for _, tc := range []struct {
		name string
		play func(tb testing.TB, ctx context.Context, url string, rate float64) players.Result
		url  func(s sessionView) string
	}{
		{"hls.js", players.PlayThroughHLS, func(s sessionView) string { return s.HLS }},
		{"dash.js", players.PlayThroughDASH, func(s sessionView) string { return s.DASH }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _, beaconsFile := showServer(t)
			s := startSession(t, e.URL, e.Token, "show", playlist.Viewer{Country: "US"})
			var total float64
			for _, it := range s.Items {
				total += it.Duration
			}
			ctx := browser.New(t)
			res := tc.play(t, ctx, e.URL+tc.url(s), 8)
			if res.Duration < total-0.5 || res.Duration > total+0.5 {
				t.Errorf("%s: duration %.3f, want the items' %.3f", res.Player, res.Duration, total)
			}
			if res.EndTime < total-1 {
				t.Errorf("%s: playback ended at %.3f of %.3f", res.Player, res.EndTime, total)
			}
			waitBeacons(t, beaconsFile, []string{"complete"})
		})
	}
}

// TestStartByURL: a session started by a GET of the playlist's entry URL
// (the viewer from the query) redirects to that entry of the session,
// which serves; a name that is no entry is a JSON 404.
func TestStartByURL(t *testing.T) {
	e := jitserver.New(t)
	m := ingestAll(t, e)
	putPlaylist(t, e.URL, e.Token, "show", adsPlaylist(m))
	for _, tc := range []struct{ entry, want, typ string }{
		{"master.m3u8", "/hls/master.m3u8", "application/vnd.apple.mpegurl"},
		{"index.m3u8", "/hls/ts/index.m3u8", "application/vnd.apple.mpegurl"},
		{"manifest.mpd", "/dash/manifest.mpd", "application/dash+xml"},
		{"video.mp4", "/video.mp4", "video/mp4"},
	} {
		resp, body := e.Get(t, "/playlists/"+jitserver.User+"/show/"+tc.entry+"?country=DE&profile.tier=gold")
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "/session/") || !strings.HasSuffix(loc, tc.want) {
			t.Fatalf("%s: %d %s, Location %q", tc.entry, resp.StatusCode, body, loc)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: the redirect to a session is cacheable: %q", tc.entry, cc)
		}
		resp, body = httpt.Do(t, http.MethodHead, e.URL+loc, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != tc.typ {
			t.Errorf("%s: HEAD %s: %d %q %s", tc.entry, loc, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
	resp, body := e.Get(t, "/playlists/"+jitserver.User+"/show/other.txt")
	if resp.StatusCode != http.StatusNotFound || !json.Valid(body) {
		t.Errorf("unknown entry: %d %s", resp.StatusCode, body)
	}
}
