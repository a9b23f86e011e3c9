package nginx_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/nginx"
)

func get(t *testing.T, url string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestServeFile(t *testing.T) {
	t.Parallel()
	want, err := os.ReadFile(fixtures.H264AAC(t))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "sub", "video.mp4"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	base := nginx.Start(t, root)

	resp, body := get(t, base+"/sub/video.mp4", nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
		t.Fatalf("GET: status %d, %d bytes (want 200, %d identical bytes)", resp.StatusCode, len(body), len(want))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "video/mp4" {
		t.Errorf("Content-Type %q, want video/mp4", ct)
	}

	resp, body = get(t, base+"/sub/video.mp4", http.Header{"Range": {"bytes=100-199"}})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, want[100:200]) {
		t.Errorf("range GET: status %d, %d bytes", resp.StatusCode, len(body))
	}

	if resp, _ := get(t, base+"/missing.mp4", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("missing file: status %d, want 404", resp.StatusCode)
	}
}

func TestStartProcessStop(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "a.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	base, stop, err := nginx.StartProcess(root)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if resp, body := get(t, base+"/a.txt", nil); resp.StatusCode != http.StatusOK || string(body) != "hello" {
		t.Fatalf("status %d, body %q", resp.StatusCode, body)
	}
	stop()
	stop() // idempotent
	if resp, err := http.Get(base + "/a.txt"); err == nil {
		resp.Body.Close()
		t.Errorf("nginx still answers after stop")
	}
}
