package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jitstream/jitstream/internal/testutil/nginx"
	"github.com/jitstream/jitstream/internal/testutil/proc"
)

// child is a child process (a jitstream server or the Go reference),
// started by internal/testutil/proc in its own process group, so that it
// does not see the terminal's ctrl-C (the bench stops it itself), and
// told to go (SIGTERM, on Linux) if the bench dies without cleaning up.
type child struct {
	*proc.Process
	stop func() // stops it (once)
}

// childStopGrace is how long a stop waits after SIGTERM before SIGKILL.
const childStopGrace = 6 * time.Second

// childLogTail is how much of a child's log errors quote.
const childLogTail = 2000

// running holds the stop funcs of every server not yet stopped, for
// stopAll.
var running struct {
	sync.Mutex
	n int
	m map[int]func()
}

// track registers stop for stopAll and returns the func that stops once
// and unregisters.
func track(stop func()) func() {
	running.Lock()
	defer running.Unlock()
	if running.m == nil {
		running.m = map[int]func(){}
	}
	running.n++
	id := running.n
	var once sync.Once
	f := func() {
		once.Do(func() {
			running.Lock()
			delete(running.m, id)
			running.Unlock()
			stop()
		})
	}
	running.m[id] = f
	return f
}

// startProc runs bin with args as the child name, its output appended to
// logPath.
func startProc(name, logPath, bin string, args ...string) (*child, error) {
	p, err := proc.Start(exec.Command(bin, args...), proc.Options{Name: name, Log: logPath, DeathSignal: syscall.SIGTERM})
	if err != nil {
		return nil, err
	}
	return &child{Process: p, stop: track(func() { p.Stop(childStopGrace) })}, nil
}

// stopAll stops every server not yet stopped, in parallel.
func stopAll() {
	running.Lock()
	fs := make([]func(), 0, len(running.m))
	for _, f := range running.m {
		fs = append(fs, f)
	}
	running.Unlock()
	var wg sync.WaitGroup
	for _, f := range fs {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	wg.Wait()
}

// server is a running HTTP server under test.
type server struct {
	name    string
	base    string // http://127.0.0.1:PORT
	pid     int    // 0 if unknown
	stop    func()
	startup time.Duration // from exec to the first successful readiness probe
}

// waitReady polls url until it answers 200, the child exits, or timeout
// passes. c should be the client the caller goes on using, so that its
// next request reuses the probe's connection.
func waitReady(ctx context.Context, c *http.Client, p *child, url string, timeout time.Duration) error {
	err := p.WaitReady(ctx, timeout, time.Millisecond, func(ctx context.Context) error { return proc.GetOK(ctx, c, url) })
	if err != nil {
		return fmt.Errorf("%w, waiting for %s; log:\n%s", err, url, p.LogTail(childLogTail))
	}
	return nil
}

// cpuTime returns the CPU time the threads of process pid have used, from
// /proc/PID/task/*/schedstat (nanoseconds; threads that exited are not
// counted, and Go seldom ends threads). ok is false off Linux.
func cpuTime(pid int) (d time.Duration, ok bool) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, false
	}
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue
		}
		var ns int64
		if _, err := fmt.Sscan(string(b), &ns); err == nil {
			d += time.Duration(ns)
		}
	}
	return d, true
}

// startServer starts a server with launch (which gets a free port), probing
// path until it answers. A child that exits before answering (its port
// taken in the meantime) is retried with another port.
func startServer(ctx context.Context, c *http.Client, name, path string, launch func(port int) (*child, error)) (*server, error) {
	var srv *server
	err := proc.WithFreePorts(1, func(ports []int) error {
		t0 := time.Now()
		p, err := launch(ports[0])
		if err != nil {
			return err
		}
		base := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
		if err := waitReady(ctx, c, p, base+path, 30*time.Second); err != nil {
			p.stop()
			if errors.Is(err, proc.ErrExited) && strings.Contains(p.LogTail(childLogTail), "in use") {
				err = fmt.Errorf("%w: %w", proc.ErrAddrInUse, err)
			}
			return err
		}
		srv = &server{name: name, base: base, pid: p.Pid(), stop: p.stop, startup: time.Since(t0)}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return srv, nil
}

// startNginx runs nginx (internal/testutil/nginx: sendfile on, two
// workers) serving root.
func startNginx(root string) (*server, error) {
	t0 := time.Now()
	base, stop, err := nginx.StartProcess(root)
	if err != nil {
		return nil, err
	}
	return &server{name: "nginx", base: base, stop: track(stop), startup: time.Since(t0)}, nil
}

// jitstream runs the server binary on a store.
type jitstream struct {
	bin   string
	store string
	logs  string
	n     int
	flags []string // given to every server, before the caller's
}

// start runs `jitstream serve` on a free port with the given extra flags.
func (j *jitstream) start(ctx context.Context, c *http.Client, flags ...string) (*server, error) {
	return startServer(ctx, c, "jitstream", "/healthz", func(port int) (*child, error) {
		j.n++
		args := append([]string{"serve", "--addr", fmt.Sprintf("127.0.0.1:%d", port), "--store", j.store, "--sample=false"}, j.flags...)
		args = append(args, flags...)
		return startProc("jitstream", filepath.Join(j.logs, "jitstream.log"), j.bin, args...)
	})
}

// hasServeFlag reports whether `jitstream serve` knows the flag name.
// (The flag package lists "-name type" for most flags, "-name" alone on
// its line for booleans.)
func (j *jitstream) hasServeFlag(ctx context.Context, name string) bool {
	out, _ := exec.CommandContext(ctx, j.bin, "serve", "-h").CombinedOutput()
	s := string(out)
	return strings.Contains(s, "-"+name+" ") || strings.Contains(s, "-"+name+"\n") || strings.Contains(s, "-"+name+"\t")
}

// ingest runs `jitstream ingest` and returns the new asset's id.
func (j *jitstream) ingest(ctx context.Context, user, file string) (string, error) {
	cmd := exec.CommandContext(ctx, j.bin, "ingest", "--store", j.store, "--user", user, "--progress", "never", file)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("jitstream ingest: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	id := strings.TrimSpace(stdout.String())
	if id == "" || strings.ContainsAny(id, " \n/") {
		return "", fmt.Errorf("jitstream ingest printed %q, want an asset id", stdout.String())
	}
	return id, nil
}

// buildJitstream compiles ./cmd/jitstream into dir.
func buildJitstream(ctx context.Context, repo, dir string) (string, error) {
	bin := filepath.Join(dir, "jitstream")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/jitstream")
	cmd.Dir = repo
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/jitstream: %v\n%s", err, out)
	}
	return bin, nil
}
