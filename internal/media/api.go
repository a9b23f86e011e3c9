package media

import (
	"errors"
	"io"
)

// ErrInvalid is returned (wrapped) for input that is not well-formed media:
// not MP4, truncated, lying box sizes, sample tables pointing outside the file.
var ErrInvalid = errors.New("invalid media")

// ErrUnsupported is returned (wrapped) for well-formed media that jitstream
// cannot serve, such as an audio or video track in an unsupported codec.
var ErrUnsupported = errors.New("unsupported media")

// Source is one chapter file to index.
type Source struct {
	Object string      // store key of the original bytes
	Name   string      // original file name
	R      io.ReaderAt // the bytes
	Size   int64
}
