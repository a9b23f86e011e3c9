package cluster

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	harness "github.com/jitstream/jitstream/internal/testutil/cluster"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/nginx"
	"github.com/jitstream/jitstream/internal/testutil/probe"
)

// minHitRatio is the share of the second playback of a link that the
// cache must serve.
const minHitRatio = 0.95

// TestProxyCache runs two nodes sharing MinIO and Redis behind nginx, a
// caching reverse proxy that keeps what the origin's Cache-Control allows
// (nothing else) under the request URI alone.
func TestProxyCache(t *testing.T) {
	t.Parallel()
	e := start(t, harness.Options{})
	proxy := nginx.StartProxy(t, e.Addrs())

	// A one-minute recording, uploaded through node 0.
	long := fixtures.Long(t, 1)
	a := e.upload(t, e.Nodes[0], alice, long)
	// A short one, for the per-viewer checks.
	short := e.upload(t, e.Nodes[0], alice, fixtures.H264AAC(t))

	t.Run("second playback from the cache", func(t *testing.T) {
		l := e.makeLink(t, alice, a.ID, "24h", proxy.URL)
		want := probe.PacketMD5s(t, long)
		before := len(proxy.Log(t))
		// ffmpeg plays the whole presentation (every stream, -map 0):
		// master, media playlists, init and media segments, as a
		// player would fetch them.
		probe.MatchStreams(t, probe.PacketMD5s(t, l.hls()), want)
		first := proxy.Log(t)[before:]
		probe.MatchStreams(t, probe.PacketMD5s(t, l.hls()), want)
		second := proxy.Log(t)[before+len(first):]

		if len(second) != len(first) || len(second) < a.Segments {
			t.Fatalf("playbacks made %d and %d requests, want the same number, at least the %d segments", len(first), len(second), a.Segments)
		}
		nodes := map[string]bool{}
		for _, en := range first {
			// 206: ffmpeg asks for bytes=0-, which nginx answers from the
			// whole response it fetched.
			if en.Status != http.StatusOK && en.Status != http.StatusPartialContent || !strings.HasPrefix(en.URI, l.Path+"/streams/") {
				t.Errorf("first playback: %+v", en)
			}
			nodes[en.Upstream] = true
		}
		if len(nodes) != 2 {
			t.Errorf("first playback served by %v, want both nodes", nodes)
		}
		ratio := nginx.HitRatio(second)
		t.Logf("second playback: %d requests, %.1f%% served from the cache (first playback: %.1f%%)",
			len(second), 100*ratio, 100*nginx.HitRatio(first))
		if ratio < minHitRatio {
			for _, en := range second {
				if en.CacheStatus != "HIT" {
					t.Logf("not a hit: %+v", en)
				}
			}
			t.Errorf("second playback: %.1f%% from the cache, want at least %.0f%%", 100*ratio, 100*minHitRatio)
		}
	})

	t.Run("per-viewer responses are not shared", func(t *testing.T) {
		paths := []string{
			"/streams/alice/" + short.ID + "/hls/master.m3u8",
			"/streams/alice/" + short.ID + "/hls/v1/init.mp4",
			"/files/alice/" + short.ID + "/" + short.Chapters[0].Name,
			"/files/alice/" + short.ID + ".mp4",
			"/api/v1/users/alice/assets/" + short.ID,
		}
		for _, p := range paths {
			t.Run(p, func(t *testing.T) {
				direct := get(t, e.Nodes[1].URL()+p, e.tokens[alice])
				if direct.StatusCode != http.StatusOK || direct.err != nil {
					t.Fatalf("direct with alice's token: %s %v", direct.Status, direct.err)
				}
				// Every way to present alice's token, twice each: the
				// second must not come from the cache either.
				for _, cred := range []struct {
					how    string
					header http.Header
				}{
					{"bearer", http.Header{"Authorization": {"Bearer " + e.tokens[alice]}}},
					{"basic", http.Header{"Authorization": {basicAuth(alice, e.tokens[alice])}}},
					{"cookie", http.Header{"Cookie": {"jitstream_token=" + e.tokens[alice]}}},
				} {
					for i := range 2 {
						r := do(t, http.MethodGet, proxy.URL+p, "", nil, cred.header)
						if r.StatusCode != http.StatusOK || r.err != nil {
							t.Fatalf("through the proxy with alice's token (%s): %s %v", cred.how, r.Status, r.err)
						}
						if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "private") && !strings.Contains(cc, "no-store") {
							t.Errorf("alice's response (%s): Cache-Control %q, want private", cred.how, cc)
						}
						if xc := r.Header.Get("X-Cache-Status"); xc != "MISS" {
							t.Errorf("alice's request %d (%s): cache status %s, want MISS (never kept)", i+1, cred.how, xc)
						}
						if !strings.HasPrefix(p, "/api/") {
							if d := sameBytes(r.body, direct.body); d != "" {
								t.Errorf("alice's response through the proxy (%s): %s", cred.how, d)
							}
						}
					}
				}
				for _, tc := range []struct {
					who, token string
					want       int
				}{
					{"no token", "", http.StatusUnauthorized},
					{"bob's token", e.tokens[bob], http.StatusNotFound},
				} {
					r := get(t, proxy.URL+p, tc.token)
					if r.StatusCode != tc.want {
						t.Errorf("%s: %s, want %d", tc.who, r.Status, tc.want)
					}
					if r.Header.Get("X-Cache-Status") == "HIT" || strings.Contains(string(r.body), string(direct.body)) {
						t.Errorf("%s: got alice's response (cache status %s)", tc.who, r.Header.Get("X-Cache-Status"))
					}
				}
			})
		}
		// The home page lists the library of the token it is given, under
		// one URL for everyone.
		for _, tc := range []struct{ token, want string }{
			{e.tokens[alice], `{"users":["alice"]}`},
			{"", `{"users":[]}`},
			{e.tokens[bob], `{"users":["bob"]}`},
			{e.tokens[alice], `{"users":["alice"]}`},
		} {
			r := get(t, proxy.URL+"/?format=json", tc.token)
			if got := strings.TrimSpace(string(r.body)); r.StatusCode != http.StatusOK || got != tc.want || r.Header.Get("X-Cache-Status") == "HIT" {
				t.Errorf("home page: %s %s (cache status %s), want %s from the origin", r.Status, got, r.Header.Get("X-Cache-Status"), tc.want)
			}
		}
		for _, k := range proxy.CachedKeys(t) {
			for _, p := range paths {
				if k == p {
					t.Errorf("the proxy keeps %s, asked for with a token", k)
				}
			}
		}
		for _, en := range proxy.Log(t) {
			if !strings.HasPrefix(en.URI, "/s/") && en.CacheStatus == "HIT" {
				t.Errorf("a token request answered from the cache: %+v", en)
			}
		}
	})

	t.Run("links share cache entries as designed", func(t *testing.T) {
		master := "/streams/alice/" + short.ID + "/hls/master.m3u8"
		l1 := e.makeLink(t, alice, short.ID, "24h", proxy.URL)
		l1again := e.makeLink(t, alice, short.ID, "24h", proxy.URL)
		if l1again.Path != l1.Path && l1again.Expires.Equal(l1.Expires) {
			t.Errorf("two links with the same expiry: %s and %s, want the same URL", l1.Path, l1again.Path)
		}
		l2 := e.makeLink(t, alice, short.ID, "48h", proxy.URL)
		if l2.Path == l1.Path {
			t.Fatalf("links of 24h and 48h have the same path %s", l1.Path)
		}

		r1 := get(t, proxy.URL+l1.Path+master, "")
		if r1.StatusCode != http.StatusOK || r1.Header.Get("X-Cache-Status") != "MISS" {
			t.Fatalf("first link's master: %s, cache status %s", r1.Status, r1.Header.Get("X-Cache-Status"))
		}
		checkLinkCacheControl(t, r1, l1)
		if l1again.Path == l1.Path {
			// Links of one asset made in the same hour are one URL: one
			// cache entry for both.
			if r := get(t, proxy.URL+l1again.Path+master, ""); r.StatusCode != http.StatusOK || r.Header.Get("X-Cache-Status") != "HIT" {
				t.Errorf("the same link made again: %s, cache status %s, want a hit", r.Status, r.Header.Get("X-Cache-Status"))
			}
		}
		r2 := get(t, proxy.URL+l2.Path+master, "")
		if r2.StatusCode != http.StatusOK || r2.Header.Get("X-Cache-Status") != "MISS" {
			t.Fatalf("second link's master: %s, cache status %s, want a miss (its own entry)", r2.Status, r2.Header.Get("X-Cache-Status"))
		}
		checkLinkCacheControl(t, r2, l2)
		// The manifest is not rewritten per link: its URLs are relative,
		// so that each link's copy leads to segments below that link.
		if d := sameBytes(r2.body, r1.body); d != "" {
			t.Errorf("the masters of two links differ: %s", d)
		}
		uris := manifestURIs(string(r1.body))
		if len(uris) == 0 {
			t.Fatalf("no URI in the master:\n%s", r1.body)
		}
		for _, u := range uris {
			ref, err := url.Parse(u)
			if err != nil || ref.IsAbs() || strings.HasPrefix(u, "/") {
				t.Errorf("master URI %q is not relative", u)
			}
		}
		// Each link's media playlist and segments, resolved from its own
		// master, stay below that link and are the same bytes.
		for _, l := range []link{l1, l2} {
			base, _ := url.Parse(proxy.URL + l.Path + master)
			pl := base.ResolveReference(mustParse(t, uris[0]))
			if !strings.HasPrefix(pl.Path, l.Path+"/") {
				t.Errorf("%s resolves below %s, not below its link", uris[0], pl.Path)
			}
			r := get(t, pl.String(), "")
			if r.StatusCode != http.StatusOK {
				t.Errorf("media playlist below link: %s", r.Status)
			}
		}
		// A link does not reach another asset, even one whose responses
		// the cache holds under that asset's link.
		la := e.makeLink(t, alice, a.ID, "24h", proxy.URL)
		seg := "/streams/alice/" + a.ID + "/hls/v1/init.mp4"
		if r := get(t, proxy.URL+la.Path+seg, ""); r.StatusCode != http.StatusOK {
			t.Fatalf("init segment through its link: %s", r.Status)
		}
		if r := get(t, proxy.URL+l1.Path+seg, ""); r.StatusCode != http.StatusForbidden {
			t.Errorf("another asset's segment through a link: %s, want 403", r.Status)
		}
	})
}

// basicAuth is the Authorization value of Basic credentials.
func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// checkLinkCacheControl fails the test unless r, a response through link
// l, is public with a max-age that ends by the link's expiry.
func checkLinkCacheControl(t *testing.T, r *response, l link) {
	t.Helper()
	cc := r.Header.Get("Cache-Control")
	m := regexp.MustCompile(`max-age=(\d+)`).FindStringSubmatch(cc)
	if !strings.Contains(cc, "public") || m == nil {
		t.Errorf("link response: Cache-Control %q, want public with a max-age", cc)
		return
	}
	age, _ := strconv.Atoi(m[1])
	if time.Now().Add(time.Duration(age) * time.Second).After(l.Expires.Add(time.Second)) {
		t.Errorf("link response: max-age %d outlives the link (expires %v)", age, l.Expires)
	}
}

// manifestURIs returns the URIs of an HLS playlist: its URI lines and URI
// attributes.
func manifestURIs(m string) []string {
	var out []string
	for _, line := range strings.Split(m, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case !strings.HasPrefix(line, "#"):
			out = append(out, line)
		default:
			for _, sm := range regexp.MustCompile(`URI="([^"]+)"`).FindAllStringSubmatch(line, -1) {
				out = append(out, sm[1])
			}
		}
	}
	return out
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
