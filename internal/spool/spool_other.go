//go:build !linux

package spool

import (
	"errors"
	"fmt"
	"os"
)

// Spool creates spooled files in a directory (Linux only).
type Spool struct{}

// New returns an error wrapping errors.ErrUnsupported: spooling needs Linux.
func New(dir string) (*Spool, error) {
	return nil, fmt.Errorf("spool: %w on this system", errors.ErrUnsupported)
}

// Dir is the spool's directory.
func (sp *Spool) Dir() string { return "" }

type writer struct{}

func (sp *Spool) create() (*writer, error) { return nil, errors.ErrUnsupported }

func (w *writer) Write(p []byte) (int, error) { return 0, errors.ErrUnsupported }
func (w *writer) discard()                    {}
func (w *writer) done(size int64) *File       { return &File{} }

// File is a spooled file. It implements vfile.Source.
type File struct{}

// Size is the number of bytes of the file.
func (f *File) Size() int64 { return 0 }

// Open returns a new read-only file over f's bytes.
func (f *File) Open() (*os.File, error) { return nil, errors.ErrUnsupported }

// Release frees f.
func (f *File) Release() {}
