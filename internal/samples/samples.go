// Package samples reads the payload bytes of index samples from the store,
// for outputs that must rewrite them (MPEG-TS) rather than reference them.
package samples

import (
	"context"
	"fmt"
	"io"

	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/store"
)

// maxGap is the largest hole between two samples of one object that is read
// through rather than split into two requests.
const maxGap = 64 << 10

// Read returns the bytes of samples [first, end) of track t. Samples lying
// close together in one stored object are fetched with one ranged Get.
func Read(ctx context.Context, st store.Store, ix *media.Index, t *media.Track, first, end int) ([][]byte, error) {
	if first < 0 || end > t.Samples.Len() || first > end {
		return nil, fmt.Errorf("samples: range %d..%d outside track %d's %d samples", first, end, t.ID, t.Samples.Len())
	}
	s := &t.Samples
	out := make([][]byte, end-first)
	for i := first; i < end; {
		c := s.Chapter(i)
		obj := ix.Chapters[c].Object
		chEnd := min(end, s.ChapterStart[c+1])
		// Grow a run while the next sample follows closely in the object.
		lo, hi := s.Offset[i], s.Offset[i]+int64(s.Size[i])
		j := i + 1
		for ; j < chEnd; j++ {
			o := s.Offset[j]
			if o < lo || o > hi+maxGap || o+int64(s.Size[j])-lo > 8<<20 {
				break
			}
			hi = max(hi, o+int64(s.Size[j]))
		}
		buf, err := get(ctx, st, obj, lo, hi-lo)
		if err != nil {
			return nil, err
		}
		for k := i; k < j; k++ {
			off := s.Offset[k] - lo
			out[k-first] = buf[off : off+int64(s.Size[k]) : off+int64(s.Size[k])]
		}
		i = j
	}
	return out, nil
}

func get(ctx context.Context, st store.Store, obj string, off, n int64) ([]byte, error) {
	rc, err := st.Get(ctx, obj, off, n)
	if err != nil {
		return nil, fmt.Errorf("samples: %w", err)
	}
	defer rc.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, fmt.Errorf("samples: read %s at %d: %w", obj, off, err)
	}
	return buf, nil
}
