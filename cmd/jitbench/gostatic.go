package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
)

// The Go reference: the same files as nginx's, served by Go's standard
// library alone (http.FileServer: ServeContent, sendfile), in a process
// of its own (this binary, run with -go-static ROOT -addr ADDR). It shows
// what any Go HTTP server reaches on the machine, apart from what
// jitstream does on top of it.

// serveGoStatic serves root at addr until the process is killed.
func serveGoStatic(root, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return http.Serve(ln, http.FileServer(http.Dir(root)))
}

// startGoStatic runs the Go reference serving root.
func startGoStatic(ctx context.Context, c *http.Client, root, logs string) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("go static server: %w", err)
	}
	return startServer(ctx, c, "go-static", "/healthz", func(port int) (*child, error) {
		return startProc("go-static", filepath.Join(logs, "go-static.log"), self,
			"-go-static", root, "-addr", fmt.Sprintf("127.0.0.1:%d", port))
	})
}
