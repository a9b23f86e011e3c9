//go:build unix

package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// start starts the shell script script with its log in a temporary
// directory, stopping it (grace 1s) at the test's cleanup.
func start(t *testing.T, o Options, script string) *Process {
	t.Helper()
	if o.Log == "" {
		o.Log = filepath.Join(t.TempDir(), "out.log")
	}
	p, err := Start(exec.Command("sh", "-c", script), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(time.Second) })
	return p
}

// logHas returns a readiness probe that passes once p's log (of this
// run) holds s.
func logHas(p *Process, s string) func(context.Context) error {
	return func(context.Context) error {
		if !strings.Contains(p.LogTail(1<<10), s) {
			return fmt.Errorf("no %q in the log yet", s)
		}
		return nil
	}
}

// childPIDLine is the line of a script's child pid: "child=PID".
var childPIDLine = regexp.MustCompile(`(?m)^child=(\d+)$`)

// childPID waits until p has logged "child=PID" and returns PID.
func childPID(t *testing.T, p *Process) int {
	t.Helper()
	var pid int
	err := p.WaitReady(t.Context(), 10*time.Second, 5*time.Millisecond, func(context.Context) error {
		m := childPIDLine.FindStringSubmatch(p.LogTail(1 << 10))
		if m == nil {
			return errors.New("no child pid in the log yet")
		}
		pid, _ = strconv.Atoi(m[1])
		return nil
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, p.LogTail(1<<10))
	}
	return pid
}

// alive reports whether process pid runs. A zombie (exited, not yet
// reaped by whoever inherited it) does not, where /proc tells.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // no /proc here, or the process just went: ask again
	}
	// "pid (comm) STATE ...": comm may hold spaces and parentheses, the
	// state follows the last parenthesis.
	s := string(b)
	return !strings.HasPrefix(strings.TrimSpace(s[strings.LastIndexByte(s, ')')+1:]), "Z")
}

// waitGone waits, within a deadline, until process pid no longer runs.
func waitGone(t *testing.T, pid int, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for alive(pid) {
		select {
		case <-ctx.Done():
			t.Fatalf("%s (pid %d) still runs", what, pid)
		case <-tick.C:
		}
	}
}

// TestStop: Stop and Kill end the process and the children in its group;
// a process that ignores the stop signal is killed after the grace
// period; Options.StopSignal goes to the process alone.
func TestStop(t *testing.T) {
	for _, tc := range []struct {
		name   string
		o      Options
		script string
		stop   func(*Process)
		// minTime is the least a stop takes; exit is the wanted exit
		// error, and logged a line the log must hold.
		minTime      time.Duration
		exit, logged string
	}{
		{
			name:   "SIGTERM to the group",
			script: `sleep 300 & echo child=$!; wait`,
			stop:   func(p *Process) { p.Stop(10 * time.Second) },
			exit:   "signal: terminated",
		},
		{
			name:   "SIGKILL to the group",
			script: `sleep 300 & echo child=$!; wait`,
			stop:   func(p *Process) { p.Kill() },
			exit:   "signal: killed",
		},
		{
			name:    "SIGKILL after the grace period",
			script:  `trap '' TERM; sleep 300 & echo child=$!; while :; do wait; done`,
			stop:    func(p *Process) { p.Stop(200 * time.Millisecond) },
			minTime: 200 * time.Millisecond,
			exit:    "signal: killed",
		},
		{
			// The shell quits on SIGQUIT; its child in the group, which
			// the signal does not reach, goes with the last SIGKILL.
			name:   "stop signal to the process alone",
			o:      Options{StopSignal: syscall.SIGQUIT},
			script: `trap 'echo got QUIT; exit 0' QUIT; sleep 300 & echo child=$!; while :; do wait; done`,
			stop:   func(p *Process) { p.Stop(10 * time.Second) },
			exit:   "<nil>",
			logged: "got QUIT",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := start(t, tc.o, tc.script)
			child := childPID(t, p)
			if !alive(p.Pid()) || !alive(child) || p.Exited() {
				t.Fatalf("process %d or its child %d does not run", p.Pid(), child)
			}
			t0 := time.Now()
			tc.stop(p)
			if d := time.Since(t0); d < tc.minTime {
				t.Errorf("stopped in %v, before the grace period %v", d, tc.minTime)
			}
			if !p.Exited() {
				t.Fatal("not exited after the stop")
			}
			if got := fmt.Sprint(p.Err()); got != tc.exit {
				t.Errorf("exit %q, want %q", got, tc.exit)
			}
			waitGone(t, child, "the child in the process group")
			if tail := p.LogTail(1 << 10); !strings.Contains(tail, tc.logged) {
				t.Errorf("log has no %q:\n%s", tc.logged, tail)
			}
			p.Stop(time.Second) // stopping again does nothing
		})
	}
}

// TestWaitReady: the wait ends with the probe's success, at an early exit
// of the process (with its exit status and log), at a permanent error, and
// at the deadline.
func TestWaitReady(t *testing.T) {
	errNotYet := errors.New("not ready yet")
	errOther := errors.New("another server answers")
	for _, tc := range []struct {
		name    string
		script  string
		timeout time.Duration
		probe   func(p *Process) func(context.Context) error
		// wantErr is nil for a ready process; wantMsg a part of the error.
		wantErr error
		wantMsg string
		// wantLog is a part of the log tail.
		wantLog string
	}{
		{
			name:    "ready",
			script:  `echo listening; exec sleep 300`,
			timeout: 10 * time.Second,
			probe:   func(p *Process) func(context.Context) error { return logHas(p, "listening") },
			wantLog: "listening",
		},
		{
			name:    "early exit",
			script:  `echo 'bind: address already in use' >&2; exit 3`,
			timeout: time.Minute, // noticing the exit must not wait for it
			probe:   func(*Process) func(context.Context) error { return func(context.Context) error { return errNotYet } },
			wantErr: ErrExited,
			wantMsg: "sh exited before it was ready (exit status 3)",
			wantLog: "bind: address already in use",
		},
		{
			name:    "permanent error",
			script:  `exec sleep 300`,
			timeout: time.Minute,
			probe: func(*Process) func(context.Context) error {
				return func(context.Context) error { return Permanent(errOther) }
			},
			wantErr: errOther,
			wantMsg: errOther.Error(),
		},
		{
			name:    "deadline",
			script:  `exec sleep 300`,
			timeout: 100 * time.Millisecond,
			probe:   func(*Process) func(context.Context) error { return func(context.Context) error { return errNotYet } },
			wantErr: errNotYet,
			wantMsg: "sh not ready within 100ms: not ready yet",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := start(t, Options{}, tc.script)
			t0 := time.Now()
			err := p.WaitReady(t.Context(), tc.timeout, 5*time.Millisecond, tc.probe(p))
			if d := time.Since(t0); tc.timeout >= time.Minute && d > 10*time.Second {
				t.Errorf("the wait took %v", d)
			}
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("WaitReady: %v", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("WaitReady = %v, want an error wrapping %v", err, tc.wantErr)
			case tc.wantErr != nil && !strings.Contains(err.Error(), tc.wantMsg):
				t.Errorf("WaitReady = %q, want it to say %q", err, tc.wantMsg)
			}
			tail := p.LogTail(1 << 10)
			if !strings.Contains(tail, tc.wantLog) || !strings.Contains(tail, "starting sh: sh -c") {
				t.Errorf("log tail has no %q or no start line:\n%s", tc.wantLog, tail)
			}
		})
	}
}

// TestWaitReadyCanceled: a canceled context ends the wait.
func TestWaitReadyCanceled(t *testing.T) {
	p := start(t, Options{}, `exec sleep 300`)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := p.WaitReady(ctx, time.Minute, 5*time.Millisecond, func(context.Context) error { return errors.New("not yet") })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitReady = %v, want context.Canceled", err)
	}
}

// TestLogTailOfRun: LogTail holds what the run wrote, not earlier runs
// with the same log; Tail holds the whole log's end.
func TestLogTailOfRun(t *testing.T) {
	log := filepath.Join(t.TempDir(), "shared.log")
	for _, word := range []string{"first", "second"} {
		p := start(t, Options{Name: "echo", Log: log}, "echo "+word+"-run")
		<-p.Done()
		if err := p.Err(); err != nil {
			t.Fatalf("%s run: %v", word, err)
		}
	}
	p := start(t, Options{Name: "echo", Log: log}, "echo third-run")
	<-p.Done()
	if tail := p.LogTail(1 << 10); strings.Contains(tail, "second-run") || !strings.Contains(tail, "third-run") {
		t.Errorf("LogTail of the third run:\n%s", tail)
	}
	if all := Tail(log, 1<<10); !strings.Contains(all, "first-run") || strings.Count(all, "=== ") != 3 {
		t.Errorf("Tail of the log, want three runs:\n%s", all)
	}
}

// TestStartError: a command that cannot start is an error naming it.
func TestStartError(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		cmd  *exec.Cmd
		o    Options
		want string
	}{
		{"missing binary", exec.Command(filepath.Join(dir, "no-such-binary")), Options{Log: filepath.Join(dir, "a.log")}, "starting no-such-binary"},
		{"no log", exec.Command("true"), Options{}, "Options.Log is empty"},
		{"log in a missing directory", exec.Command("true"), Options{Name: "x", Log: filepath.Join(dir, "nope", "x.log")}, "opening the log of x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Start(tc.cmd, tc.o)
			if err == nil {
				p.Stop(time.Second)
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start: %v, want it to say %q", err, tc.want)
			}
		})
	}
}
