// Package spool keeps built files (segments made at request time) in
// unlinked temporary files on a local file system, so that they are sent
// with sendfile(2) from the page cache, like static files, rather than
// copied from the heap on every request.
//
// A spooled file has no name: it is created with O_TMPFILE, and each
// response opens it anew (through /proc/self/fd) to get a file offset of
// its own. Its descriptor is closed, and its space freed, once the *File is
// unreachable (and the responses that opened it are done), or at once by
// Release: whoever keeps the *File (a cache) bounds how much is spooled. Nothing is left behind
// on disk when the process ends, however it ends.
//
// Spooling needs Linux; elsewhere New returns an error wrapping
// errors.ErrUnsupported and callers keep built files in memory.
package spool

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// ErrReleased is returned by File.Open after File.Release.
var ErrReleased = errors.New("spool: file released")

// Write spools a file of size bytes, written by fill, in sp. It fails if
// fill fails or writes another number of bytes; nothing is left behind.
func (sp *Spool) Write(ctx context.Context, size int64, fill func(w io.Writer) error) (*File, error) {
	f, err := sp.create()
	if err != nil {
		return nil, err
	}
	cw := &countWriter{w: f}
	if err := fill(cw); err != nil {
		f.discard()
		return nil, fmt.Errorf("spool: %w", err)
	}
	if cw.n != size {
		f.discard()
		return nil, fmt.Errorf("spool: wrote %d bytes, want %d", cw.n, size)
	}
	if err := ctx.Err(); err != nil {
		f.discard()
		return nil, err
	}
	return f.done(size), nil
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
