package vfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// Getter reads n bytes at off of a stored object, as store.Store does.
type Getter interface {
	Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error)
}

// ErrSpooled is returned by Copy for a piece in a local spool file, which
// it does not read.
var ErrSpooled = errors.New("vfile: cannot copy a spooled piece")

// Copy writes the bytes of f to w: the pieces held in memory as they are,
// the stored ones read with g, those of one object that lie at most gap
// bytes apart with a single Get (the bytes between them are read and
// dropped).
func Copy(ctx context.Context, g Getter, f *File, w io.Writer, gap int64) error {
	ps := f.Pieces
	for i := 0; i < len(ps); {
		p := ps[i]
		if !p.IsStored() {
			if p.IsSource() {
				return fmt.Errorf("%w (%s)", ErrSpooled, f.Name)
			}
			if _, err := w.Write(p.Data); err != nil {
				return err
			}
			i++
			continue
		}
		// Grow a window over the following pieces of the same object.
		lo, hi := p.Off, p.Off+p.Len
		j := i + 1
		for ; j < len(ps) && ps[j].IsStored() && ps[j].Object == p.Object; j++ {
			q := ps[j]
			if q.Off < lo || q.Off > hi+gap {
				break
			}
			hi = max(hi, q.Off+q.Len)
		}
		win, err := ReadRange(ctx, g, p.Object, lo, hi-lo)
		if err != nil {
			return err
		}
		for k := i; k < j; k++ {
			if _, err := w.Write(win[ps[k].Off-lo : ps[k].Off-lo+ps[k].Len]); err != nil {
				return err
			}
		}
		i = j
	}
	return nil
}

// ReadAll returns the bytes of f, read as Copy reads them.
func ReadAll(ctx context.Context, g Getter, f *File, gap int64) ([]byte, error) {
	b := bytes.NewBuffer(make([]byte, 0, f.Size))
	if err := Copy(ctx, g, f, b, gap); err != nil {
		return nil, err
	}
	if int64(b.Len()) != f.Size {
		return nil, fmt.Errorf("vfile: read %d bytes of a %d-byte file", b.Len(), f.Size)
	}
	return b.Bytes(), nil
}

// ReadRange reads n bytes at off of the object key.
func ReadRange(ctx context.Context, g Getter, key string, off, n int64) ([]byte, error) {
	rc, err := g.Get(ctx, key, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(rc, b); err != nil {
		return nil, fmt.Errorf("vfile: read %s at %d: %w", key, off, err)
	}
	return b, nil
}
