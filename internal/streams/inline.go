package streams

import (
	"context"
	"fmt"
	"io"

	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/vfile"
)

// Inlining thresholds: a built file whose stored pieces are small on
// average (a segment of one track of an interleaved original is hundreds of
// sample-sized ranges) is read once and kept in memory, so that each request
// is one write instead of hundreds of tiny sendfile calls.
const (
	inlineMaxSize     = 16 << 20 // bytes of the whole file
	inlineMaxAvgPiece = 64 << 10 // average stored piece
	inlineReadGap     = 64 << 10 // gap read through rather than split
)

// shouldInline reports whether f is better served from memory.
func shouldInline(f *vfile.File) bool {
	var n, bytes int64
	for _, p := range f.Pieces {
		if p.IsStored() {
			n++
			bytes += p.Len
		}
	}
	return n > 1 && f.Size <= inlineMaxSize && bytes/n < inlineMaxAvgPiece
}

// inline returns a copy of f whose pieces are all in memory, reading close
// stored ranges of one object with a single Get.
func inline(ctx context.Context, st store.Store, f *vfile.File) (*vfile.File, error) {
	buf := make([]byte, 0, f.Size)
	ps := f.Pieces
	for i := 0; i < len(ps); {
		p := ps[i]
		if !p.IsStored() {
			buf = append(buf, p.Data...)
			i++
			continue
		}
		// Grow a window over the following pieces of the same object.
		lo, hi := p.Off, p.Off+p.Len
		j := i + 1
		for ; j < len(ps) && ps[j].IsStored() && ps[j].Object == p.Object; j++ {
			q := ps[j]
			if q.Off < lo || q.Off > hi+inlineReadGap {
				break
			}
			hi = max(hi, q.Off+q.Len)
		}
		win, err := read(ctx, st, p.Object, lo, hi-lo)
		if err != nil {
			return nil, err
		}
		for k := i; k < j; k++ {
			buf = append(buf, win[ps[k].Off-lo:ps[k].Off-lo+ps[k].Len]...)
		}
		i = j
	}
	if int64(len(buf)) != f.Size {
		return nil, fmt.Errorf("streams: inlined %d bytes of a %d-byte file", len(buf), f.Size)
	}
	g := vfile.New(f.Name, f.ContentType, f.ModTime, f.ETag, []vfile.Piece{vfile.Bytes(buf)})
	g.Timeline = f.Timeline
	return g, nil
}

func read(ctx context.Context, st store.Store, obj string, off, n int64) ([]byte, error) {
	rc, err := st.Get(ctx, obj, off, n)
	if err != nil {
		return nil, fmt.Errorf("streams: %w", err)
	}
	defer rc.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(rc, b); err != nil {
		return nil, fmt.Errorf("streams: read %s at %d: %w", obj, off, err)
	}
	return b, nil
}
