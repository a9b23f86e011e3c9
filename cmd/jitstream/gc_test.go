package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
)

// TestCLIGC: jitstream gc lists (dry run) and removes what an interrupted
// ingest left, and only that.
func TestCLIGC(t *testing.T) {
	dir := t.TempDir()
	out, stderr, err := runCLI(t, "ingest", "--store", dir, "--user", "alice", fixtures.H264AAC(t))
	if err != nil {
		t.Fatalf("ingest: %v: %s", err, stderr)
	}
	id := strings.TrimSpace(out)
	st, err := store.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	orphan := "users/alice/assets/dead/src/00-r1"
	if _, err := st.Put(context.Background(), orphan, strings.NewReader("partial")); err != nil {
		t.Fatal(err)
	}
	// The default grace period (24 h) protects it: it may be an ingest in
	// progress.
	if out, _, err = runCLI(t, "gc", "--store", dir); err != nil || !strings.Contains(out, "removed 0 objects") || !strings.Contains(out, "1 newer") {
		t.Fatalf("gc with the default grace: %v\n%s", err, out)
	}
	if out, _, err = runCLI(t, "gc", "--store", dir, "--older-than", "0s", "--dry-run"); err != nil || !strings.Contains(out, "would remove "+orphan) {
		t.Fatalf("gc --dry-run: %v\n%s", err, out)
	}
	if out, _, err = runCLI(t, "gc", "--store", dir, "--older-than", "0s", "--json"); err != nil {
		t.Fatalf("gc: %v\n%s", err, out)
	}
	var rep struct {
		Orphans []string `json:"orphans"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Orphans) != 1 || rep.Orphans[0] != orphan {
		t.Fatalf("gc --json = %s (%v), want the one orphan", out, err)
	}
	if _, err := st.Stat(context.Background(), orphan); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("orphan still stored: %v", err)
	}
	if out, _, err = runCLI(t, "ls", "--store", dir, "--user", "alice"); err != nil || !strings.Contains(out, id) {
		t.Errorf("the asset is no longer listed after gc: %v\n%s", err, out)
	}
	if _, _, err := runCLI(t, "gc", "--store", dir, "extra"); !errors.Is(err, errUsage) {
		t.Errorf("gc with an argument = %v, want a usage error", err)
	}
}
