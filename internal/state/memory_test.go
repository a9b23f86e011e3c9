package state_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/state"
	"github.com/jitstream/jitstream/internal/state/statetest"
)

func TestMemory(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.State { return state.NewMemory() })
}

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// TestMemoryClockExpiry checks the exact expiry instants with a fake clock:
// an entry with ttl d set at t0 is there until just before t0+d and gone at
// t0+d.
func TestMemoryClockExpiry(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const ttl = 10 * time.Second
	tests := []struct {
		name string
		// create creates the entry at t0; present reports whether it is
		// still there.
		create  func(t *testing.T, m *state.Memory)
		present func(t *testing.T, m *state.Memory) bool
		// expires is when the entry should expire.
		expires time.Time
	}{
		{
			name: "Set",
			create: func(t *testing.T, m *state.Memory) {
				if err := m.Set(t.Context(), "k", []byte("v"), ttl); err != nil {
					t.Fatal(err)
				}
			},
			present: getPresent,
			expires: t0.Add(ttl),
		},
		{
			name: "Set sub-millisecond ttl rounds up",
			create: func(t *testing.T, m *state.Memory) {
				if err := m.Set(t.Context(), "k", []byte("v"), time.Nanosecond); err != nil {
					t.Fatal(err)
				}
			},
			present: getPresent,
			expires: t0.Add(time.Millisecond),
		},
		{
			name: "SetNX",
			create: func(t *testing.T, m *state.Memory) {
				if ok, err := m.SetNX(t.Context(), "k", []byte("v"), ttl); err != nil || !ok {
					t.Fatal(ok, err)
				}
			},
			present: func(t *testing.T, m *state.Memory) bool {
				ok, err := m.SetNX(t.Context(), "k", []byte("v2"), 0)
				if err != nil {
					t.Fatal(err)
				}
				return !ok
			},
			expires: t0.Add(ttl),
		},
		{
			name: "IncrBy",
			create: func(t *testing.T, m *state.Memory) {
				if n, err := m.IncrBy(t.Context(), "k", 7, ttl); err != nil || n != 7 {
					t.Fatal(n, err)
				}
			},
			present: getPresent,
			expires: t0.Add(ttl),
		},
		{
			name: "TryLock",
			create: func(t *testing.T, m *state.Memory) {
				if _, err := m.TryLock(t.Context(), "l", ttl); err != nil {
					t.Fatal(err)
				}
			},
			present: lockHeld,
			expires: t0.Add(ttl),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{now: t0}
			m := state.NewMemoryWithClock(clock.Now)
			defer m.Close()
			tt.create(t, m)
			clock.Set(tt.expires.Add(-time.Nanosecond))
			if !tt.present(t, m) {
				t.Fatalf("gone 1ns before its expiry")
			}
			clock.Set(tt.expires)
			if tt.present(t, m) {
				t.Fatalf("still there at its expiry")
			}
		})
	}
}

// getPresent reports whether Get finds "k".
func getPresent(t *testing.T, m *state.Memory) bool {
	_, err := m.Get(t.Context(), "k")
	if err != nil && !errors.Is(err, state.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// lockHeld reports whether "l" is held, by probing it with TryLock (the
// probe expires at once with the fake clock standing still: it is given
// back).
func lockHeld(t *testing.T, m *state.Memory) bool {
	l, err := m.TryLock(t.Context(), "l", time.Millisecond)
	if errors.Is(err, state.ErrLocked) {
		return true
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	return false
}

// TestMemoryClockExtend checks that Extend counts the new ttl from the
// time of the call.
func TestMemoryClockExtend(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := &fakeClock{now: t0}
	m := state.NewMemoryWithClock(clock.Now)
	defer m.Close()
	l, err := m.TryLock(t.Context(), "l", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	clock.Set(t0.Add(5 * time.Second))
	if err := l.Extend(t.Context(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	clock.Set(t0.Add(15*time.Second - time.Nanosecond))
	if !lockHeld(t, m) {
		t.Fatal("extended lock gone before 5s+10s")
	}
	clock.Set(t0.Add(15 * time.Second))
	if lockHeld(t, m) {
		t.Fatal("extended lock still held at 5s+10s")
	}
	if err := l.Extend(t.Context(), 10*time.Second); !errors.Is(err, state.ErrLockLost) {
		t.Fatalf("Extend after expiry: %v, want ErrLockLost", err)
	}
}
