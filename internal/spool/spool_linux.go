package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Spool creates spooled files in a directory.
type Spool struct {
	dir string
}

// New returns a spool over dir, which must exist and support O_TMPFILE
// (ext4, xfs, btrfs, tmpfs...): New checks it by spooling an empty file.
func New(dir string) (*Spool, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	sp := &Spool{dir: abs}
	w, err := sp.create()
	if err != nil {
		return nil, err
	}
	f := w.done(0)
	r, err := f.Open()
	if err != nil {
		return nil, err
	}
	r.Close()
	return sp, nil
}

// Dir is the spool's directory.
func (sp *Spool) Dir() string { return sp.dir }

// writer writes a new spooled file.
type writer struct{ fd int }

func (sp *Spool) create() (*writer, error) {
	fd, err := unix.Open(sp.dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) {
			err = fmt.Errorf("%w: %w", errors.ErrUnsupported, err)
		}
		return nil, fmt.Errorf("spool: temporary file in %s: %w", sp.dir, err)
	}
	return &writer{fd: fd}, nil
}

func (w *writer) Write(p []byte) (int, error) {
	var n int
	for n < len(p) {
		m, err := unix.Write(w.fd, p[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("spool: write: %w", err)
		}
		n += m
	}
	return n, nil
}

func (w *writer) discard() { unix.Close(w.fd) }

// done turns the written file into a *File, whose descriptor is closed
// once it is unreachable or released.
func (w *writer) done(size int64) *File {
	d := &desc{fd: w.fd, path: "/proc/self/fd/" + strconv.Itoa(w.fd)}
	f := &File{d: d, size: size}
	runtime.AddCleanup(f, (*desc).close, d)
	return f
}

// desc is the descriptor of a spooled file, closed once: by Release or by
// the cleanup of its *File.
type desc struct {
	mu     sync.RWMutex
	fd     int
	path   string // /proc/self/fd/N
	closed bool
}

func (d *desc) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		d.closed = true
		unix.Close(d.fd)
	}
}

// File is a spooled file. It implements vfile.Source.
type File struct {
	d    *desc
	size int64
}

// Size is the number of bytes of the file.
func (f *File) Size() int64 { return f.size }

// Open returns a new read-only file over f's bytes, at offset 0, with an
// offset of its own; the caller closes it. After Release it fails with
// ErrReleased (files opened before stay readable).
func (f *File) Open() (*os.File, error) {
	d := f.d
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, ErrReleased
	}
	var fd int
	var err error
	for {
		fd, err = unix.Open(d.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("spool: reopen: %w", err)
	}
	return os.NewFile(uintptr(fd), "spool"), nil
}

// Release closes f's descriptor now rather than when f becomes
// unreachable, freeing its space once the files opened from it are
// closed. Later Opens fail with ErrReleased. It is safe to call more than
// once and concurrently with Open.
func (f *File) Release() { f.d.close() }
