package proc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// deathHelperEnv, set, makes TestDeathSignal the helper process that
// starts the processes and dies; its value is the directory of their logs.
const deathHelperEnv = "JITSTREAM_PROC_DEATH_HELPER"

// TestDeathSignal: a process started with a death signal goes when the
// program that started it dies without stopping it, not before, however
// many of the program's threads end meanwhile; one without lives on.
func TestDeathSignal(t *testing.T) {
	if dir := os.Getenv(deathHelperEnv); dir != "" {
		deathHelper(dir)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDeathSignal$", "-test.count=1")
	cmd.Env = append(os.Environ(), deathHelperEnv+"="+t.TempDir())
	out, err := cmd.Output()
	m := regexp.MustCompile(`with=(\d+) without=(\d+)`).FindSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	with, _ := strconv.Atoi(string(m[1]))
	without, _ := strconv.Atoi(string(m[2]))
	t.Cleanup(func() { _ = syscall.Kill(-without, syscall.SIGKILL) })

	waitGone(t, with, "the process with a death signal")
	if !alive(without) {
		t.Errorf("the process without a death signal (pid %d) went with its starter", without)
	}
}

// deathHelper starts a process with a death signal and one without, ends
// threads of its own, checks that both still run, prints their pids and
// exits without stopping them.
func deathHelper(dir string) {
	start := func(name string, sig os.Signal) *Process {
		p, err := Start(exec.Command("sleep", "300"), Options{Name: name, Log: filepath.Join(dir, name+".log"), DeathSignal: sig})
		if err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
		return p
	}
	with := start("with", syscall.SIGKILL)
	without := start("without", nil)

	// A goroutine that exits locked to its thread ends the thread: were
	// the starting thread among them, the death signal would fire now.
	var wg sync.WaitGroup
	for range 4 * runtime.GOMAXPROCS(0) {
		wg.Go(func() { runtime.LockOSThread() })
	}
	wg.Wait()
	select {
	case <-with.Done():
		fmt.Println("the process with a death signal exited while its starter ran:", with.Err())
		os.Exit(2)
	case <-time.After(100 * time.Millisecond): // the signal would be there by now
	}
	fmt.Printf("with=%d without=%d\n", with.Pid(), without.Pid())
	os.Exit(0)
}
