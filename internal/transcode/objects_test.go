package transcode

import (
	"bytes"
	"context"
	"testing"
)

// TestObjects: Objects, AllCached, Cached and CachedInit tell what the
// cache holds of a rendition without transcoding anything; InitSampleEntry
// is the init segment's avc1 box.
func TestObjects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := smallSource(t, "alice/objects/r1/")
	r := rendition(t, smallLadder(t), src, "120p")
	tc := New(Options{Store: src.Store, Concurrency: 2})
	t.Cleanup(func() { tc.Close() })

	cr, err := tc.Objects(ctx, src, r)
	if err != nil || cr.Count() != 0 || cr.Complete() || len(cr.Segments) != 2 || cr.Init.Key != "" {
		t.Fatalf("Objects before any transcode: %+v, %v", cr, err)
	}
	if tc.AllCached(ctx, src, r) {
		t.Error("AllCached before any transcode")
	}
	if _, _, ok := tc.Cached(ctx, src, r, 0); ok {
		t.Error("Cached(0) before any transcode")
	}
	if _, ok := tc.CachedInit(ctx, src, r); ok {
		t.Error("CachedInit before any transcode")
	}
	if runs := tc.runs.Load(); runs != 0 {
		t.Fatalf("%d ffmpeg runs for looking at the cache", runs)
	}

	seg, err := tc.Segment(ctx, src, r, 0)
	if err != nil {
		t.Fatal(err)
	}
	cr, err = tc.Objects(ctx, src, r)
	if err != nil || cr.Count() != 1 || cr.Complete() || cr.Init.Key == "" || cr.Segments[1].Key != "" {
		t.Fatalf("Objects with segment 0 made: %+v, %v", cr, err)
	}
	key, size, ok := tc.Cached(ctx, src, r, 0)
	if !ok || key != cr.Segments[0].Key || size != int64(len(seg)) || cr.Segments[0].Size != size || cr.Segments[0].ModTime.IsZero() {
		t.Errorf("Cached(0) = %q, %d, %v; Objects %+v; want the %d bytes of segment 0", key, size, ok, cr.Segments[0], len(seg))
	}
	if _, err := tc.Segment(ctx, src, r, 1); err != nil {
		t.Fatal(err)
	}
	if !tc.AllCached(ctx, src, r) {
		t.Error("not AllCached with both segments made")
	}
	init, ok := tc.CachedInit(ctx, src, r)
	want, err := tc.Init(ctx, src, r)
	if !ok || err != nil || !bytes.Equal(init, want) {
		t.Fatalf("CachedInit: %d bytes, %v; Init %d bytes, %v", len(init), ok, len(want), err)
	}
	entry, err := InitSampleEntry(init)
	if err != nil || len(entry) < 8 || string(entry[4:8]) != "avc1" || !bytes.Contains(init, entry) {
		t.Errorf("InitSampleEntry: % x..., %v; want the init segment's avc1 box", entry[:min(len(entry), 8)], err)
	}
	for _, bad := range [][]byte{nil, []byte("not an mp4"), seg} {
		if _, err := InitSampleEntry(bad); err == nil {
			t.Errorf("InitSampleEntry of %d bytes that are no init segment: no error", len(bad))
		}
	}

	none := New(Options{})
	t.Cleanup(func() { none.Close() })
	if cr, err := none.Objects(ctx, src, r); err != nil || cr.Count() != 0 || cr.Complete() {
		t.Errorf("Objects without a store: %+v, %v", cr, err)
	}
}

// TestTouch: Touch marks the objects of a rendition used and tells
// whether they are all still there with their sizes.
func TestTouch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := smallSource(t, "alice/touch/r1/")
	r := rendition(t, smallLadder(t), src, "120p")
	tc := New(Options{Store: src.Store, Concurrency: 2})
	t.Cleanup(func() { tc.Close() })
	for n := range src.Segments {
		if _, err := tc.Segment(ctx, src, r, n); err != nil {
			t.Fatal(err)
		}
	}
	cr, err := tc.Objects(ctx, src, r)
	if err != nil || !cr.Complete() {
		t.Fatalf("Objects: %+v, %v", cr, err)
	}
	segs := cr.Segments
	c := tc.cache
	for _, tcase := range []struct {
		name  string
		setup func() []SegmentObject
		want  bool
	}{
		{"all there", func() []SegmentObject { return segs }, true},
		{"other size", func() []SegmentObject {
			return []SegmentObject{segs[0], {Key: segs[1].Key, Size: segs[1].Size + 1}}
		}, false},
		{"outside the cache", func() []SegmentObject {
			return []SegmentObject{{Key: "originals/x.mp4", Size: 1}}
		}, false},
		{"unknown to this node", func() []SegmentObject {
			// Forgotten without being deleted: as if another node
			// wrote it after this one listed the cache.
			if e, ok := c.lru.Get(segs[0].Key); ok {
				e.gone.Store(true)
				c.lru.Remove(segs[0].Key)
			}
			return segs
		}, true},
		{"evicted", func() []SegmentObject {
			c.lru.Remove(segs[1].Key) // deletes the object
			return segs
		}, false},
	} {
		if got := tc.Touch(ctx, tcase.setup()); got != tcase.want {
			t.Errorf("%s: Touch = %v, want %v", tcase.name, got, tcase.want)
		}
	}
	if _, ok := c.lru.Get(segs[0].Key); !ok {
		t.Error("Touch did not adopt an object unknown to this node")
	}
	if _, _, ok := tc.Cached(ctx, src, r, 1); ok {
		t.Error("segment 1 still cached after its eviction")
	}
	none := New(Options{})
	t.Cleanup(func() { none.Close() })
	if none.Touch(ctx, segs[:1]) {
		t.Error("Touch without a store")
	}
}
