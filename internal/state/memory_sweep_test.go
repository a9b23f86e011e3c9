package state

import (
	"testing"
	"time"
)

// TestMemorySweep checks that expired entries that nobody reads are
// dropped by the sweep of later writes.
func TestMemorySweep(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := t0
	m := NewMemoryWithClock(func() time.Time { return now })
	defer m.Close()
	ctx := t.Context()
	const n = 3000
	for i := range n {
		if err := m.Set(ctx, "expiring-"+time.Duration(i).String(), []byte("v"), time.Second); err != nil {
			t.Fatal(err)
		}
		if _, err := m.TryLock(ctx, "lock-"+time.Duration(i).String(), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(m.values) + len(m.locks); got != 2*n {
		t.Fatalf("%d entries before expiry, want %d", got, 2*n)
	}
	now = t0.Add(time.Second)
	for i := range 2 * (2*n + sweepEvery) {
		if err := m.Set(ctx, "live", []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		if len(m.values) == 1 && len(m.locks) == 0 {
			t.Logf("swept after %d writes", i+1)
			return
		}
	}
	t.Fatalf("not swept: %d values, %d locks remain", len(m.values), len(m.locks))
}
