package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	harness "github.com/jitstream/jitstream/internal/testutil/cluster"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// Users of every test cluster.
const (
	alice = "alice"
	bob   = "bob"
)

// env is a running cluster with users alice and bob and a token of each.
type env struct {
	*harness.Cluster
	tokens map[string]string
}

// start starts a cluster with o and adds alice and bob with a token each.
func start(t *testing.T, o harness.Options) *env {
	t.Helper()
	c := harness.Start(t, o)
	e := &env{Cluster: c, tokens: map[string]string{}}
	for _, u := range []string{alice, bob} {
		c.MustCLI(t, "users", "add", u)
		e.tokens[u] = strings.TrimSpace(c.MustCLI(t, "tokens", "create", "--user", u, "--expires", "0"))
	}
	return e
}

// client is the HTTP client of the tests: no redirects followed, a bound
// on every request.
var client = &http.Client{
	Timeout:       2 * time.Minute,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// response is a response read whole.
type response struct {
	*http.Response
	body []byte
	// err is the error of reading the body (a transfer cut short).
	err error
}

// request sends a request (with the bearer token if not "") and reads the
// whole response; a body cut short is in the result's err. It is safe to
// call from any goroutine.
func request(ctx context.Context, method, u, token string, body io.Reader, header http.Header) (*response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, redact(u), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return &response{Response: resp, body: b, err: err}, nil
}

// do is request from the test's goroutine: failing to get a response
// fails the test.
func do(t *testing.T, method, u, token string, body io.Reader, header http.Header) *response {
	t.Helper()
	r, err := request(t.Context(), method, u, token, body, header)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// get is do of a GET.
func get(t *testing.T, u, token string) *response {
	t.Helper()
	return do(t, http.MethodGet, u, token, nil, nil)
}

// redact shortens a URL for messages (signed links are long).
func redact(u string) string {
	if len(u) > 160 {
		return u[:160] + "..."
	}
	return u
}

// asset is the part of the API's description of an asset the tests use.
type asset struct {
	ID       string `json:"id"`
	Rev      string `json:"rev"`
	Index    string `json:"index"`
	Segments int    `json:"segments"`
	Chapters []struct {
		Name   string `json:"name"`
		Object string `json:"object"`
		Size   int64  `json:"size"`
	} `json:"chapters"`
}

// uploadURL is the URL of node's upload API for a raw body named name.
func uploadURL(node *harness.Node, user, name string) string {
	return node.URL() + "/api/v1/users/" + user + "/assets?name=" + url.QueryEscape(name)
}

// tryUpload sends the file at path to node's upload API as user and
// returns the answer, whatever it is.
func (e *env) tryUpload(t *testing.T, node *harness.Node, user, path string) *response {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return do(t, http.MethodPost, uploadURL(node, user, baseName(path)), e.tokens[user], f, http.Header{"Content-Type": {"video/mp4"}})
}

// upload ingests the file at path through node's upload API as user and
// returns the new asset.
func (e *env) upload(t *testing.T, node *harness.Node, user, path string) asset {
	t.Helper()
	r := e.tryUpload(t, node, user, path)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("upload of %s to node %d: %s %s", path, node.Index, r.Status, r.body)
	}
	return parseAsset(t, r)
}

// parseAsset decodes the asset of an upload's answer.
func parseAsset(t *testing.T, r *response) asset {
	t.Helper()
	var a asset
	if err := json.Unmarshal(r.body, &a); err != nil || a.ID == "" {
		t.Fatalf("upload: answer %s: %v", r.body, err)
	}
	return a
}

func baseName(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[i+1:]
	}
	return path
}

// list returns the ids of user's assets that node lists through the API.
func (e *env) list(t *testing.T, node *harness.Node, user string) []string {
	t.Helper()
	ids, err := e.listIDs(t.Context(), node, user)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// listIDs returns the ids of user's assets that node lists through the
// API; safe from any goroutine.
func (e *env) listIDs(ctx context.Context, node *harness.Node, user string) ([]string, error) {
	r, err := request(ctx, http.MethodGet, node.URL()+"/api/v1/users/"+user+"/assets", e.tokens[user], nil, nil)
	if err != nil {
		return nil, err
	}
	if r.StatusCode != http.StatusOK || r.err != nil {
		return nil, fmt.Errorf("list on node %d: %s %s %v", node.Index, r.Status, r.body, r.err)
	}
	var body struct {
		Assets []asset `json:"assets"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		return nil, fmt.Errorf("list on node %d: %s: %w", node.Index, r.body, err)
	}
	ids := []string{}
	for _, a := range body.Assets {
		ids = append(ids, a.ID)
	}
	return ids, nil
}

// link is what `jitstream links create --json` prints.
type link struct {
	URL     string         `json:"url"`
	Path    string         `json:"path"`
	Expires time.Time      `json:"expires"`
	Base    string         `json:"base"`
	URLs    map[string]any `json:"urls"`
}

// hls is the URL of the link's HLS fMP4 master playlist.
func (l link) hls() string { return l.Base + l.URLs["hls"].(string) }

// makeLink makes a signed link to user's asset id with the command line,
// valid for expires, for the server at base.
func (e *env) makeLink(t *testing.T, user, id, expires, base string) link {
	t.Helper()
	out := e.MustCLI(t, "links", "create", "--user", user, "--asset", id, "--expires", expires, "--base", base, "--json")
	var l link
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("links create --json: %v\n%s", err, out)
	}
	if l.Path == "" || l.Base != base || l.URLs["hls"] == nil {
		t.Fatalf("links create --json: %s", out)
	}
	return l
}

// errorBody is the JSON body of jitstream's errors.
type errorBody struct {
	Error  string `json:"error"`
	Detail string `json:"detail"`
}

// checkUnavailable fails the test unless r is a 503 as the store or state
// being unavailable must be answered: Retry-After, Cache-Control: no-store,
// a JSON body with an error, and a body read whole.
func checkUnavailable(t *testing.T, what string, r *response) {
	t.Helper()
	if r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("%s: %s (%d bytes, read error %v), want 503", what, r.Status, len(r.body), r.err)
		return
	}
	if r.err != nil {
		t.Errorf("%s: 503 with a body cut short: %v", what, r.err)
	}
	if r.Header.Get("Retry-After") == "" || r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("%s: 503 with Retry-After %q, Cache-Control %q: want a Retry-After and no-store", what,
			r.Header.Get("Retry-After"), r.Header.Get("Cache-Control"))
	}
	var b errorBody
	if err := json.Unmarshal(r.body, &b); err != nil || b.Error == "" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Errorf("%s: 503 body %q (%s): want a JSON error (%v)", what, r.body, r.Header.Get("Content-Type"), err)
	}
}

// waitFor polls cond until it returns nil or timeout passes, then fails
// the test with cond's last error. It returns how long it took.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return time.Since(start)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		case <-tick.C:
		}
	}
}

// sameBytes describes how got differs from want, "" when equal.
func sameBytes(got, want []byte) string {
	if bytes.Equal(got, want) {
		return ""
	}
	return fmt.Sprintf("%d bytes differ from the %d wanted", len(got), len(want))
}

// copyFile copies the file src to dst.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
