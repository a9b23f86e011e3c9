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
// The server runs in its own process group. Stopping sends it SIGTERM, then
// SIGKILL to the group if it has not exited within 10 seconds. A test
// binary that crashes (panic, -timeout) leaves its servers running.
package redis

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Bounds on starting and stopping redis-server.
const (
	startTimeout = 15 * time.Second
	stopTimeout  = 10 * time.Second
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
	proc *process // nil when stopped
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

// process is one run of redis-server.
type process struct {
	cmd     *exec.Cmd
	output  *tailBuffer
	exited  chan struct{} // closed once cmd.Wait returned
	waitErr error         // set before exited is closed
}

var errAddrInUse = errors.New("address in use")

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
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{bin: bin, port: port, dir: dir}
		err = s.launch()
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errAddrInUse) {
			return nil, err
		}
		lastErr = err
	}
	return nil, fmt.Errorf("no free port after 5 attempts: %w", lastErr)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

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
	out := &tailBuffer{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", s.bin, err)
	}
	p := &process{cmd: cmd, output: out, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	if err := waitReady(s.Addr(), cmd.Process.Pid, p.exited); err != nil {
		p.terminate()
		msg := strings.TrimSpace(out.String())
		if p.waitErr != nil {
			err = fmt.Errorf("%w (exit: %v)", err, p.waitErr)
		}
		if strings.Contains(msg, "Address already in use") && !errors.Is(err, errAddrInUse) {
			err = fmt.Errorf("%w: %w", errAddrInUse, err)
		}
		return fmt.Errorf("redis-server on port %d did not start: %w\n%s", s.port, err, msg)
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// stop stops the running process, if any.
func (s *Server) stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		p.terminate()
	}
}

// terminate sends SIGTERM to the process group, then SIGKILL if it has
// not exited within stopTimeout, and waits for the exit.
func (p *process) terminate() {
	terminateGroup(p.cmd.Process)
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		killGroup(p.cmd.Process)
		<-p.exited
	}
}

// waitReady polls addr until the redis-server of process pid answers INFO,
// the process exits, or startTimeout passes. Another server answering on
// the port gives an error wrapping errAddrInUse.
func waitReady(addr string, pid int, exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		got, err := serverPID(addr, deadline)
		switch {
		case err == nil && got == pid:
			return nil
		case err == nil:
			return fmt.Errorf("%w: %s is answered by process %d, not %d", errAddrInUse, addr, got, pid)
		case !time.Now().Before(deadline):
			return fmt.Errorf("no answer from %s within %v: %w", addr, startTimeout, err)
		}
		select {
		case <-exited:
			return errors.New("redis-server exited")
		case <-tick.C:
		}
	}
}

// serverPID asks the server at addr for its process id (INFO server).
func serverPID(addr string, deadline time.Time) (int, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if d := time.Now().Add(time.Second); d.Before(deadline) {
		deadline = d
	}
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

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int

	mu  sync.Mutex
	buf []byte
}

// Write implements io.Writer.
func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// String returns the bytes kept.
func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
