// Package teststore gives tests the store backend that the environment
// selects, so that the storage tests of the suite run against each backend
// in turn (make test runs them once per backend):
//
//   - JITSTREAM_TEST_STORE unset, empty or "fs": a store.FS in a temporary
//     directory of the test;
//   - JITSTREAM_TEST_STORE=s3: a fresh bucket of the MinIO server that the
//     tests of the test binary share (internal/testutil/minio), behind the
//     read cache that production puts in front of S3
//     (internal/store/readcache, caching library.ImmutableKey keys, with
//     its disk tier in a spool in a temporary directory of the test).
//
// Any other value fails the test: a typo must not quietly test the local
// backend again.
//
// A package whose tests call New must run them through minio.Main, which
// stops the shared server once they are done:
//
//	func TestMain(m *testing.M) { minio.Main(m) }
//
// MinIO is started by the first New with the S3 backend only: with the
// local backend the tests start no server.
package teststore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/spool"
	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/store/readcache"
	"github.com/jitstream/jitstream/internal/store/s3"
	"github.com/jitstream/jitstream/internal/testutil/minio"
	miniogo "github.com/minio/minio-go/v7"
)

// EnvVar is the environment variable that selects the backend.
const EnvVar = "JITSTREAM_TEST_STORE"

// The backends, as EnvVar names them.
const (
	FS = "fs"
	S3 = "s3"
)

// Settings of the S3 backend. They are smaller than production's so that
// the small media of the tests cross the boundaries that large files cross
// in production: the 12 MB fixture is a multipart upload, and objects of a
// few hundred kilobytes span several cache blocks, read through runs of
// coalesced blocks, evicted from memory to disk.
const (
	partSize  = s3.MinPartSize
	blockSize = 64 << 10
	memBytes  = 4 << 20
)

// Backend returns the backend selected by EnvVar: FS when it is unset or
// empty, else its value, which must be FS or S3.
func Backend() (string, error) {
	switch b := os.Getenv(EnvVar); b {
	case "", FS:
		return FS, nil
	case S3:
		return S3, nil
	default:
		return "", fmt.Errorf("teststore: %s=%q: want %q or %q", EnvVar, b, FS, S3)
	}
}

// Store is an empty store of the selected backend, for one test.
type Store struct {
	// Store is what the code under test gets: the *store.FS itself, so
	// that its files are sent with sendfile, or the read cache over S3.
	Store store.Store
	// Backend is FS or S3.
	Backend string
	// Dir is a local scratch directory that comes with the store, for
	// what a server keeps on local disk beside it (partial tus uploads):
	// the root of the FS store (whose keys cannot start with ".tmp", see
	// store.CheckKey), a temporary directory of the test for S3.
	Dir string
	// FS is the local store, nil for S3.
	FS *store.FS
	// Cache is the read cache in front of S3, nil for FS.
	Cache *readcache.Cache
	// MinIO and Bucket are the server and bucket of S3 (nil and ""
	// for FS), for checks beneath the store.
	MinIO  *minio.Server
	Bucket string
}

// New returns an empty store of the backend selected by EnvVar. It fails
// tb when EnvVar holds another value or the store cannot be made.
func New(tb testing.TB) *Store {
	tb.Helper()
	b, err := Backend()
	if err != nil {
		tb.Fatal(err)
	}
	return NewBackend(tb, b)
}

// NewBackend returns an empty store of the backend b (FS or S3), whatever
// EnvVar says: for tests of the backends themselves.
func NewBackend(tb testing.TB, b string) *Store {
	tb.Helper()
	switch b {
	case FS:
		fs, err := store.NewFS(tb.TempDir())
		if err != nil {
			tb.Fatalf("teststore: %v", err)
		}
		return &Store{Store: fs, Backend: FS, Dir: fs.Root(), FS: fs}
	case S3:
		return newS3(tb)
	default:
		tb.Fatalf("teststore: unknown backend %q: want %q or %q", b, FS, S3)
		return nil
	}
}

// newS3 makes a bucket on the shared MinIO and returns the read cache
// over a store on it.
func newS3(tb testing.TB) *Store {
	tb.Helper()
	srv := minio.Shared(tb)
	bucket := srv.NewBucket(tb)
	cfg := srv.Config(bucket)
	cfg.PartSize = partSize
	st, err := s3.New(tb.Context(), cfg)
	if err != nil {
		tb.Fatalf("teststore: s3 store on bucket %s: %v", bucket, err)
	}
	sp, err := spool.New(tb.TempDir())
	if err != nil {
		if !errors.Is(err, errors.ErrUnsupported) {
			tb.Fatalf("teststore: spool of the read cache: %v", err)
		}
		// As in production, the cache keeps blocks in memory only where
		// spooling is not supported.
		sp = nil
	}
	cache := readcache.New(st, readcache.Options{
		Immutable: library.ImmutableKey,
		Spool:     sp,
		BlockSize: blockSize,
		MemBytes:  memBytes,
	})
	return &Store{Store: cache, Backend: S3, Dir: tb.TempDir(), Cache: cache, MinIO: srv, Bucket: bucket}
}

// Leftovers lists what the backend holds beside the objects that List
// shows, which a failed or aborted write may have left behind: for FS, the
// temporary files of Puts (root/.tmp); for S3, the objects of the bucket
// whose names are not keys, and the multipart uploads that were neither
// completed nor aborted. It is empty when the store is clean.
func (s *Store) Leftovers(tb testing.TB) []string {
	tb.Helper()
	var out []string
	switch s.Backend {
	case FS:
		tmp := filepath.Join(s.FS.Root(), ".tmp")
		ents, err := os.ReadDir(tmp)
		if err != nil {
			tb.Fatalf("teststore: temporary files of the store: %v", err)
		}
		for _, e := range ents {
			out = append(out, ".tmp/"+e.Name())
		}
	case S3:
		c := s.MinIO.Client(tb)
		for oi := range c.ListObjects(tb.Context(), s.Bucket, miniogo.ListObjectsOptions{Recursive: true}) {
			if oi.Err != nil {
				tb.Fatalf("teststore: listing bucket %s: %v", s.Bucket, oi.Err)
			}
			if store.CheckKey(oi.Key) != nil {
				out = append(out, "object "+oi.Key)
			}
		}
		for u := range c.ListIncompleteUploads(tb.Context(), s.Bucket, "", true) {
			if u.Err != nil {
				tb.Fatalf("teststore: listing the uploads of bucket %s: %v", s.Bucket, u.Err)
			}
			out = append(out, "upload "+u.Key+" "+u.UploadID)
		}
	}
	return out
}

// String describes the store for logs, like "s3 bucket t3-testx".
func (s *Store) String() string {
	if s.Backend == S3 {
		return "s3 bucket " + s.Bucket
	}
	return "fs " + s.Dir
}
