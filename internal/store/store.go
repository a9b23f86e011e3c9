// Package store keeps blobs by key. Every backend offers atomic Put (readers
// never see half an object), ranged Get, Stat, List by prefix and Delete.
//
// Keys are slash-separated relative paths made of the characters
// [A-Za-z0-9._-] in each element; elements may not be "." or "..".
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// ErrNotFound is returned (wrapped) when a key does not exist.
var ErrNotFound = errors.New("not found")

// ErrInvalidKey is returned (wrapped) for keys that are not well formed.
var ErrInvalidKey = errors.New("invalid key")

// ErrUnavailable is returned (wrapped) when the backend cannot be reached or
// fails on its side (connection refused, timeout, 5xx), as opposed to
// ErrNotFound or ErrInvalidKey, so that the HTTP layer can answer 503 with
// Retry-After.
var ErrUnavailable = errors.New("store unavailable")

// Info describes one stored object.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Store is a blob store.
type Store interface {
	// Put stores everything read from r under key, atomically: the object
	// becomes visible only once it is complete, replacing any previous one.
	// If reading r fails, nothing is stored.
	Put(ctx context.Context, key string, r io.Reader) (Info, error)
	// Get returns the bytes [off, off+n) of the object; n < 0 means to the end.
	Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error)
	// Stat describes the object.
	Stat(ctx context.Context, key string) (Info, error)
	// List returns the objects whose keys start with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]Info, error)
	// Delete removes the object. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// FileOpener is implemented by backends whose objects are local files, so that
// callers can send ranges with sendfile (zero copy).
type FileOpener interface {
	// OpenFile opens the object's file for reading.
	OpenFile(ctx context.Context, key string) (*os.File, error)
}

// PartialWrite is a write in progress that a backend keeps apart from its
// objects until it completes or is aborted: an S3 multipart upload.
type PartialWrite struct {
	Key     string    // the key being written
	ID      string    // the backend's id of the write
	Started time.Time // when it began
}

// PartialWriter is implemented by backends whose writes in progress
// outlive the process that made them: an S3 multipart upload stays, its
// parts taking space, when the node storing it dies in the middle of a
// Put. List does not show them; jitstream gc aborts the old ones.
type PartialWriter interface {
	// PartialWrites lists the writes in progress of keys starting with
	// prefix.
	PartialWrites(ctx context.Context, prefix string) ([]PartialWrite, error)
	// AbortPartialWrite aborts a write in progress, dropping what it
	// holds; one that is gone already is not an error.
	AbortPartialWrite(ctx context.Context, w PartialWrite) error
}

// Checker is implemented by backends that can check cheaply that they
// work (for health checks), beyond answering a Stat.
type Checker interface {
	// Check returns an error when the backend cannot serve requests.
	Check(ctx context.Context) error
}

// SizeHinter is a store (a read cache) that can be told the size of an
// object whose bytes never change by a caller that knows it, sparing it a
// Stat of the backend. A hint for a key it does not cache is ignored.
type SizeHinter interface {
	HintSize(key string, size int64)
}

// HintSize tells st the size of the object key if st takes hints.
func HintSize(st Store, key string, size int64) {
	if h, ok := st.(SizeHinter); ok {
		h.HintSize(key, size)
	}
}

// CheckKey reports whether key is well formed.
func CheckKey(key string) error {
	if key == "" || len(key) > 1024 {
		return fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	for _, el := range strings.Split(key, "/") {
		if el == "" || el == "." || el == ".." || strings.HasPrefix(el, ".tmp") {
			return fmt.Errorf("%w: %q", ErrInvalidKey, key)
		}
		for _, c := range el {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return fmt.Errorf("%w: %q", ErrInvalidKey, key)
			}
		}
	}
	return nil
}

// ReaderAt gives random access to a stored object through ranged Gets. It
// keeps a small read-ahead buffer so that many small sequential reads (box
// headers) cost few backend calls.
type ReaderAt struct {
	ctx  context.Context
	st   Store
	key  string
	size int64

	buf    []byte
	bufOff int64
}

// NewReaderAt returns a ReaderAt over the object key of the given size.
func NewReaderAt(ctx context.Context, st Store, key string, size int64) *ReaderAt {
	return &ReaderAt{ctx: ctx, st: st, key: key, size: size, bufOff: -1}
}

// Size is the object's size.
func (r *ReaderAt) Size() int64 { return r.size }

const readAhead = 64 << 10

// ReadAt implements io.ReaderAt.
func (r *ReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("store: negative offset %d", off)
	}
	if off >= r.size {
		return 0, io.EOF
	}
	if r.bufOff >= 0 && off >= r.bufOff && off+int64(len(p)) <= r.bufOff+int64(len(r.buf)) {
		return copy(p, r.buf[off-r.bufOff:]), nil
	}
	want := int64(len(p))
	if off+want > r.size {
		want = r.size - off
	}
	if want < readAhead && len(p) <= readAhead {
		n := int64(readAhead)
		if off+n > r.size {
			n = r.size - off
		}
		b, err := r.read(off, n)
		if err != nil {
			return 0, err
		}
		r.buf, r.bufOff = b, off
		c := copy(p, b)
		if c < len(p) {
			return c, io.EOF
		}
		return c, nil
	}
	b, err := r.read(off, want)
	if err != nil {
		return 0, err
	}
	c := copy(p, b)
	if c < len(p) {
		return c, io.EOF
	}
	return c, nil
}

func (r *ReaderAt) read(off, n int64) ([]byte, error) {
	rc, err := r.st.Get(r.ctx, r.key, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(rc, b); err != nil {
		return nil, fmt.Errorf("store: read %s at %d: %w", r.key, off, err)
	}
	return b, nil
}
