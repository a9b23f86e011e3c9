package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"

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
// once it is unreachable.
func (w *writer) done(size int64) *File {
	f := &File{fd: w.fd, size: size, path: "/proc/self/fd/" + strconv.Itoa(w.fd)}
	runtime.AddCleanup(f, func(fd int) { unix.Close(fd) }, w.fd)
	return f
}

// File is a spooled file. It implements vfile.Source.
type File struct {
	fd   int
	size int64
	path string
}

// Size is the number of bytes of the file.
func (f *File) Size() int64 { return f.size }

// Open returns a new read-only file over f's bytes, at offset 0, with an
// offset of its own; the caller closes it.
func (f *File) Open() (*os.File, error) {
	var fd int
	var err error
	for {
		fd, err = unix.Open(f.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	// f's descriptor must stay open until the reopening is done.
	runtime.KeepAlive(f)
	if err != nil {
		return nil, fmt.Errorf("spool: reopen: %w", err)
	}
	return os.NewFile(uintptr(fd), "spool"), nil
}
