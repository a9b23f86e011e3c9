package cluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/testutil/proc"
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
	addr string        // 127.0.0.1:PORT, kept across restarts
	proc *proc.Process // nil when not running
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
func (n *Node) LogTail() string { return proc.Tail(n.LogPath(), logTail) }

// Running reports whether the node's process runs.
func (n *Node) Running() bool {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	return p != nil && !p.Exited()
}

// Kill kills the node's process group with SIGKILL (a crash: nothing is
// cleaned up) and waits until the process has exited. Killing a node that
// does not run does nothing.
func (n *Node) Kill() {
	if p := n.take(); p != nil {
		p.Kill()
	}
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
func (n *Node) take() *proc.Process {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.proc
	n.proc = nil
	return p
}

// stop stops the node's process, if it runs: SIGTERM, then SIGKILL after
// stopGrace.
func (n *Node) stop() {
	if p := n.take(); p != nil {
		p.Stop(stopGrace)
	}
}

// launch starts the node's process and waits until it is ready. A first
// start picks a free port, trying others if one is taken meanwhile; later
// starts keep the node's address.
func (n *Node) launch(first bool) error {
	if !first {
		return n.launchOnce()
	}
	return proc.WithFreePorts(1, func(ports []int) error {
		n.mu.Lock()
		n.addr = "127.0.0.1:" + strconv.Itoa(ports[0])
		n.mu.Unlock()
		return n.launchOnce()
	})
}

// launchOnce starts the node's process on its address and waits until it
// answers /healthz with 200.
func (n *Node) launchOnce() error {
	addr := n.Addr()
	args := append([]string{"serve", "--addr", addr, "--sample=false"}, n.extra...)
	cmd := exec.Command(n.c.bin, n.c.withBackends(args)...)
	cmd.Env = n.c.env(n.dir)
	cmd.Dir = n.dir
	p, err := proc.Start(cmd, proc.Options{Name: "node " + strconv.Itoa(n.Index), Log: n.LogPath(), DeathSignal: syscall.SIGKILL})
	if err != nil {
		return fmt.Errorf("node %d: %w", n.Index, err)
	}
	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()
	client := &http.Client{Timeout: 5 * time.Second}
	err = p.WaitReady(context.Background(), readyTimeout, 20*time.Millisecond, func(ctx context.Context) error {
		return proc.GetOK(ctx, client, "http://"+addr+"/healthz")
	})
	if err != nil {
		n.stop()
		tail := p.LogTail(logTail)
		if strings.Contains(tail, "address already in use") {
			err = fmt.Errorf("%w: %w", proc.ErrAddrInUse, err)
		}
		return fmt.Errorf("node %d on %s did not start: %w (exit: %v)\n%s:\n%s", n.Index, addr, err, p.Err(), n.LogPath(), tail)
	}
	return nil
}
