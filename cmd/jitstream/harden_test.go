package main

import (
	"bytes"
	"context"
	"errors"
	"github.com/jitstream/jitstream/internal/testutil/httpt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/server"
)

// TestServeLimits checks the limits of the HTTP server that serve runs,
// with its real settings: an over-large header gets 431, an over-long URL
// 414, and (not in -short: it takes server.ReadHeaderTimeout) a client
// sending its header a byte at a time is cut.
func TestServeLimits(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", addr, "--store", t.TempDir(), "--sample=false"}, io.Discard, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve returned %v", err)
		}
	})
	base := "http://" + addr
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("serve did not answer")
		}
	}
	get := func(path string, hdr ...string) int {
		t.Helper()
		resp, _ := httpt.Get(t, base+path, hdr...)
		return resp.StatusCode
	}
	if got := get("/healthz", "X-Big", strings.Repeat("b", server.MaxHeaderBytes+16<<10)); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("over-large header: %d, want 431", got)
	}
	if got := get("/files/demo/" + strings.Repeat("x", server.MaxURLPath) + ".mp4"); got != http.StatusRequestURITooLong {
		t.Errorf("over-long path: %d, want 414", got)
	}
	if testing.Short() {
		return
	}

	// Slowloris: one header byte every 500 ms.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	hdr := "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("s", 100) + "\r\n\r\n"
	for i := 0; i < len(hdr); i++ {
		if _, err := c.Write([]byte{hdr[i]}); err != nil {
			break
		}
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				break // closed by the server
			}
		}
		if time.Since(start) > 2*server.ReadHeaderTimeout {
			t.Fatalf("still connected after %v", time.Since(start))
		}
	}
	// The server's clock starts when it accepts the connection, a moment
	// before ours: allow a second either way below, three above.
	took := time.Since(start)
	if took < server.ReadHeaderTimeout-time.Second || took > server.ReadHeaderTimeout+3*time.Second {
		t.Errorf("slow header cut after %v, want about %v", took, server.ReadHeaderTimeout)
	}
	t.Logf("slow header cut after %v", took)
}
