// Package state is the small shared state of jitstream nodes: byte values
// with an optional time to live, atomic counters and exclusive leases
// (locks). Several stateless nodes share it through Redis; a single node
// without Redis uses the embedded in-memory implementation. Both behave
// identically, as the conformance suite in package statetest shows.
//
// Keys and lock names are two separate namespaces: a lock named "x" neither
// reads nor disturbs the value stored under the key "x".
//
// Times to live are rounded up to whole milliseconds (Redis' resolution).
// A ttl of 0 means no expiry for values and counters; a negative ttl is an
// error. Locks always need a positive ttl, so that a crashed holder cannot
// keep a lock forever.
//
// Errors carry context (operation and key) and wrap one of the package's
// sentinel errors where one applies; test them with errors.Is. An error
// because ctx is done wraps ctx's error (context.Canceled or
// context.DeadlineExceeded), not ErrUnavailable.
package state

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

var (
	// ErrNotFound is returned by Get when the key is missing or expired.
	ErrNotFound = errors.New("key not found")
	// ErrLocked is returned by TryLock when another owner holds the lock.
	ErrLocked = errors.New("lock held by another owner")
	// ErrLockLost is returned by Lock.Unlock and Lock.Extend when the lock
	// is no longer ours: it expired, and maybe another owner took it.
	ErrLockLost = errors.New("lock lost")
	// ErrUnavailable wraps errors of an unreachable or unready backend
	// (connection refused or reset, timeouts, Redis loading its data or
	// read-only): the HTTP layer answers 503. It is never returned by the
	// in-memory implementation.
	ErrUnavailable = errors.New("state backend unavailable")
	// ErrClosed is returned by every call after Close.
	ErrClosed = errors.New("state closed")
	// ErrNotInteger is returned by IncrBy when the stored value is not the
	// canonical decimal form of an int64 (as written by IncrBy or
	// strconv.FormatInt: no sign "+", no leading zeros, no spaces).
	ErrNotInteger = errors.New("value is not an integer")
	// ErrOverflow is returned by IncrBy when the result would not fit in an
	// int64. The stored value is left unchanged.
	ErrOverflow = errors.New("increment would overflow")
)

// State is the shared state of the nodes of one deployment. Implementations
// are safe for concurrent use.
type State interface {
	// Get returns the value stored under key, or an error wrapping
	// ErrNotFound when the key is missing or expired. The returned slice is
	// the caller's.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value under key, replacing any previous value and any
	// previous ttl. A ttl of 0 means no expiry. The value is copied.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// SetNX stores value under key only if the key is absent (missing or
	// expired), and reports whether it did.
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// IncrBy atomically adds n to the integer stored under key and returns
	// the new value. An absent key counts as 0 and is created with the
	// given ttl (0: no expiry); the ttl of an existing key is left as it
	// is. Get returns the counter in decimal, and a value Set in canonical
	// decimal can be incremented. Errors wrap ErrNotInteger or ErrOverflow
	// when the value cannot be incremented.
	IncrBy(ctx context.Context, key string, n int64, ttl time.Duration) (int64, error)
	// Lock takes the exclusive lock name for ttl, waiting as long as
	// another owner holds it, until it is free or ctx is done (then the
	// error wraps ctx's error). An attempt that fails otherwise (for
	// example with ErrUnavailable or ErrClosed) ends the wait with its
	// error. Waiting is by polling with a jittered backoff from 1ms up to
	// 32ms; Memory also wakes its waiters at once on Unlock.
	Lock(ctx context.Context, name string, ttl time.Duration) (*Lock, error)
	// TryLock takes the exclusive lock name for ttl if it is free, else
	// returns an error wrapping ErrLocked at once.
	TryLock(ctx context.Context, name string, ttl time.Duration) (*Lock, error)
	// Close releases the resources of the state. Calls after Close return
	// errors wrapping ErrClosed; closing twice is not an error.
	Close() error
}

// Open opens the state described by spec: "" or "memory" gives a new
// in-memory state; a Redis URL (redis://, rediss:// or unix://, as
// accepted by redis.ParseURL, for example redis://127.0.0.1:6379/0) gives
// Redis. A "prefix" query parameter of the URL sets RedisOptions.Prefix:
// redis://127.0.0.1:6379/0?prefix=jitstream:
func Open(ctx context.Context, spec string) (State, error) {
	switch {
	case spec == "" || spec == "memory":
		return NewMemory(), nil
	case strings.HasPrefix(spec, "redis://"), strings.HasPrefix(spec, "rediss://"), strings.HasPrefix(spec, "unix://"):
		r, err := NewRedis(ctx, spec, RedisOptions{})
		if err != nil {
			return nil, err
		}
		return r, nil
	default:
		return nil, fmt.Errorf("state: unknown state %q: want \"memory\" or a redis:// URL", redact(spec))
	}
}

// checkTTL validates the ttl of a value or counter (0 allowed) and rounds
// it up to whole milliseconds.
func checkTTL(ttl time.Duration) (time.Duration, error) {
	if ttl < 0 {
		return 0, fmt.Errorf("negative ttl %v", ttl)
	}
	return roundTTL(ttl), nil
}

// checkLockTTL validates the ttl of a lock (it must be positive) and rounds
// it up to whole milliseconds.
func checkLockTTL(ttl time.Duration) (time.Duration, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("lock ttl %v is not positive", ttl)
	}
	return roundTTL(ttl), nil
}

func roundTTL(ttl time.Duration) time.Duration {
	if r := ttl % time.Millisecond; r != 0 {
		ttl += time.Millisecond - r
	}
	return ttl
}

// redact returns s with the password of a URL replaced by "xxxxx", for
// error messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if strings.Contains(s, "@") {
			return "(unparsable URL)"
		}
		return s
	}
	return u.Redacted()
}
