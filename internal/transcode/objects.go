package transcode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
)

// The cached objects of a rendition, for callers that serve them as they
// are stored (internal/outputs builds a progressive MP4 whose video samples
// are byte ranges of the segment objects). Nothing here transcodes: these
// methods only tell what the cache holds, read it and keep it.

// SegmentObject is one object of a rendition in the cache.
type SegmentObject struct {
	// Key is the object's store key (under CachePrefix); empty for a
	// segment that is not cached.
	Key string
	// Size is the object's size in bytes.
	Size int64
	// ModTime is when the object was written.
	ModTime time.Time
}

// CachedRendition is what the cache holds of one rendition of a source.
type CachedRendition struct {
	// Init is the init segment's object (Key empty when it is not
	// cached).
	Init SegmentObject
	// Segments has one element per segment of the source: segment n's
	// object, or a zero SegmentObject when it is not cached.
	Segments []SegmentObject
}

// Count is the number of segments cached.
func (c *CachedRendition) Count() int {
	n := 0
	for _, o := range c.Segments {
		if o.Key != "" {
			n++
		}
	}
	return n
}

// Complete reports whether the init segment and every segment are cached.
func (c *CachedRendition) Complete() bool {
	return c.Init.Key != "" && len(c.Segments) > 0 && c.Count() == len(c.Segments)
}

// ModTime is the latest write time of the cached objects.
func (c *CachedRendition) ModTime() time.Time {
	t := c.Init.ModTime
	for _, o := range c.Segments {
		if o.ModTime.After(t) {
			t = o.ModTime
		}
	}
	return t
}

// Objects tells which objects of the rendition r of src are in the cache,
// with one List of the store (nothing is read, nor marked used). Without a
// store nothing is cached: every segment is missing.
func (t *Transcoder) Objects(ctx context.Context, src Source, r Rendition) (*CachedRendition, error) {
	if err := src.check(r, 0); err != nil {
		return nil, err
	}
	out := &CachedRendition{Segments: make([]SegmentObject, len(src.Segments))}
	if t.cache == nil {
		return out, nil
	}
	sh := sourceHash(&src)
	prefix := CachePrefix + sh + "/" + r.ID() + "/"
	infos, err := t.cache.st.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("transcode: listing the cache of %s %s: %w", src.Key, r.Name, err)
	}
	for _, in := range infos {
		name := strings.TrimPrefix(in.Key, prefix)
		o := SegmentObject{Key: in.Key, Size: in.Size, ModTime: in.ModTime}
		if name == "init" {
			out.Init = o
			continue
		}
		n, err := strconv.Atoi(name)
		if err != nil || n < 0 || n >= len(out.Segments) || strconv.Itoa(n) != name {
			continue
		}
		out.Segments[n] = o
	}
	return out, nil
}

// AllCached reports whether the init segment and every segment of the
// rendition r of src are in the cache (see Objects); false when the store
// cannot tell.
func (t *Transcoder) AllCached(ctx context.Context, src Source, r Rendition) bool {
	c, err := t.Objects(ctx, src, r)
	return err == nil && c.Complete()
}

// Cached reports whether segment n of the rendition r of src is in the
// cache, with its key and size, from a Stat of the store (it is neither
// read nor marked used).
func (t *Transcoder) Cached(ctx context.Context, src Source, r Rendition, n int) (key string, size int64, ok bool) {
	if t.cache == nil || src.check(r, n) != nil {
		return "", 0, false
	}
	key = segmentKey(sourceHash(&src), r, n)
	in, err := t.cache.st.Stat(ctx, key)
	if err != nil {
		return "", 0, false
	}
	return key, in.Size, true
}

// CachedInit returns the init segment of the rendition r of src when it is
// in the cache, without transcoding anything (Init transcodes segment 0
// when it is not).
func (t *Transcoder) CachedInit(ctx context.Context, src Source, r Rendition) ([]byte, bool) {
	if src.check(r, 0) != nil {
		return nil, false
	}
	return t.cached(ctx, initKey(sourceHash(&src), r))
}

// Touch marks the cached objects objs recently used in this node's cache
// budget, so that the least recently used objects evicted to make room are
// others (a file being downloaded from them is evicted last), and reports
// whether they are all still there with their sizes. An object this node
// does not know (written by another node) is looked up with Stat and
// counted in the budget from then on. It returns false, having stopped at
// the first, for an object that is missing (evicted), of another size
// (made again since), or not under CachePrefix, and always without a
// store.
func (t *Transcoder) Touch(ctx context.Context, objs []SegmentObject) bool {
	if t.cache == nil {
		return false
	}
	c := t.cache
	c.load(ctx)
	for _, o := range objs {
		if !strings.HasPrefix(o.Key, CachePrefix) {
			return false
		}
		if e, ok := c.lru.Get(o.Key); ok {
			if e.size != o.Size || e.gone.Load() {
				return false
			}
			continue
		}
		in, err := c.st.Stat(ctx, o.Key)
		if err != nil || in.Size != o.Size {
			return false
		}
		c.touch(o.Key, in.Size)
	}
	return true
}

// InitSampleEntry returns the sample entry box (avc1, header included)
// that describes the samples of a rendition's init segment (Init): what a
// progressive MP4 of the rendition puts in its stsd.
func InitSampleEntry(init []byte) ([]byte, error) {
	f, err := mp4.DecodeFile(bytes.NewReader(init))
	if err != nil {
		return nil, fmt.Errorf("transcode: parsing the init segment: %w", err)
	}
	if f.Init == nil || f.Init.Moov == nil || f.Init.Moov.Trak == nil {
		return nil, errors.New("transcode: init segment without a moov with a track")
	}
	trak := f.Init.Moov.Trak
	if trak.Mdia == nil || trak.Mdia.Minf == nil || trak.Mdia.Minf.Stbl == nil {
		return nil, errors.New("transcode: init segment without a sample table")
	}
	stsd := trak.Mdia.Minf.Stbl.Stsd
	if stsd == nil || len(stsd.Children) != 1 {
		return nil, errors.New("transcode: init segment without exactly one sample entry")
	}
	var b bytes.Buffer
	if err := stsd.Children[0].Encode(&b); err != nil {
		return nil, fmt.Errorf("transcode: writing the sample entry: %w", err)
	}
	return b.Bytes(), nil
}
