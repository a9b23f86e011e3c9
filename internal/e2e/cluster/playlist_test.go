package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	harness "github.com/jitstream/jitstream/internal/testutil/cluster"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/nginx"
)

// TestPlaylistSessionsThroughCache: two viewers of a playlist with ads,
// each playing through nginx (the caching proxy) with requests spread over
// two nodes sharing Redis: their session responses (manifests, ads) are
// never kept by the cache nor given to the other, their ads differ, and
// the program's segments are one shared URL, the second viewer's served
// from the cache.
func TestPlaylistSessionsThroughCache(t *testing.T) {
	t.Parallel()
	e := start(t, harness.Options{})
	proxy := nginx.StartProxy(t, e.Addrs())
	// 2 s ads: released as soon as they were sent (2 s less the 2 s
	// tolerance), so that the test does not wait.
	adDE := e.upload(t, e.Nodes[0], alice, fixtures.Clip(t, 2, "smptebars", 660))
	ad := e.upload(t, e.Nodes[0], alice, fixtures.Clip(t, 2, "rgbtestsrc", 880))
	program := e.upload(t, e.Nodes[0], alice, fixtures.Clip(t, 8, "testsrc2", 440))
	def, _ := json.Marshal(map[string]any{"entries": []any{
		map[string]any{"ad": map[string]any{"position": "pre",
			"pools":   []any{map[string]any{"when": map[string]any{"country": []string{"DE"}}, "ads": []any{map[string]any{"asset": adDE.ID}}}},
			"default": []any{map[string]any{"asset": ad.ID}}}},
		map[string]any{"asset": program.ID},
	}})
	if r := do(t, http.MethodPut, e.Nodes[0].URL()+"/api/v1/users/alice/playlists/show", e.tokens[alice], bytes.NewReader(def), nil); r.StatusCode != http.StatusCreated {
		t.Fatalf("create the playlist: %s %s", r.Status, r.body)
	}
	type played struct{ ad, program []byte }
	var viewers [2]played
	for i, country := range []string{"DE", "US"} {
		node := e.Nodes[i]
		r := do(t, http.MethodPost, node.URL()+"/api/v1/users/alice/playlists/show/sessions", e.tokens[alice],
			strings.NewReader(fmt.Sprintf(`{"country": %q}`, country)), nil)
		if r.StatusCode != http.StatusCreated {
			t.Fatalf("%s: start a session: %s %s", country, r.Status, r.body)
		}
		var s struct{ HLS string }
		if err := json.Unmarshal(r.body, &s); err != nil {
			t.Fatal(err)
		}
		base := strings.TrimSuffix(s.HLS, "master.m3u8")
		private := func(what, path string) *response {
			t.Helper()
			for range 2 {
				r := get(t, proxy.URL+path, "")
				if r.StatusCode != http.StatusOK && r.StatusCode != http.StatusFound {
					t.Fatalf("%s: %s: %s %s", country, what, r.Status, r.body)
				}
				if xc := r.Header.Get("X-Cache-Status"); xc == "HIT" {
					t.Errorf("%s: %s served from the cache", country, what)
				}
				if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "private") && !strings.Contains(cc, "no-store") {
					t.Errorf("%s: %s: Cache-Control %q", country, what, cc)
				}
				if r.StatusCode == http.StatusOK {
					return r
				}
			}
			return nil
		}
		private("master playlist", s.HLS)
		private("media playlist", base+"v/index.m3u8")
		private("the ad's init segment", base+"v/0/init.mp4")
		viewers[i].ad = private("the ad", base+"v/0/0.m4s").body
		// The program: a redirect (per viewer), to a shared URL.
		r = get(t, proxy.URL+base+"v/1/0.m4s", "")
		loc := r.Header.Get("Location")
		if r.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "/c/") {
			t.Fatalf("%s: the program after the ad: %s %s (Location %q)", country, r.Status, r.body, loc)
		}
		c := get(t, proxy.URL+loc, "")
		if c.StatusCode != http.StatusOK {
			t.Fatalf("%s: shared program segment: %s", country, c.Status)
		}
		want := "MISS"
		if i > 0 {
			want = "HIT"
			if string(viewers[0].program) != loc {
				t.Errorf("the program's URL differs between viewers: %s and %s", viewers[0].program, loc)
			}
		}
		if xc := c.Header.Get("X-Cache-Status"); xc != want {
			t.Errorf("%s: shared program segment: cache status %s, want %s", country, xc, want)
		}
		viewers[i].program = []byte(loc)
	}
	if bytes.Equal(viewers[0].ad, viewers[1].ad) {
		t.Error("viewers in Germany and the US got the same ad")
	}
}
