package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/auth"
	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/outputs"
	"github.com/jitstream/jitstream/internal/server"
	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
)

// TestCLIAccounts: users with quotas, tokens shown once and stored
// hashed, links, and a removal that takes everything of the user.
func TestCLIAccounts(t *testing.T) {
	dir := t.TempDir()
	cli := func(args ...string) string {
		t.Helper()
		out, stderr, err := runCLI(t, append([]string{args[0], "--store", dir}, args[1:]...)...)
		if err != nil {
			t.Fatalf("jitstream %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		return out
	}
	cli("users", "add", "alice", "--quota", "50MB")
	cli("users", "add", "bob")
	if out := cli("users", "ls", "-l"); !strings.Contains(out, "alice") || !strings.Contains(out, "50 MB") {
		t.Errorf("users ls -l:\n%s", out)
	}
	file := fixtures.H264AAC(t)
	id := strings.TrimSpace(cli("ingest", "--user", "alice", file))

	// Over quota: refused, nothing stored.
	cli("users", "quota", "alice", "1kB")
	if _, _, err := runCLI(t, "ingest", "--store", dir, "--user", "alice", file); err == nil || !strings.Contains(err.Error(), "over quota") {
		t.Errorf("ingest over quota: %v", err)
	}
	if out := cli("ls", "--user", "alice"); strings.Count(out, "consolidated") != 1 {
		t.Errorf("the refused ingest left files:\n%s", out)
	}
	cli("users", "quota", "alice", "none")

	token := strings.TrimSpace(cli("tokens", "create", "--user", "alice", "--name", "laptop", "--expires", "1h"))
	if !strings.HasPrefix(token, "jst_alice_") {
		t.Fatalf("tokens create printed %q", token)
	}
	tokenID := strings.Split(token, "_")[2]
	if out := cli("tokens", "ls", "--user", "alice"); !strings.Contains(out, tokenID) || !strings.Contains(out, "laptop") || strings.Contains(out, token) {
		t.Errorf("tokens ls:\n%s", out)
	}
	if _, _, err := runCLI(t, "tokens", "create", "--store", dir, "--user", "nobody"); err == nil {
		t.Error("a token for an unknown user")
	}
	// The token, and a link, work on a server over the same store.
	st, err := store.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	au, err := auth.New(context.Background(), st, auth.Options{CacheTTL: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(server.New(outputs.New(library.New(st, library.Options{}), 0), server.Options{Auth: au}))
	defer srv.Close()
	get := func(u, token string) int {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get(srv.URL+"/files/alice/", token); s != 200 {
		t.Errorf("the CLI's token: %d", s)
	}
	link := strings.TrimSpace(cli("links", "create", "--user", "alice", "--asset", id, "--expires", "2h", "--base", srv.URL))
	if !strings.HasPrefix(link, srv.URL+"/s/") || !strings.HasSuffix(link, "/play/alice/"+id) {
		t.Errorf("links create printed %q", link)
	}
	if s := get(link+"?format=mp4", ""); s != http.StatusFound {
		t.Errorf("the CLI's link: %d", s)
	}
	prefix := strings.TrimSpace(cli("links", "create", "--user", "alice", "--prefix", "/files/alice/", "--base", srv.URL))
	if s := get(prefix, ""); s != 200 {
		t.Errorf("the CLI's prefix link %s: %d", prefix, s)
	}
	if _, _, err := runCLI(t, "links", "create", "--store", dir, "--user", "alice", "--asset", "NOPE"); err == nil {
		t.Error("a link to a missing asset")
	}
	if _, _, err := runCLI(t, "links", "create", "--store", dir, "--user", "alice", "--prefix", "/files/bob/"); err == nil {
		t.Error("a link to another user's prefix")
	}

	cli("tokens", "revoke", "--user", "alice", tokenID)
	if out := cli("tokens", "ls", "--user", "alice"); strings.Contains(out, tokenID) {
		t.Errorf("revoked token listed:\n%s", out)
	}
	time.Sleep(100 * time.Millisecond) // the server's cache of the token
	if s := get(srv.URL+"/files/alice/", token); s != http.StatusUnauthorized {
		t.Errorf("revoked token: %d", s)
	}

	// users rm asks for --yes, then deletes the user's assets and tokens.
	cli("tokens", "create", "--user", "alice")
	if _, stderr, err := runCLI(t, "users", "rm", "--store", dir, "alice"); err == nil || !strings.Contains(stderr, "--yes") {
		t.Errorf("users rm without --yes: %v %s", err, stderr)
	}
	if out := cli("users"); !strings.Contains(out, "alice") {
		t.Fatalf("users rm without --yes removed alice:\n%s", out)
	}
	cli("users", "rm", "--yes", "alice")
	if out := cli("users"); strings.Contains(out, "alice") || !strings.Contains(out, "bob") {
		t.Errorf("users after rm:\n%s", out)
	}
	left, err := st.List(context.Background(), "users/alice/")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range left {
		if !strings.HasSuffix(o.Key, "/deleted") {
			t.Errorf("users rm left %s", o.Key)
		}
	}
	if _, err := os.Stat(dir + "/users/alice/user.json"); err == nil {
		t.Error("users rm left the user record")
	}
}
