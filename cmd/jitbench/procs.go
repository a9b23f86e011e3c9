package main

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
	"strings"
	"sync"
	"time"

	"github.com/jitstream/jitstream/internal/testutil/nginx"
)

// proc is a child process (a jitstream server or nginx) started in its own
// process group, so that it does not see the terminal's ctrl-C (the bench
// stops it itself) and so that nginx's workers go with their master.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string // file receiving the child's stdout and stderr
	done chan struct{}
	err  error  // exit status, valid once done is closed
	stop func() // kill (once)
}

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

func startProc(name, logPath, bin string, args ...string) (*proc, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	fmt.Fprintf(lf, "=== %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	p.stop = track(p.kill)
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill asks the child's process group to exit, waits for the child to
// exit, and after a grace period kills the group.
func (p *proc) kill() {
	if !p.exited() {
		terminateGroup(p.cmd.Process)
		select {
		case <-p.done:
		case <-time.After(6 * time.Second):
			killGroup(p.cmd.Process)
			<-p.done
		}
	}
	// Anything left in the group (nginx workers whose master was killed).
	killGroup(p.cmd.Process)
}

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

// logTail returns the end of the child's log, for error messages.
func (p *proc) logTail() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(bytes.TrimSpace(b))
}

// freePort returns a loopback port that was free a moment ago. Callers retry
// when another process takes it in between.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// server is a running HTTP server under test.
type server struct {
	name    string
	base    string // http://127.0.0.1:PORT
	pid     int    // 0 if unknown
	stop    func()
	startup time.Duration // from exec to the first successful readiness probe
}

var errExited = errors.New("process exited")

// waitReady polls url until it answers 200, the child exits, or the
// deadline passes. c should be the client the caller goes on using, so that
// its next request reuses the probe's connection.
func waitReady(ctx context.Context, c *http.Client, p *proc, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := c.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if p.exited() {
			return fmt.Errorf("%s: %w (%v) before answering %s:\n%s", p.name, errExited, p.err, url, p.logTail())
		}
		if ctx.Err() != nil {
			if err == nil {
				err = fmt.Errorf("status %s", resp.Status)
			}
			return fmt.Errorf("%s did not answer %s within %v (last: %v); log:\n%s", p.name, url, timeout, err, p.logTail())
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Millisecond):
		case <-p.done:
		}
	}
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

// getOK GETs url and wants 200, discarding the body (keeping the connection).
func getOK(ctx context.Context, c *http.Client, url string) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// startServer starts a server with launch (which gets a free port), probing
// path until it answers. A child that exits before answering (its port
// taken in the meantime) is retried with another port.
func startServer(ctx context.Context, c *http.Client, name, path string, launch func(port int) (*proc, error)) (*server, error) {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		p, err := launch(port)
		if err != nil {
			return nil, err
		}
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		err = waitReady(ctx, c, p, base+path, 30*time.Second)
		if err == nil {
			return &server{name: name, base: base, pid: p.cmd.Process.Pid, stop: p.stop, startup: time.Since(t0)}, nil
		}
		p.stop()
		lastErr = err
		if !errors.Is(err, errExited) || !strings.Contains(p.logTail(), "in use") {
			return nil, err
		}
	}
	return nil, lastErr
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
	return startServer(ctx, c, "jitstream", "/healthz", func(port int) (*proc, error) {
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
