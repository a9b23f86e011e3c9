package main

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/jitstream/jitstream/internal/testutil/httpt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/testutil/probe"
)

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServeStartsWithAPlayableSample follows the README: serve on an empty
// store, open the URL it logs (with demo's token, kept in a cookie), find
// the sample in demo's library, and read it with ffprobe through a signed
// link. The token is in that one log line only.
func TestServeStartsWithAPlayableSample(t *testing.T) {
	addr := freeAddr(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr httpt.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", addr, "--store", dir, "-v"}, &bytes.Buffer{}, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve returned %v", err)
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("serve stopped: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not answer in time\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The logged URL opens the web app, which signs in with the token of
	// its fragment (never sent to the server).
	m := regexp.MustCompile(`url="?(http://[^\s"]+/app/)#token=([^\s"]+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("serve did not log a URL with a token:\n%s", stderr.String())
	}
	app, token := m[1], m[2]
	if resp, err := http.Get(app); err != nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("the web app: %v %v", resp, err)
	}
	// The app trades the token for the cookie as this URL does.
	start := base + "/files/demo/?token=" + token
	if resp, err := http.Get(base + "/files/demo/"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("demo's library without the token: %v %v", resp, err)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar}
	req, _ := http.NewRequest(http.MethodGet, start, nil)
	req.Header.Set("Accept", "application/json")
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Request.URL.RawQuery != "" {
		t.Errorf("the token URL left the token in the address: %s", resp.Request.URL)
	}
	var listing struct {
		Files []struct {
			Name, Kind, URL, Asset string
		} `json:"files"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&listing); err != nil {
		t.Fatalf("listing: %v (status %d)", err, resp.StatusCode)
	}
	var asset string
	for _, f := range listing.Files {
		if f.Kind == "consolidated" {
			asset = f.Asset
		}
	}
	if asset == "" {
		t.Fatalf("no consolidated file in demo's library: %+v\n%s", listing, stderr.String())
	}
	out, errOut, err := runCLI(t, "links", "create", "--store", dir, "--base", base, "--user", "demo", "--asset", asset, "--expires", "1h")
	if err != nil {
		t.Fatalf("links create: %v %s", err, errOut)
	}
	play := strings.TrimSpace(out)
	mp4 := strings.Replace(play, "/play/demo/"+asset, "/files/demo/"+asset+".mp4", 1)
	if d := probe.Duration(t, mp4); d < 19 || d > 21 {
		t.Errorf("sample lasts %.2f s, want about 20", d)
	}
	if d := probe.Duration(t, play+"?format=hls"); d < 19 || d > 21 {
		t.Errorf("sample through the signed entry URL lasts %.2f s, want about 20", d)
	}
	if n := strings.Count(stderr.String(), token); n != 1 {
		t.Errorf("the token is logged %d times, want once (the start URL)", n)
	}
	if sig := strings.Split(play, "/")[4]; strings.Contains(stderr.String(), sig) {
		t.Errorf("the link's signature is logged:\n%s", stderr.String())
	}
}
