package minio_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/store/s3"
	"github.com/jitstream/jitstream/internal/testutil/minio"
)

func TestMain(m *testing.M) { minio.Main(m) }

// TestStopRestart puts an object, stops the server (the store becomes
// unavailable), restarts it and reads the object again.
func TestStopRestart(t *testing.T) {
	srv := minio.Start(t)
	bucket := srv.NewBucket(t)
	cfg := srv.Config(bucket)
	cfg.MaxRetries = 1 // fail fast while stopped
	st, err := s3.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("kept across restarts")
	if _, err := st.Put(t.Context(), "dir/obj", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	endpoint := srv.Endpoint()

	srv.Stop()
	if srv.Running() {
		t.Error("Running after Stop")
	}
	if _, err := st.Get(t.Context(), "dir/obj", 0, -1); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Get with the server stopped: %v, want ErrUnavailable", err)
	}
	srv.Stop() // stopping twice does nothing

	srv.Restart(t)
	if !srv.Running() || srv.Endpoint() != endpoint {
		t.Fatalf("after Restart: running %v, endpoint %s; want running at %s", srv.Running(), srv.Endpoint(), endpoint)
	}
	rc, err := st.Get(t.Context(), "dir/obj", 0, -1)
	if err != nil {
		t.Fatalf("Get after Restart: %v", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("after Restart the object reads %q, %v; want %q", got, err, data)
	}
	srv.Restart(t) // a running server restarts too
	if err := st.Check(t.Context()); err != nil {
		t.Errorf("Check after a second Restart: %v", err)
	}
	if !strings.Contains(srv.LogTail(), "starting minio") {
		t.Errorf("log tail has no start marker:\n%s", srv.LogTail())
	}
}

// TestShared checks that Shared returns one live server, that buckets are
// unique, and that the shared server cannot be stopped.
func TestShared(t *testing.T) {
	a, b := minio.Shared(t), minio.Shared(t)
	if a != b {
		t.Fatal("Shared returned two servers")
	}
	resp, err := http.Get(a.Endpoint() + "/minio/health/live")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("liveness: %s", resp.Status)
	}
	b1, b2 := a.NewBucket(t), a.NewBucket(t)
	if b1 == b2 {
		t.Errorf("NewBucket returned %s twice", b1)
	}
	for _, bucket := range []string{b1, b2} {
		if ok, err := a.Client(t).BucketExists(t.Context(), bucket); err != nil || !ok {
			t.Errorf("bucket %s: exists %v, %v", bucket, ok, err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Stop of the shared server did not panic")
		}
		if !a.Running() {
			t.Error("the shared server stopped")
		}
	}()
	a.Stop()
}

func TestBinary(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-exec")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(dir, "cache", "bin", "minio")
	if err := os.MkdirAll(filepath.Dir(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name            string
		env             map[string]string
		want, wantError string
	}{
		{"JITSTREAM_MINIO", map[string]string{"JITSTREAM_MINIO": fake}, fake, ""},
		{"JITSTREAM_MINIO missing", map[string]string{"JITSTREAM_MINIO": filepath.Join(dir, "nope")}, "", "make minio"},
		{"JITSTREAM_MINIO not executable", map[string]string{"JITSTREAM_MINIO": notExec}, "", "make minio"},
		{"JITSTREAM_CACHE", map[string]string{"JITSTREAM_MINIO": "", "JITSTREAM_CACHE": filepath.Join(dir, "cache")}, fake, ""},
		{"JITSTREAM_CACHE empty", map[string]string{"JITSTREAM_MINIO": "", "JITSTREAM_CACHE": filepath.Join(dir, "empty")}, "", "make minio"},
		{"XDG_CACHE_HOME", map[string]string{"JITSTREAM_MINIO": "", "JITSTREAM_CACHE": "", "XDG_CACHE_HOME": dir}, "", "make minio"},
		{"HOME", map[string]string{"JITSTREAM_MINIO": "", "JITSTREAM_CACHE": "", "XDG_CACHE_HOME": "", "HOME": dir}, "", "make minio"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			got, err := minio.Binary()
			if tc.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantError) {
					t.Errorf("Binary() = %q, %v; want an error saying %q", got, err, tc.wantError)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Binary() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
