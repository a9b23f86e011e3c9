package redis

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// shared is the server of Shared, started by the first call and stopped
// when Main's m.Run returns. It is the package's only global state: a
// server shared by a test binary needs one.
var shared struct {
	mu      sync.Mutex
	running bool // Main is running the tests
	srv     *Server
	err     error // of the first start, reported to every caller
}

// Main runs the tests of m and then stops the server of Shared, if one was
// started. Call it from TestMain; it returns, and the test binary then
// exits with the result of m.Run:
//
//	func TestMain(m *testing.M) { redis.Main(m) }
//
// A package that also shares another server uses Run instead.
func Main(m *testing.M) { Run(m.Run) }

// Run is Main for a TestMain that needs another package's Main around the
// tests too, such as minio.Main: it calls run, which runs the tests (or
// the other Main, which runs them), with Shared available, then stops the
// server of Shared, if one was started, and returns run's result:
//
//	func TestMain(m *testing.M) {
//		os.Exit(redis.Run(func() int { return minio.Main(m) }))
//	}
func Run(run func() int) int {
	shared.mu.Lock()
	shared.running = true
	shared.mu.Unlock()
	defer func() {
		shared.mu.Lock()
		defer shared.mu.Unlock()
		if shared.srv != nil {
			shared.srv.stop()
			os.RemoveAll(shared.srv.dir)
		}
		shared.running, shared.srv, shared.err = false, nil, nil
	}()
	return run()
}

// Shared returns the redis-server shared by the tests of the test binary,
// starting it on first use. Its tests must keep apart by key prefix, and
// must not stop or restart it (Stop panics, Restart fails the test).
// Shared fails the test unless TestMain calls Main, which stops the server
// at the end, and fails it if the server could not start.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.running {
		tb.Fatal("redis: Shared needs TestMain to call redis.Main(m), which stops the server")
	}
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = startShared()
	}
	if shared.err != nil {
		tb.Fatalf("redis: shared server: %v", shared.err)
	}
	return shared.srv
}

func startShared() (*Server, error) {
	dir, err := os.MkdirTemp("", "jitstream-redis-")
	if err != nil {
		return nil, fmt.Errorf("creating the server's directory: %w", err)
	}
	s, err := start(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.shared = true
	return s, nil
}
