package transcode

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jitstream/jitstream/internal/lru"
	"github.com/jitstream/jitstream/internal/store"
)

// CachePrefix is the store prefix under which transcoded segments are
// kept:
//
//	cache/transcode/{source}/{rendition}/{n}     segment n (moof+mdat)
//	cache/transcode/{source}/{rendition}/init    the init segment
//
// where {source} is the hex SHA-256 (first 128 bits) of Source.Key, the
// video track's ID, the segment boundaries and the version of the encoding
// settings, and {rendition} is Rendition.ID ("480p-854x480-1200000").
const CachePrefix = "cache/transcode/"

// settingsVersion is mixed into every cache key: bump it when the encoding
// (ffmpeg arguments, timing, boxes) changes, so that old results are not
// served with new ones.
const settingsVersion = "transcode-v2"

// sourceHash is the {source} element of the cache keys of src.
func sourceHash(src *Source) string {
	h := sha256.New()
	h.Write([]byte(settingsVersion))
	h.Write([]byte{0})
	h.Write([]byte(src.Key))
	h.Write([]byte{0})
	var b [8]byte
	binary.BigEndian.PutUint32(b[:4], src.Track.ID)
	h.Write(b[:4])
	for _, s := range src.Segments {
		binary.BigEndian.PutUint64(b[:], uint64(s.Start))
		h.Write(b[:])
	}
	binary.BigEndian.PutUint64(b[:], uint64(len(src.Segments)))
	h.Write(b[:])
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// segmentKey and initKey are the cache keys of segment n and of the init
// segment of r for the source whose sourceHash is sh.
func segmentKey(sh string, r Rendition, n int) string {
	return CachePrefix + sh + "/" + r.ID() + "/" + strconv.Itoa(n)
}

func initKey(sh string, r Rendition) string {
	return CachePrefix + sh + "/" + r.ID() + "/init"
}

// cache keeps objects in a store under CachePrefix within a byte budget,
// deleting the least recently used ones when the total exceeds it.
//
// Recency and the total are per node: the LRU list is loaded once from a
// List of the prefix (oldest modification first) and then follows this
// node's reads and writes. Several nodes sharing a store each keep their
// own list, so together they may hold up to the budget times the number of
// nodes, and one may delete an object that another was still reading from
// (that read is a miss, and the segment is made again).
type cache struct {
	st     store.Store
	budget int64
	log    *slog.Logger

	mu     sync.Mutex // serializes loading and check-then-add sequences
	loaded bool
	lru    *lru.Cache[string, *cacheEntry]
}

// cacheEntry is an object known to the LRU.
type cacheEntry struct {
	size int64
	// gone marks an entry dropped because the object is missing: its
	// eviction deletes nothing.
	gone atomic.Bool
}

func newCache(st store.Store, budget int64, log *slog.Logger) *cache {
	c := &cache{st: st, budget: budget, log: log}
	c.lru = lru.NewWithEvict(budget, c.evicted)
	return c
}

// usage is the size and number of the objects that the LRU knows.
func (c *cache) usage() (bytes, objects int64) {
	return c.lru.Cost(), int64(c.lru.Len())
}

// evicted deletes the object of an entry that the LRU dropped.
func (c *cache) evicted(key string, e *cacheEntry) {
	if e.gone.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.st.Delete(ctx, key); err != nil {
		c.log.Warn("transcode cache: evicting", "key", key, "err", err)
		return
	}
	c.log.Debug("transcode cache: evicted", "key", key, "bytes", e.size)
}

// load fills the LRU from the store once. A failure is logged and retried
// on the next call.
func (c *cache) load(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded {
		return
	}
	infos, err := c.st.List(ctx, CachePrefix)
	if err != nil {
		c.log.Warn("transcode cache: listing the cache", "prefix", CachePrefix, "err", err)
		return
	}
	sort.SliceStable(infos, func(i, j int) bool { return infos[i].ModTime.Before(infos[j].ModTime) })
	var total int64
	for _, in := range infos {
		c.lru.Add(in.Key, &cacheEntry{size: in.Size}, in.Size)
		total += in.Size
	}
	c.loaded = true
	c.log.Debug("transcode cache: loaded", "objects", len(infos), "bytes", total, "budget", c.budget)
}

// get returns the object key, marking it recently used. A missing object
// (or a store that fails) is a miss.
func (c *cache) get(ctx context.Context, key string) ([]byte, bool) {
	c.load(ctx)
	rc, err := c.st.Get(ctx, key, 0, -1)
	if err == nil {
		var b bytes.Buffer
		_, err = io.Copy(&b, rc)
		rc.Close()
		if err == nil {
			c.touch(key, int64(b.Len()))
			return b.Bytes(), true
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		c.mu.Lock()
		if e, ok := c.lru.Get(key); ok {
			e.gone.Store(true)
			c.lru.Remove(key)
		}
		c.mu.Unlock()
	} else if ctx.Err() == nil {
		c.log.Warn("transcode cache: reading", "key", key, "err", err)
	}
	return nil, false
}

// touch marks key recently used, adding it (written by another node since
// the list was loaded) when the LRU does not know it.
func (c *cache) touch(key string, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.lru.Get(key); !ok {
		c.lru.Add(key, &cacheEntry{size: size}, size)
	}
}

// put stores data under key (atomically: store.Put) and accounts for it,
// evicting the least recently used objects beyond the budget.
func (c *cache) put(ctx context.Context, key string, data []byte) error {
	c.load(ctx)
	if _, err := c.st.Put(ctx, key, bytes.NewReader(data)); err != nil {
		return err
	}
	c.touch(key, int64(len(data)))
	return nil
}

// has reports whether the object key is in the store, without reading it
// or marking it used.
func (c *cache) has(ctx context.Context, key string) bool {
	_, err := c.st.Stat(ctx, key)
	return err == nil
}
