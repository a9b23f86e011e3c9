// Package transcode makes H.264 renditions of a video just in time, one
// segment at a time: segment n of a rendition is ffmpeg's encoding of the
// source's segment n (the keyframe-aligned segments of media.Index.Segments)
// at the rendition's size and bit rate, with exactly the source segment's
// presentation start and duration, so that a player may switch between the
// renditions and the original at any segment boundary.
//
// A Transcoder runs ffmpeg for segments that are not cached yet, at most
// Options.Concurrency at a time, shares one run among the concurrent
// requests for the same segment (and, with a Locker, among the nodes of a
// cluster), and keeps the results in the store under CachePrefix within a
// byte budget.
package transcode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jitstream/jitstream/internal/state"
	"github.com/jitstream/jitstream/internal/store"
)

// Locker takes cluster-wide exclusive locks; state.State (Redis or memory)
// is one.
type Locker interface {
	// Lock takes the lock name for ttl, waiting while another owner holds
	// it.
	Lock(ctx context.Context, name string, ttl time.Duration) (*state.Lock, error)
	// TryLock takes the lock name for ttl if it is free, else fails at once
	// with an error wrapping state.ErrLocked.
	TryLock(ctx context.Context, name string, ttl time.Duration) (*state.Lock, error)
}

// Options configure a Transcoder.
type Options struct {
	// FFmpeg is the ffmpeg binary: "ffmpeg" (looked up in PATH) when empty.
	FFmpeg string
	// Concurrency is the most ffmpeg processes that run at once:
	// runtime.NumCPU() when 0.
	Concurrency int
	// QueueWait is how long a request waits for a free ffmpeg slot before
	// failing with ErrBusy: 3 s when 0.
	QueueWait time.Duration
	// Threads is the number of threads of each ffmpeg process: 0 leaves
	// it to ffmpeg (about one per core, best for the latency of one
	// segment).
	Threads int
	// Store keeps the transcoded segments (under CachePrefix). Without
	// one nothing is cached: every call runs ffmpeg, and Segment for n > 0
	// also transcodes segment 0 again for its init segment (tests only).
	Store store.Store
	// CacheBytes is the budget of the cache in the store: 1 GiB when 0.
	// It is enforced per node, over the objects this node knows (those
	// listed when it first used the cache and those it wrote or read
	// since), least recently used first, with recency as this node saw it.
	CacheBytes int64
	// Locker, when set, makes nodes sharing Store transcode each segment
	// once: a node takes a lock named after the segment's cache key and
	// checks the cache again before running ffmpeg, so that another node
	// asking for the same segment waits for and reuses its result.
	Locker Locker
	// PrefetchDepth is how many segments after the one asked for Prefetch
	// makes: 2 when 0.
	PrefetchDepth int
	// Logger receives the transcoder's logs: slog.Default() when nil.
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultQueueWait     = 3 * time.Second
	DefaultCacheBytes    = 1 << 30
	DefaultPrefetchDepth = 2
)

// failureTTL is how long a failed transcode is remembered.
const failureTTL = 30 * time.Second

// failure is a remembered failure of a segment's transcode.
type failure struct {
	err   error
	until time.Time
}

// lockTTL is the time to live of a cluster lock; it is extended every
// lockTTL/3 while the transcode runs, so a crashed node holds it at most
// that long.
const lockTTL = 30 * time.Second

// ErrBusy is returned (wrapped in a *BusyError) when every ffmpeg slot
// stayed taken for Options.QueueWait: the caller should answer 503 with the
// Retry-After of RetryAfter.
var ErrBusy = errors.New("transcode: too busy, try again later")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("transcode: transcoder closed")

// errSkipped ends a prefetch that another node is doing already.
var errSkipped = errors.New("transcode: prefetch skipped")

// BusyError is the error of a request that found no free ffmpeg slot in
// time. errors.Is(err, ErrBusy) holds for it.
type BusyError struct {
	// RetryAfter is when to try again: about the time a transcode takes.
	RetryAfter time.Duration
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("%v (retry after %v)", ErrBusy, e.RetryAfter)
}

// Is makes errors.Is(err, ErrBusy) true.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// RetryAfter returns the time after which to retry a request that failed
// with err, and whether err is a busy error at all.
func RetryAfter(err error) (time.Duration, bool) {
	var be *BusyError
	if errors.As(err, &be) {
		return be.RetryAfter, true
	}
	return 0, false
}

// Transcoder makes transcoded segments and init segments on demand. It is
// safe for concurrent use. Close stops its background work.
type Transcoder struct {
	o     Options
	log   *slog.Logger
	cache *cache // nil without a store

	slots       chan struct{} // one per running ffmpeg
	maxPrefetch int

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu          sync.Mutex
	closed      bool
	flights     map[string]*flight
	prefetching int
	// failed remembers the segments whose transcode failed (an
	// *FFmpegError) for failureTTL, so that requests for a broken segment
	// do not start ffmpeg again and again.
	failed map[string]failure

	avgRun atomic.Int64 // moving average of a transcode's wall time, ns

	// Counters of Stats.
	failures, busy, prefetched atomic.Int64
	runTime                    atomic.Int64 // ns, of the runs that succeeded

	// Test hooks: runs counts ffmpeg runs; beforeRun, when set, is called
	// with the segment's cache key when a run holds its slot, just before
	// ffmpeg starts.
	runs      atomic.Int64
	beforeRun func(ctx context.Context, key string)
}

// New returns a Transcoder with the options o (zero fields get their
// defaults).
func New(o Options) *Transcoder {
	if o.FFmpeg == "" {
		o.FFmpeg = "ffmpeg"
	}
	if o.Concurrency <= 0 {
		o.Concurrency = runtime.NumCPU()
	}
	if o.QueueWait <= 0 {
		o.QueueWait = DefaultQueueWait
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	if o.PrefetchDepth <= 0 {
		o.PrefetchDepth = DefaultPrefetchDepth
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	t := &Transcoder{
		o:           o,
		log:         o.Logger,
		slots:       make(chan struct{}, o.Concurrency),
		maxPrefetch: o.Concurrency - 1,
		flights:     map[string]*flight{},
		failed:      map[string]failure{},
	}
	if o.Store != nil {
		t.cache = newCache(o.Store, o.CacheBytes, o.Logger)
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.avgRun.Store(int64(2 * time.Second))
	return t
}

// Close cancels the transcodes in progress (their callers get errors) and
// the prefetches, and waits for them to end. Later calls fail with
// ErrClosed.
func (t *Transcoder) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.mu.Unlock()
	t.cancel()
	t.wg.Wait()
	return nil
}

// result is what a run produces: a segment's media and, for segment 0, the
// rendition's init segment.
type result struct {
	media, init []byte
}

// Segment returns segment n of the rendition r of src: one CMAF fragment
// (moof and mdat, sequence number n+1) to be played after the init segment
// of Init. It is served from the cache when it is there; else it is
// transcoded, once for all the concurrent callers asking for it (the run
// goes on while any of them waits, and stops when they all gave up), and
// cached. The rendition's init segment is made first if needed (from
// segment 0), since every segment must match it.
//
// Errors: ErrBusy (in a *BusyError) when no ffmpeg slot freed up within
// Options.QueueWait, *FFmpegError when ffmpeg failed (the failure is
// remembered for 30 s: calls meanwhile get the same error without running
// ffmpeg again), ErrNoSegment for n out of range, ctx's error when ctx
// ended.
func (t *Transcoder) Segment(ctx context.Context, src Source, r Rendition, n int) ([]byte, error) {
	if err := src.check(r, n); err != nil {
		return nil, err
	}
	sh := sourceHash(&src)
	key := segmentKey(sh, r, n)
	if b, ok := t.cached(ctx, key); ok {
		return b, nil
	}
	var init []byte
	if n > 0 {
		var err error
		if init, err = t.Init(ctx, src, r); err != nil {
			return nil, err
		}
	}
	res, err := t.run(ctx, key, func(ctx context.Context) (result, error) {
		return t.produce(ctx, &src, r, n, sh, init, false)
	})
	return res.media, err
}

// Init returns the init segment (ftyp and moov) of the rendition r of src.
// It is built from the sample entry of the rendition's segment 0, which is
// transcoded (and cached) for it when it is not cached yet; errors are
// those of Segment.
func (t *Transcoder) Init(ctx context.Context, src Source, r Rendition) ([]byte, error) {
	if err := src.check(r, 0); err != nil {
		return nil, err
	}
	sh := sourceHash(&src)
	if b, ok := t.cached(ctx, initKey(sh, r)); ok {
		return b, nil
	}
	res, err := t.run(ctx, segmentKey(sh, r, 0), func(ctx context.Context) (result, error) {
		return t.produce(ctx, &src, r, 0, sh, nil, false)
	})
	return res.init, err
}

// Prefetch starts transcoding the segments after n (Options.PrefetchDepth
// of them, one after the other) in the background, so that they are
// cached when the player asks for them. It never waits for a slot: it
// starts a segment only while at least two ffmpeg slots are free (one
// stays for viewers), and stops at the first one it cannot start. At most
// Concurrency-1 prefetches run at once, so with Concurrency 1 it does
// nothing. Prefetches outlive the request that started them and end with
// Close. It needs the rendition's init segment cached (Segment or Init was
// called).
func (t *Transcoder) Prefetch(src Source, r Rendition, n int) {
	if src.check(r, n) != nil || n+1 >= len(src.Segments) || t.cache == nil {
		return
	}
	t.background(func() { t.prefetch(&src, r, n) })
}

// background runs fn in a goroutine of its own as a prefetch, unless the
// transcoder is closed or Concurrency-1 prefetches run already.
func (t *Transcoder) background(fn func()) {
	t.mu.Lock()
	if t.closed || t.prefetching >= t.maxPrefetch {
		t.mu.Unlock()
		return
	}
	t.prefetching++
	t.wg.Add(1)
	t.mu.Unlock()
	go func() {
		defer t.wg.Done()
		defer func() {
			t.mu.Lock()
			t.prefetching--
			t.mu.Unlock()
		}()
		fn()
	}()
}

// PrefetchInits makes, in the background, the init segments of the
// renditions rs of src that are not cached yet (each from its segment 0,
// which is cached too), one after the other, on the terms of Prefetch:
// only while ffmpeg slots are free, never waiting for one. A player that
// switches to a rendition then finds its init segment at once: hls.js
// (1.7) loops on an init segment whose load it aborted, which a quality
// switch during a slow init load does.
func (t *Transcoder) PrefetchInits(src Source, rs []Rendition) {
	if t.cache == nil || len(rs) == 0 || src.check(rs[0], 0) != nil {
		return
	}
	sh := sourceHash(&src)
	var todo []Rendition
	for _, r := range rs {
		if r.check() == nil && !t.cache.has(t.ctx, initKey(sh, r)) {
			todo = append(todo, r)
		}
	}
	if len(todo) == 0 {
		return
	}
	t.background(func() {
		for _, r := range todo {
			if !t.tryPrefetchSlot() {
				return
			}
			f := t.startPinned(segmentKey(sh, r, 0), func(ctx context.Context) (result, error) {
				return t.produce(ctx, &src, r, 0, sh, nil, true)
			})
			if f == nil { // running already, or failed lately
				<-t.slots
				continue
			}
			<-f.done
		}
	})
}

func (t *Transcoder) prefetch(src *Source, r Rendition, n int) {
	ctx := t.ctx
	sh := sourceHash(src)
	init, ok := t.cached(ctx, initKey(sh, r))
	if !ok {
		return
	}
	for k := n + 1; k <= n+t.o.PrefetchDepth && k < len(src.Segments); k++ {
		key := segmentKey(sh, r, k)
		if t.cache.has(ctx, key) {
			continue
		}
		if !t.tryPrefetchSlot() {
			return
		}
		f := t.startPinned(key, func(ctx context.Context) (result, error) {
			return t.produce(ctx, src, r, k, sh, init, true)
		})
		if f == nil { // running already, or failed lately
			<-t.slots
			continue
		}
		<-f.done
		if f.err != nil {
			if !errors.Is(f.err, errSkipped) && ctx.Err() == nil {
				t.log.Warn("transcode: prefetch failed", "source", src.Key, "rendition", r.Name, "segment", k, "err", f.err)
			}
			return
		}
	}
}

// tryPrefetchSlot takes an ffmpeg slot for a prefetch if at least two are
// free.
func (t *Transcoder) tryPrefetchSlot() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.slots) >= cap(t.slots)-1 {
		return false
	}
	select {
	case t.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// cached returns the object key from the cache.
func (t *Transcoder) cached(ctx context.Context, key string) ([]byte, bool) {
	if t.cache == nil {
		return nil, false
	}
	return t.cache.get(ctx, key)
}

// flight is one run shared by the callers asking for the same segment.
type flight struct {
	done    chan struct{}
	res     result
	err     error
	waiters int
	// pinned flights (prefetches) go on when their waiters leave.
	pinned bool
	cancel context.CancelFunc
}

// run calls fn once for all the concurrent callers with the same key and
// returns its result. fn's context ends when every caller has left (unless
// a prefetch started it) or on Close.
func (t *Transcoder) run(ctx context.Context, key string, fn func(context.Context) (result, error)) (result, error) {
	for attempt := 0; ; attempt++ {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return result{}, ErrClosed
		}
		if fl, ok := t.failed[key]; ok {
			if time.Now().Before(fl.until) {
				t.mu.Unlock()
				return result{}, fl.err
			}
			delete(t.failed, key)
		}
		f := t.flights[key]
		if f == nil {
			f = t.startLocked(key, false, fn)
		}
		f.waiters++
		t.mu.Unlock()
		select {
		case <-f.done:
			if errors.Is(f.err, errSkipped) && attempt < 3 {
				// We joined a prefetch that left the segment to another
				// node: wait for that node ourselves.
				continue
			}
			return f.res, f.err
		case <-ctx.Done():
			t.mu.Lock()
			f.waiters--
			if f.waiters == 0 && !f.pinned {
				f.cancel()
				if t.flights[key] == f {
					delete(t.flights, key)
				}
			}
			t.mu.Unlock()
			return result{}, ctx.Err()
		}
	}
}

// startPinned starts a pinned flight for key, or returns nil when one is
// running already (or the transcoder is closed).
func (t *Transcoder) startPinned(key string, fn func(context.Context) (result, error)) *flight {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || t.flights[key] != nil {
		return nil
	}
	if fl, ok := t.failed[key]; ok && time.Now().Before(fl.until) {
		return nil
	}
	return t.startLocked(key, true, fn)
}

// startLocked starts a flight; t.mu is held.
func (t *Transcoder) startLocked(key string, pinned bool, fn func(context.Context) (result, error)) *flight {
	ctx, cancel := context.WithCancel(t.ctx)
	f := &flight{done: make(chan struct{}), pinned: pinned, cancel: cancel}
	t.flights[key] = f
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		defer cancel()
		res, err := fn(ctx)
		t.mu.Lock()
		if t.flights[key] == f {
			delete(t.flights, key)
		}
		var fe *FFmpegError
		if errors.As(err, &fe) {
			t.rememberFailure(key, err)
			t.failures.Add(1)
		}
		f.res, f.err = res, err
		t.mu.Unlock()
		close(f.done)
	}()
	return f
}

// rememberFailure records the failure of key's transcode; t.mu is held.
func (t *Transcoder) rememberFailure(key string, err error) {
	now := time.Now()
	if len(t.failed) >= 1024 {
		for k, f := range t.failed {
			if now.After(f.until) {
				delete(t.failed, k)
			}
		}
	}
	if len(t.failed) < 4096 {
		t.failed[key] = failure{err: err, until: now.Add(failureTTL)}
	}
}

// produce returns segment n of r (and for n == 0 the init segment): from
// the cache if it is there, else by transcoding it. init is the
// rendition's init segment, which segments after 0 must match. With
// prefetch set, the caller holds an ffmpeg slot for it, and a segment
// another node is making is skipped rather than waited for.
func (t *Transcoder) produce(ctx context.Context, src *Source, r Rendition, n int, sh string, init []byte, prefetch bool) (res result, err error) {
	slotHeld := prefetch
	defer func() {
		if slotHeld {
			<-t.slots
		}
	}()
	key := segmentKey(sh, r, n)
	if res, ok := t.cachedResult(ctx, sh, r, n); ok {
		return res, nil
	}
	if t.o.Locker != nil {
		unlock, err := t.lock(ctx, key, prefetch)
		if err != nil {
			return result{}, err
		}
		if unlock != nil {
			defer unlock()
			// Another node may have made it while we waited.
			if res, ok := t.cachedResult(ctx, sh, r, n); ok {
				return res, nil
			}
		}
	}
	if !slotHeld {
		if err := t.acquire(ctx); err != nil {
			return result{}, err
		}
		slotHeld = true
	}

	if t.beforeRun != nil {
		t.beforeRun(ctx, key)
	}
	t.runs.Add(1)
	start := time.Now()
	seg, err := transcodeSegment(ctx, t.o.FFmpeg, t.o.Threads, src, r, n)
	took := time.Since(start)
	if err == nil {
		t.observe(took)
		t.runTime.Add(int64(took))
		if prefetch {
			t.prefetched.Add(1)
		}
		if n == 0 {
			res.init, err = buildInit(src, r, seg.SampleEntry)
		} else {
			err = checkAgainstInit(src, r, n, seg, init)
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			t.log.Warn("transcode: segment failed", "source", src.Key, "rendition", r.Name, "segment", n, "err", err)
		}
		return result{}, err
	}
	res.media = seg.Media
	if seg.diag != "" {
		t.log.Warn("transcode: ffmpeg reported errors but made the segment", "source", src.Key,
			"rendition", r.Name, "segment", n, "stderr", seg.diag)
	}
	t.log.Info("transcode: segment made", "source", src.Key, "rendition", r.Name, "segment", n,
		"bytes", len(seg.Media), "took", took.Round(time.Millisecond), "prefetch", prefetch)
	t.keep(ctx, "segment", key, res.media)
	if n == 0 {
		t.keep(ctx, "init segment", initKey(sh, r), res.init)
	}
	return res, nil
}

// checkAgainstInit checks that seg's parameter sets are those of the
// rendition's init segment.
func checkAgainstInit(src *Source, r Rendition, n int, seg *Segment, init []byte) error {
	c, err := initAvcC(init)
	if err != nil {
		return fmt.Errorf("transcode %s to %s, segment %d: reading the init segment: %w", src.Key, r.Name, n, err)
	}
	if !sameParamSets(c, seg.avcC) {
		return &FFmpegError{Key: src.Key, Rendition: r.Name, Segment: n,
			Err: errors.New("the segment's SPS/PPS differ from the init segment's (made from segment 0)")}
	}
	return nil
}

// cachedResult returns segment n (and for n == 0 the init segment too)
// from the cache when all of it is there.
func (t *Transcoder) cachedResult(ctx context.Context, sh string, r Rendition, n int) (result, bool) {
	media, ok := t.cached(ctx, segmentKey(sh, r, n))
	if !ok {
		return result{}, false
	}
	if n > 0 {
		return result{media: media}, true
	}
	init, ok := t.cached(ctx, initKey(sh, r))
	return result{media: media, init: init}, ok
}

// lock takes the cluster lock of a segment (try: without waiting) and
// returns its release, keeping it alive meanwhile. It returns errSkipped
// when try finds it held, and a nil release without error when the lock
// service fails (the segment is then made without it).
func (t *Transcoder) lock(ctx context.Context, key string, try bool) (func(), error) {
	name := "transcode/" + key
	var l *state.Lock
	var err error
	if try {
		l, err = t.o.Locker.TryLock(ctx, name, lockTTL)
	} else {
		l, err = t.o.Locker.Lock(ctx, name, lockTTL)
	}
	switch {
	case err == nil:
	case errors.Is(err, state.ErrLocked):
		return nil, errSkipped
	case ctx.Err() != nil:
		return nil, ctx.Err()
	default:
		t.log.Warn("transcode: cluster lock unavailable, transcoding without it", "lock", name, "err", err)
		return nil, nil
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(lockTTL / 3)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if err := l.Extend(ctx, lockTTL); err != nil && ctx.Err() == nil {
					t.log.Warn("transcode: extending cluster lock", "lock", name, "err", err)
				}
			}
		}
	}()
	return func() {
		close(stop)
		wg.Wait()
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := l.Unlock(uctx); err != nil {
			t.log.Warn("transcode: releasing cluster lock", "lock", name, "err", err)
		}
	}, nil
}

// acquire takes an ffmpeg slot, waiting at most QueueWait.
func (t *Transcoder) acquire(ctx context.Context) error {
	select {
	case t.slots <- struct{}{}:
		return nil
	default:
	}
	timer := time.NewTimer(t.o.QueueWait)
	defer timer.Stop()
	select {
	case t.slots <- struct{}{}:
		return nil
	case <-timer.C:
		t.busy.Add(1)
		return &BusyError{RetryAfter: t.retryAfter()}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// observe adds a transcode's wall time to the moving average.
func (t *Transcoder) observe(d time.Duration) {
	old := t.avgRun.Load()
	t.avgRun.Store(old + (int64(d)-old)/4)
}

// retryAfter is the Retry-After of a busy error: the average transcode
// time, rounded up to whole seconds, from 1 s to 30 s.
func (t *Transcoder) retryAfter() time.Duration {
	s := math.Ceil(time.Duration(t.avgRun.Load()).Seconds())
	return time.Duration(min(max(s, 1), 30)) * time.Second
}
