package delivery

import (
	"context"
	"time"

	"github.com/jitstream/jitstream/internal/vfile"
)

// Chunking of paced bodies: each chunk is about chunkTime worth of data at
// the session's rate, within [minChunk, maxChunk] bytes (fast start chunks
// without a budget are not bounded: they run to the end of the burst or of
// the piece).
const (
	chunkTime = 250 * time.Millisecond
	minChunk  = 16 << 10
	maxChunk  = 256 << 10
	// minSleep: a chunk due sooner than this goes at once (the schedule is
	// absolute, so this does not drift).
	minSleep = time.Millisecond
)

// Session controls the body of one response: fast start, then pacing at
// the content's rate times the factor, and the budget's target rate. It
// implements httpserve.Pacer. A Session is used by one goroutine, the
// request's; Close must be called when the response ends.
type Session struct {
	c        *Controller
	kind     Kind
	tl       vfile.Timeline
	size     int64
	pace     bool    // fast start and throttling
	burst    float64 // seconds of media
	factor   float64 // media seconds per second after the burst
	budgeted bool
	min      int64 // bits/s reserved in the budget
	rate     int64 // bits/s of the throttled pace (average), 0 unpaced

	started  bool
	closed   bool
	start    time.Time     // of the first chunk (monotonic)
	first    int64         // offset of the first chunk
	t0       float64       // media time of the schedule's origin
	burstEnd int64         // offset where fast start ends
	next     int64         // offset expected in the next call
	bnext    time.Duration // budget clock: when the next byte may go, since start
	timer    *time.Timer

	sent, burstSent int64
	waits           int64
	waited          time.Duration
	end             End
}

// SessionStats describes a session, for metrics and tests.
type SessionStats struct {
	Kind Kind
	// Paced is whether fast start and throttling applied; Budgeted
	// whether the session counted against the budget, with minimum Min
	// (bits per second).
	Paced, Budgeted bool
	Min             int64
	// Start is the file offset of the first byte sent; BurstEnd the
	// offset where fast start ended (the bytes before it went at full
	// speed, within the budget); Bytes the bytes let through, BurstBytes
	// those of the fast start.
	Start, BurstEnd, Bytes, BurstBytes int64
	// Waits is the number of sleeps, Waited their total; Elapsed the time
	// from the first chunk to Close.
	Waits           int64
	Waited, Elapsed time.Duration
	// End tells why the session ended (NoBody until told, see EndBody).
	End End
}

// begin anchors the schedule at the first chunk, at offset off.
func (s *Session) begin(off int64) {
	s.started = true
	s.start = time.Now()
	s.first, s.next, s.bnext = off, off, 0
	s.t0 = s.tl.Time(off)
	s.burstEnd = s.burstEndAt()
}

// burstEndAt is the first offset past fast start for the current origin.
func (s *Session) burstEndAt() int64 {
	if !s.pace {
		return 0
	}
	return s.tl.Offset(s.t0 + s.burst)
}

// jump moves the schedule to off, not where the body was (the next part of
// a multipart response): the schedule goes on from where it was, as if the
// media between had been skipped.
func (s *Session) jump(off int64) {
	s.t0 += s.tl.Time(off) - s.tl.Time(s.next)
	s.burstEnd = s.burstEndAt()
	s.next = off
}

// due is when, since the start, the byte at media time m may be sent.
func (s *Session) due(m float64) time.Duration {
	d := (m - s.t0 - s.burst) / s.factor
	if d <= 0 {
		return 0
	}
	return time.Duration(d * float64(time.Second))
}

// Next implements httpserve.Pacer: it waits until the chunk at off may be
// sent and returns its size (at most n), or ctx's error when ctx is done
// first.
func (s *Session) Next(ctx context.Context, off, n int64) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if !s.started {
		s.begin(off)
	} else if off != s.next {
		s.jump(off)
	}
	k := n
	burst := s.pace && off < s.burstEnd
	switch {
	case burst:
		k = min(k, s.burstEnd-off)
	case s.pace:
		// About chunkTime of delivery at the content's local rate.
		end := s.tl.Offset(s.tl.Time(off) + chunkTime.Seconds()*s.factor)
		k = min(k, min(max(end-off, minChunk), maxChunk))
	}
	var rate float64 // bytes per second
	if s.budgeted {
		rate = s.c.budget.target(s.min) / 8
		k = min(k, min(max(int64(rate*chunkTime.Seconds()), minChunk), maxChunk))
	}
	var due time.Duration
	if s.pace && !burst {
		due = s.due(s.tl.Time(off + k))
	}
	if s.budgeted {
		due = max(due, s.bnext)
	}
	now := time.Since(s.start)
	if due-now >= minSleep {
		if err := s.sleep(ctx, due-now); err != nil {
			return 0, err
		}
		now = time.Since(s.start)
	}
	if s.budgeted && rate > 0 {
		s.bnext = max(s.bnext, now) + time.Duration(float64(k)/rate*float64(time.Second))
	}
	s.next = off + k
	s.sent += k
	mode := Unpaced
	switch {
	case burst:
		mode = Burst
		s.burstSent += k
	case s.pace:
		mode = Paced
	}
	s.c.sent[s.kind][mode].Add(k)
	return k, nil
}

// EndBody implements httpserve.BodyEnder: it records why the body ended
// (SessionStats.End).
func (s *Session) EndBody(err error, clientGone bool) {
	switch {
	case err == nil:
		s.end = Complete
	case clientGone:
		s.end = ClientGone
	default:
		s.end = Failed
	}
}

// sleep waits for d or until ctx is done.
func (s *Session) sleep(ctx context.Context, d time.Duration) error {
	if s.timer == nil {
		s.timer = time.NewTimer(d)
	} else {
		s.timer.Reset(d)
	}
	s.waits++
	s.waited += d
	select {
	case <-ctx.Done():
		s.timer.Stop()
		return ctx.Err()
	case <-s.timer.C:
		return nil
	}
}

// Stats describes the session so far.
func (s *Session) Stats() SessionStats {
	st := SessionStats{Kind: s.kind, Paced: s.pace, Budgeted: s.budgeted, Min: s.min,
		Start: s.first, Bytes: s.sent, BurstBytes: s.burstSent, Waits: s.waits, Waited: s.waited, End: s.end}
	if s.started {
		st.Elapsed = time.Since(s.start)
		if s.pace {
			st.BurstEnd = min(s.burstEnd, s.size)
		} else {
			st.BurstEnd = s.first
		}
	}
	return st
}

// Close ends the session: it leaves the budget, updates the counters and
// calls Config.OnSessionEnd. Only the first call counts.
func (s *Session) Close() {
	if s == nil || s.closed {
		return
	}
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	if s.budgeted {
		s.c.budget.release(s.min)
	}
	s.c.active[s.kind][b2i(s.pace)].Add(-1)
	s.c.pacedRate.Add(-s.rate)
	s.c.ended[s.kind][s.end%NumEnds].Add(1)
	s.c.waits.Add(s.waits)
	s.c.waited.Add(int64(s.waited))
	if fn := s.c.cfg.OnSessionEnd; fn != nil {
		fn(s.Stats())
	}
}
