package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Timing of node processes.
const (
	// readyTimeout bounds how long a start waits for /healthz to answer 200.
	readyTimeout = 30 * time.Second
	// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
	stopGrace = 10 * time.Second
	// logTail is how much of a node's log LogTail returns.
	logTail = 8 << 10
)

// Node is one `jitstream serve` process of a cluster. Its methods are safe
// for concurrent use.
type Node struct {
	// Index is the node's position in Cluster.Nodes.
	Index int

	c     *Cluster
	dir   string   // the node's TMPDIR and its log
	extra []string // more serve flags

	mu   sync.Mutex
	addr string   // 127.0.0.1:PORT, kept across restarts
	proc *process // nil when not running
}

// process is one run of a node.
type process struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed once the process has exited
	waitErr error         // set before exited is closed
}

func (c *Cluster) newNode(i int, extra []string) (*Node, error) {
	dir := filepath.Join(c.dir, "node"+strconv.Itoa(i))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("node %d: %w", i, err)
	}
	return &Node{Index: i, c: c, dir: dir, extra: extra}, nil
}

// Addr is the node's listen address, host:port.
func (n *Node) Addr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.addr
}

// URL is the node's base URL, like "http://127.0.0.1:40123".
func (n *Node) URL() string { return "http://" + n.Addr() }

// LogPath is the file holding the node's output (of every run).
func (n *Node) LogPath() string { return filepath.Join(n.dir, "jitstream.log") }

// LogTail returns the end of the node's log.
func (n *Node) LogTail() string {
	b, err := os.ReadFile(n.LogPath())
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(b) > logTail {
		b = b[len(b)-logTail:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return strings.TrimSpace(string(b))
}

// Running reports whether the node's process runs.
func (n *Node) Running() bool {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Kill kills the node's process group with SIGKILL (a crash: nothing is
// cleaned up) and waits until the process has exited. Killing a node that
// does not run does nothing.
func (n *Node) Kill() {
	p := n.take()
	if p == nil {
		return
	}
	kill(p.cmd.Process)
	<-p.exited
}

// Stop stops the node: SIGTERM (a graceful shutdown), then SIGKILL after a
// grace period. Stopping a node that does not run does nothing.
func (n *Node) Stop() { n.stop() }

// Start starts a node that was killed or stopped, on the same address, and
// waits until it answers /healthz with 200. Failures fail tb.
func (n *Node) Start(tb testing.TB) {
	tb.Helper()
	if n.Running() {
		tb.Fatalf("cluster: node %d already runs", n.Index)
	}
	if err := n.launch(false); err != nil {
		tb.Fatalf("cluster: %v", err)
	}
}

// Restart stops the node (gracefully) and starts it again on the same
// address. Failures fail tb.
func (n *Node) Restart(tb testing.TB) {
	tb.Helper()
	n.stop()
	n.Start(tb)
}

// take detaches the running process from n and returns it (nil if none).
func (n *Node) take() *process {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.proc
	n.proc = nil
	return p
}

func (n *Node) stop() {
	p := n.take()
	if p == nil {
		return
	}
	terminate(p.cmd.Process)
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		kill(p.cmd.Process)
		<-p.exited
	}
}

// errAddrInUse is a start on an address that was taken meanwhile.
var errAddrInUse = errors.New("address in use")

// launch starts the node's process and waits until it is ready. A first
// start picks a free port, trying others if one is taken meanwhile; later
// starts keep the node's address.
func (n *Node) launch(first bool) error {
	for attempt := 0; ; attempt++ {
		if first {
			port, err := freePort()
			if err != nil {
				return fmt.Errorf("node %d: %w", n.Index, err)
			}
			n.mu.Lock()
			n.addr = "127.0.0.1:" + strconv.Itoa(port)
			n.mu.Unlock()
		}
		err := n.launchOnce()
		if err == nil || !first || !errors.Is(err, errAddrInUse) || attempt == 4 {
			return err
		}
	}
}

func (n *Node) launchOnce() error {
	addr := n.Addr()
	logf, err := os.OpenFile(n.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("node %d: opening its log: %w", n.Index, err)
	}
	fmt.Fprintf(logf, "=== %s: cluster: starting node %d on %s\n", time.Now().Format(time.RFC3339Nano), n.Index, addr)
	args := append([]string{"serve", "--addr", addr, "--sample=false"}, n.extra...)
	cmd := exec.Command(n.c.bin, n.c.withBackends(args)...)
	cmd.Env = n.c.env(n.dir)
	cmd.Dir = n.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	setProcAttr(cmd)

	p := &process{cmd: cmd, exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// On Linux the node gets SIGKILL when the thread that started it
		// exits (Pdeathsig): keep this thread, locked to this goroutine,
		// until the node exits.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	err = <-started
	logf.Close() // the child has its own descriptor
	if err != nil {
		return fmt.Errorf("node %d: starting %s: %w", n.Index, n.c.bin, err)
	}
	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()
	if err := waitHealthy("http://"+addr, p.exited); err != nil {
		n.stop()
		tail := n.LogTail()
		if strings.Contains(tail, "address already in use") {
			err = fmt.Errorf("%w: %w", errAddrInUse, err)
		}
		return fmt.Errorf("node %d on %s did not start: %w (exit: %v)\n%s:\n%s", n.Index, addr, err, p.waitErr, n.LogPath(), tail)
	}
	return nil
}

// waitHealthy polls base/healthz until it answers 200, the process exits,
// or readyTimeout passes.
func waitHealthy(base string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
		if err != nil {
			return fmt.Errorf("building the health request: %w", err)
		}
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/healthz answered %s: %s", resp.Status, bytes.TrimSpace(body))
		}
		last = err
		select {
		case <-exited:
			return errors.New("the process exited")
		case <-ctx.Done():
			return fmt.Errorf("not healthy within %v: %w", readyTimeout, last)
		case <-tick.C:
		}
	}
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
