// Package statetest is the conformance suite of state.State: every
// implementation runs it, so that they all behave alike.
package statetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/state"
)

// Bounds of the suite. They are deadlines for things that happen much
// sooner (expiries of a few milliseconds), never expected durations.
const (
	// waitDeadline bounds polling for an expiry and a Lock that waits.
	waitDeadline = 30 * time.Second
	// shortTTL is the ttl of entries that a test waits to see expire.
	shortTTL = 20 * time.Millisecond
	// longTTL is the ttl of entries that must not expire during a test.
	longTTL = time.Hour
)

// Run runs the conformance suite against the states made by newState.
// Every subtest runs in parallel with the others and calls newState once;
// the state it returns must be empty and isolated from the other subtests'
// (a new Memory; a Redis with a key prefix of its own). Run closes it when
// the subtest ends, and the factory may close it too.
func Run(t *testing.T, newState func(t *testing.T) state.State) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s state.State)
	}{
		{"GetSetDelete", testGetSetDelete},
		{"Missing", testMissing},
		{"Copies", testCopies},
		{"KeysApart", testKeysApart},
		{"KeysAndLocksApart", testKeysAndLocksApart},
		{"TTLExpiry", testTTLExpiry},
		{"SetClearsTTL", testSetClearsTTL},
		{"InvalidTTL", testInvalidTTL},
		{"SetNX", testSetNX},
		{"SetNXAfterExpiry", testSetNXAfterExpiry},
		{"IncrBy", testIncrBy},
		{"IncrByTTL", testIncrByTTL},
		{"IncrByKeepsTTL", testIncrByKeepsTTL},
		{"IncrByConcurrent", testIncrByConcurrent},
		{"LockMutualExclusion", testLockMutualExclusion},
		{"TryLock", testTryLock},
		{"LockExpiry", testLockExpiry},
		{"LockWaitsForExpiry", testLockWaitsForExpiry},
		{"ExtendLost", testExtendLost},
		{"ExtendSetsTTL", testExtendSetsTTL},
		{"LockContext", testLockContext},
		{"CanceledContext", testCanceledContext},
		{"Close", testClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newState(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tt.fn(t, s)
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), waitDeadline)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond every few milliseconds until it reports true,
// failing the test if that takes longer than waitDeadline or cond fails.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.NewTimer(waitDeadline)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		select {
		case <-deadline.C:
			t.Fatalf("%s: not within %v", what, waitDeadline)
		case <-tick.C:
		}
	}
}

// waitGone waits until key is missing.
func waitGone(t *testing.T, s state.State, key string) {
	t.Helper()
	eventually(t, fmt.Sprintf("key %q to expire", key), func() (bool, error) {
		_, err := s.Get(t.Context(), key)
		if errors.Is(err, state.ErrNotFound) {
			return true, nil
		}
		return false, err
	})
}

func mustSet(t *testing.T, s state.State, key, value string, ttl time.Duration) {
	t.Helper()
	if err := s.Set(t.Context(), key, []byte(value), ttl); err != nil {
		t.Fatalf("Set(%q, %q, %v): %v", key, value, ttl, err)
	}
}

// wantValue checks that key holds want.
func wantValue(t *testing.T, s state.State, key, want string) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v, want %q", key, err, want)
	}
	if string(got) != want {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

// wantMissing checks that Get(key) fails with ErrNotFound.
func wantMissing(t *testing.T, s state.State, key string) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, got, err)
	}
	if errors.Is(err, state.ErrUnavailable) || errors.Is(err, state.ErrLocked) {
		t.Fatalf("Get(%q): %v also matches another sentinel error", key, err)
	}
}

func mustTryLock(t *testing.T, s state.State, name string, ttl time.Duration) *state.Lock {
	t.Helper()
	l, err := s.TryLock(t.Context(), name, ttl)
	if err != nil {
		t.Fatalf("TryLock(%q, %v): %v", name, ttl, err)
	}
	if l == nil || l.Name() != name {
		t.Fatalf("TryLock(%q) gave lock %v", name, l)
	}
	return l
}

// wantLocked checks that TryLock(name) fails with ErrLocked.
func wantLocked(t *testing.T, s state.State, name string) {
	t.Helper()
	l, err := s.TryLock(t.Context(), name, longTTL)
	if !errors.Is(err, state.ErrLocked) || l != nil {
		t.Fatalf("TryLock(%q) = %v, %v; want ErrLocked", name, l, err)
	}
}

func testGetSetDelete(t *testing.T, s state.State) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	tests := []struct {
		name  string
		key   string
		value []byte
	}{
		{"text", "a", []byte("hello")},
		{"empty value", "empty", []byte{}},
		{"nil value", "nil", nil},
		{"binary", "bin", []byte{0, 0xff, '\r', '\n', 0x80, 0}},
		{"large", "large", big},
		{"empty key", "", []byte("empty key")},
		{"key with separators", "a:b/c d\r\n*", []byte("sep")},
		{"unicode key", "clé-ключ-鍵", []byte("unicode")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if err := s.Set(ctx, tt.key, tt.value, 0); err != nil {
				t.Fatalf("Set: %v", err)
			}
			got, err := s.Get(ctx, tt.key)
			if err != nil || !bytes.Equal(got, tt.value) {
				t.Fatalf("Get = %d bytes, %v; want the %d bytes set", len(got), err, len(tt.value))
			}
			other := append(slices.Clone(tt.value), "-overwritten"...)
			if err := s.Set(ctx, tt.key, other, 0); err != nil {
				t.Fatalf("overwriting Set: %v", err)
			}
			got, err = s.Get(ctx, tt.key)
			if err != nil || !bytes.Equal(got, other) {
				t.Fatalf("Get after overwrite = %d bytes, %v; want the %d bytes set", len(got), err, len(other))
			}
			if err := s.Delete(ctx, tt.key); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			wantMissing(t, s, tt.key)
			if err := s.Delete(ctx, tt.key); err != nil {
				t.Fatalf("Delete of a deleted key: %v", err)
			}
		})
	}
}

func testMissing(t *testing.T, s state.State) {
	wantMissing(t, s, "never-set")
	if err := s.Delete(t.Context(), "never-set"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	wantMissing(t, s, "never-set")
}

// testCopies checks that the state keeps its own copy of values.
func testCopies(t *testing.T, s state.State) {
	ctx := t.Context()
	buf := []byte("original")
	if err := s.Set(ctx, "k", buf, 0); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXXXXX")
	got, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "original" {
		t.Fatalf("after changing the slice given to Set, Get = %q", got)
	}
	copy(got, "YYYYYYYY")
	wantValue(t, s, "k", "original")
}

func testKeysApart(t *testing.T, s state.State) {
	keys := []string{"a", "A", "a:", ":a", "a ", "k:a", "l:a"}
	for _, k := range keys {
		mustSet(t, s, k, "value of "+k, 0)
	}
	for _, k := range keys {
		wantValue(t, s, k, "value of "+k)
	}
	if err := s.Delete(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	wantMissing(t, s, "a")
	for _, k := range keys[1:] {
		wantValue(t, s, k, "value of "+k)
	}
}

// testKeysAndLocksApart checks that keys and lock names are separate
// namespaces.
func testKeysAndLocksApart(t *testing.T, s state.State) {
	ctx := t.Context()
	mustSet(t, s, "x", "value", 0)
	l := mustTryLock(t, s, "x", longTTL)
	wantValue(t, s, "x", "value")
	if err := s.Delete(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	wantLocked(t, s, "x")
	mustSet(t, s, "x", "again", 0)
	if err := l.Unlock(ctx); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	wantValue(t, s, "x", "again")
	wantMissing(t, s, "y")
	l = mustTryLock(t, s, "y", longTTL)
	wantMissing(t, s, "y")
	if err := l.Unlock(ctx); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
}

func testTTLExpiry(t *testing.T, s state.State) {
	mustSet(t, s, "forever", "f", 0)
	mustSet(t, s, "long", "l", longTTL)
	mustSet(t, s, "short", "s", shortTTL)
	mustSet(t, s, "sub-millisecond", "s", time.Microsecond)
	waitGone(t, s, "short")
	waitGone(t, s, "sub-millisecond")
	wantValue(t, s, "forever", "f")
	wantValue(t, s, "long", "l")

	// A ttl given to a key without one applies.
	mustSet(t, s, "forever", "f2", shortTTL)
	waitGone(t, s, "forever")
}

// testSetClearsTTL checks that Set with ttl 0 removes the ttl of the value
// it replaces. The sentinel, set later with the same ttl, expires no
// sooner than the first value would have.
func testSetClearsTTL(t *testing.T, s state.State) {
	mustSet(t, s, "k", "expiring", shortTTL)
	mustSet(t, s, "k", "kept", 0)
	mustSet(t, s, "sentinel", "x", shortTTL)
	waitGone(t, s, "sentinel")
	wantValue(t, s, "k", "kept")
}

func testInvalidTTL(t *testing.T, s state.State) {
	ctx := t.Context()
	const key = "k"
	for _, ttl := range []time.Duration{-time.Nanosecond, -time.Second} {
		if err := s.Set(ctx, key, []byte("v"), ttl); err == nil {
			t.Errorf("Set with ttl %v: no error", ttl)
		}
		if ok, err := s.SetNX(ctx, key, []byte("v"), ttl); err == nil || ok {
			t.Errorf("SetNX with ttl %v = %v, %v; want an error", ttl, ok, err)
		}
		if _, err := s.IncrBy(ctx, key, 1, ttl); err == nil {
			t.Errorf("IncrBy with ttl %v: no error", ttl)
		}
	}
	wantMissing(t, s, key)

	for _, ttl := range []time.Duration{0, -time.Second} {
		if l, err := s.TryLock(ctx, "lock", ttl); err == nil || errors.Is(err, state.ErrLocked) || l != nil {
			t.Errorf("TryLock with ttl %v = %v, %v; want an error other than ErrLocked", ttl, l, err)
		}
		if l, err := s.Lock(ctx, "lock", ttl); err == nil || l != nil {
			t.Errorf("Lock with ttl %v = %v, %v; want an error", ttl, l, err)
		}
	}
	l := mustTryLock(t, s, "lock", longTTL)
	for _, ttl := range []time.Duration{0, -time.Second} {
		if err := l.Extend(ctx, ttl); err == nil || errors.Is(err, state.ErrLockLost) {
			t.Errorf("Extend with ttl %v: %v, want an error other than ErrLockLost", ttl, err)
		}
	}
	wantLocked(t, s, "lock")
	if err := l.Unlock(ctx); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
}

func testSetNX(t *testing.T, s state.State) {
	ctx := t.Context()
	steps := []struct {
		name    string
		do      func() error // before SetNX, if not nil
		value   string
		wantOK  bool
		wantVal string
	}{
		{"absent", nil, "v1", true, "v1"},
		{"present", nil, "v2", false, "v1"},
		{"present after Set", func() error { return s.Set(ctx, "k", []byte("v3"), 0) }, "v4", false, "v3"},
		{"after Delete", func() error { return s.Delete(ctx, "k") }, "v5", true, "v5"},
		{"empty value present", func() error { return s.Set(ctx, "k", nil, 0) }, "v6", false, ""},
	}
	for _, st := range steps {
		if st.do != nil {
			if err := st.do(); err != nil {
				t.Fatalf("%s: preparing: %v", st.name, err)
			}
		}
		ok, err := s.SetNX(ctx, "k", []byte(st.value), 0)
		if err != nil || ok != st.wantOK {
			t.Fatalf("%s: SetNX = %v, %v; want %v", st.name, ok, err, st.wantOK)
		}
		wantValue(t, s, "k", st.wantVal)
	}
}

func testSetNXAfterExpiry(t *testing.T, s state.State) {
	ctx := t.Context()
	ok, err := s.SetNX(ctx, "k", []byte("short"), shortTTL)
	if err != nil || !ok {
		t.Fatalf("SetNX = %v, %v; want true", ok, err)
	}
	eventually(t, "SetNX to succeed once the value expired", func() (bool, error) {
		return s.SetNX(ctx, "k", []byte("forever"), 0)
	})
	mustSet(t, s, "sentinel", "x", shortTTL)
	waitGone(t, s, "sentinel")
	wantValue(t, s, "k", "forever")
}

func testIncrBy(t *testing.T, s state.State) {
	const (
		maxS = "9223372036854775807"
		minS = "-9223372036854775808"
	)
	absent := "\x00absent" // marker: the key is not set first
	tests := []struct {
		name    string
		initial string
		n       int64
		want    int64
		wantErr error
	}{
		{"absent", absent, 5, 5, nil},
		{"absent zero", absent, 0, 0, nil},
		{"absent negative", absent, -3, -3, nil},
		{"existing", "41", 1, 42, nil},
		{"to negative", "5", -7, -2, nil},
		{"zero", "0", 0, 0, nil},
		{"negative", "-10", 3, -7, nil},
		{"up to max", "9223372036854775806", 1, math.MaxInt64, nil},
		{"from min", minS, 1, math.MinInt64 + 1, nil},
		{"down to min", "-1", math.MinInt64 + 1, math.MinInt64, nil},
		{"overflow", maxS, 1, 0, state.ErrOverflow},
		{"underflow", minS, -1, 0, state.ErrOverflow},
		{"overflow by max", "1", math.MaxInt64, 0, state.ErrOverflow},
		{"not a number", "abc", 1, 0, state.ErrNotInteger},
		{"empty", "", 1, 0, state.ErrNotInteger},
		{"leading zero", "05", 1, 0, state.ErrNotInteger},
		{"plus sign", "+5", 1, 0, state.ErrNotInteger},
		{"minus zero", "-0", 1, 0, state.ErrNotInteger},
		{"leading space", " 5", 1, 0, state.ErrNotInteger},
		{"trailing space", "5 ", 1, 0, state.ErrNotInteger},
		{"trailing newline", "5\n", 1, 0, state.ErrNotInteger},
		{"decimal point", "1.5", 1, 0, state.ErrNotInteger},
		{"too big", "9223372036854775808", -1, 0, state.ErrNotInteger},
		{"hex", "0x10", 1, 0, state.ErrNotInteger},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			key := "counter-" + strconv.Itoa(i)
			if tt.initial != absent {
				mustSet(t, s, key, tt.initial, 0)
			}
			got, err := s.IncrBy(ctx, key, tt.n, 0)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("IncrBy(%q + %d) = %d, %v; want %v", tt.initial, tt.n, got, err, tt.wantErr)
				}
				wantValue(t, s, key, tt.initial)
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("IncrBy(%q + %d) = %d, %v; want %d", tt.initial, tt.n, got, err, tt.want)
			}
			wantValue(t, s, key, strconv.FormatInt(tt.want, 10))
			// The stored form can be incremented again.
			if got, err := s.IncrBy(ctx, key, 0, 0); err != nil || got != tt.want {
				t.Fatalf("IncrBy(0) = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

// testIncrByTTL checks that the ttl applies to a key that IncrBy creates,
// and not to an existing key.
func testIncrByTTL(t *testing.T, s state.State) {
	ctx := t.Context()
	if got, err := s.IncrBy(ctx, "created", 3, shortTTL); err != nil || got != 3 {
		t.Fatalf("IncrBy = %d, %v; want 3", got, err)
	}
	waitGone(t, s, "created")

	mustSet(t, s, "existing", "5", 0)
	if got, err := s.IncrBy(ctx, "existing", 1, shortTTL); err != nil || got != 6 {
		t.Fatalf("IncrBy = %d, %v; want 6", got, err)
	}
	mustSet(t, s, "sentinel", "x", shortTTL)
	waitGone(t, s, "sentinel")
	wantValue(t, s, "existing", "6")
}

// testIncrByKeepsTTL checks that IncrBy leaves the ttl of an existing key
// as it is. When the key expired before IncrBy (a slow machine), IncrBy
// created it anew and the attempt proves nothing: it is repeated with a
// doubled ttl.
func testIncrByKeepsTTL(t *testing.T, s state.State) {
	ctx := t.Context()
	for ttl := shortTTL; ; ttl *= 2 {
		if ttl > waitDeadline {
			t.Fatalf("the key kept expiring before IncrBy")
		}
		mustSet(t, s, "k", "5", ttl)
		got, err := s.IncrBy(ctx, "k", 1, 0)
		if err != nil {
			t.Fatalf("IncrBy: %v", err)
		}
		if got == 1 {
			continue // expired first: try again
		}
		if got != 6 {
			t.Fatalf("IncrBy = %d, want 6 (or 1)", got)
		}
		waitGone(t, s, "k")
		return
	}
}

func testIncrByConcurrent(t *testing.T, s state.State) {
	const goroutines, each = 16, 25
	results := make(chan int64, goroutines*each)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				v, err := s.IncrBy(t.Context(), "n", 1, 0)
				if err != nil {
					t.Errorf("IncrBy: %v", err)
					return
				}
				results <- v
			}
		})
	}
	wg.Wait()
	close(results)
	got := slices.Sorted(func(yield func(int64) bool) {
		for v := range results {
			if !yield(v) {
				return
			}
		}
	})
	if len(got) != goroutines*each {
		t.Fatalf("%d results, want %d", len(got), goroutines*each)
	}
	for i, v := range got {
		if v != int64(i+1) {
			t.Fatalf("results are not 1..%d: sorted result %d is %d", len(got), i, v)
		}
	}
	wantValue(t, s, "n", strconv.Itoa(goroutines*each))
}

// testLockMutualExclusion increments a counter with Get and Set (not
// atomic) under the lock from many goroutines: no increment may be lost.
func testLockMutualExclusion(t *testing.T, s state.State) {
	const goroutines, each = 8, 10
	var inside, overlaps atomic.Int32
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			ctx := ctxT(t)
			for range each {
				l, err := s.Lock(ctx, "mutex", longTTL)
				if err != nil {
					t.Errorf("Lock: %v", err)
					return
				}
				if inside.Add(1) != 1 {
					overlaps.Add(1)
				}
				v := 0
				b, err := s.Get(ctx, "counter")
				switch {
				case errors.Is(err, state.ErrNotFound):
				case err != nil:
					t.Errorf("Get: %v", err)
				default:
					if v, err = strconv.Atoi(string(b)); err != nil {
						t.Errorf("counter %q: %v", b, err)
					}
				}
				if err := s.Set(ctx, "counter", []byte(strconv.Itoa(v+1)), 0); err != nil {
					t.Errorf("Set: %v", err)
				}
				inside.Add(-1)
				if err := l.Unlock(ctx); err != nil {
					t.Errorf("Unlock: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if n := overlaps.Load(); n != 0 {
		t.Errorf("%d times, the lock had more than one holder", n)
	}
	wantValue(t, s, "counter", strconv.Itoa(goroutines*each))
}

func testTryLock(t *testing.T, s state.State) {
	ctx := t.Context()
	a := mustTryLock(t, s, "t", longTTL)
	wantLocked(t, s, "t")
	other := mustTryLock(t, s, "t2", longTTL) // other names are free
	if err := other.Unlock(ctx); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if err := a.Unlock(ctx); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	b := mustTryLock(t, s, "t", longTTL)
	// a is no longer ours: unlocking it again must not release b.
	if err := a.Unlock(ctx); !errors.Is(err, state.ErrLockLost) {
		t.Fatalf("second Unlock: %v, want ErrLockLost", err)
	}
	wantLocked(t, s, "t")
	if err := b.Unlock(ctx); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	l, err := s.Lock(ctx, "t", longTTL) // free: at once
	if err != nil {
		t.Fatalf("Lock of a free lock: %v", err)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
}

// testLockExpiry checks that an expired lock can be taken by another
// owner, and that the first owner can then neither release nor extend it.
func testLockExpiry(t *testing.T, s state.State) {
	ctx := t.Context()
	a := mustTryLock(t, s, "e", shortTTL)
	var b *state.Lock
	eventually(t, "the lock to expire", func() (bool, error) {
		l, err := s.TryLock(ctx, "e", longTTL)
		if errors.Is(err, state.ErrLocked) {
			return false, nil
		}
		b = l
		return err == nil, err
	})
	if err := a.Unlock(ctx); !errors.Is(err, state.ErrLockLost) {
		t.Fatalf("Unlock of the expired lock: %v, want ErrLockLost", err)
	}
	wantLocked(t, s, "e")
	if err := a.Extend(ctx, longTTL); !errors.Is(err, state.ErrLockLost) {
		t.Fatalf("Extend of the expired lock: %v, want ErrLockLost", err)
	}
	wantLocked(t, s, "e")
	if err := b.Extend(ctx, longTTL); err != nil {
		t.Fatalf("Extend by the new owner: %v", err)
	}
	if err := b.Unlock(ctx); err != nil {
		t.Fatalf("Unlock by the new owner: %v", err)
	}
	c := mustTryLock(t, s, "e", longTTL)
	if err := c.Unlock(ctx); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
}

// testLockWaitsForExpiry checks that Lock waits for a lock to expire.
func testLockWaitsForExpiry(t *testing.T, s state.State) {
	ctx := ctxT(t)
	a := mustTryLock(t, s, "w", shortTTL)
	b, err := s.Lock(ctx, "w", longTTL)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if err := a.Unlock(ctx); !errors.Is(err, state.ErrLockLost) {
		t.Fatalf("Unlock of the expired lock: %v, want ErrLockLost", err)
	}
	wantLocked(t, s, "w")
	if err := b.Unlock(ctx); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
}

// testExtendLost checks Extend and Unlock of a lock that expired (and
// that nobody took) or was released.
func testExtendLost(t *testing.T, s state.State) {
	ctx := t.Context()
	a := mustTryLock(t, s, "x", shortTTL)
	eventually(t, "the lock to expire", func() (bool, error) {
		probe, err := s.TryLock(ctx, "x", longTTL)
		if errors.Is(err, state.ErrLocked) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return true, probe.Unlock(ctx)
	})
	if err := a.Extend(ctx, longTTL); !errors.Is(err, state.ErrLockLost) {
		t.Fatalf("Extend of an expired lock: %v, want ErrLockLost", err)
	}
	if err := a.Unlock(ctx); !errors.Is(err, state.ErrLockLost) {
		t.Fatalf("Unlock of an expired lock: %v, want ErrLockLost", err)
	}

	b := mustTryLock(t, s, "y", longTTL)
	if err := b.Unlock(ctx); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if err := b.Extend(ctx, longTTL); !errors.Is(err, state.ErrLockLost) {
		t.Fatalf("Extend after Unlock: %v, want ErrLockLost", err)
	}
	c := mustTryLock(t, s, "y", longTTL) // Extend did not take it back
	if err := c.Unlock(ctx); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
}

// testExtendSetsTTL checks that Extend sets the remaining ttl from now,
// shortening as well as lengthening it.
func testExtendSetsTTL(t *testing.T, s state.State) {
	ctx := t.Context()
	a := mustTryLock(t, s, "short", longTTL)
	if err := a.Extend(ctx, shortTTL); err != nil {
		t.Fatalf("Extend: %v", err)
	}
	eventually(t, "the shortened lock to expire", func() (bool, error) {
		l, err := s.TryLock(ctx, "short", longTTL)
		if errors.Is(err, state.ErrLocked) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return true, l.Unlock(ctx)
	})

	// Lengthening: when the lock expired before Extend (a slow machine),
	// try again with a doubled ttl.
	for ttl := shortTTL; ; ttl *= 2 {
		if ttl > waitDeadline {
			t.Fatalf("the lock kept expiring before Extend")
		}
		b := mustTryLock(t, s, "long-"+ttl.String(), ttl)
		err := b.Extend(ctx, longTTL)
		if errors.Is(err, state.ErrLockLost) {
			continue
		}
		if err != nil {
			t.Fatalf("Extend: %v", err)
		}
		// Expired at its first ttl, the sentinel shows that the lock
		// outlived its own first ttl.
		mustSet(t, s, "sentinel", "x", ttl)
		waitGone(t, s, "sentinel")
		wantLocked(t, s, b.Name())
		if err := b.Unlock(ctx); err != nil {
			t.Fatalf("Unlock: %v", err)
		}
		return
	}
}

func testLockContext(t *testing.T, s state.State) {
	holder := mustTryLock(t, s, "held", longTTL)

	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), shortTTL)
		defer cancel()
		l, err := s.Lock(ctx, "held", longTTL)
		if !errors.Is(err, context.DeadlineExceeded) || l != nil {
			t.Fatalf("Lock = %v, %v; want context.DeadlineExceeded", l, err)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			l, err := s.Lock(ctx, "held", longTTL)
			if l != nil {
				err = fmt.Errorf("got lock %v, %w", l.Name(), err)
			}
			done <- err
		}()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Lock: %v, want context.Canceled", err)
		}
	})
	t.Run("canceled before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		l, err := s.Lock(ctx, "free", longTTL)
		if !errors.Is(err, context.Canceled) || l != nil {
			t.Fatalf("Lock of a free lock with a canceled ctx = %v, %v; want context.Canceled", l, err)
		}
		free := mustTryLock(t, s, "free", longTTL)
		if err := free.Unlock(t.Context()); err != nil {
			t.Fatalf("Unlock: %v", err)
		}
	})
	wantLocked(t, s, "held")
	if err := holder.Unlock(t.Context()); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
}

// testCanceledContext checks that every call fails with a canceled ctx,
// and changes nothing.
func testCanceledContext(t *testing.T, s state.State) {
	l := mustTryLock(t, s, "mine", longTTL)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := s.Get(ctx, "k"); return err }},
		{"Set", func() error { return s.Set(ctx, "k", []byte("v"), 0) }},
		{"SetNX", func() error { _, err := s.SetNX(ctx, "k", []byte("v"), 0); return err }},
		{"Delete", func() error { return s.Delete(ctx, "k") }},
		{"IncrBy", func() error { _, err := s.IncrBy(ctx, "n", 1, 0); return err }},
		{"TryLock", func() error { _, err := s.TryLock(ctx, "lock", longTTL); return err }},
		{"Lock", func() error { _, err := s.Lock(ctx, "lock", longTTL); return err }},
		{"Unlock", func() error { return l.Unlock(ctx) }},
		{"Extend", func() error { return l.Extend(ctx, shortTTL) }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, context.Canceled) || errors.Is(err, state.ErrUnavailable) {
			t.Errorf("%s with a canceled ctx: %v, want context.Canceled", c.name, err)
		}
	}
	wantMissing(t, s, "k")
	wantMissing(t, s, "n")
	wantLocked(t, s, "mine") // neither released nor shortened
	if err := l.Unlock(t.Context()); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	free := mustTryLock(t, s, "lock", longTTL)
	if err := free.Unlock(t.Context()); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
}

func testClose(t *testing.T, s state.State) {
	ctx := t.Context()
	mustSet(t, s, "k", "v", 0)
	l := mustTryLock(t, s, "lock", longTTL)
	waiter := make(chan error, 1)
	go func() {
		_, err := s.Lock(ctxT(t), "lock", longTTL)
		waiter <- err
	}()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// A Lock waiting (or about to) gives up.
	if err := <-waiter; !errors.Is(err, state.ErrClosed) {
		t.Errorf("Lock waiting during Close: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	calls := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := s.Get(ctx, "k"); return err }},
		{"Set", func() error { return s.Set(ctx, "k", []byte("v"), 0) }},
		{"SetNX", func() error { _, err := s.SetNX(ctx, "new", []byte("v"), 0); return err }},
		{"Delete", func() error { return s.Delete(ctx, "k") }},
		{"IncrBy", func() error { _, err := s.IncrBy(ctx, "n", 1, 0); return err }},
		{"TryLock", func() error { _, err := s.TryLock(ctx, "other", longTTL); return err }},
		{"Lock", func() error { _, err := s.Lock(ctx, "other", longTTL); return err }},
		{"Unlock", func() error { return l.Unlock(ctx) }},
		{"Extend", func() error { return l.Extend(ctx, longTTL) }},
	}
	for _, c := range calls {
		err := c.call()
		if !errors.Is(err, state.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", c.name, err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "state: ") {
			t.Errorf("%s after Close: error %q lacks the package's context", c.name, err)
		}
	}
}
