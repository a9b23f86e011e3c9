// Package minio runs a real MinIO server (an S3-compatible object store)
// for tests of the S3 store.
//
// The server binary is built once by `make minio` (scripts/minio.sh); a
// missing binary fails the test, it does not skip it. Each server listens
// on free 127.0.0.1 ports, keeps its data, log and home directory in a
// temporary directory, runs in a process group of its own and is stopped
// with SIGTERM, then SIGKILL after a grace period. On Linux it is also
// killed by the kernel if the test binary dies first (say, of a test
// timeout).
//
// Two ways to get a server:
//
//   - Start starts one for a single test, stopped at the test's cleanup.
//     Tests that Stop or Restart the server (fault tests) need their own.
//   - Shared returns the server that all the tests of a test binary share,
//     started by the first call. Starting MinIO takes a second or two, so
//     tests that only need a bucket should use it, each with a bucket of its
//     own (NewBucket). Its process lives until the tests end: the package
//     must call Main in its TestMain, which stops it; Shared fails a test
//     otherwise, since the process would outlive the test binary. The
//     shared server cannot be stopped or restarted by tests.
package minio

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/store/s3"
	"github.com/jitstream/jitstream/internal/testutil/proc"
	miniogo "github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

const (
	// accessKey and secretKey are the root credentials of test servers.
	accessKey = "jitstream-test"
	secretKey = "jitstream-test-secret"
	// Region is the region of test servers (MinIO's default).
	Region = "us-east-1"

	// startTimeout bounds how long a start waits for the server to be ready.
	startTimeout = 60 * time.Second
	// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
	stopGrace = 10 * time.Second
	// logTail is how much of the server's log errors quote.
	logTail = 4 << 10
)

// Binary returns the path of the MinIO server binary: $JITSTREAM_MINIO if
// set, else bin/minio in the jitstream cache directory
// (${JITSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/jitstream}), where
// `make minio` builds it. Its error says to run `make minio`.
func Binary() (string, error) {
	if p := os.Getenv("JITSTREAM_MINIO"); p != "" {
		if err := checkExecutable(p); err != nil {
			return "", fmt.Errorf("minio server binary from JITSTREAM_MINIO: %w (unset it and run `make minio`)", err)
		}
		return p, nil
	}
	cache := os.Getenv("JITSTREAM_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("finding the minio server binary: %w (set JITSTREAM_CACHE, and run `make minio`)", err)
			}
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "jitstream")
	}
	p := filepath.Join(cache, "bin", "minio")
	if err := checkExecutable(p); err != nil {
		return "", fmt.Errorf("minio server binary not found: %w; run `make minio` to build it", err)
	}
	return p, nil
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || (runtime.GOOS != "windows" && fi.Mode().Perm()&0o111 == 0) {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// Server is a running (or stopped) MinIO server.
type Server struct {
	bin         string
	dir         string // holds data/, home/, certs/ and minio.log
	port        int
	consolePort int
	shared      bool
	buckets     atomic.Int64

	mu   sync.Mutex
	proc *proc.Process // nil when stopped
}

// Start starts a MinIO server for the test tb, in a temporary directory of
// tb, and stops it at tb's cleanup. Failures (a missing binary included)
// fail tb.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := start(tb.TempDir())
	if err != nil {
		tb.Fatalf("minio: %v", err)
	}
	tb.Cleanup(s.stop)
	return s
}

// shared is the server of Shared. It is package state because it spans the
// tests of a test binary; Main ends it.
var shared struct {
	mu     sync.Mutex
	inMain bool
	srv    *Server
	err    error
}

// Shared returns the server shared by the tests of the test binary,
// starting it on the first call; a failed start fails every caller. The
// package must call Main from its TestMain. Tests must not Stop or Restart
// it, and should each use a bucket of their own (NewBucket).
func Shared(tb testing.TB) *Server {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.inMain {
		tb.Fatal("minio: Shared needs the package's TestMain to call minio.Main, which stops the server: func TestMain(m *testing.M) { minio.Main(m) }")
	}
	if shared.srv == nil && shared.err == nil {
		dir, err := os.MkdirTemp("", "jitstream-minio-")
		if err != nil {
			shared.err = fmt.Errorf("temporary directory: %w", err)
		} else if shared.srv, shared.err = start(dir); shared.err != nil {
			os.RemoveAll(dir)
		} else {
			shared.srv.shared = true
		}
	}
	if shared.err != nil {
		tb.Fatalf("minio: shared server: %v", shared.err)
	}
	return shared.srv
}

// Main runs the tests of m, then stops the server of Shared, if started,
// and removes its directory. It returns m.Run's exit code. Call it from
// TestMain:
//
//	func TestMain(m *testing.M) { minio.Main(m) }
func Main(m *testing.M) int {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	srv := shared.srv
	shared.srv, shared.err, shared.inMain = nil, nil, false
	shared.mu.Unlock()
	if srv != nil {
		srv.stop()
		os.RemoveAll(srv.dir)
	}
	return code
}

// start starts a server in dir, on free ports (trying others when a port
// was taken in the meantime).
func start(dir string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	for _, sub := range []string{"data", "home", "certs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("creating %s: %w", sub, err)
		}
	}
	var s *Server
	err = proc.WithFreePorts(2, func(ports []int) error {
		s = &Server{bin: bin, dir: dir, port: ports[0], consolePort: ports[1]}
		return s.launch()
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// launch runs the server process and waits until it is ready.
func (s *Server) launch() error {
	cmd := exec.Command(s.bin, "server",
		"--address", "127.0.0.1:"+strconv.Itoa(s.port),
		"--console-address", "127.0.0.1:"+strconv.Itoa(s.consolePort),
		"--certs-dir", filepath.Join(s.dir, "certs"),
		filepath.Join(s.dir, "data"))
	cmd.Env = s.env()
	p, err := proc.Start(cmd, proc.Options{Name: "minio", Log: s.logPath(), DeathSignal: syscall.SIGKILL})
	if err != nil {
		return err
	}
	if err := p.WaitReady(context.Background(), startTimeout, 20*time.Millisecond, readyProbe(s.Endpoint())); err != nil {
		p.Stop(stopGrace)
		tail := p.LogTail(logTail)
		if strings.Contains(tail, "already in use") {
			err = fmt.Errorf("%w: %w", proc.ErrAddrInUse, err)
		}
		return fmt.Errorf("minio server did not start: %w (exit: %v)\n%s: ...\n%s", err, p.Err(), s.logPath(), tail)
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// env is the server's environment: the test's, without MINIO_ settings
// (which could change the server's behaviour), with the test credentials,
// no web console, and a home directory of its own.
func (s *Server) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MINIO_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return append(env,
		"HOME="+filepath.Join(s.dir, "home"),
		"MINIO_ROOT_USER="+accessKey,
		"MINIO_ROOT_PASSWORD="+secretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
}

// readyPaths are polled in turn until each answers 200. Liveness answers
// as soon as the HTTP server is up, before the object layer, IAM and
// bucket metadata are initialized, when S3 requests still fail with 503
// "Server not initialized yet" (seen after restarts); the cluster check
// answers 200 only once they are.
var readyPaths = []string{"/minio/health/live", "/minio/health/cluster"}

// readyProbe returns the readiness probe of the server at endpoint: it
// passes once each of readyPaths, in turn, has answered 200.
func readyProbe(endpoint string) func(context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	next := 0 // the first path of readyPaths not yet passed
	return func(ctx context.Context) error {
		for ; next < len(readyPaths); next++ {
			if err := proc.GetOK(ctx, client, endpoint+readyPaths[next]); err != nil {
				return err
			}
		}
		return nil
	}
}

// stop stops the server if it runs.
func (s *Server) stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		p.Stop(stopGrace)
	}
}

// Stop stops the server (SIGTERM, then SIGKILL after a grace period),
// keeping its data for Restart. Requests to it fail with connection
// refused until then. Stopping a stopped server does nothing. It panics
// for the shared server, which other tests use.
func (s *Server) Stop() {
	if s.shared {
		panic("minio: Stop of the shared server; tests that stop the server need their own (minio.Start)")
	}
	s.stop()
}

// Restart stops the server if it runs and starts it again on the same port
// with the same data, waiting until it is ready. Failures fail tb. It fails
// tb for the shared server.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	if s.shared {
		tb.Fatal("minio: Restart of the shared server; tests that restart the server need their own (minio.Start)")
	}
	s.stop()
	if err := s.launch(); err != nil {
		tb.Fatalf("minio: restart: %v", err)
	}
}

// Running reports whether the server runs (it was not stopped).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

// Endpoint is the server's URL, like "http://127.0.0.1:40123".
func (s *Server) Endpoint() string { return "http://127.0.0.1:" + strconv.Itoa(s.port) }

// AccessKey is the server's root user.
func (s *Server) AccessKey() string { return accessKey }

// SecretKey is the server's root password.
func (s *Server) SecretKey() string { return secretKey }

// Dir is the server's directory: data/ holds the objects, minio.log the
// server's output.
func (s *Server) Dir() string { return s.dir }

func (s *Server) logPath() string { return filepath.Join(s.dir, "minio.log") }

// LogTail returns the end of the server's log.
func (s *Server) LogTail() string { return proc.Tail(s.logPath(), logTail) }

// Config returns the settings of an s3.Store on bucket of the server.
func (s *Server) Config(bucket string) s3.Config {
	return s3.Config{
		Endpoint:  s.Endpoint(),
		Bucket:    bucket,
		Region:    Region,
		AccessKey: accessKey,
		SecretKey: secretKey,
	}
}

// Client returns a minio-go client of the server, for checks beneath the
// store (multipart uploads, raw object names). Failures fail tb.
func (s *Server) Client(tb testing.TB) *miniogo.Client {
	tb.Helper()
	c, err := miniogo.New("127.0.0.1:"+strconv.Itoa(s.port), &miniogo.Options{
		Creds:  credentials.NewStaticV4(accessKey, secretKey, ""),
		Region: Region,
	})
	if err != nil {
		tb.Fatalf("minio: client: %v", err)
	}
	return c
}

// NewBucket creates a bucket with a name unique on the server (made from
// tb's name) and returns its name. The bucket and its objects are removed
// at tb's cleanup if the server runs then.
func (s *Server) NewBucket(tb testing.TB) string {
	tb.Helper()
	name := bucketName(tb.Name(), s.buckets.Add(1))
	c := s.Client(tb)
	if err := c.MakeBucket(tb.Context(), name, miniogo.MakeBucketOptions{Region: Region}); err != nil {
		tb.Fatalf("minio: creating bucket %s: %v\n%s", name, err, s.LogTail())
	}
	tb.Cleanup(func() {
		if !s.Running() {
			return // the test stopped it; the data goes with the directory
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.RemoveBucketWithOptions(ctx, name, miniogo.RemoveBucketOptions{ForceDelete: true}); err != nil {
			tb.Errorf("minio: removing bucket %s: %v", name, err)
		}
	})
	return name
}

// bucketName returns a valid bucket name (3 to 63 characters of a-z, 0-9
// and '-', starting and ending with a letter or digit) made of n and the
// test name.
func bucketName(testName string, n int64) string {
	var b strings.Builder
	b.WriteString("t" + strconv.FormatInt(n, 10) + "-")
	dash := true
	for _, c := range strings.ToLower(testName) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	name := b.String()
	if len(name) > 63 {
		name = name[:63]
	}
	return strings.TrimRight(name, "-")
}
