package dav_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/jitserver"
)

// rcloneAs runs rclone against user's library on a server with access
// control, with Basic credentials (user, and token as the password,
// obscured as rclone wants it). It returns rclone's output and error.
func rcloneAs(t *testing.T, e *jitserver.Env, user, token string, args ...string) ([]byte, string, error) {
	t.Helper()
	bin, err := exec.LookPath("rclone")
	if err != nil {
		t.Fatalf("rclone not found on PATH (%v): run make deps", err)
	}
	full := []string{"--config", "/dev/null", "--webdav-url", e.URL + "/dav/" + jitserver.User + "/",
		"--retries", "1", "--low-level-retries", "1"}
	if user != "" {
		obscured, err := exec.Command(bin, "obscure", token).Output()
		if err != nil {
			t.Fatalf("rclone obscure: %v", err)
		}
		full = append(full, "--webdav-user", user, "--webdav-pass", strings.TrimSpace(string(obscured)))
	}
	cmd := exec.Command(bin, append(full, args...)...)
	cmd.Env = append(os.Environ(), "RCLONE_CACHE_DIR="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	return stdout.Bytes(), stderr.String(), err
}

// TestRcloneWithBasicAuth: rclone lists alice's library with her user name
// and token; without credentials, or with bob's token, it cannot.
func TestRcloneWithBasicAuth(t *testing.T) {
	e := jitserver.New(t, jitserver.WithAuth())
	jitserver.Ingest[struct{ ID string }](t, e, fixtures.H264AAC(t))
	out, stderr, err := rcloneAs(t, e, jitserver.User, e.Token, "lsjson", "-R", ":webdav:")
	if err != nil {
		t.Fatalf("rclone lsjson with alice's token: %v\n%s", err, stderr)
	}
	var entries []lsjsonEntry
	if err := json.Unmarshal(out, &entries); err != nil {
		t.Fatal(err)
	}
	want := jsonView(t, e)
	files := 0
	for _, en := range entries {
		if en.IsDir {
			continue
		}
		files++
		if w, ok := want[en.Path]; !ok || w.Size != en.Size {
			t.Errorf("rclone lists %s (%d bytes); the file view has %+v", en.Path, en.Size, w)
		}
	}
	if files != len(want) {
		t.Errorf("rclone lists %d files, the file view %d", files, len(want))
	}

	e.AddUser(t, "bob")
	bob := e.CreateToken(t, "bob", 0)
	for _, tc := range []struct {
		name, user, token string
	}{
		{"no credentials", "", ""},
		{"bob's token as bob", "bob", bob},
		{"bob's token as alice", jitserver.User, bob},
		{"a wrong token", jitserver.User, wrong(e.Token)},
	} {
		if _, stderr, err := rcloneAs(t, e, tc.user, tc.token, "lsjson", "-R", ":webdav:"); err == nil {
			t.Errorf("%s: rclone listed alice's library\n%s", tc.name, stderr)
		}
	}
}

// wrong is token with its last character changed.
func wrong(token string) string {
	if strings.HasSuffix(token, "2") {
		return token[:len(token)-1] + "3"
	}
	return token[:len(token)-1] + "2"
}
