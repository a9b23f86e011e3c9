// Package proc starts and stops the helper server processes of tests and
// benchmarks (MinIO, redis-server, nginx, jitstream nodes).
//
// A process started with Start runs in a process group of its own (on
// Unix), so that signals reach it and whatever it starts, and so that it
// does not see the terminal's ctrl-C; its standard output and error are
// appended to a log file, whose end goes into error messages (Tail,
// Process.LogTail). On Linux it can also be given a parent-death signal
// (Options.DeathSignal), so that it goes with the program that started it
// when that dies without stopping it (say, of a test timeout).
//
// Stop stops a process: SIGTERM to its group (or Options.StopSignal to
// the process alone), then SIGKILL to the group after a grace period.
// WaitReady polls a readiness probe until it passes, within a deadline,
// and notices when the process exits first; nothing waits a fixed time.
// FreePorts and WithFreePorts pick free loopback ports for servers,
// trying others when a port is taken between the pick and the server's
// bind.
//
// On Windows there are neither process groups nor signals: stopping kills
// the process alone, and a process whose starter dies lives on.
package proc

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
	"strings"
	"time"
)

// ErrExited is the error (wrapped) of WaitReady when the process exits
// before it is ready.
var ErrExited = errors.New("exited")

// ErrAddrInUse marks the error of a start that failed because its port
// was taken meanwhile: WithFreePorts then tries other ports.
var ErrAddrInUse = errors.New("address in use")

// Options configure Start.
type Options struct {
	// Name names the process in its log and in errors, like "minio";
	// default the base name of the command's path.
	Name string
	// Log is the file that receives the process's standard output and
	// error, appended (it is created if missing). Start first writes a
	// line with the time and the command line. Required.
	Log string
	// DeathSignal, if not nil, is the signal the kernel sends the process
	// when the program that started it dies without stopping it (Linux's
	// parent-death signal; ignored elsewhere, where such a process lives
	// on). It reaches the process alone, not its group.
	DeathSignal os.Signal
	// StopSignal, if not nil, is the signal Stop sends the process alone
	// to stop it, for a server with a graceful stop that it passes on to
	// its children (nginx: SIGQUIT to the master). By default Stop sends
	// SIGTERM to the process group.
	StopSignal os.Signal
}

// Process is a process started by Start. Its methods are safe for
// concurrent use.
type Process struct {
	name       string
	cmd        *exec.Cmd
	log        string
	logStart   int64 // size of the log before this run wrote to it
	stopSignal os.Signal
	done       chan struct{} // closed once the process has exited
	err        error         // cmd.Wait's error, set before done is closed
}

// Start starts cmd, which must not have been started, in a process group
// of its own with its standard output and error (which Start sets)
// appended to o.Log, and returns once it runs. Its SysProcAttr is kept,
// with the process group (and death signal) set in it.
//
// With a death signal, the process gets it on Linux when the thread that
// started it exits, not the program: the goroutine that starts and waits
// for the process keeps its thread, locked, until the process exits.
func Start(cmd *exec.Cmd, o Options) (*Process, error) {
	if o.Log == "" {
		return nil, errors.New("proc: Options.Log is empty")
	}
	name := o.Name
	if name == "" {
		name = filepath.Base(cmd.Path)
	}
	logf, err := os.OpenFile(o.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the log of %s: %w", name, err)
	}
	defer logf.Close() // the child has a descriptor of its own
	var logStart int64
	if fi, err := logf.Stat(); err == nil {
		logStart = fi.Size()
	}
	if _, err := fmt.Fprintf(logf, "=== %s: starting %s: %s\n", time.Now().Format(time.RFC3339Nano), name, strings.Join(cmd.Args, " ")); err != nil {
		return nil, fmt.Errorf("writing the log of %s: %w", name, err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	setProcAttr(cmd, o.DeathSignal)

	p := &Process{
		name:       name,
		cmd:        cmd,
		log:        o.Log,
		logStart:   logStart,
		stopSignal: o.StopSignal,
		done:       make(chan struct{}),
	}
	started := make(chan error, 1)
	go func() {
		// Linux sends the parent-death signal when the thread that
		// started the process exits: keep this one until it has exited.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	return p, nil
}

// Name is the process's name (Options.Name).
func (p *Process) Name() string { return p.name }

// Pid is the process's id, which is also its process group's on Unix.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is the process's exit error (cmd.Wait's: nil for a zero exit
// status) once it has exited, nil before.
func (p *Process) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// LogPath is the file that receives the process's output.
func (p *Process) LogPath() string { return p.log }

// LogTail returns the end, at most n bytes, of what this run of the
// process wrote to its log (from Start's line on), for error messages.
func (p *Process) LogTail(n int) string { return tail(p.log, p.logStart, n) }

// Stop stops the process and waits until it has exited: it sends SIGTERM
// to the process group (or Options.StopSignal to the process), then
// SIGKILL to the group if the process has not exited within grace, and
// last SIGKILL to the group again for whatever is left of it (the
// children of a process that exited). Stopping a process that has exited
// only does the last.
func (p *Process) Stop(grace time.Duration) {
	if !p.Exited() {
		if p.stopSignal == nil {
			terminateGroup(p.cmd.Process)
		} else if err := p.cmd.Process.Signal(p.stopSignal); err != nil {
			_ = p.cmd.Process.Kill() // the signal cannot be sent here
		}
		t := time.NewTimer(grace)
		select {
		case <-p.done:
		case <-t.C:
			killGroup(p.cmd.Process)
			<-p.done
		}
		t.Stop()
	}
	killGroup(p.cmd.Process)
}

// Kill kills the process group with SIGKILL (a crash: nothing is cleaned
// up) and waits until the process has exited.
func (p *Process) Kill() {
	killGroup(p.cmd.Process)
	<-p.done
}

// WaitReady calls probe, then again every interval, until it returns nil
// (the process is ready), the process exits (an error wrapping ErrExited,
// with the exit status), or timeout passes or ctx ends (an error wrapping
// probe's last). probe gets a context that ends at the deadline. An error
// of probe marked with Permanent ends the wait at once: WaitReady returns
// the error it marks. A probe that passes after the process has exited
// (another process answered) counts as an exit.
func (p *Process) WaitReady(ctx context.Context, timeout, interval time.Duration, probe func(context.Context) error) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		err := probe(wctx)
		var perm *permanentError
		switch {
		case err == nil && !p.Exited():
			return nil
		case errors.As(err, &perm):
			return perm.err
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s %w before it was ready (%v)", p.name, ErrExited, p.err)
		case <-wctx.Done():
			if ctx.Err() != nil {
				return fmt.Errorf("waiting for %s: %w (last: %w)", p.name, ctx.Err(), err)
			}
			return fmt.Errorf("%s not ready within %v: %w", p.name, timeout, err)
		case <-tick.C:
		}
	}
}

// permanentError is an error marked by Permanent.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err, an error of a readiness probe, as one that waiting
// will not change (say, another server answers on the port): WaitReady
// returns err at once. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// GetOK GETs url with c and returns nil if it answers 200 (its body read
// to the end, so that c can reuse the connection), else an error with the
// status and the start of the body. It serves as a readiness probe.
func GetOK(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		_, err := io.Copy(io.Discard, resp.Body)
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if body = bytes.TrimSpace(body); len(body) > 0 {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return fmt.Errorf("GET %s: %s", url, resp.Status)
}

// Tail returns the end of the file at path, at most n bytes, without
// surrounding white space, starting at a line where the cut leaves whole
// lines; if the file cannot be read, a note that says why.
func Tail(path string, n int) string { return tail(path, 0, n) }

// tail returns the end of the file at path from offset start on, at most
// n bytes, starting at a line if it was cut.
func tail(path string, start int64, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	off := max(start, fi.Size()-int64(n), 0)
	b := make([]byte, max(fi.Size()-off, 0))
	k, err := f.ReadAt(b, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	b = b[:k]
	if off > start {
		// Drop the cut first line, unless nothing would be left (the
		// end of one long line).
		if i := bytes.IndexByte(b, '\n'); i >= 0 && len(bytes.TrimSpace(b[i+1:])) > 0 {
			b = b[i+1:]
		}
	}
	return string(bytes.TrimSpace(b))
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ports, err := FreePorts(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago (all held open together while picking them).
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// portAttempts is how many sets of ports WithFreePorts tries.
const portAttempts = 5

// WithFreePorts calls start with n free ports (FreePorts), and again with
// others while it fails with an error wrapping ErrAddrInUse (another
// process took a port between the pick and the server's bind), up to 5
// times. It returns start's last error.
func WithFreePorts(n int, start func(ports []int) error) error {
	var err error
	for range portAttempts {
		ports, perr := FreePorts(n)
		if perr != nil {
			return perr
		}
		if err = start(ports); !errors.Is(err, ErrAddrInUse) {
			return err
		}
	}
	return fmt.Errorf("no free port after %d attempts: %w", portAttempts, err)
}
