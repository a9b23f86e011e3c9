package state

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"time"
)

// Lock is an exclusive lease on a name, taken by State.Lock or
// State.TryLock. It expires at the end of its ttl unless extended; after
// that, another owner may take it. A random token identifies the owner, so
// Unlock and Extend act only while the lock is still ours.
type Lock struct {
	b     lockBackend
	name  string
	token string
}

// lockBackend is the part of an implementation that Lock and the shared
// waiting loop use.
type lockBackend interface {
	// tryLock takes name for token if it is free. When it is not, it may
	// return a channel closed when the lock may have become free (nil:
	// poll).
	tryLock(ctx context.Context, name, token string, ttl time.Duration) (ok bool, wake <-chan struct{}, err error)
	// unlock deletes name if token holds it, and reports whether it did.
	unlock(ctx context.Context, name, token string) (bool, error)
	// extend sets the ttl of name if token holds it, and reports whether
	// it did.
	extend(ctx context.Context, name, token string, ttl time.Duration) (bool, error)
}

// Name returns the name of the lock.
func (l *Lock) Name() string { return l.name }

// Unlock releases the lock if it is still ours. If it is not (it expired,
// and maybe another owner took it), Unlock leaves it alone and returns an
// error wrapping ErrLockLost: the work done under the lock may have
// overlapped with another owner's.
func (l *Lock) Unlock(ctx context.Context) error {
	ok, err := l.b.unlock(ctx, l.name, l.token)
	if err != nil {
		return fmt.Errorf("state: unlock %q: %w", l.name, err)
	}
	if !ok {
		return fmt.Errorf("state: unlock %q: %w", l.name, ErrLockLost)
	}
	return nil
}

// Extend sets the remaining ttl of the lock to ttl (from now, not added to
// the remaining time) if it is still ours, else returns an error wrapping
// ErrLockLost. ttl must be positive.
func (l *Lock) Extend(ctx context.Context, ttl time.Duration) error {
	ttl, err := checkLockTTL(ttl)
	if err != nil {
		return fmt.Errorf("state: extend lock %q: %w", l.name, err)
	}
	ok, err := l.b.extend(ctx, l.name, l.token, ttl)
	if err != nil {
		return fmt.Errorf("state: extend lock %q: %w", l.name, err)
	}
	if !ok {
		return fmt.Errorf("state: extend lock %q: %w", l.name, ErrLockLost)
	}
	return nil
}

// Polling bounds of lockWait: the delay starts at minLockPoll and doubles
// up to maxLockPoll, with jitter so that waiters spread out.
const (
	minLockPoll = time.Millisecond
	maxLockPoll = 32 * time.Millisecond
)

// tryLock makes one attempt to take name. It returns the wake channel of a
// failed attempt for lockWait.
func tryLock(ctx context.Context, b lockBackend, name string, ttl time.Duration) (*Lock, <-chan struct{}, error) {
	ttl, err := checkLockTTL(ttl)
	if err != nil {
		return nil, nil, fmt.Errorf("state: lock %q: %w", name, err)
	}
	token := rand.Text()
	ok, wake, err := b.tryLock(ctx, name, token, ttl)
	if err != nil {
		return nil, nil, fmt.Errorf("state: lock %q: %w", name, err)
	}
	if !ok {
		return nil, wake, fmt.Errorf("state: lock %q: %w", name, ErrLocked)
	}
	return &Lock{b: b, name: name, token: token}, nil, nil
}

// lockWait takes name, polling until it is free or ctx is done.
func lockWait(ctx context.Context, b lockBackend, name string, ttl time.Duration) (*Lock, error) {
	delay := minLockPoll
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("state: waiting for lock %q: %w", name, ctx.Err())
		}
		l, wake, err := tryLock(ctx, b, name, ttl)
		if !errors.Is(err, ErrLocked) {
			return l, err
		}
		d := delay/2 + mrand.N(delay/2+1)
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("state: waiting for lock %q: %w", name, ctx.Err())
		case <-wake:
			// Released: try again at once, restarting the backoff.
			timer.Stop()
			delay = minLockPoll
			continue
		case <-timer.C:
		}
		delay = min(2*delay, maxLockPoll)
	}
}
