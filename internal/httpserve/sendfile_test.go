package httpserve

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"testing"

	"github.com/jitstream/jitstream/internal/store"
)

const probeEnv = "HTTPSERVE_SENDFILE_PROBE"

// TestSendfileProbe does nothing unless run by TestSendfile, under strace: it
// serves the fixture once with the store in the mode named by $probeEnv.
func TestSendfileProbe(t *testing.T) {
	mode := os.Getenv(probeEnv)
	if mode == "" {
		t.Skip("run by TestSendfile")
	}
	fx := newFixture(t)
	var st store.Store = fx.fs
	if mode == "get" {
		st = getOnly{fx.fs}
	}
	var o Options
	switch mode {
	case "paced":
		o.Pacer = nopPacer{size: 64 << 10}
	case "noidle":
		o.WriteIdleTimeout = -1
	}
	res := do(t, newServer(t, st, fx.file, o), "GET")
	res.check(t, 200)
	if !bytes.Equal(res.body, fx.want) {
		t.Fatal("body differs")
	}
}

var sendfileRe = regexp.MustCompile(`sendfile.*\)\s+=\s+(\d+)`)

// TestSendfile checks with strace(1) that the stored bytes of a response go
// out with sendfile(2) on a FileOpener backend, also when paced (one
// sendfile per chunk) and under write deadlines (one per WriteChunk), and
// not on others.
func TestSendfile(t *testing.T) {
	if testing.Short() || runtime.GOOS != "linux" || os.Getenv(probeEnv) != "" {
		t.Skip("needs linux and strace; not in -short")
	}
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Fatalf("strace is needed to check sendfile (run 'make deps'): %v", err)
	}
	fx := newFixture(t)
	var stored int64
	for _, p := range fx.file.Pieces {
		if p.IsStored() {
			stored += p.Len
		}
	}
	for _, mode := range []string{"fileopener", "noidle", "paced", "get"} {
		out := filepath.Join(t.TempDir(), "strace.out")
		cmd := exec.Command(strace, "-f", "-qq", "-o", out, "-e", "trace=sendfile",
			os.Args[0], "-test.run=^TestSendfileProbe$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), probeEnv+"="+mode)
		if b, err := cmd.CombinedOutput(); err != nil {
			if bytes.Contains(b, []byte("PTRACE")) || bytes.Contains(b, []byte("ptrace")) {
				t.Skipf("strace cannot trace here: %s", b)
			}
			t.Fatalf("%s: %v\n%s", mode, err, b)
		} else if !bytes.Contains(b, []byte("--- PASS: TestSendfileProbe")) {
			t.Fatalf("%s: probe did not pass:\n%s", mode, b)
		}
		trace, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var sent, calls int64
		for _, m := range sendfileRe.FindAllSubmatch(trace, -1) {
			n, _ := strconv.ParseInt(string(m[1]), 10, 64)
			sent += n
			calls++
		}
		t.Logf("%s: %d sendfile calls, %d bytes of %d stored", mode, calls, sent, stored)
		switch mode {
		case "fileopener", "noidle":
			// net/http copies the first 512 bytes it is handed before the
			// header is flushed through a buffer (for sniffing); the rest
			// must go out with sendfile.
			if sent < stored-512 || sent > stored {
				t.Errorf("%s: %d bytes sent with sendfile, want %d (less at most 512)", mode, sent, stored)
			}
			// Under write deadlines (the default), one sendfile per
			// MaxWrite at least.
			if min := stored / MaxWrite; mode == "fileopener" && calls < min {
				t.Errorf("fileopener: %d sendfile calls, want at least %d (one per %d bytes)", calls, min, MaxWrite)
			}
		case "paced":
			if sent < stored-512 || sent > stored {
				t.Errorf("paced: %d bytes sent with sendfile, want %d (less at most 512)", sent, stored)
			}
			if min := stored / (64 << 10); calls < min {
				t.Errorf("paced: %d sendfile calls, want at least %d (one per 64 KiB chunk)", calls, min)
			}
		case "get":
			if sent != 0 {
				t.Errorf("get: %d bytes sent with sendfile, want 0", sent)
			}
		}
	}
}
