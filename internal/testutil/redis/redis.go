// Package redis runs a real redis-server for tests, on a free 127.0.0.1
// port, without persistence (no RDB snapshots, no append-only file) and
// with a private working directory.
//
// Start gives each test its own server, stopped when the test ends. To share
// one server among the tests of a test binary, call Main from TestMain and
// Shared from the tests; the tests then keep apart by key prefix (for
// example state.RedisOptions{Prefix: t.Name() + ":"}):
//
//	func TestMain(m *testing.M) { redis.Main(m) }
//
//	func TestX(t *testing.T) {
//		srv := redis.Shared(t)
//		...
//	}
//
// A missing redis-server binary fails the test (it never skips): run
// `make deps` to install it.
//
// The server runs in its own process group (internal/testutil/proc), with
// its output in redis-server.log in its directory. Stopping sends it
// SIGTERM, then SIGKILL to the group if it has not exited within 10
// seconds. A test binary that crashes (panic, -timeout) leaves its servers
// running.
package redis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/testutil/proc"
)

// Bounds on starting and stopping redis-server, and how much of its log
// errors quote.
const (
	startTimeout = 15 * time.Second
	stopTimeout  = 10 * time.Second
	logTail      = 4 << 10
)

// binaryCandidates are the redis-server binaries tried in turn: the one on
// PATH, then Debian's and Homebrew's locations.
var binaryCandidates = []string{"redis-server", "/usr/bin/redis-server", "/usr/local/bin/redis-server", "/opt/homebrew/bin/redis-server"}

// Server is a redis-server process for tests. Its methods are safe for
// concurrent use.
type Server struct {
	bin    string
	port   int
	dir    string
	shared bool

	mu   sync.Mutex
	proc *proc.Process // nil when stopped
}

// Start runs a redis-server on a free 127.0.0.1 port and waits until it
// answers. The server is stopped when the test ends. Failing to start it,
// a missing binary included, fails the test.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := start(tb.TempDir())
	if err != nil {
		tb.Fatalf("redis: %v", err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// URL returns the URL of database 0 of the server, like
// redis://127.0.0.1:40123/0.
func (s *Server) URL() string {
	return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port)
}

// Addr returns the host:port address of the server.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Stop stops the server; it is safe to call more than once. Clients then
// get connection errors until Restart. Stopping the shared server panics:
// it belongs to every test of the binary.
func (s *Server) Stop() {
	if s.shared {
		panic("redis: Stop of the shared server; use Start for a server of your own")
	}
	s.stop()
}

// Restart stops the server if it is running and starts it again on the
// same port, waiting until it answers. The data does not survive: the
// server restarts empty. Failing to restart, for example because another
// process took the port meanwhile, fails the test. Restarting the shared
// server fails the test.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	if s.shared {
		tb.Fatal("redis: Restart of the shared server; use Start for a server of your own")
	}
	s.stop()
	if err := s.launch(); err != nil {
		tb.Fatalf("redis: restarting on port %d: %v", s.port, err)
	}
}

// findBinary returns the first of candidates that exists.
func findBinary(candidates []string) (string, error) {
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("redis-server not found (tried %s); run `make deps` to install it", strings.Join(candidates, ", "))
}

// start runs a server with working directory dir on a free port, trying
// another port when the one found free is taken meanwhile.
func start(dir string) (*Server, error) {
	bin, err := findBinary(binaryCandidates)
	if err != nil {
		return nil, err
	}
	var s *Server
	err = proc.WithFreePorts(1, func(ports []int) error {
		s = &Server{bin: bin, port: ports[0], dir: dir}
		return s.launch()
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// logPath is the file that receives the server's output (of every run).
func (s *Server) logPath() string { return filepath.Join(s.dir, "redis-server.log") }

// launch starts redis-server on s.port and waits until it answers.
func (s *Server) launch() error {
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--protected-mode", "no",
	)
	p, err := proc.Start(cmd, proc.Options{Name: "redis-server", Log: s.logPath()})
	if err != nil {
		return err
	}
	addr := s.Addr()
	err = p.WaitReady(context.Background(), startTimeout, 10*time.Millisecond, func(ctx context.Context) error {
		got, err := serverPID(ctx, addr)
		if err == nil && got != p.Pid() {
			return proc.Permanent(fmt.Errorf("%w: %s is answered by process %d, not %d", proc.ErrAddrInUse, addr, got, p.Pid()))
		}
		return err
	})
	if err != nil {
		p.Stop(stopTimeout)
		msg := p.LogTail(logTail)
		if strings.Contains(msg, "Address already in use") && !errors.Is(err, proc.ErrAddrInUse) {
			err = fmt.Errorf("%w: %w", proc.ErrAddrInUse, err)
		}
		return fmt.Errorf("redis-server on port %d did not start: %w\n%s", s.port, err, msg)
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// stop stops the running process, if any: SIGTERM to its process group,
// then SIGKILL if it has not exited within stopTimeout.
func (s *Server) stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		p.Stop(stopTimeout)
	}
}

// serverPID asks the server at addr for its process id (INFO server),
// within a second and ctx's deadline.
func serverPID(ctx context.Context, addr string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return 0, err
	}
	if _, err := io.WriteString(conn, "INFO server\r\n"); err != nil {
		return 0, err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	line = strings.TrimRight(line, "\r\n")
	if !strings.HasPrefix(line, "$") {
		return 0, fmt.Errorf("INFO reply %q", line)
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 0 {
		return 0, fmt.Errorf("INFO reply %q", line)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, err
	}
	for l := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("INFO reply without process_id")
}
