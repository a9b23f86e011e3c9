package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/auth"
	"github.com/jitstream/jitstream/internal/testutil/jitserver"
)

// whoamiAnswer is the JSON of GET /api/v1/whoami.
type whoamiAnswer struct {
	Auth  bool
	User  string
	Users []string
	Token *struct {
		ID      string
		Name    string
		Created time.Time
		Expires time.Time
	}
}

// TestWhoami: GET /api/v1/whoami tells whose token a request presents,
// whatever the way (Bearer, Basic, the cookie that ?token= sets), never
// the token itself; no, a bad or a revoked token is a 401 JSON error, a
// signed link a 403; an open server lists its users.
func TestWhoami(t *testing.T) {
	t.Parallel()
	e := jitserver.New(t, jitserver.WithAuth())
	e.AddUser(t, "bob")
	bob := e.CreateToken(t, "bob", time.Hour)
	base := e.URL + "/api/v1/whoami"

	decode := func(what string, resp *http.Response, b []byte) whoamiAnswer {
		t.Helper()
		var w whoamiAnswer
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &w) != nil {
			t.Fatalf("%s: %d %s", what, resp.StatusCode, b)
		}
		if resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", what, resp.Header.Get("Cache-Control"))
		}
		return w
	}
	for _, tc := range []struct {
		what, user string
		c          cred
	}{
		{"alice's Bearer token", "alice", cred{bearer: e.Token}},
		{"bob's Bearer token", "bob", cred{bearer: bob}},
		{"bob's Basic credentials", "bob", cred{bearer: bob, basicU: "bob"}},
		{"alice's cookie", "alice", cred{cookie: e.Token}},
	} {
		resp, b := send(t, http.MethodGet, base, tc.c, nil, false)
		w := decode(tc.what, resp, b)
		if !w.Auth || w.User != tc.user || w.Token == nil || w.Token.ID == "" || w.Users != nil {
			t.Errorf("%s: %s, want user %s with its token's id", tc.what, b, tc.user)
		}
		if strings.Contains(string(b), "jst_") || strings.Contains(string(b), "hash") {
			t.Errorf("%s: the answer shows the token or its hash: %s", tc.what, b)
		}
	}
	resp, b := send(t, http.MethodGet, base, cred{bearer: bob}, nil, false)
	if w := decode("bob", resp, b); w.Token.Expires.IsZero() || w.Token.Name != "test" {
		t.Errorf("bob's token: %s, want its name and expiry", b)
	}

	// ?token= (how the web app signs in): the cookie, then the answer.
	resp, b = send(t, http.MethodGet, base+"?token="+e.Token, cred{}, nil, false)
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == auth.CookieName {
			cookie = c
		}
	}
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/api/v1/whoami" || cookie == nil || !cookie.HttpOnly {
		t.Fatalf("whoami?token=: %d Location %q cookie %v %s", resp.StatusCode, resp.Header.Get("Location"), cookie, b)
	}
	resp, b = send(t, http.MethodGet, e.URL+resp.Header.Get("Location"), cred{cookie: cookie.Value}, nil, false)
	if w := decode("after ?token=", resp, b); w.User != "alice" {
		t.Errorf("after ?token=: %s", b)
	}

	revoked := e.CreateToken(t, "bob", 0)
	rid := strings.Split(revoked, "_")[2]
	if err := e.Auth.RevokeToken(t.Context(), "bob", rid); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what, path string
		c          cred
		status     int
	}{
		{"no token", "/api/v1/whoami", cred{}, http.StatusUnauthorized},
		{"a malformed token", "/api/v1/whoami", cred{bearer: "nonsense"}, http.StatusUnauthorized},
		{"an unknown token", "/api/v1/whoami", cred{bearer: e.Token[:len(e.Token)-4] + "aaaa"}, http.StatusUnauthorized},
		{"a revoked token", "/api/v1/whoami", cred{bearer: revoked}, http.StatusUnauthorized},
		{"a bad ?token=", "/api/v1/whoami?token=nonsense", cred{}, http.StatusUnauthorized},
		{"Basic with another user", "/api/v1/whoami", cred{bearer: bob, basicU: "alice"}, http.StatusUnauthorized},
		{"a signed link", strings.TrimPrefix(e.Link(t, "alice", "X", time.Hour), e.URL) + "/api/v1/whoami", cred{}, http.StatusForbidden},
	} {
		resp, b := send(t, http.MethodGet, e.URL+tc.path, tc.c, nil, false)
		wantJSON(t, tc.what, resp, b, tc.status)
	}

	t.Run("open server", func(t *testing.T) {
		t.Parallel()
		o := jitserver.New(t)
		o.AddUser(t, "bob")
		resp, b := send(t, http.MethodGet, o.URL+"/api/v1/whoami", cred{}, nil, false)
		if w := decode("open server", resp, b); w.Auth || w.User != "" || strings.Join(w.Users, ",") != "alice,bob" {
			t.Errorf("open server: %s, want no auth and the users alice, bob", b)
		}
	})
}

// TestSignout: POST /api/v1/signout expires the token cookie (which
// scripts cannot touch: it is HttpOnly), needs no token, and refuses a
// browser's cross-site request.
func TestSignout(t *testing.T) {
	t.Parallel()
	e := jitserver.New(t, jitserver.WithAuth())
	u := e.URL + "/api/v1/signout"
	for _, tc := range []struct {
		what string
		c    cred
		hdr  []string
	}{
		{"with the cookie", cred{cookie: e.Token}, []string{"Sec-Fetch-Site", "same-origin"}},
		{"without credentials", cred{}, nil},
	} {
		resp, b := send(t, http.MethodPost, u, tc.c, nil, false, tc.hdr...)
		var cookie *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == auth.CookieName {
				cookie = c
			}
		}
		if resp.StatusCode != http.StatusNoContent || cookie == nil || cookie.MaxAge >= 0 || cookie.Value != "" || cookie.Path != "/" || !cookie.HttpOnly {
			t.Errorf("signout %s: %d cookie %+v %s, want 204 and an expired cookie", tc.what, resp.StatusCode, cookie, b)
		}
	}
	resp, b := send(t, http.MethodPost, u, cred{cookie: e.Token}, nil, false, "Sec-Fetch-Site", "cross-site")
	wantJSON(t, "a cross-site signout", resp, b, http.StatusForbidden)
	if len(resp.Cookies()) != 0 {
		t.Errorf("a cross-site signout set cookies: %v", resp.Cookies())
	}
	resp, b = send(t, http.MethodGet, u, cred{cookie: e.Token}, nil, false)
	if resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET signout: %d %s", resp.StatusCode, b)
	}
}
