package httpserve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"

	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/vfile"
)

// copyBufSize is the size of the buffers used to copy from stores that are
// not local files.
const copyBufSize = 32 << 10

// bufPool holds *[]byte of copyBufSize bytes.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, copyBufSize)
	return &b
}}

// maxOpenFiles bounds the files a response keeps open on a FileOpener
// backend. Up to that many distinct objects are opened before the status line
// is written; further ones are opened when reached, closing the least
// recently used.
const maxOpenFiles = 64

// sender writes the pieces of a virtual file to a response body.
type sender struct {
	ctx context.Context
	st  store.Store
	fo  store.FileOpener // st as a FileOpener, or nil
	f   *vfile.File
	w   io.Writer // the body writer; set once the header is written

	// FileOpener backends: open files by object key.
	files map[string]*openFile
	clock uint64

	// Other backends: the reader of the first stored piece, obtained before
	// the status line to detect a missing object early.
	first      io.ReadCloser
	firstPiece vfile.Piece

	buf *[]byte // from bufPool, lazily
}

type openFile struct {
	f    *os.File
	pos  int64 // the file offset
	used uint64
}

func newSender(ctx context.Context, st store.Store, f *vfile.File) *sender {
	s := &sender{ctx: ctx, st: st, f: f}
	if fo, ok := st.(store.FileOpener); ok {
		s.fo = fo
		s.files = make(map[string]*openFile)
	}
	return s
}

// prepare checks, before anything is written, that the stored objects the
// ranges need are there:
//   - on a FileOpener backend it opens every object (up to maxOpenFiles) and
//     checks with fstat that it is long enough; the files are then reused by
//     the body;
//   - on other backends it gets the first stored piece (or, for HEAD, stats
//     its object), leaving the rest to fail mid-body if they must.
func (s *sender) prepare(ranges []byteRange, head bool) error {
	need := make(map[string]int64) // object -> end of the bytes needed
	var order []string
	var first *vfile.Piece
	for _, rg := range ranges {
		err := s.f.Slice(rg.start, rg.length, func(p vfile.Piece) error {
			if !p.IsStored() {
				return nil
			}
			if first == nil {
				first = &p
			}
			if _, ok := need[p.Object]; !ok {
				order = append(order, p.Object)
			}
			need[p.Object] = max(need[p.Object], p.Off+p.Len)
			return nil
		})
		if err != nil {
			return fmt.Errorf("httpserve: %w", err)
		}
		if s.fo == nil && first != nil {
			break
		}
	}
	if first == nil {
		return nil
	}
	if s.st == nil {
		return fmt.Errorf("httpserve: %s refers to stored objects but there is no store", s.f.Name)
	}
	if s.fo != nil {
		for _, obj := range order[:min(len(order), maxOpenFiles)] {
			of, err := s.open(obj)
			if err != nil {
				return err
			}
			fi, err := of.f.Stat()
			if err != nil {
				return fmt.Errorf("httpserve: stat %s: %w", obj, err)
			}
			if fi.Size() < need[obj] {
				return fmt.Errorf("httpserve: object %s has %d bytes, %s needs %d", obj, fi.Size(), s.f.Name, need[obj])
			}
		}
		return nil
	}
	if head {
		info, err := s.st.Stat(s.ctx, first.Object)
		if err != nil {
			return fmt.Errorf("httpserve: %w", err)
		}
		if info.Size < need[first.Object] {
			return fmt.Errorf("httpserve: object %s has %d bytes, %s needs %d", first.Object, info.Size, s.f.Name, need[first.Object])
		}
		return nil
	}
	rc, err := s.st.Get(s.ctx, first.Object, first.Off, first.Len)
	if err != nil {
		return fmt.Errorf("httpserve: %w", err)
	}
	s.first, s.firstPiece = rc, *first
	return nil
}

// send writes the bytes [rg.start, rg.end()) of the file.
func (s *sender) send(rg byteRange) error {
	return s.f.Slice(rg.start, rg.length, s.piece)
}

func (s *sender) piece(p vfile.Piece) error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	if !p.IsStored() {
		if _, err := s.w.Write(p.Data); err != nil {
			return fmt.Errorf("httpserve: write: %w", err)
		}
		return nil
	}
	if s.fo != nil {
		return s.copyFile(p)
	}
	return s.copyGet(p)
}

// copyFile copies a stored piece from its local file. The copy is
// io.Copy(w, io.LimitReader(file, n)): when w is net/http's response writer
// (an io.ReaderFrom) over a TCP connection, that reaches
// net.TCPConn.ReadFrom, which sends the file with sendfile(2).
func (s *sender) copyFile(p vfile.Piece) error {
	of, err := s.open(p.Object)
	if err != nil {
		return err
	}
	if of.pos != p.Off {
		if _, err := of.f.Seek(p.Off, io.SeekStart); err != nil {
			of.pos = -1
			return fmt.Errorf("httpserve: seek %s: %w", p.Object, err)
		}
		of.pos = p.Off
	}
	var n int64
	src := io.LimitReader(of.f, p.Len)
	if _, ok := s.w.(io.ReaderFrom); ok {
		n, err = io.Copy(s.w, src)
	} else {
		n, err = io.CopyBuffer(s.w, src, s.buffer())
	}
	of.pos += n
	if err != nil {
		return fmt.Errorf("httpserve: copy %s: %w", p.Object, err)
	}
	if n < p.Len {
		return fmt.Errorf("httpserve: copy %s at %d: %w", p.Object, p.Off+n, io.ErrUnexpectedEOF)
	}
	return nil
}

// open returns the open file of object, opening it if needed.
func (s *sender) open(object string) (*openFile, error) {
	s.clock++
	if of, ok := s.files[object]; ok {
		of.used = s.clock
		return of, nil
	}
	if len(s.files) >= maxOpenFiles {
		var lru string
		for k, of := range s.files {
			if lru == "" || of.used < s.files[lru].used {
				lru = k
			}
		}
		s.files[lru].f.Close()
		delete(s.files, lru)
	}
	f, err := s.fo.OpenFile(s.ctx, object)
	if err != nil {
		return nil, fmt.Errorf("httpserve: %w", err)
	}
	of := &openFile{f: f, used: s.clock}
	s.files[object] = of
	return of, nil
}

// copyGet copies a stored piece with a ranged Get, through a pooled buffer.
func (s *sender) copyGet(p vfile.Piece) error {
	rc := s.first
	if rc != nil && s.firstPiece.Object == p.Object && s.firstPiece.Off == p.Off && s.firstPiece.Len == p.Len {
		s.first = nil
	} else {
		var err error
		rc, err = s.st.Get(s.ctx, p.Object, p.Off, p.Len)
		if err != nil {
			return fmt.Errorf("httpserve: %w", err)
		}
	}
	defer rc.Close()
	// writerOnly hides the response's ReadFrom so that the copy goes through
	// our buffer rather than net/http's.
	n, err := io.CopyBuffer(writerOnly{s.w}, io.LimitReader(rc, p.Len), s.buffer())
	if err != nil {
		return fmt.Errorf("httpserve: copy %s: %w", p.Object, err)
	}
	if n < p.Len {
		return fmt.Errorf("httpserve: copy %s at %d: %w", p.Object, p.Off+n, io.ErrUnexpectedEOF)
	}
	return nil
}

func (s *sender) buffer() []byte {
	if s.buf == nil {
		s.buf = bufPool.Get().(*[]byte)
	}
	return *s.buf
}

// close releases the files, readers and buffer of the response.
func (s *sender) close() {
	for k, of := range s.files {
		of.f.Close()
		delete(s.files, k)
	}
	if s.first != nil {
		s.first.Close()
		s.first = nil
	}
	if s.buf != nil {
		bufPool.Put(s.buf)
		s.buf = nil
	}
}

// writerOnly hides every method of an io.Writer but Write.
type writerOnly struct{ io.Writer }

// clientGone reports whether a mid-body error is the client going away
// rather than a failure of ours.
func clientGone(ctx context.Context, err error) bool {
	return ctx.Err() != nil ||
		errors.Is(err, context.Canceled) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, net.ErrClosed)
}
