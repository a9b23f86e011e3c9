package httpserve

import "context"

// ChainPacers returns a Pacer that asks first, then then: a chunk goes
// out once both allow it, as large as the smaller of their answers (one
// that enforces rules at some offsets, then one that throttles). Either
// may be nil. EndBody reaches each of them that is a BodyEnder.
func ChainPacers(first, then Pacer) Pacer {
	switch {
	case first == nil:
		return then
	case then == nil:
		return first
	}
	return chain{first, then}
}

type chain struct{ first, then Pacer }

// Next implements Pacer.
func (c chain) Next(ctx context.Context, off, n int64) (int64, error) {
	m, err := c.first.Next(ctx, off, n)
	if err != nil {
		return 0, err
	}
	return c.then.Next(ctx, off, min(max(m, 1), n)) // clamped as the body clamps
}

// EndBody implements BodyEnder.
func (c chain) EndBody(err error, clientGone bool) {
	for _, p := range []Pacer{c.first, c.then} {
		if e, ok := p.(BodyEnder); ok {
			e.EndBody(err, clientGone)
		}
	}
}
