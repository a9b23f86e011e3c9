package nginx_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/jitstream/jitstream/internal/testutil/nginx"
)

// origin answers /cc/{name} with the Cache-Control of the case named
// name, and a body naming the origin and the request's Authorization.
func origin(t *testing.T, name string) *httptest.Server {
	t.Helper()
	ccs := map[string]string{
		"public":  "public, max-age=300",
		"private": "private, max-age=300",
		"nostore": "no-store",
		"none":    "",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cc, ok := ccs[strings.TrimPrefix(r.URL.Path, "/cc/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		fmt.Fprintf(w, "%s %s auth=%q", name, r.URL.RequestURI(), r.Header.Get("Authorization"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestProxy: the proxy keeps what the origin's Cache-Control allows and
// nothing else, keys the cache by URI alone (an Authorization header does
// not take part, which is why origins must mark per-viewer responses
// private), spreads misses over its upstreams, and logs every request with
// its cache status.
func TestProxy(t *testing.T) {
	t.Parallel()
	a, b := origin(t, "a"), origin(t, "b")
	p := nginx.StartProxy(t, []string{strings.TrimPrefix(a.URL, "http://"), strings.TrimPrefix(b.URL, "http://")})

	for _, tc := range []struct {
		path       string
		wantSecond string // cache status of the second request
	}{
		{"/cc/public", "HIT"},
		{"/cc/private", "MISS"},
		{"/cc/nostore", "MISS"},
		{"/cc/none", "MISS"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, first := get(t, p.URL+tc.path, http.Header{"Authorization": {"Bearer secret"}})
			if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Cache-Status") != "MISS" {
				t.Fatalf("first: status %d, X-Cache-Status %q", resp.StatusCode, resp.Header.Get("X-Cache-Status"))
			}
			resp, second := get(t, p.URL+tc.path, nil)
			if got := resp.Header.Get("X-Cache-Status"); got != tc.wantSecond {
				t.Errorf("second: X-Cache-Status %q, want %s", got, tc.wantSecond)
			}
			if hit := tc.wantSecond == "HIT"; hit != (string(first) == string(second)) || hit != strings.Contains(string(second), "Bearer") {
				t.Errorf("first %q, second %q: want the first's body again only for a hit", first, second)
			}
		})
	}

	entries := p.Log(t)
	if len(entries) != 8 {
		t.Fatalf("%d log entries, want 8: %+v", len(entries), entries)
	}
	upstreams := map[string]bool{}
	for i, e := range entries {
		if e.Status != http.StatusOK || e.Method != "GET" || !strings.HasPrefix(e.URI, "/cc/") {
			t.Errorf("entry %d: %+v", i, e)
		}
		if e.CacheStatus == "MISS" {
			upstreams[e.Upstream] = true
		}
	}
	if len(upstreams) != 2 {
		t.Errorf("misses went to %v, want both upstreams", upstreams)
	}
	if got := nginx.HitRatio(entries); got != 1.0/8 {
		t.Errorf("hit ratio %v, want 1/8", got)
	}
	if keys := p.CachedKeys(t); !slices.Equal(keys, []string{"/cc/public"}) {
		t.Errorf("cached keys %q, want only /cc/public", keys)
	}
	if n := len(p.Log(t)); n != 8 {
		t.Errorf("second Log: %d entries, want the same 8 (marks left out)", n)
	}
}
