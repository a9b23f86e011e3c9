// Package s3 is a store.Store on an S3-compatible object service (Amazon
// S3, MinIO and the like), through minio-go.
//
// Objects live in one bucket, under an optional key prefix. Put streams the
// object in parts of Config.PartSize (a single PUT when it fits in one
// part), so S3 makes it visible only once it is complete; a failed Put
// aborts its multipart upload. Those of a process that died in the middle
// of a Put stay; PartialWrites lists them and AbortPartialWrite aborts
// them (jitstream gc). Get is one ranged GET, sent before Get
// returns so that a missing key fails there.
//
// Errors wrap store.ErrNotFound for missing keys, store.ErrInvalidKey for
// malformed keys, and store.ErrUnavailable when the service cannot be
// reached, times out or fails on its side (5xx), with the client's error
// kept in the chain.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jitstream/jitstream/internal/store"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// abortTimeout bounds the request that aborts the multipart upload of a
// failed Put. It runs even when the Put's context is done.
const abortTimeout = 30 * time.Second

// Store is a store.Store on a bucket of an S3-compatible service. It is safe
// for concurrent use.
type Store struct {
	client   *minio.Client
	core     minio.Core
	endpoint string
	bucket   string
	prefix   string // "" or ending in "/"
	partSize int
}

var (
	_ store.Store         = (*Store)(nil)
	_ store.Checker       = (*Store)(nil)
	_ store.PartialWriter = (*Store)(nil)
)

// New returns a Store on cfg.Bucket at cfg.Endpoint. It checks that the
// bucket exists, creating it when cfg.Create is set, and fails otherwise.
func New(ctx context.Context, cfg Config) (*Store, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(cfg.Endpoint) // normalize checked it
	if err != nil {
		return nil, fmt.Errorf("s3: endpoint: %w", err)
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:      credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:     u.Scheme == "https",
		Region:     cfg.Region,
		MaxRetries: cfg.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: client for %s: %w", cfg.Endpoint, err)
	}
	s := &Store{
		client:   client,
		core:     minio.Core{Client: client},
		endpoint: cfg.Endpoint,
		bucket:   cfg.Bucket,
		partSize: int(cfg.PartSize),
	}
	if cfg.Prefix != "" {
		s.prefix = cfg.Prefix + "/"
	}
	ok, err := client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, wrap(fmt.Sprintf("bucket %s at %s", cfg.Bucket, cfg.Endpoint), err)
	}
	if ok {
		return s, nil
	}
	if !cfg.Create {
		return nil, fmt.Errorf("s3: bucket %s does not exist at %s (create it, or set create=1 in the store URL)", cfg.Bucket, cfg.Endpoint)
	}
	if err := client.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region}); err != nil {
		// Another process may have created it since BucketExists.
		if resp, ok := errorResponse(err); !ok || resp.Code != "BucketAlreadyOwnedByYou" {
			return nil, wrap(fmt.Sprintf("create bucket %s at %s", cfg.Bucket, cfg.Endpoint), err)
		}
	}
	return s, nil
}

// String describes the store, like "s3 http://127.0.0.1:9000 bucket/prefix/".
func (s *Store) String() string {
	return fmt.Sprintf("s3 %s %s/%s", s.endpoint, s.bucket, s.prefix)
}

// object returns the object name of key in the bucket.
func (s *Store) object(key string) (string, error) {
	if err := store.CheckKey(key); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

// Put implements store.Store. It reads r one part at a time: an object of up
// to Config.PartSize bytes is stored with one PUT, a larger one with a
// multipart upload. If reading r fails or ctx ends, the upload is aborted
// and the previous object under key, if any, stays as it was.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) (store.Info, error) {
	obj, err := s.object(key)
	if err != nil {
		return store.Info{}, fmt.Errorf("s3: put: %w", err)
	}
	r = store.ContextReader{Ctx: ctx, R: r}
	buf, rerr := fill(r, nil, s.partSize)
	var size int64
	switch rerr {
	case io.EOF: // it fits in one part
		if _, err := s.core.PutObject(ctx, s.bucket, obj, bytes.NewReader(buf), int64(len(buf)), "", "", minio.PutObjectOptions{}); err != nil {
			return store.Info{}, wrap("put "+key, err)
		}
		size = int64(len(buf))
	case nil:
		if size, err = s.putMultipart(ctx, key, obj, r, buf); err != nil {
			return store.Info{}, err
		}
	default:
		return store.Info{}, fmt.Errorf("s3: put %s: read: %w", key, rerr)
	}
	// S3 does not answer a PUT with the modification time.
	info, err := s.Stat(ctx, key)
	if err != nil {
		return store.Info{}, fmt.Errorf("s3: put %s: stored, but: %w", key, err)
	}
	// A concurrent Put may have replaced the object already: report ours.
	info.Size = size
	return info, nil
}

// putMultipart stores obj with a multipart upload of first (a full part)
// and what follows in r, one part at a time, and returns its size. The
// upload is aborted when it fails, with a context of its own, so that the
// abort is sent even when the failure is ctx ending.
func (s *Store) putMultipart(ctx context.Context, key, obj string, r io.Reader, first []byte) (size int64, err error) {
	id, err := s.core.NewMultipartUpload(ctx, s.bucket, obj, minio.PutObjectOptions{})
	if err != nil {
		return 0, wrap("put "+key+": start multipart upload", err)
	}
	defer func() {
		if err == nil {
			return
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer cancel()
		if aerr := s.core.AbortMultipartUpload(actx, s.bucket, obj, id); aerr != nil {
			// The upload's parts stay until a lifecycle rule removes them;
			// the object is not affected either way.
			err = fmt.Errorf("%w (and aborting upload %s failed: %v)", err, id, aerr)
		}
	}()
	var parts []minio.CompletePart
	buf, last := first, false
	for {
		if len(parts) == maxParts {
			return 0, fmt.Errorf("s3: put %s: object larger than %d parts of %d bytes", key, maxParts, s.partSize)
		}
		n := len(parts) + 1
		p, err := s.core.PutObjectPart(ctx, s.bucket, obj, id, n, bytes.NewReader(buf), int64(len(buf)), minio.PutObjectPartOptions{})
		if err != nil {
			return 0, wrap(fmt.Sprintf("put %s: part %d", key, n), err)
		}
		parts = append(parts, minio.CompletePart{PartNumber: n, ETag: p.ETag})
		size += int64(len(buf))
		if last {
			break
		}
		var rerr error
		buf, rerr = fill(r, buf, s.partSize)
		if rerr != nil && rerr != io.EOF {
			return 0, fmt.Errorf("s3: put %s: read: %w", key, rerr)
		}
		if len(buf) == 0 {
			break
		}
		last = rerr == io.EOF
	}
	if _, err := s.core.CompleteMultipartUpload(ctx, s.bucket, obj, id, parts, minio.PutObjectOptions{}); err != nil {
		return 0, wrap("put "+key+": complete multipart upload", err)
	}
	return size, nil
}

// fill reads r into buf (reusing its array, growing it as needed) until it
// holds limit bytes or r ends, and returns the bytes read with nil when full,
// io.EOF when r ended, or the read error. Growing by doubling keeps small
// objects from costing a whole part's memory.
func fill(r io.Reader, buf []byte, limit int) ([]byte, error) {
	buf = buf[:0]
	for len(buf) < limit {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), min(max(2*cap(buf), 64<<10), limit))
			copy(nb, buf)
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// Get implements store.Store with one ranged GET (or a HEAD when n is 0),
// sent before Get returns. A range that starts at the end of the object
// reads nothing; one that starts beyond it is an error. Reads from the
// returned reader fail once ctx is done.
func (s *Store) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	obj, err := s.object(key)
	if err != nil {
		return nil, fmt.Errorf("s3: get: %w", err)
	}
	if off < 0 {
		return nil, fmt.Errorf("s3: get %s: negative offset %d", key, off)
	}
	if n > math.MaxInt64-off {
		n = -1 // to the end, without overflowing off+n
	}
	if n == 0 {
		return s.emptyRange(ctx, key, off)
	}
	var opts minio.GetObjectOptions
	switch {
	case n > 0:
		err = opts.SetRange(off, off+n-1)
	case off > 0:
		err = opts.SetRange(off, 0) // bytes=off-
	}
	if err != nil {
		return nil, fmt.Errorf("s3: get %s: %w", key, err)
	}
	// Core.GetObject sends the request now, unlike Client.GetObject, whose
	// lazy object reports a missing key only at the first Read.
	body, _, _, err := s.core.GetObject(ctx, s.bucket, obj, opts)
	if err != nil {
		if resp, ok := errorResponse(err); ok && (resp.Code == minio.InvalidRange || resp.StatusCode == http.StatusRequestedRangeNotSatisfiable) {
			// The range starts at or beyond the end.
			return s.emptyRange(ctx, key, off)
		}
		return nil, wrap("get "+key, err)
	}
	return &reader{ctx: ctx, body: body, key: key}, nil
}

// emptyRange returns an empty reader if key exists and off is at most its
// size, an error otherwise.
func (s *Store) emptyRange(ctx context.Context, key string, off int64) (io.ReadCloser, error) {
	info, err := s.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	if off > info.Size {
		return nil, fmt.Errorf("s3: get %s: offset %d beyond the end (size %d)", key, off, info.Size)
	}
	return io.NopCloser(bytes.NewReader(nil)), nil
}

// reader is the body of a GET: its reads fail once ctx is done, and its
// errors are mapped like those of requests.
type reader struct {
	ctx  context.Context
	body io.ReadCloser
	key  string
}

func (r *reader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, fmt.Errorf("s3: read %s: %w", r.key, err)
	}
	n, err := r.body.Read(p)
	if err != nil && err != io.EOF {
		if cerr := r.ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			return n, fmt.Errorf("s3: read %s: %w: %w", r.key, cerr, err)
		}
		return n, wrap("read "+r.key, err)
	}
	return n, err
}

func (r *reader) Close() error { return r.body.Close() }

// Stat implements store.Store with a HEAD request.
func (s *Store) Stat(ctx context.Context, key string) (store.Info, error) {
	obj, err := s.object(key)
	if err != nil {
		return store.Info{}, fmt.Errorf("s3: stat: %w", err)
	}
	oi, err := s.client.StatObject(ctx, s.bucket, obj, minio.StatObjectOptions{})
	if err != nil {
		return store.Info{}, wrap("stat "+key, err)
	}
	return store.Info{Key: key, Size: oi.Size, ModTime: oi.LastModified}, nil
}

// List implements store.Store. Objects under the store's prefix whose names
// are not valid keys (like the "dir/" markers some tools create) are left
// out.
func (s *Store) List(ctx context.Context, prefix string) ([]store.Info, error) {
	// The prefix need not be a key, but what it names must be keyable:
	// "a/b" and "a/" pass, "../" and "a//" do not.
	if err := store.CheckKey(prefix + "x"); err != nil {
		return nil, fmt.Errorf("s3: list %q: %w", prefix, store.ErrInvalidKey)
	}
	lctx, cancel := context.WithCancel(ctx) // stops the lister on early return
	defer cancel()
	var out []store.Info
	for oi := range s.client.ListObjects(lctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if oi.Err != nil {
			return nil, wrap(fmt.Sprintf("list %q", prefix), oi.Err)
		}
		key := strings.TrimPrefix(oi.Key, s.prefix)
		if store.CheckKey(key) != nil {
			continue
		}
		out = append(out, store.Info{Key: key, Size: oi.Size, ModTime: oi.LastModified})
	}
	// The listing ends early, without an error, when ctx is done.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("s3: list %q: %w", prefix, err)
	}
	slices.SortFunc(out, func(a, b store.Info) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Delete implements store.Store. Deleting a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	obj, err := s.object(key)
	if err != nil {
		return fmt.Errorf("s3: delete: %w", err)
	}
	if err := s.client.RemoveObject(ctx, s.bucket, obj, minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
		return wrap("delete "+key, err)
	}
	return nil
}

// PartialWrites implements store.PartialWriter: the multipart uploads of
// keys under prefix that were neither completed nor aborted (a Put
// aborts its own when it fails; a process that dies cannot).
func (s *Store) PartialWrites(ctx context.Context, prefix string) ([]store.PartialWrite, error) {
	if err := store.CheckKey(prefix + "x"); err != nil {
		return nil, fmt.Errorf("s3: list uploads %q: %w", prefix, store.ErrInvalidKey)
	}
	lctx, cancel := context.WithCancel(ctx) // stops the lister on early return
	defer cancel()
	var out []store.PartialWrite
	// The whole bucket's uploads, filtered here: MinIO lists the uploads
	// of one object name or of all, not those under a prefix (it answers
	// none), and a bucket has few uploads in progress.
	for u := range s.client.ListIncompleteUploads(lctx, s.bucket, "", true) {
		if u.Err != nil {
			return nil, wrap(fmt.Sprintf("list uploads %q", prefix), u.Err)
		}
		key, ok := strings.CutPrefix(u.Key, s.prefix)
		if !ok || !strings.HasPrefix(key, prefix) || store.CheckKey(key) != nil {
			continue
		}
		out = append(out, store.PartialWrite{Key: key, ID: u.UploadID, Started: u.Initiated})
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("s3: list uploads %q: %w", prefix, err)
	}
	slices.SortFunc(out, func(a, b store.PartialWrite) int { return strings.Compare(a.Key+"/"+a.ID, b.Key+"/"+b.ID) })
	return out, nil
}

// AbortPartialWrite implements store.PartialWriter: it aborts the
// multipart upload w, whose parts S3 then deletes.
func (s *Store) AbortPartialWrite(ctx context.Context, w store.PartialWrite) error {
	obj, err := s.object(w.Key)
	if err != nil {
		return fmt.Errorf("s3: abort upload: %w", err)
	}
	if err := s.core.AbortMultipartUpload(ctx, s.bucket, obj, w.ID); err != nil {
		if resp, ok := errorResponse(err); ok && resp.Code == minio.NoSuchUpload {
			return nil
		}
		return wrap("abort upload "+w.ID+" of "+w.Key, err)
	}
	return nil
}

// Check implements store.Checker: the bucket must exist and answer. It
// costs one HEAD request.
func (s *Store) Check(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return wrap("check bucket "+s.bucket, err)
	}
	if !ok {
		return fmt.Errorf("s3: check: bucket %s does not exist at %s: %w", s.bucket, s.endpoint, store.ErrUnavailable)
	}
	return nil
}
