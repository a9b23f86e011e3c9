package state

import (
	"context"
	"fmt"
	"maps"
	"math"
	"strconv"
	"sync"
	"time"
)

// Memory is the in-memory State of a single node, safe for concurrent use.
// It starts no goroutine.
//
// Expired values and locks are dropped lazily, when a call meets them, and
// by a sweep of the whole map run inline by a write once the writes since
// the previous sweep reach both 1024 and the number of stored entries, so
// that the sweeps cost O(1) per write, amortized, and memory stays bounded
// by about twice the live entries plus 1024.
type Memory struct {
	now func() time.Time

	mu       sync.Mutex
	closed   bool
	values   map[string]memValue
	locks    map[string]memLock
	writes   int           // since the last sweep
	released chan struct{} // closed (and replaced) by an unlock with waiters
	waiters  bool          // someone holds released
}

type memValue struct {
	v   []byte
	exp time.Time // zero: no expiry
}

type memLock struct {
	token string
	exp   time.Time
}

// sweepEvery is the least number of writes between two sweeps.
const sweepEvery = 1024

var _ State = (*Memory)(nil)

// NewMemory returns an empty in-memory state using the system clock.
func NewMemory() *Memory {
	return NewMemoryWithClock(time.Now)
}

// NewMemoryWithClock returns an empty in-memory state that reads the time
// from now, for tests of expiry. Note that Lock still waits in real time
// between its attempts.
func NewMemoryWithClock(now func() time.Time) *Memory {
	return &Memory{
		now:      now,
		values:   make(map[string]memValue),
		locks:    make(map[string]memLock),
		released: make(chan struct{}),
	}
}

func expired(exp, now time.Time) bool {
	return !exp.IsZero() && !now.Before(exp)
}

func expiry(now time.Time, ttl time.Duration) time.Time {
	if ttl == 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

// begin checks ctx and locks m. On success the caller must unlock m.mu.
func (m *Memory) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// lookup returns the live value of key, dropping it if expired. m.mu is
// held.
func (m *Memory) lookup(key string, now time.Time) (memValue, bool) {
	e, ok := m.values[key]
	if ok && expired(e.exp, now) {
		delete(m.values, key)
		return memValue{}, false
	}
	return e, ok
}

// wrote counts a write and sweeps when it is time. m.mu is held.
func (m *Memory) wrote(now time.Time) {
	m.writes++
	if m.writes < sweepEvery || m.writes < len(m.values)+len(m.locks) {
		return
	}
	m.writes = 0
	maps.DeleteFunc(m.values, func(_ string, e memValue) bool { return expired(e.exp, now) })
	maps.DeleteFunc(m.locks, func(_ string, l memLock) bool { return expired(l.exp, now) })
}

// Get implements State.
func (m *Memory) Get(ctx context.Context, key string) ([]byte, error) {
	if err := m.begin(ctx); err != nil {
		return nil, fmt.Errorf("state: get %q: %w", key, err)
	}
	defer m.mu.Unlock()
	e, ok := m.lookup(key, m.now())
	if !ok {
		return nil, fmt.Errorf("state: get %q: %w", key, ErrNotFound)
	}
	return append([]byte{}, e.v...), nil
}

// Set implements State.
func (m *Memory) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ttl, err := checkTTL(ttl)
	if err != nil {
		return fmt.Errorf("state: set %q: %w", key, err)
	}
	if err := m.begin(ctx); err != nil {
		return fmt.Errorf("state: set %q: %w", key, err)
	}
	defer m.mu.Unlock()
	now := m.now()
	m.values[key] = memValue{v: append([]byte{}, value...), exp: expiry(now, ttl)}
	m.wrote(now)
	return nil
}

// SetNX implements State.
func (m *Memory) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	ttl, err := checkTTL(ttl)
	if err != nil {
		return false, fmt.Errorf("state: setnx %q: %w", key, err)
	}
	if err := m.begin(ctx); err != nil {
		return false, fmt.Errorf("state: setnx %q: %w", key, err)
	}
	defer m.mu.Unlock()
	now := m.now()
	if _, ok := m.lookup(key, now); ok {
		return false, nil
	}
	m.values[key] = memValue{v: append([]byte{}, value...), exp: expiry(now, ttl)}
	m.wrote(now)
	return true, nil
}

// Delete implements State.
func (m *Memory) Delete(ctx context.Context, key string) error {
	if err := m.begin(ctx); err != nil {
		return fmt.Errorf("state: delete %q: %w", key, err)
	}
	defer m.mu.Unlock()
	delete(m.values, key)
	return nil
}

// IncrBy implements State.
func (m *Memory) IncrBy(ctx context.Context, key string, n int64, ttl time.Duration) (int64, error) {
	ttl, err := checkTTL(ttl)
	if err != nil {
		return 0, fmt.Errorf("state: incrby %q: %w", key, err)
	}
	if err := m.begin(ctx); err != nil {
		return 0, fmt.Errorf("state: incrby %q: %w", key, err)
	}
	defer m.mu.Unlock()
	now := m.now()
	e, ok := m.lookup(key, now)
	if !ok {
		e = memValue{exp: expiry(now, ttl)}
	}
	var v int64
	if ok {
		v, err = parseInt(e.v)
		if err != nil {
			return 0, fmt.Errorf("state: incrby %q: %w", key, err)
		}
	}
	if (n > 0 && v > math.MaxInt64-n) || (n < 0 && v < math.MinInt64-n) {
		return 0, fmt.Errorf("state: incrby %q: %w", key, ErrOverflow)
	}
	v += n
	e.v = strconv.AppendInt(nil, v, 10)
	m.values[key] = e
	m.wrote(now)
	return v, nil
}

// parseInt parses b as Redis' INCRBY does: only the canonical decimal form
// of an int64 is an integer.
func parseInt(b []byte) (int64, error) {
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || strconv.FormatInt(v, 10) != string(b) {
		return 0, ErrNotInteger
	}
	return v, nil
}

// Lock implements State.
func (m *Memory) Lock(ctx context.Context, name string, ttl time.Duration) (*Lock, error) {
	return lockWait(ctx, m, name, ttl)
}

// TryLock implements State.
func (m *Memory) TryLock(ctx context.Context, name string, ttl time.Duration) (*Lock, error) {
	l, _, err := tryLock(ctx, m, name, ttl)
	return l, err
}

func (m *Memory) tryLock(ctx context.Context, name, token string, ttl time.Duration) (bool, <-chan struct{}, error) {
	if err := m.begin(ctx); err != nil {
		return false, nil, err
	}
	defer m.mu.Unlock()
	now := m.now()
	if l, ok := m.locks[name]; ok && !expired(l.exp, now) {
		m.waiters = true
		return false, m.released, nil
	}
	m.locks[name] = memLock{token: token, exp: now.Add(ttl)}
	m.wrote(now)
	return true, nil, nil
}

// holder reports whether token holds the live lock name, dropping the
// lock if expired. m.mu is held.
func (m *Memory) holder(name, token string, now time.Time) bool {
	l, ok := m.locks[name]
	if ok && expired(l.exp, now) {
		delete(m.locks, name)
		return false
	}
	return ok && l.token == token
}

func (m *Memory) unlock(ctx context.Context, name, token string) (bool, error) {
	if err := m.begin(ctx); err != nil {
		return false, err
	}
	defer m.mu.Unlock()
	if !m.holder(name, token, m.now()) {
		return false, nil
	}
	delete(m.locks, name)
	if m.waiters {
		close(m.released)
		m.released = make(chan struct{})
		m.waiters = false
	}
	return true, nil
}

func (m *Memory) extend(ctx context.Context, name, token string, ttl time.Duration) (bool, error) {
	if err := m.begin(ctx); err != nil {
		return false, err
	}
	defer m.mu.Unlock()
	now := m.now()
	if !m.holder(name, token, now) {
		return false, nil
	}
	m.locks[name] = memLock{token: token, exp: now.Add(ttl)}
	return true, nil
}

// Close implements State: it drops every value and lock.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	m.values, m.locks = nil, nil
	if m.waiters {
		close(m.released) // waiters wake up and meet ErrClosed
		m.waiters = false
	}
	return nil
}
