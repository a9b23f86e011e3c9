package s3_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/store/s3"
	"github.com/jitstream/jitstream/internal/store/storetest"
	testminio "github.com/jitstream/jitstream/internal/testutil/minio"
	miniogo "github.com/minio/minio-go/v7"
)

// The tests share one MinIO server (testminio.Shared), each with buckets of
// its own; the fault tests, which stop the server, start their own.
func TestMain(m *testing.M) { testminio.Main(m) }

// newStore returns a store on bucket of srv, with cfg changed by opts.
func newStore(t *testing.T, srv *testminio.Server, bucket string, opts ...func(*s3.Config)) *s3.Store {
	t.Helper()
	cfg := srv.Config(bucket)
	for _, o := range opts {
		o(&cfg)
	}
	s, err := s3.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("s3.New(%v): %v", cfg, err)
	}
	return s
}

func partSize(n int64) func(*s3.Config) { return func(c *s3.Config) { c.PartSize = n } }

func maxRetries(n int) func(*s3.Config) { return func(c *s3.Config) { c.MaxRetries = n } }

func prefix(p string) func(*s3.Config) { return func(c *s3.Config) { c.Prefix = p } }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		srv := testminio.Shared(t)
		return newStore(t, srv, srv.NewBucket(t))
	})
}

// TestConformancePrefix runs the suite on a store under a key prefix, in a
// bucket that holds other objects beside it.
func TestConformancePrefix(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		srv := testminio.Shared(t)
		bucket := srv.NewBucket(t)
		c := srv.Client(t)
		// Not an object named "tenant": MinIO (single drive) lists nothing
		// under "tenant/" when there is one.
		for _, name := range []string{"other", "tenan", "tenant-b/x", "tenantx/y"} {
			if _, err := c.PutObject(t.Context(), bucket, name, strings.NewReader("x"), 1, miniogo.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		return newStore(t, srv, bucket, prefix("tenant"))
	})
}

func TestNew(t *testing.T) {
	srv := testminio.Shared(t)
	existing := srv.NewBucket(t)
	for _, tc := range []struct {
		name    string
		bucket  string
		create  bool
		wantErr string
	}{
		{"existing bucket", existing, false, ""},
		{"existing bucket, create", existing, true, ""},
		{"missing bucket", "jitstream-missing-bucket", false, "does not exist"},
		{"missing bucket, create", "jitstream-created-bucket", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := srv.Config(tc.bucket)
			cfg.Create = tc.create
			s, err := s3.New(t.Context(), cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.bucket) {
					t.Fatalf("New = %v, %v; want an error naming the bucket and saying %q", s, err, tc.wantErr)
				}
				if ok, err := srv.Client(t).BucketExists(t.Context(), tc.bucket); err != nil || ok {
					t.Errorf("New without Create made the bucket (exists %v, %v)", ok, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Check(t.Context()); err != nil {
				t.Errorf("Check: %v", err)
			}
			if _, err := s.Put(t.Context(), "k", strings.NewReader("v")); err != nil {
				t.Errorf("Put: %v", err)
			}
			if tc.bucket != existing {
				t.Cleanup(func() {
					err := srv.Client(t).RemoveBucketWithOptions(context.Background(), tc.bucket, miniogo.RemoveBucketOptions{ForceDelete: true})
					if err != nil {
						t.Errorf("removing bucket: %v", err)
					}
				})
			}
		})
	}
}

// TestPrefix checks that stores under prefixes of one bucket see their own
// objects only, with keys relative to their prefix, and skip objects whose
// names are not keys.
func TestPrefix(t *testing.T) {
	srv := testminio.Shared(t)
	bucket := srv.NewBucket(t)
	ctx := t.Context()
	stores := map[string]*s3.Store{
		"":            newStore(t, srv, bucket),
		"p1":          newStore(t, srv, bucket, prefix("p1")),
		"p2/deep":     newStore(t, srv, bucket, prefix("/p2/deep/")),
		"p1/sub/more": newStore(t, srv, bucket, prefix("p1/sub/more")),
	}
	for p, s := range stores {
		if _, err := s.Put(ctx, "k", strings.NewReader("in "+p)); err != nil {
			t.Fatal(err)
		}
	}
	c := srv.Client(t)
	for _, name := range []string{"p1/dir/", "p1/sp ace", "p1/.tmp/x"} {
		if _, err := c.PutObject(ctx, bucket, name, strings.NewReader(""), 0, miniogo.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var raw []string
	for oi := range c.ListObjects(ctx, bucket, miniogo.ListObjectsOptions{Recursive: true}) {
		if oi.Err != nil {
			t.Fatal(oi.Err)
		}
		raw = append(raw, oi.Key)
	}
	if want := []string{"k", "p1/.tmp/x", "p1/dir/", "p1/k", "p1/sp ace", "p1/sub/more/k", "p2/deep/k"}; !slices.Equal(raw, want) {
		t.Errorf("objects in the bucket: %q, want %q", raw, want)
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", []string{"k", "p1/k", "p1/sub/more/k", "p2/deep/k"}},
		{"p1", []string{"k", "sub/more/k"}},
		{"p2/deep", []string{"k"}},
		{"p1/sub/more", []string{"k"}},
	} {
		s := stores[tc.prefix]
		list, err := s.List(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, info := range list {
			got = append(got, info.Key)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("store under %q lists %q, want %q", tc.prefix, got, tc.want)
		}
		rc, err := s.Get(ctx, "k", 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != "in "+tc.prefix {
			t.Errorf("store under %q reads %q, want its own object", tc.prefix, b)
		}
	}
}

// TestMultipart checks that objects larger than a part are uploaded in
// parts (their ETag ends with the number of parts) and smaller ones with
// one PUT.
func TestMultipart(t *testing.T) {
	srv := testminio.Shared(t)
	bucket := srv.NewBucket(t)
	s := newStore(t, srv, bucket, partSize(s3.MinPartSize))
	c := srv.Client(t)
	for _, tc := range []struct {
		name      string
		size      int
		wantParts string // the ETag's suffix
	}{
		{"empty", 0, ""},
		{"small", 1000, ""},
		{"one part less one byte", s3.MinPartSize - 1, ""},
		{"one part", s3.MinPartSize, "-1"},
		{"one part and one byte", s3.MinPartSize + 1, "-2"},
		{"two parts and a half", 2*s3.MinPartSize + s3.MinPartSize/2, "-3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := storetest.Pattern(tc.size, 42)
			key := strings.ReplaceAll(tc.name, " ", "-")
			info, err := s.Put(t.Context(), key, io.MultiReader(bytes.NewReader(data))) // not a Seeker
			if err != nil || info.Size != int64(tc.size) {
				t.Fatalf("Put = %+v, %v; want size %d", info, err, tc.size)
			}
			oi, err := c.StatObject(t.Context(), bucket, key, miniogo.StatObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			parts := ""
			if i := strings.LastIndexByte(oi.ETag, '-'); i >= 0 {
				parts = oi.ETag[i:]
			}
			if parts != tc.wantParts || oi.Size != int64(tc.size) {
				t.Errorf("object %s: ETag %q, size %d; want parts %q, size %d", key, oi.ETag, oi.Size, tc.wantParts, tc.size)
			}
			rc, err := s.Get(t.Context(), key, 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("Get: %d bytes, %v; want the %d bytes put", len(got), err, len(data))
			}
		})
	}
}

// incompleteUploads lists the multipart uploads in progress in bucket.
func incompleteUploads(t *testing.T, c *miniogo.Client, bucket string) []string {
	t.Helper()
	var ids []string
	for u := range c.ListIncompleteUploads(t.Context(), bucket, "", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		ids = append(ids, u.Key+" "+u.UploadID)
	}
	return ids
}

// TestFailedPutAbortsUpload checks that a Put that fails after a part was
// uploaded aborts its multipart upload, even when the failure is the
// cancellation of its context (minio-go's PutObject would send the abort
// with the cancelled context, so that it never leaves).
func TestFailedPutAbortsUpload(t *testing.T) {
	srv := testminio.Shared(t)
	bucket := srv.NewBucket(t)
	s := newStore(t, srv, bucket, partSize(s3.MinPartSize))
	c := srv.Client(t)
	data := storetest.Pattern(3*s3.MinPartSize, 7)

	// The check below can see uploads in progress.
	core := miniogo.Core{Client: c}
	id, err := core.NewMultipartUpload(t.Context(), bucket, "probe", miniogo.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ids := incompleteUploads(t, c, bucket); len(ids) != 1 {
		t.Fatalf("uploads in progress after starting one: %q", ids)
	}
	if err := core.AbortMultipartUpload(t.Context(), bucket, "probe", id); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name  string
		put   func(ctx context.Context, cancel context.CancelFunc) error
		check func(error) bool
	}{
		{
			"reader fails after a part and a half",
			func(ctx context.Context, _ context.CancelFunc) error {
				_, err := s.Put(ctx, "failed", storetest.FailingReader(data, s3.MinPartSize*3/2))
				return err
			},
			storetest.IsReadError,
		},
		{
			"reader fails after two parts",
			func(ctx context.Context, _ context.CancelFunc) error {
				_, err := s.Put(ctx, "failed", storetest.FailingReader(data, 2*s3.MinPartSize))
				return err
			},
			storetest.IsReadError,
		},
		{
			"context cancelled after a part and a half",
			func(ctx context.Context, cancel context.CancelFunc) error {
				_, err := s.Put(ctx, "cancelled", storetest.CancellingReader(data, s3.MinPartSize*3/2, cancel))
				return err
			},
			func(err error) bool { return errors.Is(err, context.Canceled) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if err := tc.put(ctx, cancel); !tc.check(err) {
				t.Fatalf("Put: %v; want the failure it was given", err)
			}
			if ids := incompleteUploads(t, c, bucket); len(ids) != 0 {
				t.Errorf("uploads left in progress: %q", ids)
			}
			if list, err := s.List(t.Context(), ""); err != nil || len(list) != 0 {
				t.Errorf("List = %+v, %v; want nothing", list, err)
			}
		})
	}
}

// TestGetHonoursContext checks what the conformance suite leaves open: the
// reader of a Get fails once its context is cancelled.
func TestGetHonoursContext(t *testing.T) {
	srv := testminio.Shared(t)
	s := newStore(t, srv, srv.NewBucket(t))
	data := storetest.Pattern(8<<20, 3)
	if _, err := s.Put(t.Context(), "obj", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	t.Run("cancelled before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		rc, err := s.Get(ctx, "obj", 0, -1)
		if err == nil {
			rc.Close()
		}
		if !errors.Is(err, context.Canceled) || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Get with a cancelled context: %v; want context.Canceled, not ErrUnavailable", err)
		}
	})
	t.Run("cancelled while reading", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		rc, err := s.Get(ctx, "obj", 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if _, err := io.ReadFull(rc, make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		cancel()
		n, err := io.Copy(io.Discard, rc)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("reading after cancel: %d bytes, %v; want context.Canceled", n, err)
		}
	})
}

// TestUnavailable stops the server under a store: every method fails with
// ErrUnavailable (not ErrNotFound), and works again after a restart.
func TestUnavailable(t *testing.T) {
	srv := testminio.Start(t)
	bucket := srv.NewBucket(t)
	s := newStore(t, srv, bucket, maxRetries(1), partSize(s3.MinPartSize))
	retrying := newStore(t, srv, bucket) // the client's default retries
	data := storetest.Pattern(1000, 1)
	if _, err := s.Put(t.Context(), "obj", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	srv.Stop()

	for _, tc := range []struct {
		name string
		op   func(ctx context.Context) error
	}{
		{"Get", func(ctx context.Context) error { _, err := s.Get(ctx, "obj", 0, -1); return err }},
		{"Get range", func(ctx context.Context) error { _, err := s.Get(ctx, "obj", 10, 10); return err }},
		{"Get n == 0", func(ctx context.Context) error { _, err := s.Get(ctx, "obj", 0, 0); return err }},
		{"Get with retries", func(ctx context.Context) error { _, err := retrying.Get(ctx, "obj", 0, -1); return err }},
		{"Put", func(ctx context.Context) error { _, err := s.Put(ctx, "new", strings.NewReader("x")); return err }},
		{"Put multipart", func(ctx context.Context) error {
			_, err := s.Put(ctx, "new", bytes.NewReader(storetest.Pattern(s3.MinPartSize+1, 2)))
			return err
		}},
		{"Stat", func(ctx context.Context) error { _, err := s.Stat(ctx, "obj"); return err }},
		{"List", func(ctx context.Context) error { _, err := s.List(ctx, ""); return err }},
		{"Delete", func(ctx context.Context) error { return s.Delete(ctx, "obj") }},
		{"Check", s.Check},
		{"New", func(ctx context.Context) error {
			cfg := srv.Config(bucket)
			cfg.MaxRetries = 1
			_, err := s3.New(ctx, cfg)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op(t.Context())
			if !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrNotFound) {
				t.Errorf("with the server stopped: %v; want ErrUnavailable", err)
			}
		})
	}

	srv.Restart(t)
	if err := s.Check(t.Context()); err != nil {
		t.Fatalf("Check after restart: %v", err)
	}
	rc, err := s.Get(t.Context(), "obj", 0, -1)
	if err != nil {
		t.Fatalf("Get after restart: %v", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("after restart the object reads %d bytes, %v", len(got), err)
	}
	if _, err := s.Stat(t.Context(), "new"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a Put that failed while the server was down left an object: %v", err)
	}
}

// TestErrorMapping runs the store against a fake S3 service that answers
// object requests with a given error.
func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		code   string
		want   error // nil: neither ErrNotFound nor ErrUnavailable
	}{
		{"503 SlowDown", 503, "SlowDown", store.ErrUnavailable},
		{"500 InternalError", 500, "InternalError", store.ErrUnavailable},
		{"502 without a body", 502, "", store.ErrUnavailable},
		{"404 NoSuchKey", 404, "NoSuchKey", store.ErrNotFound},
		{"404 NoSuchBucket", 404, "NoSuchBucket", store.ErrUnavailable},
		{"403 AccessDenied", 403, "AccessDenied", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/bucket" || r.URL.Path == "/bucket/" {
					return // the bucket exists
				}
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(tc.status)
				if tc.code != "" && r.Method != http.MethodHead {
					io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>`+tc.code+`</Code><Message>fake</Message></Error>`)
				}
			}))
			defer srv.Close()
			s, err := s3.New(t.Context(), s3.Config{Endpoint: srv.URL, Bucket: "bucket", Region: "us-east-1", AccessKey: "a", SecretKey: "secret-key", MaxRetries: 1})
			if err != nil {
				t.Fatal(err)
			}
			check := func(op string, err, want error) {
				t.Helper()
				if err == nil {
					t.Errorf("%s succeeded", op)
					return
				}
				for _, sentinel := range []error{store.ErrNotFound, store.ErrUnavailable} {
					if errors.Is(err, sentinel) != (sentinel == want) {
						t.Errorf("%s: %v; want %v", op, err, want)
					}
				}
				var resp miniogo.ErrorResponse
				if !errors.As(err, &resp) || resp.StatusCode != tc.status {
					t.Errorf("%s: %v; want the S3 error response with status %d in the chain", op, err, tc.status)
				}
			}
			_, err = s.Get(t.Context(), "obj", 0, -1)
			check("Get", err, tc.want)
			_, err = s.Put(t.Context(), "obj", strings.NewReader("data"))
			check("Put", err, tc.want)
		})
	}

	t.Run("timeout", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/bucket" || r.URL.Path == "/bucket/" {
				return
			}
			<-r.Context().Done() // never answers
		}))
		defer srv.Close()
		s, err := s3.New(t.Context(), s3.Config{Endpoint: srv.URL, Bucket: "bucket", Region: "us-east-1", MaxRetries: 1})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		_, err = s.Get(ctx, "obj", 0, -1)
		if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Get from a service that does not answer: %v; want ErrUnavailable and DeadlineExceeded", err)
		}
	})
}
