package delivery

import (
	"math"
	"sync"
	"sync/atomic"
)

// Budget is a server's bandwidth budget, shared by its sessions. Rates are
// in bits per second.
//
// Policy: a session is admitted only if its minimum fits, that is if the
// minimums of the sessions (admitted ones and the new one) add up to at
// most the limit. Each session's target is its minimum plus an even share
// of what the minimums leave:
//
//	target(i) = min(i) + (limit - Σ min) / sessions
//
// recomputed whenever a session starts or ends. The targets add up to the
// limit, so sessions that never exceed their targets (fast start included)
// never exceed the budget together; a session paced below its target
// leaves the difference unused (it is not redistributed: the next
// recomputation would take it back anyway as soon as the session bursts
// again, at the cost of overshooting meanwhile).
//
// A nil *Budget, or one with limit 0, is unlimited. Its methods are safe
// for concurrent use.
type Budget struct {
	limit int64

	mu       sync.Mutex
	sessions int
	reserved int64 // Σ min of the sessions

	// share is math.Float64bits of the current share (bits/s), read by
	// every session before each chunk.
	share atomic.Uint64
	// admitted and refused count acquire calls.
	admitted, refused atomic.Int64
}

// NewBudget returns a budget of limit bits per second; 0 means unlimited.
func NewBudget(limit int64) *Budget {
	b := &Budget{limit: max(limit, 0)}
	b.share.Store(math.Float64bits(float64(b.limit)))
	return b
}

// Limited reports whether the budget has a limit.
func (b *Budget) Limited() bool { return b != nil && b.limit > 0 }

// Limit is the budget in bits per second, 0 when unlimited.
func (b *Budget) Limit() int64 {
	if b == nil {
		return 0
	}
	return b.limit
}

// Fits reports whether a new session of minimum rate (bits per second)
// would be admitted now: always without a limit. Manifests use it to leave
// out the variants that do not fit.
func (b *Budget) Fits(rate int64) bool {
	if !b.Limited() {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reserved+max(rate, 0) <= b.limit
}

// Free is what the minimums leave of the budget, in bits per second
// (math.MaxInt64 without a limit).
func (b *Budget) Free() int64 {
	if !b.Limited() {
		return math.MaxInt64
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.limit - b.reserved
}

// acquire admits a session of minimum rate min if it fits.
func (b *Budget) acquire(min int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.reserved+min > b.limit {
		b.refused.Add(1)
		return false
	}
	b.sessions++
	b.reserved += min
	b.update()
	b.admitted.Add(1)
	return true
}

// release ends a session of minimum rate min.
func (b *Budget) release(min int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sessions--
	b.reserved -= min
	b.update()
}

// update recomputes the share; b.mu is held.
func (b *Budget) update() {
	b.share.Store(math.Float64bits(share(b.limit, b.reserved, b.sessions)))
}

// share is each session's part of what the minimums leave of limit: the
// whole of it with no session (what a new session would get).
func share(limit, reserved int64, sessions int) float64 {
	free := float64(max(limit-reserved, 0))
	if sessions <= 0 {
		return free
	}
	return free / float64(sessions)
}

// target is the rate, in bits per second, that a session of minimum min
// may use now (+Inf without a limit).
func (b *Budget) target(min int64) float64 {
	if !b.Limited() {
		return math.Inf(1)
	}
	return float64(min) + math.Float64frombits(b.share.Load())
}

// BudgetStats is a snapshot of a Budget, rates in bits per second.
type BudgetStats struct {
	// Limit is the budget, 0 when unlimited.
	Limit int64
	// Sessions is the number of sessions counted; Reserved the sum of
	// their minimums; Share what each gets above its minimum.
	Sessions int
	Reserved int64
	Share    int64
	// Admitted and Refused count the sessions admitted and refused since
	// the budget was made.
	Admitted, Refused int64
}

// Stats returns a snapshot of the budget.
func (b *Budget) Stats() BudgetStats {
	if !b.Limited() {
		return BudgetStats{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return BudgetStats{Limit: b.limit, Sessions: b.sessions, Reserved: b.reserved,
		Share:    int64(share(b.limit, b.reserved, b.sessions)),
		Admitted: b.admitted.Load(), Refused: b.refused.Load()}
}
