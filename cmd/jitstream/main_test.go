package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jitstream/jitstream/internal/testutil/fixtures"
)

func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), err
}

func TestCLIIngestListInspectRemove(t *testing.T) {
	dir := t.TempDir()
	chapters := fixtures.TwoChapters(t)
	out, stderr, err := runCLI(t, append([]string{"ingest", "--store", dir, "--user", "alice"}, chapters...)...)
	if err != nil {
		t.Fatalf("ingest: %v: %s", err, stderr)
	}
	if id := strings.TrimSpace(out); id != "GX010042" {
		t.Errorf("ingest printed %q, want the asset id GX010042", out)
	}
	out, _, err = runCLI(t, "ingest", "--store", dir, "--user", "alice", "--json", fixtures.H264AAC(t))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		ID     string         `json:"id"`
		URLs   map[string]any `json:"urls"`
		Tracks []any          `json:"tracks"`
	}
	if err := json.Unmarshal([]byte(out), &meta); err != nil || meta.ID == "" || meta.URLs["consolidated"] == nil || len(meta.Tracks) != 2 {
		t.Errorf("ingest --json = %s (%v)", out, err)
	}

	out, _, err = runCLI(t, "ls", "--store", dir, "--user", "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"GX010042.mp4", "GX010042.frag.mp4", "GX010042/GX020042.MP4", meta.ID + ".mp4", "consolidated", "original"} {
		if !strings.Contains(out, want) {
			t.Errorf("ls output lacks %q:\n%s", want, out)
		}
	}
	t.Setenv("JITSTREAM_STORE", dir)
	out, _, err = runCLI(t, "inspect", "--user", "alice", "GX010042")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"duration", "bit rate", "segments", "avc1.", "mp4a.40.2", "GX020042.MP4"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	if out, _, err = runCLI(t, "inspect", fixtures.H265AAC(t)); err != nil || !strings.Contains(out, "hvc1.") {
		t.Errorf("inspect FILE: %v\n%s", err, out)
	}
	if _, _, err := runCLI(t, "rm", "--user", "alice", "GX010042"); err != nil {
		t.Fatal(err)
	}
	if out, _, _ := runCLI(t, "ls", "--user", "alice"); strings.Contains(out, "GX010042") {
		t.Errorf("rm left the asset listed:\n%s", out)
	}
}

func TestCLIErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		args []string
		msg  string
	}{
		{"no command", nil, "Commands"},
		{"unknown command", []string{"frobnicate"}, "unknown command"},
		{"ingest without user", []string{"ingest", "--store", dir, "x.mp4"}, "usage"},
		{"missing file", []string{"ingest", "--store", dir, "--user", "alice", "/nonexistent.mp4"}, "no such file"},
		{"not media", []string{"ingest", "--store", dir, "--user", "alice", fixtures.NotMedia(t)}, "invalid media"},
		{"unsupported", []string{"ingest", "--store", dir, "--user", "alice", fixtures.Unsupported(t)}, "unsupported"},
		{"bad user name", []string{"ingest", "--store", dir, "--user", "../etc", fixtures.H264AAC(t)}, "invalid name"},
		{"unknown asset", []string{"inspect", "--store", dir, "--user", "alice", "NOPE"}, "unknown"},
		{"rm unknown", []string{"rm", "--store", dir, "--user", "alice", "NOPE"}, "unknown"},
		{"bad budget", []string{"serve", "--store", dir, "--max-egress", "10 parsecs"}, "unknown unit"},
		{"negative pace factor", []string{"serve", "--store", dir, "--pace-factor", "-1"}, "pace factor"},
		{"negative burst", []string{"serve", "--store", dir, "--burst", "-1s"}, "negative burst"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, err := runCLI(t, tc.args...)
			if err == nil {
				t.Fatalf("succeeded: %s", out)
			}
			msg := stderr
			if err != errUsage {
				msg += err.Error()
			}
			if !strings.Contains(strings.ToLower(msg), strings.ToLower(tc.msg)) {
				t.Errorf("error %q (stderr %q) does not mention %q", err, stderr, tc.msg)
			}
		})
	}
	// Nothing half-ingested is left behind.
	if out, _, _ := runCLI(t, "ls", "--store", dir, "--user", "alice"); strings.TrimSpace(out) != "" {
		t.Errorf("failed ingests left files:\n%s", out)
	}
}
