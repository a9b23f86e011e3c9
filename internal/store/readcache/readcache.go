// Package readcache is a bounded local read-through cache in front of a
// remote store (S3): the bytes of objects that never change (the stored
// originals and their indexes) are kept in fixed-size blocks, in memory and
// on local disk, each tier within a byte budget, least recently used out
// first. A read of blocks missing from both tiers is one ranged Get of the
// whole run of missing blocks (adjacent ranges coalesced), shared by
// concurrent readers of the same blocks.
//
// Only keys for which Options.Immutable is true are cached; everything else
// (metadata that changes, listings, writes) goes straight to the store. A
// Delete drops what this process knows of the key's size, so a later Get
// of a deleted key fails as the store does; blocks are left to age out.
//
// The disk tier keeps blocks in unlinked temporary files (internal/spool):
// nothing is left behind when the process ends. Where spooling is not
// supported only the memory tier is used.
package readcache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jitstream/jitstream/internal/lru"
	"github.com/jitstream/jitstream/internal/spool"
	"github.com/jitstream/jitstream/internal/store"
)

// Defaults of Options.
const (
	DefaultBlockSize = 256 << 10
	DefaultMemBytes  = 64 << 20
	DefaultDiskBytes = 1 << 30
	// maxRun bounds the bytes of one coalesced Get of missing blocks.
	maxRun = 8 << 20
	// fetchTimeout bounds one Get of missing blocks.
	fetchTimeout = time.Minute
)

// Options configure a Cache.
type Options struct {
	// Immutable reports whether the bytes under key never change (until
	// the key is deleted). Only those keys are cached; nil caches nothing.
	Immutable func(key string) bool
	// BlockSize is the unit of caching; default DefaultBlockSize.
	BlockSize int64
	// MemBytes bounds the memory tier; default DefaultMemBytes; negative
	// disables it.
	MemBytes int64
	// DiskBytes bounds the disk tier; default DefaultDiskBytes; negative
	// or a nil Spool disables it.
	DiskBytes int64
	// Spool holds the disk tier.
	Spool  *spool.Spool
	Logger *slog.Logger
}

// Stats are counts of block reads since the cache was made.
type Stats struct {
	MemHits, DiskHits, Misses int64 // blocks
	Fetches                   int64 // Gets of the store (each a run of blocks)
	FetchedBytes              int64
}

// Cache is a store.Store that caches reads of immutable objects of the
// store it wraps. It is safe for concurrent use.
type Cache struct {
	st        store.Store
	immutable func(string) bool
	bs        int64
	log       *slog.Logger

	mem   *lru.Cache[blockID, []byte]
	disk  *lru.Cache[blockID, *spool.File] // nil without a disk tier
	sp    *spool.Spool
	sizes *lru.Cache[string, int64]

	mu       sync.Mutex
	inflight map[blockID]*fetch
	runs     sync.WaitGroup // fetches running, their disk writes included

	memHits, diskHits, misses, fetches, fetched atomic.Int64
}

type blockID struct {
	key string
	n   int64 // block number
}

// fetch is a Get of a run of blocks in progress; its waiters wait on done.
type fetch struct {
	done chan struct{}
	data map[int64][]byte // block number -> bytes
	err  error
}

var _ store.Store = (*Cache)(nil)

// New returns a cache in front of st.
func New(st store.Store, o Options) *Cache {
	if o.BlockSize <= 0 {
		o.BlockSize = DefaultBlockSize
	}
	if o.MemBytes == 0 {
		o.MemBytes = DefaultMemBytes
	}
	if o.DiskBytes == 0 {
		o.DiskBytes = DefaultDiskBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Cache{st: st, immutable: o.Immutable, bs: o.BlockSize, log: o.Logger,
		mem:      lru.New[blockID, []byte](max(o.MemBytes, 0)),
		sizes:    lru.New[string, int64](1 << 20), // entries cost about 64 bytes
		inflight: make(map[blockID]*fetch)}
	if o.Spool != nil && o.DiskBytes > 0 {
		c.sp = o.Spool
		c.disk = lru.NewWithEvict(o.DiskBytes, func(_ blockID, f *spool.File) { f.Release() })
	}
	if c.immutable == nil {
		c.immutable = func(string) bool { return false }
	}
	return c
}

// Stats returns the counts so far.
func (c *Cache) Stats() Stats {
	return Stats{MemHits: c.memHits.Load(), DiskHits: c.diskHits.Load(), Misses: c.misses.Load(),
		Fetches: c.fetches.Load(), FetchedBytes: c.fetched.Load()}
}

// Put implements store.Store: straight to the store.
func (c *Cache) Put(ctx context.Context, key string, r io.Reader) (store.Info, error) {
	return c.st.Put(ctx, key, r)
}

// List implements store.Store: straight to the store.
func (c *Cache) List(ctx context.Context, prefix string) ([]store.Info, error) {
	return c.st.List(ctx, prefix)
}

// Delete implements store.Store.
func (c *Cache) Delete(ctx context.Context, key string) error {
	c.sizes.Remove(key)
	return c.st.Delete(ctx, key)
}

// PartialWrites implements store.PartialWriter when the store does; it
// lists none otherwise.
func (c *Cache) PartialWrites(ctx context.Context, prefix string) ([]store.PartialWrite, error) {
	if pw, ok := c.st.(store.PartialWriter); ok {
		return pw.PartialWrites(ctx, prefix)
	}
	return nil, nil
}

// AbortPartialWrite implements store.PartialWriter when the store does.
func (c *Cache) AbortPartialWrite(ctx context.Context, w store.PartialWrite) error {
	if pw, ok := c.st.(store.PartialWriter); ok {
		return pw.AbortPartialWrite(ctx, w)
	}
	return nil
}

// Check implements store.Checker when the store does.
func (c *Cache) Check(ctx context.Context) error {
	if ch, ok := c.st.(store.Checker); ok {
		return ch.Check(ctx)
	}
	_, err := c.st.List(ctx, "healthz-probe/")
	return err
}

// Stat implements store.Store; the sizes of immutable objects are kept.
func (c *Cache) Stat(ctx context.Context, key string) (store.Info, error) {
	info, err := c.st.Stat(ctx, key)
	if err == nil && c.immutable(key) {
		c.sizes.Add(key, info.Size, int64(64+len(key)))
	}
	return info, err
}

// HintSize implements store.SizeHinter: the size of an immutable object,
// told by a caller that knows it (the library, from an asset's metadata),
// spares the Stat of the first read. Hints for other keys are ignored.
func (c *Cache) HintSize(key string, size int64) {
	if size >= 0 && c.immutable(key) {
		c.sizes.Add(key, size, int64(64+len(key)))
	}
}

// size returns the size of the immutable object key.
func (c *Cache) size(ctx context.Context, key string) (int64, error) {
	if n, ok := c.sizes.Get(key); ok {
		return n, nil
	}
	info, err := c.Stat(ctx, key)
	return info.Size, err
}

// Get implements store.Store: immutable objects are read through the
// cache, the first block before Get returns (so that a missing object or an
// unreachable store is an error here, not in the middle of the body). The
// range is that of the store's Get, cached or not: one that crosses the end
// of the object stops there, one that starts at the end reads nothing, one
// that starts beyond it is an error, and so is a done ctx.
func (c *Cache) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if !c.immutable(key) {
		return c.st.Get(ctx, key, off, n)
	}
	if off < 0 {
		return nil, fmt.Errorf("readcache: get %s: negative offset %d", key, off)
	}
	// Served from the cache, a Get need not reach the store, which would
	// report a done ctx.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("readcache: get %s: %w", key, err)
	}
	size, err := c.size(ctx, key)
	if err != nil {
		return nil, err
	}
	if off > size {
		return nil, fmt.Errorf("readcache: get %s: offset %d beyond the end (size %d)", key, off, size)
	}
	if n < 0 || n > size-off { // not off+n > size, which overflows
		n = size - off
	}
	r := &reader{c: c, ctx: ctx, key: key, size: size, pos: off, end: off + n}
	if n > 0 {
		if err := r.load(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// reader reads [pos, end) of an immutable object, block by block.
type reader struct {
	c        *Cache
	ctx      context.Context
	key      string
	size     int64
	pos, end int64
	cur      []byte // the block holding pos, from its start
	curN     int64  // its number, valid when cur != nil
}

// load makes cur the block holding pos.
func (r *reader) load() error {
	n := r.pos / r.c.bs
	if r.cur != nil && r.curN == n {
		return nil
	}
	last := (r.end - 1) / r.c.bs
	b, err := r.c.block(r.ctx, r.key, r.size, n, last)
	if err != nil {
		return err
	}
	r.cur, r.curN = b, n
	return nil
}

func (r *reader) Read(p []byte) (int, error) {
	if r.pos >= r.end {
		return 0, io.EOF
	}
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	if err := r.load(); err != nil {
		return 0, err
	}
	start := r.pos - r.curN*r.c.bs
	k := copy(p, r.cur[start:min(int64(len(r.cur)), start+r.end-r.pos)])
	r.pos += int64(k)
	return k, nil
}

func (r *reader) Close() error { r.cur = nil; return nil }

// block returns block n of key (of size bytes), fetching it with the
// following missing blocks up to last when it is in neither tier.
func (c *Cache) block(ctx context.Context, key string, size, n, last int64) ([]byte, error) {
	id := blockID{key, n}
	if b, ok := c.mem.Get(id); ok {
		c.memHits.Add(1)
		return b, nil
	}
	if b, ok := c.fromDisk(id); ok {
		c.diskHits.Add(1)
		c.mem.Add(id, b, int64(len(b)))
		return b, nil
	}
	c.mu.Lock()
	f, ok := c.inflight[id]
	if !ok {
		// A run of missing blocks from n, not already being fetched.
		hi := n
		for hi < last && (hi-n+2)*c.bs <= maxRun {
			next := blockID{key, hi + 1}
			if _, busy := c.inflight[next]; busy || c.has(next) {
				break
			}
			hi++
		}
		f = &fetch{done: make(chan struct{})}
		for i := n; i <= hi; i++ {
			c.inflight[blockID{key, i}] = f
		}
		// The fetch serves every reader waiting for these blocks: it
		// does not end when the reader that started it goes away.
		c.runs.Go(func() { c.run(context.WithoutCancel(ctx), key, size, n, hi, f) })
	}
	c.mu.Unlock()
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if f.err != nil {
		return nil, f.err
	}
	return f.data[n], nil
}

// has reports whether block id is in a tier (making it recently used: it
// is about to be read).
func (c *Cache) has(id blockID) bool {
	if _, ok := c.mem.Get(id); ok {
		return true
	}
	if c.disk != nil {
		if _, ok := c.disk.Get(id); ok {
			return true
		}
	}
	return false
}

// run fetches blocks [lo, hi] of key with one Get and fills both tiers:
// the memory tier before the waiting readers are woken, the disk tier
// after, off their path.
func (c *Cache) run(ctx context.Context, key string, size, lo, hi int64, f *fetch) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	f.data, f.err = c.fetch(ctx, key, size, lo, hi)
	close(f.done)
	// Until they are on disk too, the blocks stay reachable through f
	// (a memory tier may be small, or off).
	for i := lo; i <= hi && f.err == nil; i++ {
		c.toDisk(ctx, blockID{key, i}, f.data[i])
	}
	c.mu.Lock()
	for i := lo; i <= hi; i++ {
		delete(c.inflight, blockID{key, i})
	}
	c.mu.Unlock()
}

// fetch reads blocks [lo, hi] of key with one Get and adds them to the
// memory tier.
func (c *Cache) fetch(ctx context.Context, key string, size, lo, hi int64) (map[int64][]byte, error) {
	off := lo * c.bs
	n := min((hi+1)*c.bs, size) - off
	c.misses.Add(hi - lo + 1)
	c.fetches.Add(1)
	rc, err := c.st.Get(ctx, key, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, fmt.Errorf("readcache: read %s at %d: %w", key, off, err)
	}
	c.fetched.Add(n)
	data := make(map[int64][]byte, hi-lo+1)
	for i := lo; i <= hi; i++ {
		b := buf[(i-lo)*c.bs : min((i-lo+1)*c.bs, n)]
		data[i] = b
		c.mem.Add(blockID{key, i}, b, int64(len(b)))
	}
	return data, nil
}

// fromDisk reads block id from the disk tier.
func (c *Cache) fromDisk(id blockID) ([]byte, bool) {
	if c.disk == nil {
		return nil, false
	}
	sf, ok := c.disk.Get(id)
	if !ok {
		return nil, false
	}
	f, err := sf.Open()
	if err != nil {
		if !errors.Is(err, spool.ErrReleased) {
			c.log.Warn("readcache: disk block unreadable", "key", id.key, "block", id.n, "err", err)
		}
		return nil, false
	}
	defer f.Close()
	b := make([]byte, sf.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		c.log.Warn("readcache: disk block unreadable", "key", id.key, "block", id.n, "err", err)
		return nil, false
	}
	return b, true
}

// toDisk keeps block id in the disk tier.
func (c *Cache) toDisk(ctx context.Context, id blockID, b []byte) {
	if c.disk == nil {
		return
	}
	sf, err := c.sp.Write(ctx, int64(len(b)), func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
	if err != nil {
		c.log.Warn("readcache: cannot keep a block on disk", "key", id.key, "block", id.n, "err", err)
		return
	}
	c.disk.Add(id, sf, int64(len(b)))
}
