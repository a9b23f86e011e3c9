package httpserve

import (
	"context"
	"errors"
	"testing"
)

// fixedPacer allows at most max bytes per call, or fails.
type fixedPacer struct {
	max   int64
	err   error
	calls []int64 // the n of each call
	ended int
}

func (p *fixedPacer) Next(_ context.Context, _, n int64) (int64, error) {
	p.calls = append(p.calls, n)
	if p.err != nil {
		return 0, p.err
	}
	return min(n, p.max), nil
}

func (p *fixedPacer) EndBody(error, bool) { p.ended++ }

// TestChainPacers: a chunk is as large as the smaller answer, the second
// pacer is asked for no more than the first allowed, an error of the first
// stops the second, and the end of the body reaches both.
func TestChainPacers(t *testing.T) {
	boom := errors.New("refused")
	for _, tc := range []struct {
		name        string
		first, then *fixedPacer
		want        int64
		wantErr     error
		wantThenN   []int64
	}{
		{"first smaller", &fixedPacer{max: 10}, &fixedPacer{max: 100}, 10, nil, []int64{10}},
		{"then smaller", &fixedPacer{max: 100}, &fixedPacer{max: 10}, 10, nil, []int64{100}},
		{"first says 0, clamped to 1", &fixedPacer{max: 0}, &fixedPacer{max: 100}, 1, nil, []int64{1}},
		{"first refuses", &fixedPacer{err: boom}, &fixedPacer{max: 100}, 0, boom, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ChainPacers(tc.first, tc.then)
			got, err := p.Next(context.Background(), 0, 100)
			if got != tc.want || !errors.Is(err, tc.wantErr) {
				t.Fatalf("Next = %d, %v; want %d, %v", got, err, tc.want, tc.wantErr)
			}
			if len(tc.then.calls) != len(tc.wantThenN) || (len(tc.wantThenN) > 0 && tc.then.calls[0] != tc.wantThenN[0]) {
				t.Errorf("the second pacer was asked for %v, want %v", tc.then.calls, tc.wantThenN)
			}
			p.(BodyEnder).EndBody(nil, false)
			if tc.first.ended != 1 || tc.then.ended != 1 {
				t.Errorf("EndBody reached the pacers %d and %d times, want once each", tc.first.ended, tc.then.ended)
			}
		})
	}
	only := &fixedPacer{max: 5}
	if ChainPacers(nil, only) != Pacer(only) || ChainPacers(only, nil) != Pacer(only) {
		t.Error("a chain with nil is not the other pacer itself")
	}
}
