package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/jitstream/jitstream/internal/testutil/httpt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/auth"
	"github.com/jitstream/jitstream/internal/delivery"
	"github.com/jitstream/jitstream/internal/outputs"
	"github.com/jitstream/jitstream/internal/server"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/jitserver"
	"github.com/jitstream/jitstream/internal/testutil/probe"
	"github.com/jitstream/jitstream/internal/tusupload"
)

// cred is how a test request authenticates.
type cred struct {
	bearer string // Authorization: Bearer
	basicU string // Basic user (with bearer as the password)
	cookie string // the token cookie
}

// send makes a request and returns the answer with its body; it follows
// redirects (keeping the credentials, same host) only when follow is set.
func send(t *testing.T, method, u string, c cred, body io.Reader, follow bool, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case c.basicU != "":
		req.SetBasicAuth(c.basicU, c.bearer)
	case c.bearer != "":
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	if c.cookie != "" {
		req.AddCookie(&http.Cookie{Name: auth.CookieName, Value: c.cookie})
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	var resp *http.Response
	if follow {
		resp, err = http.DefaultClient.Do(req)
	} else {
		resp, err = http.DefaultTransport.RoundTrip(req)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// ingestAs uploads file as a raw body named name to user's assets and
// returns the new asset's id.
func ingestAs(t *testing.T, base, token, user, name, file string) string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	resp, b := send(t, http.MethodPost, base+"/api/v1/users/"+user+"/assets?name="+url.QueryEscape(name), cred{bearer: token}, f, false,
		"Content-Type", "video/mp4")
	var a struct{ ID string }
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &a) != nil {
		t.Fatalf("upload %s for %s: %d %s", name, user, resp.StatusCode, b)
	}
	return a.ID
}

// wantJSON checks a status and that the body is a JSON error.
func wantJSON(t *testing.T, what string, resp *http.Response, body []byte, status int) {
	t.Helper()
	var e struct{ Error, Detail string }
	if resp.StatusCode != status {
		t.Errorf("%s: %d %s, want %d", what, resp.StatusCode, body, status)
		return
	}
	if resp.Request.Method == http.MethodHead {
		return
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || json.Unmarshal(body, &e) != nil || e.Error == "" {
		t.Errorf("%s: %d body %q is not a JSON error", what, resp.StatusCode, body)
	}
}

// TestAccessControl runs every attack of the README's table against a
// server with access control, users alice and bob each with assets (one
// id, SHARED, in both libraries), and checks the answer: 401 without a
// valid token, 404 (one body for all) on another user's paths, 403 for
// links that do not grant the request; that links and tokens work for
// what they grant (ffmpeg plays a signed HLS link, the signed consolidated
// file is the unsigned one); and that no token nor signature is logged.
func TestAccessControl(t *testing.T) {
	ctx := context.Background()
	var logs httpt.SyncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := jitserver.New(t, jitserver.WithAuth())
	e.AddUser(t, "bob")
	up, err := tusupload.New(outputs.New(e.Library, 0), tusupload.Options{Dir: tusupload.DefaultDir(e.Dir)})
	if err != nil {
		t.Fatal(err)
	}
	dc := delivery.DefaultConfig()
	dc.MaxEgress = 100e9 // every file a budgeted, hence logged, session
	dl, err := delivery.New(dc)
	if err != nil {
		t.Fatal(err)
	}
	base := e.Serve(t, server.Options{Auth: e.Auth, Uploads: up, Logger: logger, Delivery: dl})

	alice, bob := e.Token, e.CreateToken(t, "bob", 0)
	revoked := e.CreateToken(t, jitserver.User, 0)
	revokedID := strings.Split(revoked, "_")[2]
	if err := e.Auth.RevokeToken(ctx, jitserver.User, revokedID); err != nil {
		t.Fatal(err)
	}
	expired := e.CreateToken(t, jitserver.User, time.Nanosecond)
	wrongSecret := alice[:len(alice)-4] + "aaaa"
	if wrongSecret == alice {
		wrongSecret = alice[:len(alice)-4] + "bbbb"
	}

	aliceID := ingestAs(t, base, alice, "alice", "GX010042.MP4", fixtures.H264AAC(t))
	shared := ingestAs(t, base, alice, "alice", "SHARED.mp4", fixtures.H264AAC(t))
	if bobShared := ingestAs(t, base, bob, "bob", "SHARED.mp4", fixtures.H265AAC(t)); bobShared != shared {
		t.Fatalf("bob's SHARED is %s, alice's %s", bobShared, shared)
	}
	bobID := ingestAs(t, base, bob, "bob", "BOBONLY.mp4", fixtures.H264AAC(t))
	// An upload of bob's, under way.
	resp, b := send(t, http.MethodPost, base+"/api/v1/users/bob/uploads/", cred{bearer: bob}, nil, false,
		"Tus-Resumable", "1.0.0", "Upload-Length", "1000")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("bob's tus upload: %d %s", resp.StatusCode, b)
	}
	bobUpload := resp.Header.Get("Location")
	bobUploadID := bobUpload[strings.LastIndexByte(bobUpload, '/')+1:]

	link, err := e.Auth.SignLink(auth.Scope{User: "alice", Asset: aliceID}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	L := link.Path()
	past, err := auth.New(ctx, e.Store, auth.Options{Now: func() time.Time { return time.Now().Add(-72 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	old, err := past.SignLink(auth.Scope{User: "alice", Asset: aliceID}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tamperedSig := L[:len(L)-2] + map[bool]string{true: "AB", false: "AA"}[strings.HasSuffix(L, "AA")]
	exp, _, _ := strings.Cut(link.Elem, ".")
	tamperedExp := strings.Replace(L, exp+".", exp[:len(exp)-1]+"9.", 1)
	if exp[len(exp)-1] == '9' {
		tamperedExp = strings.Replace(L, exp+".", exp[:len(exp)-1]+"8.", 1)
	}

	// References: what a valid token of another user gets anywhere.
	_, notFound := send(t, http.MethodGet, base+"/files/bob/NOPE.mp4", cred{bearer: alice}, nil, false)
	_, invalidLink := send(t, http.MethodGet, base+tamperedSig+"/files/alice/"+aliceID+".mp4", cred{}, nil, false)

	type tc struct {
		name   string
		method string
		path   string
		c      cred
		status int
		same   []byte // the body must be this one
		follow bool
		hdr    []string
	}
	a, bb := cred{bearer: alice}, cred{bearer: bob}
	cases := []tc{
		// Who is asking.
		{name: "no token: files", method: "GET", path: "/files/alice/", status: 401},
		{name: "no token: consolidated", method: "GET", path: "/files/alice/" + aliceID + ".mp4", status: 401},
		{name: "no token: stream", method: "GET", path: "/streams/alice/" + aliceID + "/hls/master.m3u8", status: 401},
		{name: "no token: watch", method: "GET", path: "/watch/alice/" + aliceID, status: 401},
		{name: "no token: play", method: "GET", path: "/play/alice/" + aliceID, status: 401},
		{name: "no token: API", method: "GET", path: "/api/v1/users/alice/assets", status: 401},
		{name: "no token: upload", method: "POST", path: "/api/v1/users/alice/assets?name=x.mp4", status: 401},
		{name: "no token: tus", method: "POST", path: "/api/v1/users/alice/uploads/", status: 401, hdr: []string{"Tus-Resumable", "1.0.0", "Upload-Length", "10"}},
		{name: "no token: WebDAV", method: "PROPFIND", path: "/dav/alice/", status: 401},
		{name: "wrong token", method: "GET", path: "/files/alice/", c: cred{bearer: "jst_alice_0123456789ab_" + strings.Repeat("a", 52)}, status: 401},
		{name: "malformed token", method: "GET", path: "/files/alice/", c: cred{bearer: "hello"}, status: 401},
		{name: "wrong secret", method: "GET", path: "/files/alice/", c: cred{bearer: wrongSecret}, status: 401},
		{name: "revoked token", method: "GET", path: "/files/alice/", c: cred{bearer: revoked}, status: 401},
		{name: "expired token", method: "GET", path: "/files/alice/", c: cred{bearer: expired}, status: 401},
		{name: "Basic with another user's name", method: "PROPFIND", path: "/dav/alice/", c: cred{basicU: "bob", bearer: alice}, status: 401},
		{name: "bad token cookie", method: "GET", path: "/files/alice/", c: cred{cookie: revoked}, status: 401},
		{name: "cookie on a POST", method: "POST", path: "/api/v1/users/alice/assets?name=x.mp4", c: cred{cookie: alice}, status: 401},
		{name: "bad ?token=", method: "GET", path: "/files/alice/?token=" + revoked, status: 401},

		// The owner.
		{name: "own library", method: "GET", path: "/files/alice/", c: a, status: 200},
		{name: "own library, Basic", method: "PROPFIND", path: "/dav/alice/", c: cred{basicU: "alice", bearer: alice}, status: 207, hdr: []string{"Depth", "1"}},
		{name: "own library, cookie", method: "GET", path: "/files/alice/", c: cred{cookie: alice}, status: 200},
		{name: "own unknown asset", method: "GET", path: "/files/alice/NOPE.mp4", c: a, status: 404},
		{name: "bob's asset id in alice's library", method: "GET", path: "/files/alice/" + bobID + ".mp4", c: a, status: 404},

		// Another user's paths: one 404 body for all, existing or not.
		{name: "bob's library", method: "GET", path: "/files/bob/", c: a, status: 404, same: notFound},
		{name: "bob's file", method: "GET", path: "/files/bob/" + bobID + ".mp4", c: a, status: 404, same: notFound},
		{name: "bob's HEAD", method: "HEAD", path: "/files/bob/" + bobID + ".mp4", c: a, status: 404},
		{name: "bob's original", method: "GET", path: "/files/bob/" + bobID + "/BOBONLY.mp4", c: a, status: 404, same: notFound},
		{name: "bob's shared id", method: "GET", path: "/files/bob/" + shared + ".mp4", c: a, status: 404, same: notFound},
		{name: "nobody's library", method: "GET", path: "/files/nobody/", c: a, status: 404, same: notFound},
		{name: "bob's stream", method: "GET", path: "/streams/bob/" + bobID + "/hls/master.m3u8", c: a, status: 404, same: notFound},
		{name: "bob's clip", method: "GET", path: "/streams/bob/" + bobID + ",1-2/hls/master.m3u8", c: a, status: 404, same: notFound},
		{name: "bob's smooth", method: "GET", path: "/streams/bob/" + bobID + "/smooth/QualityLevels(1)/Fragments(video=0)", c: a, status: 404, same: notFound},
		{name: "bob's watch", method: "GET", path: "/watch/bob/" + bobID, c: a, status: 404, same: notFound},
		{name: "bob's play", method: "GET", path: "/play/bob/" + bobID, c: a, status: 404, same: notFound},
		{name: "bob's API list", method: "GET", path: "/api/v1/users/bob/assets", c: a, status: 404, same: notFound},
		{name: "bob's API asset", method: "GET", path: "/api/v1/users/bob/assets/" + bobID, c: a, status: 404, same: notFound},
		{name: "bob's API delete", method: "DELETE", path: "/api/v1/users/bob/assets/" + bobID, c: a, status: 404, same: notFound},
		{name: "upload to bob", method: "POST", path: "/api/v1/users/bob/assets?name=x.mp4", c: a, status: 404, same: notFound},
		{name: "link for bob's asset", method: "POST", path: "/api/v1/users/bob/assets/" + bobID + "/links", c: a, status: 404, same: notFound},
		{name: "bob's WebDAV", method: "PROPFIND", path: "/dav/bob/", c: cred{basicU: "alice", bearer: alice}, status: 404, same: notFound},
		{name: "bob's WebDAV file", method: "GET", path: "/dav/bob/" + bobID + ".mp4", c: a, status: 404, same: notFound},
		{name: "WebDAV PUT to bob", method: "PUT", path: "/dav/bob/x.mp4", c: a, status: 404, same: notFound},
		{name: "tus create for bob", method: "POST", path: "/api/v1/users/bob/uploads/", c: a, status: 404, same: notFound, hdr: []string{"Tus-Resumable", "1.0.0", "Upload-Length", "10"}},
		{name: "bob's tus upload", method: "HEAD", path: "/api/v1/users/bob/uploads/" + bobUploadID, c: a, status: 404, hdr: []string{"Tus-Resumable", "1.0.0"}},
		{name: "bob's tus PATCH", method: "PATCH", path: "/api/v1/users/bob/uploads/" + bobUploadID, c: a, status: 404, same: notFound,
			hdr: []string{"Tus-Resumable", "1.0.0", "Upload-Offset", "0", "Content-Type", "application/offset+octet-stream"}},
		{name: "bob's tus DELETE", method: "DELETE", path: "/api/v1/users/bob/uploads/" + bobUploadID, c: a, status: 404, same: notFound, hdr: []string{"Tus-Resumable", "1.0.0"}},
		{name: "bob's tus result", method: "GET", path: "/api/v1/users/bob/uploads/" + bobUploadID + "/result", c: a, status: 404, same: notFound},
		{name: "bob's upload id under alice", method: "HEAD", path: "/api/v1/users/alice/uploads/" + bobUploadID, c: a, status: 404, hdr: []string{"Tus-Resumable", "1.0.0"}},
		{name: "bob's token on alice", method: "GET", path: "/files/alice/" + aliceID + ".mp4", c: bb, status: 404, same: notFound},

		// Paths that try to climb out of alice's library.
		{name: "dot dot", method: "GET", path: "/files/alice/../bob/" + bobID + ".mp4", c: a, status: 404, same: notFound, follow: true},
		// (Encoded dots are not cleaned by the router: they stay in alice's
		// library, where ".." names no asset.)
		{name: "encoded dot dot", method: "GET", path: "/files/alice/%2e%2e/bob/" + bobID + ".mp4", c: a, status: 404, follow: true},
		{name: "encoded slash in user", method: "GET", path: "/files/alice%2F..%2Fbob/" + bobID + ".mp4", c: a, status: 404, same: notFound},
		{name: "encoded slash in name", method: "GET", path: "/files/alice/..%2Fbob%2F" + bobID + ".mp4", c: a, status: 404},
		{name: "encoded slash in stream", method: "GET", path: "/streams/alice/..%2F..%2Fbob%2F" + bobID + "/hls/master.m3u8", c: a, status: 404},
		{name: "double slash", method: "GET", path: "//files/bob/" + bobID + ".mp4", c: a, status: 404, same: notFound, follow: true},
		{name: "double slash inside", method: "GET", path: "/files/alice//../bob/" + bobID + ".mp4", c: a, status: 404, same: notFound, follow: true},
		{name: "WebDAV dot dot", method: "PROPFIND", path: "/dav/alice/../bob/", c: a, status: 404, same: notFound, follow: true},
		{name: "WebDAV encoded dot dot", method: "PROPFIND", path: "/dav/alice/%2e%2e/bob/", c: a, status: 404},
		{name: "WebDAV encoded slash", method: "GET", path: "/dav/alice/..%2Fbob%2F" + bobID + ".mp4", c: a, status: 404},
		{name: "tus encoded slash", method: "HEAD", path: "/api/v1/users/alice%2F..%2Fbob/uploads/" + bobUploadID, c: a, status: 404, hdr: []string{"Tus-Resumable", "1.0.0"}},

		// Links.
		{name: "link: master", method: "GET", path: L + "/streams/alice/" + aliceID + "/hls/master.m3u8", status: 200},
		{name: "link: TS master", method: "GET", path: L + "/streams/alice/" + aliceID + "/hls/ts/master.m3u8", status: 200},
		{name: "link: DASH", method: "GET", path: L + "/streams/alice/" + aliceID + "/dash/manifest.mpd", status: 200},
		{name: "link: Smooth", method: "GET", path: L + "/streams/alice/" + aliceID + "/smooth/Manifest", status: 200},
		{name: "link: clip stream", method: "GET", path: L + "/streams/alice/" + aliceID + ",1-3/hls/master.m3u8", status: 200},
		{name: "link: fMP4", method: "GET", path: L + "/files/alice/" + aliceID + ".frag.mp4", status: 200},
		{name: "link: clip file", method: "GET", path: L + "/files/alice/" + aliceID + ".mp4?start=1&end=2", status: 200},
		{name: "link: original", method: "GET", path: L + "/files/alice/" + aliceID + "/GX010042.MP4", status: 200},
		{name: "link: watch", method: "GET", path: L + "/watch/alice/" + aliceID, status: 200},
		{name: "link: play", method: "GET", path: L + "/play/alice/" + aliceID + "?format=dash", status: 302},
		{name: "link: HEAD", method: "HEAD", path: L + "/files/alice/" + aliceID + ".mp4", status: 200},
		{name: "link: another asset", method: "GET", path: L + "/files/alice/" + shared + ".mp4", status: 403, same: invalidLink},
		{name: "link: a missing asset", method: "GET", path: L + "/files/alice/NOPE.mp4", status: 403, same: invalidLink},
		{name: "link: bob's asset", method: "GET", path: L + "/files/bob/" + bobID + ".mp4", status: 403, same: invalidLink},
		{name: "link: bob's same id", method: "GET", path: L + "/streams/bob/" + aliceID + "/hls/master.m3u8", status: 403, same: invalidLink},
		{name: "link: library", method: "GET", path: L + "/files/alice/", status: 403, same: invalidLink},
		{name: "link: API", method: "GET", path: L + "/api/v1/users/alice/assets/" + aliceID, status: 403, same: invalidLink},
		{name: "link: WebDAV", method: "PROPFIND", path: L + "/dav/alice/", status: 403, same: invalidLink},
		{name: "link: tus", method: "POST", path: L + "/api/v1/users/alice/uploads/", status: 403, same: invalidLink},
		{name: "link: dot dot", method: "GET", path: L + "/files/alice/" + aliceID + "/../" + shared + ".mp4", status: 403, same: invalidLink},
		{name: "link: encoded dot dot", method: "GET", path: L + "/streams/alice/" + aliceID + "/%2e%2e/%2e%2e/bob/" + bobID + "/hls/master.m3u8", status: 403, same: invalidLink},
		{name: "link: encoded slash", method: "GET", path: L + "/files/alice/" + aliceID + "%2F..%2F" + shared + ".mp4", status: 403, same: invalidLink},
		{name: "link: double slash", method: "GET", path: L + "//files/alice/" + aliceID + ".mp4", status: 403, same: invalidLink},
		{name: "link: tampered signature", method: "GET", path: tamperedSig + "/files/alice/" + aliceID + ".mp4", status: 403, same: invalidLink},
		{name: "link: tampered expiry", method: "GET", path: tamperedExp + "/files/alice/" + aliceID + ".mp4", status: 403, same: invalidLink},
		{name: "link: truncated", method: "GET", path: "/s/" + exp + "/files/alice/" + aliceID + ".mp4", status: 403, same: invalidLink},
		{name: "link: expired", method: "GET", path: old.Path() + "/files/alice/" + aliceID + ".mp4", status: 403},
		{name: "link with bob's token", method: "GET", path: L + "/files/bob/" + bobID + ".mp4", c: bb, status: 403, same: invalidLink},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := send(t, c.method, base+c.path, c.c, nil, c.follow, c.hdr...)
			if c.status >= 400 {
				wantJSON(t, c.method+" "+c.path, resp, body, c.status)
			} else if resp.StatusCode != c.status {
				t.Errorf("%s %s: %d %s, want %d", c.method, c.path, resp.StatusCode, body, c.status)
			}
			if c.same != nil && !bytes.Equal(body, c.same) {
				t.Errorf("%s %s: body %s, want the same as %s", c.method, c.path, body, c.same)
			}
			if resp.StatusCode == 401 {
				want := "Bearer"
				if strings.HasPrefix(c.path, "/dav/") {
					want = "Basic"
				}
				if !strings.Contains(strings.Join(resp.Header.Values("WWW-Authenticate"), ", "), want) {
					t.Errorf("401 without WWW-Authenticate %s: %v", want, resp.Header.Values("WWW-Authenticate"))
				}
			}
		})
	}
	// Nothing of bob's changed.
	if _, err := e.Library.Asset(ctx, "bob", bobID); err != nil {
		t.Errorf("bob's asset: %v", err)
	}
	if resp, _ := send(t, http.MethodHead, bobUpload, cred{bearer: bob}, nil, false, "Tus-Resumable", "1.0.0"); resp.StatusCode != 200 {
		t.Errorf("bob's upload: HEAD %d", resp.StatusCode)
	}

	t.Run("the owner's shared id is the owner's", func(t *testing.T) {
		ra, ab := send(t, http.MethodGet, base+"/files/alice/"+shared+".mp4?pace=0", a, nil, false)
		rb, bbody := send(t, http.MethodGet, base+"/files/bob/"+shared+".mp4?pace=0", bb, nil, false)
		if ra.StatusCode != 200 || rb.StatusCode != 200 || bytes.Equal(ab, bbody) {
			t.Errorf("alice's and bob's %s: %d, %d, equal %v", shared, ra.StatusCode, rb.StatusCode, bytes.Equal(ab, bbody))
		}
	})

	t.Run("ffmpeg plays a signed HLS link", func(t *testing.T) {
		probe.RequireClean(t, base+L+"/streams/alice/"+aliceID+"/hls/master.m3u8")
		probe.RequireClean(t, base+L+"/streams/alice/"+aliceID+"/hls/ts/master.m3u8")
	})

	t.Run("signed download equals unsigned", func(t *testing.T) {
		_, signed := send(t, http.MethodGet, base+L+"/files/alice/"+aliceID+".mp4?pace=0", cred{}, nil, false)
		resp, plain := send(t, http.MethodGet, base+"/files/alice/"+aliceID+".mp4?pace=0", a, nil, false)
		if len(signed) == 0 || !bytes.Equal(signed, plain) {
			t.Errorf("signed download: %d bytes, unsigned %d (status %d), equal %v", len(signed), len(plain), resp.StatusCode, bytes.Equal(signed, plain))
		}
	})

	t.Run("cache headers", func(t *testing.T) {
		resp, _ := send(t, http.MethodGet, base+"/streams/alice/"+aliceID+"/hls/v1/0.m4s", a, nil, false)
		if cc := resp.Header.Get("Cache-Control"); resp.StatusCode != 200 || !strings.Contains(cc, "private") || strings.Contains(cc, "public") {
			t.Errorf("segment with a token: %d Cache-Control %q, want private", resp.StatusCode, cc)
		}
		resp, _ = send(t, http.MethodGet, base+L+"/streams/alice/"+aliceID+"/hls/v1/0.m4s", cred{}, nil, false)
		m := regexp.MustCompile(`max-age=(\d+)`).FindStringSubmatch(resp.Header.Get("Cache-Control"))
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "public") || m == nil || len(m[1]) > 4 {
			t.Errorf("segment through a link: %d Cache-Control %q, want public with max-age within the link's hour", resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
	})

	t.Run("links keep their pages within them", func(t *testing.T) {
		_, page := send(t, http.MethodGet, base+L+"/watch/alice/"+aliceID, cred{}, nil, false)
		if !strings.Contains(string(page), L+"/files/alice/"+aliceID+".mp4") {
			t.Errorf("watch page through a link does not play through it:\n%s", page)
		}
		resp, _ := send(t, http.MethodGet, base+L+"/play/alice/"+aliceID+"?format=hls", cred{}, nil, false)
		if loc := resp.Header.Get("Location"); loc != L+"/streams/alice/"+aliceID+"/hls/master.m3u8" {
			t.Errorf("play through a link redirects to %q", loc)
		}
		lib := base + strings.TrimPrefix(e.PrefixLink(t, "alice", "/files/alice/", time.Hour), e.URL)
		resp, listing := send(t, http.MethodGet, lib+"/files/alice/", cred{}, nil, false, "Accept", "application/json")
		var l struct{ Files []struct{ URL string } }
		if resp.StatusCode != 200 || json.Unmarshal(listing, &l) != nil || len(l.Files) == 0 {
			t.Fatalf("library through a prefix link: %d %s", resp.StatusCode, listing)
		}
		p := strings.TrimPrefix(lib, base)
		for _, f := range l.Files {
			if !strings.HasPrefix(f.URL, p+"/files/alice/") {
				t.Errorf("listed URL %s is not below the link", f.URL)
			}
		}
		if resp, _ := send(t, http.MethodGet, base+l.Files[0].URL, cred{}, nil, false, "Range", "bytes=0-99"); resp.StatusCode != 206 {
			t.Errorf("listed file through the link: %d", resp.StatusCode)
		}
		if resp, _ := send(t, http.MethodGet, lib+"/streams/alice/"+aliceID+"/hls/master.m3u8", cred{}, nil, false); resp.StatusCode != 403 {
			t.Errorf("prefix link used for streams: %d", resp.StatusCode)
		}
	})

	t.Run("?token= sets a cookie and leaves the URL", func(t *testing.T) {
		resp, _ := send(t, http.MethodGet, base+"/watch/alice/"+aliceID+"?token="+url.QueryEscape(alice)+"&x=1", cred{}, nil, false)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/watch/alice/"+aliceID+"?x=1" {
			t.Fatalf("?token=: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		var c *http.Cookie
		for _, k := range resp.Cookies() {
			if k.Name == auth.CookieName {
				c = k
			}
		}
		if c == nil || c.Value != alice || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
			t.Fatalf("cookie %+v", c)
		}
		if resp, _ := send(t, http.MethodGet, base+"/watch/alice/"+aliceID, cred{cookie: c.Value}, nil, false); resp.StatusCode != 200 {
			t.Errorf("page with the cookie: %d", resp.StatusCode)
		}
		resp, _ = send(t, http.MethodGet, base+"//evil.example/?token="+url.QueryEscape(alice), cred{}, nil, false)
		if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, "//") {
			t.Errorf("?token= redirects off the server: %q", loc)
		}
	})

	t.Run("links API", func(t *testing.T) {
		resp, b := send(t, http.MethodPost, base+"/api/v1/users/alice/assets/"+aliceID+"/links", a, strings.NewReader(`{"expires_in": 600}`), false)
		var j struct {
			Expires string
			URL     string
			URLs    struct{ HLS, Consolidated string }
		}
		if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &j) != nil || j.URLs.HLS == "" {
			t.Fatalf("POST links: %d %s", resp.StatusCode, b)
		}
		exp, err := time.Parse(time.RFC3339, j.Expires)
		if err != nil || exp.Before(time.Now().Add(10*time.Minute)) || exp.After(time.Now().Add(71*time.Minute)) || exp.Minute() != 0 || exp.Second() != 0 {
			t.Errorf("expiry %q (%v): want 10 min from now rounded up to the hour", j.Expires, err)
		}
		for _, u := range []string{j.URL, j.URLs.HLS, j.URLs.Consolidated} {
			if resp, _ := send(t, http.MethodGet, base+u, cred{}, nil, true); resp.StatusCode != 200 {
				t.Errorf("GET %s: %d", u, resp.StatusCode)
			}
		}
		resp, b = send(t, http.MethodPost, base+"/api/v1/users/alice/assets/NOPE/links", a, nil, false)
		wantJSON(t, "link to a missing asset", resp, b, 404)
		resp, b = send(t, http.MethodPost, base+"/api/v1/users/alice/assets/"+aliceID+"/links", a, strings.NewReader(`{"expires_in": -5}`), false)
		wantJSON(t, "negative expires_in", resp, b, 400)
	})

	t.Run("home lists only the token's library", func(t *testing.T) {
		_, b := send(t, http.MethodGet, base+"/", a, nil, false, "Accept", "application/json")
		if string(b) != `{"users":["alice"]}`+"\n" {
			t.Errorf("home with alice's token: %s", b)
		}
		_, b = send(t, http.MethodGet, base+"/", cred{}, nil, false, "Accept", "application/json")
		if string(b) != `{"users":[]}`+"\n" {
			t.Errorf("home without a token: %s", b)
		}
	})

	// No token, signature or credentials in the logs of all that.
	out := logs.String()
	if !strings.Contains(out, "delivery session") || !strings.Contains(out, "msg=request") {
		t.Errorf("the logs lack request and session lines:\n%s", out)
	}
	secrets := []string{alice, bob, revoked, expired, link.Elem, old.Elem, strings.TrimPrefix(tamperedSig, "/s/"),
		alice[len(alice)-52:], bob[len(bob)-52:]}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the logs hold the secret %q", s)
		}
	}
	if !strings.Contains(out, "/s/"+auth.Redacted) && !strings.Contains(out, "path=/streams/alice/") {
		t.Errorf("no link request in the logs:\n%s", out)
	}
}

// TestQuotaRefusesBeforeStoring: an upload over the user's quota, by any
// route, is answered 413 "over quota" and leaves the store as it was;
// refused before reading when the size is announced, stopped while
// streaming when it is not.
func TestQuotaRefusesBeforeStoring(t *testing.T) {
	ctx := context.Background()
	e := jitserver.New(t)
	up, err := tusupload.New(outputs.New(e.Library, 0), tusupload.Options{Dir: tusupload.DefaultDir(e.Dir)})
	if err != nil {
		t.Fatal(err)
	}
	base := e.Serve(t, server.Options{Uploads: up})
	// Larger than a part of the S3 store's multipart uploads (5 MiB in
	// the tests), so that an upload stopped halfway through what the user
	// has left has started one, which must be aborted.
	file := fixtures.Long(t, 1)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(len(data))
	snapshot := func() string {
		objs, err := e.Store.List(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, o := range objs {
			b.WriteString(o.Key + " " + o.ModTime.String() + "\n")
		}
		// What a refused write could leave beside the objects: temporary
		// files of FS, unfinished multipart uploads of S3.
		for _, l := range e.TestStore.Leftovers(t) {
			b.WriteString(l + "\n")
		}
		return b.String()
	}
	// One asset fits; a second one does not.
	if err := e.Library.SetQuota(ctx, jitserver.User, size+size/2); err != nil {
		t.Fatal(err)
	}
	ingestAs(t, base, "", jitserver.User, "FIRST.mp4", file)
	before := snapshot()
	unsized := func() io.Reader { return io.MultiReader(bytes.NewReader(data)) } // no Content-Length: chunked
	for _, tc := range []struct {
		name   string
		method string
		path   string
		body   func() io.Reader
		hdr    []string
	}{
		{"API, sized", "POST", "/api/v1/users/alice/assets?name=B.mp4", func() io.Reader { return bytes.NewReader(data) }, nil},
		{"API, streamed", "POST", "/api/v1/users/alice/assets?name=B.mp4", unsized, nil},
		{"WebDAV, sized", "PUT", "/dav/alice/B.mp4", func() io.Reader { return bytes.NewReader(data) }, nil},
		{"WebDAV, streamed", "PUT", "/dav/alice/B.mp4", unsized, nil},
		{"tus", "POST", "/api/v1/users/alice/uploads/", func() io.Reader { return nil },
			[]string{"Tus-Resumable", "1.0.0", "Upload-Length", strconv.FormatInt(size, 10)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := send(t, tc.method, base+tc.path, cred{}, tc.body(), false, tc.hdr...)
			wantJSON(t, tc.name, resp, b, http.StatusRequestEntityTooLarge)
			if !strings.Contains(string(b), "over quota") {
				t.Errorf("%s: %s does not say over quota", tc.name, b)
			}
			if after := snapshot(); after != before {
				t.Errorf("%s changed the store:\nbefore\n%safter\n%s", tc.name, before, after)
			}
		})
	}
	// The multipart upload of the tests (streamed through a pipe) too.
	if status, b := e.Upload(t, jitserver.User, file); status != http.StatusRequestEntityTooLarge {
		t.Errorf("multipart upload over quota: %d %s", status, b)
	}
	// A larger quota lets it in.
	if err := e.Library.SetQuota(ctx, jitserver.User, 3*size); err != nil {
		t.Fatal(err)
	}
	ingestAs(t, base, "", jitserver.User, "SECOND.mp4", file)
	if used, err := e.Library.Usage(ctx, jitserver.User); err != nil || used != 2*size {
		t.Errorf("usage %d (%v), want %d", used, err, 2*size)
	}
}
