package teststore_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/testutil/minio"
	"github.com/jitstream/jitstream/internal/testutil/teststore"
	miniogo "github.com/minio/minio-go/v7"
)

func TestMain(m *testing.M) { minio.Main(m) }

func TestBackend(t *testing.T) {
	for _, tc := range []struct {
		env, want string
		ok        bool
	}{
		{"", teststore.FS, true},
		{"fs", teststore.FS, true},
		{"s3", teststore.S3, true},
		{"S3", "", false},
		{"minio", "", false},
	} {
		t.Setenv(teststore.EnvVar, tc.env)
		got, err := teststore.Backend()
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("%s=%q: Backend() = %q, %v; want %q, ok %v", teststore.EnvVar, tc.env, got, err, tc.want, tc.ok)
		}
	}
}

// TestBackends: each backend stores and reads back, gives a local
// directory, sends files with sendfile only when they are local files, and
// reports what is left beside its objects.
func TestBackends(t *testing.T) {
	for _, b := range []string{teststore.FS, teststore.S3} {
		t.Run(b, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := teststore.NewBackend(t, b)
			if s.Backend != b {
				t.Errorf("Backend %q, want %q", s.Backend, b)
			}
			// An immutable key, which the read cache of S3 keeps.
			key := "users/u/assets/a/src/00-r1"
			if _, err := s.Store.Put(ctx, key, strings.NewReader("hello, store")); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				rc, err := s.Store.Get(ctx, key, 7, 5)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || string(got) != "store" {
					t.Errorf("Get: %q, %v; want \"store\"", got, err)
				}
			}
			_, local := s.Store.(store.FileOpener)
			if local != (b == teststore.FS) {
				t.Errorf("store.FileOpener %v on %s", local, b)
			}
			if err := os.WriteFile(filepath.Join(s.Dir, "scratch"), []byte("x"), 0o644); err != nil {
				t.Errorf("Dir %s is not a writable directory: %v", s.Dir, err)
			}
			if l := s.Leftovers(t); len(l) != 0 {
				t.Errorf("leftovers of a clean store: %q", l)
			}

			var want []string
			switch b {
			case teststore.FS:
				if s.FS == nil || s.Cache != nil || s.Dir != s.FS.Root() {
					t.Fatalf("FS store: FS %v, Cache %v, Dir %s", s.FS, s.Cache, s.Dir)
				}
				if err := os.WriteFile(filepath.Join(s.FS.Root(), ".tmp", "put-1"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
				want = []string{".tmp/put-1"}
			case teststore.S3:
				if s.FS != nil || s.Cache == nil || s.MinIO == nil || s.Bucket == "" {
					t.Fatalf("S3 store: FS %v, Cache %v, MinIO %v, Bucket %q", s.FS, s.Cache, s.MinIO, s.Bucket)
				}
				if st := s.Cache.Stats(); st.Misses == 0 || st.MemHits == 0 {
					t.Errorf("the second Get of an immutable key did not hit the read cache: %+v", st)
				}
				bucket := s.Bucket
				core := miniogo.Core{Client: s.MinIO.Client(t)}
				id, err := core.NewMultipartUpload(ctx, bucket, "users/u/big", miniogo.PutObjectOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := core.PutObject(ctx, bucket, ".tmp-x", strings.NewReader("x"), 1, "", "", miniogo.PutObjectOptions{}); err != nil {
					t.Fatal(err)
				}
				want = []string{"object .tmp-x", "upload users/u/big " + id}
			}
			got := s.Leftovers(t)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("leftovers %q, want %q", got, want)
			}
		})
	}
}
