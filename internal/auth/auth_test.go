package auth

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/testutil/teststore"
)

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock(t time.Time) *clock    { return &clock{t: t} }

// must is v, for test setup that cannot fail (it panics if it does).
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func newAuth(t *testing.T, c *clock) (*Auth, store.Store) {
	t.Helper()
	st := teststore.New(t).Store
	return must(New(context.Background(), st, Options{Now: c.now})), st
}

func TestTokenLifecycle(t *testing.T) {
	ctx := context.Background()
	c := newClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	a, st := newAuth(t, c)
	token, rec, err := a.CreateToken(ctx, "alice_b-1", "laptop", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, "jst_alice_b-1_"+rec.ID+"_") {
		t.Errorf("token %q does not name its user and id %s", token, rec.ID)
	}
	// Stored hashed: the secret is nowhere in the store.
	_, secret, _ := strings.Cut(token[len("jst_alice_b-1_"):], "_")
	rc := must(st.Get(ctx, "users/alice_b-1/tokens/"+rec.ID+".json", 0, -1))
	var stored bytes.Buffer
	_, _ = stored.ReadFrom(rc)
	rc.Close()
	if strings.Contains(stored.String(), secret) || strings.Contains(stored.String(), token) {
		t.Errorf("the token's secret is stored in clear: %s", stored.String())
	}
	got, err := a.Verify(ctx, token)
	if err != nil || got.User != "alice_b-1" || got.ID != rec.ID {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
	// A wrong secret of the right length, a malformed token, another id.
	bad := []string{
		token[:len(token)-1] + map[bool]string{true: "b", false: "a"}[strings.HasSuffix(token, "a")],
		"jst_alice_b-1_" + rec.ID,
		"jst_bob_" + rec.ID + "_" + secret,
		"nope", "",
	}
	for _, b := range bad {
		if _, err := a.Verify(ctx, b); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("Verify(%q) = %v, want ErrInvalidToken", b, err)
		}
	}
	ts := must(a.Tokens(ctx, "alice_b-1"))
	if len(ts) != 1 || ts[0].Name != "laptop" || !ts[0].Expires.Equal(c.now().Truncate(time.Second).Add(time.Hour)) {
		t.Errorf("Tokens = %+v", ts)
	}
	c.add(time.Hour)
	if _, err := a.Verify(ctx, token); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("expired token: %v", err)
	}
	// Revocation, seen at once by this Auth and within the TTL by another.
	token2, rec2 := must2(a.CreateToken(ctx, "alice_b-1", "", 0))
	other := must(New(ctx, st, Options{Now: c.now}))
	if _, err := other.Verify(ctx, token2); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeToken(ctx, "alice_b-1", rec2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(ctx, token2); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("revoked token accepted: %v", err)
	}
	c.add(DefaultCacheTTL)
	if _, err := other.Verify(ctx, token2); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("revoked token accepted by another process after the TTL: %v", err)
	}
	if err := a.RevokeToken(ctx, "alice_b-1", rec2.ID); !errors.Is(err, ErrUnknownToken) {
		t.Errorf("revoking twice: %v", err)
	}
}

// must2 is must for two values.
func must2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		panic(err)
	}
	return a, b
}

func TestSecretIsKept(t *testing.T) {
	ctx := context.Background()
	c := newClock(time.Now())
	a, st := newAuth(t, c)
	b := must(New(ctx, st, Options{Now: c.now}))
	l := must(a.SignLink(Scope{User: "alice", Asset: "GX010042"}, time.Hour))
	pl, rest, ok, err := ParseLinkPath(l.URL("/files/alice/GX010042.mp4"))
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, err := b.CheckLink(pl, Target{User: "alice", Asset: "GX010042", Path: rest}); err != nil {
		t.Errorf("a link signed before a restart is refused after: %v", err)
	}
}

func TestLinks(t *testing.T) {
	c := newClock(time.Date(2030, 1, 2, 10, 20, 0, 0, time.UTC))
	a, _ := newAuth(t, c)
	asset := must(a.SignLink(Scope{User: "alice", Asset: "GX010042"}, 24*time.Hour))
	if want := time.Date(2030, 1, 3, 11, 0, 0, 0, time.UTC); !asset.Expires.Equal(want) {
		t.Errorf("expiry %v, want %v (rounded up to the hour)", asset.Expires, want)
	}
	c.add(30 * time.Minute)
	if again := must(a.SignLink(Scope{User: "alice", Asset: "GX010042"}, 24*time.Hour)); again.Elem != asset.Elem {
		t.Errorf("links made in the same hour differ: %s, %s", asset.Elem, again.Elem)
	}
	prefix := must(a.SignLink(Scope{User: "alice", Prefix: "files/alice/GX010042/"}, time.Hour))
	if prefix.Prefix != "/files/alice/GX010042" {
		t.Errorf("prefix %q", prefix.Prefix)
	}
	check := func(l *Link, path, user, assetID string) error {
		pl, rest, ok, err := ParseLinkPath(l.Path() + path)
		if !ok {
			t.Fatalf("%s: not a link path", path)
		}
		if err != nil {
			return err
		}
		_, err = a.CheckLink(pl, Target{User: user, Asset: assetID, Path: rest})
		return err
	}
	for _, tc := range []struct {
		name        string
		l           *Link
		path        string
		user, asset string
		want        error
	}{
		{"asset master", asset, "/streams/alice/GX010042/hls/master.m3u8", "alice", "GX010042", nil},
		{"asset clip", asset, "/streams/alice/GX010042,1-2/hls/master.m3u8", "alice", "GX010042", nil},
		{"asset file", asset, "/files/alice/GX010042.mp4", "alice", "GX010042", nil},
		{"other asset", asset, "/files/alice/GX010043.mp4", "alice", "GX010043", ErrLinkInvalid},
		{"other user", asset, "/files/bob/GX010042.mp4", "bob", "GX010042", ErrLinkInvalid},
		{"no asset", asset, "/files/alice/", "alice", "", ErrLinkInvalid},
		{"dot dot", asset, "/files/alice/GX010042/../x.mp4", "alice", "GX010042", ErrLinkInvalid},
		{"encoded dot dot", asset, "/files/alice/GX010042/%2e%2e/x.mp4", "alice", "GX010042", ErrLinkInvalid},
		{"encoded slash", asset, "/files/alice/GX010042%2F..%2Fx.mp4", "alice", "GX010042", ErrLinkInvalid},
		{"double slash", asset, "/files/alice//GX010042.mp4", "alice", "GX010042", ErrLinkInvalid},
		{"api", asset, "/api/v1/users/alice/assets", "alice", "", ErrLinkInvalid},
		{"prefix original", prefix, "/files/alice/GX010042/GX020042.MP4", "alice", "GX010042", nil},
		{"prefix listing", prefix, "/files/alice/GX010042/", "alice", "GX010042", nil},
		{"prefix other file", prefix, "/files/alice/GX010042.mp4", "alice", "GX010042", ErrLinkInvalid},
		{"prefix other user", prefix, "/files/bob/GX010042/x", "bob", "GX010042", ErrLinkInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := check(tc.l, tc.path, tc.user, tc.asset); !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	// Tampering with any part of the element.
	for _, elem := range []string{
		strings.Replace(asset.Elem, ".", "0.", 1),                                             // later expiry
		asset.Elem[:len(asset.Elem)-2] + "AA",                                                 // signature
		strings.Replace(prefix.Elem, ".3.", ".2.", 1),                                         // shorter prefix
		strings.SplitN(asset.Elem, ".", 2)[0] + ".3." + strings.SplitN(asset.Elem, ".", 2)[1], // asset as prefix
	} {
		pl, rest, _, err := ParseLinkPath(LinkPrefix + elem + "/files/alice/GX010042/x.MP4")
		if err == nil {
			_, err = a.CheckLink(pl, Target{User: "alice", Asset: "GX010042", Path: rest})
		}
		if !errors.Is(err, ErrLinkInvalid) {
			t.Errorf("tampered %s: %v", elem, err)
		}
	}
	c.add(25 * time.Hour)
	if err := check(asset, "/files/alice/GX010042.mp4", "alice", "GX010042"); !errors.Is(err, ErrLinkExpired) {
		t.Errorf("expired link: %v", err)
	}
	for _, sc := range []Scope{{User: "alice"}, {User: "alice", Asset: "a", Prefix: "/files/alice"},
		{User: "alice", Prefix: "/files/bob/"}, {User: "alice", Prefix: "/api/alice"}, {User: "alice", Prefix: "/files/alice/../bob"},
		{User: "alice", Asset: "../x"}} {
		if _, err := a.SignLink(sc, time.Hour); err == nil {
			t.Errorf("SignLink(%+v) succeeded", sc)
		}
	}
}

func TestCovers(t *testing.T) {
	l := &Link{Scope: Scope{User: "alice", Asset: "A"}, Elem: "1.x"}
	for path, want := range map[string]bool{
		"/files/alice/A.mp4?start=1": true, "/files/alice/A.frag.mp4": true, "/files/alice/A/X.MP4": true,
		"/files/alice/A.480p.mp4": true, "/files/alice/A_480p.mp4": false, "/streams/alice/A/thumbs/1.jpg": true,
		"/watch/alice/A": true, "/play/alice/A": true, "/streams/alice/A,1-2/hls/master.m3u8": true,
		"/files/alice/": false, "/files/alice/AB.mp4": false, "/files/bob/A.mp4": false, "/api/v1/users/alice/assets/A": false,
	} {
		if got := l.Covers(path); got != want {
			t.Errorf("Covers(%s) = %v", path, got)
		}
	}
	ctx := WithLink(context.Background(), l)
	if got := LinkURL(ctx, "/files/alice/A.mp4"); got != "/s/1.x/files/alice/A.mp4" {
		t.Errorf("LinkURL = %s", got)
	}
	if got := LinkURL(ctx, "/files/alice/"); got != "/files/alice/" {
		t.Errorf("LinkURL of what the link does not grant = %s", got)
	}
}

func TestCredentials(t *testing.T) {
	c := newClock(time.Now())
	a, _ := newAuth(t, c)
	ctx := context.Background()
	token, _ := must2(a.CreateToken(ctx, "alice", "", 0))
	req := func(method string, set func(r *http.Request)) error {
		r := httptest.NewRequest(method, "/files/alice/", nil)
		set(r)
		_, err := a.Authenticate(r)
		return err
	}
	cases := []struct {
		name   string
		method string
		set    func(r *http.Request)
		want   error
	}{
		{"bearer", "GET", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }, nil},
		{"basic", "PROPFIND", func(r *http.Request) { r.SetBasicAuth("alice", token) }, nil},
		{"basic of another user", "GET", func(r *http.Request) { r.SetBasicAuth("bob", token) }, ErrInvalidToken},
		{"cookie", "GET", func(r *http.Request) { r.Header.Set("Cookie", CookieName+"="+token) }, nil},
		{"cookie on POST", "POST", func(r *http.Request) { r.Header.Set("Cookie", CookieName+"="+token) }, ErrNoCredentials},
		{"other scheme", "GET", func(r *http.Request) { r.Header.Set("Authorization", "Digest x") }, ErrInvalidToken},
		{"none", "GET", func(r *http.Request) {}, ErrNoCredentials},
	}
	for _, tc := range cases {
		if err := req(tc.method, tc.set); !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestRedact(t *testing.T) {
	secrets := []string{"jst_alice_0123456789ab_abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst",
		"1893456000.Zm9vYmFyYmF6cXV4cXV1eA", "dXNlcjpwYXNzd29yZA=="}
	in := "GET /s/" + secrets[1] + "/files/alice/A.mp4?token=" + secrets[0] + "&x=1 Authorization: Basic " + secrets[2]
	out := Redact(in)
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("Redact left %q in %q", s, out)
		}
	}
	if !strings.Contains(out, "/files/alice/A.mp4?token=") || !strings.Contains(out, "&x=1") {
		t.Errorf("Redact removed too much: %q", out)
	}
	var buf bytes.Buffer
	log := slog.New(NewRedactingHandler(slog.NewTextHandler(&buf, nil))).With("token", secrets[0])
	log.Info("request "+in, "path", "/s/"+secrets[1]+"/x", "err", errors.New("bad "+secrets[0]),
		slog.Group("g", "authorization", "Bearer "+secrets[0]), "list", []string{secrets[0]})
	for _, s := range secrets {
		if strings.Contains(buf.String(), s) {
			t.Errorf("the log holds %q: %s", s, buf.String())
		}
	}
	if plain := "path=/files/alice/basic_setup.mp4 took=1ms"; Redact(plain) != plain {
		t.Errorf("Redact changed %q to %q", plain, Redact(plain))
	}
}
