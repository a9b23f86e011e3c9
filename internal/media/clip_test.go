package media

import (
	"errors"
	"testing"
	"time"
)

func TestClip(t *testing.T) {
	ix := synthLongIndex(1)
	for _, tc := range []struct {
		start, end time.Duration
		ok         bool
	}{
		{0, 0, true},
		{1500 * time.Millisecond, 4 * time.Second, true},
		{2 * time.Second, 0, true},
		{-time.Second, 0, false},
		{3 * time.Second, 2 * time.Second, false},
		{time.Hour, 0, false},
	} {
		c, err := Clip(ix, tc.start, tc.end)
		if (err == nil) != tc.ok {
			t.Errorf("Clip(%v, %v) error %v, want ok=%v", tc.start, tc.end, err, tc.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrRange) {
				t.Errorf("Clip(%v, %v) error %v does not wrap ErrRange", tc.start, tc.end, err)
			}
			continue
		}
		if err := c.Validate(); err != nil {
			t.Errorf("Clip(%v, %v): %v", tc.start, tc.end, err)
		}
		ref := c.Reference()
		if !ref.Samples.IsSync(0) {
			t.Errorf("Clip(%v, %v): the reference track does not start at a keyframe", tc.start, tc.end)
		}
		for _, tr := range c.Tracks {
			if tr.Samples.DTS[0] != 0 {
				t.Errorf("Clip(%v, %v) track %d starts at %d, want 0", tc.start, tc.end, tr.ID, tr.Samples.DTS[0])
			}
			// Presentation begins at start: the edit skips what lies before.
			orig := ix.Tracks[tr.ID-1]
			first := orig.Find(0)
			for i := range orig.Samples.Len() {
				if orig.Samples.Offset[i] == tr.Samples.Offset[0] {
					first = i
					break
				}
			}
			skipped := orig.Samples.DTS[first] + tr.MediaTime - orig.MediaTime
			want := int64(tc.start) * int64(tr.Timescale) / int64(time.Second)
			if d := skipped - want; d < -1 || d > 1 {
				t.Errorf("Clip(%v, %v) track %d presents from %d, want %d", tc.start, tc.end, tr.ID, skipped, want)
			}
			if tc.end != 0 {
				got := time.Duration(float64(tr.Duration()-tr.MediaTime) / float64(tr.Timescale) * float64(time.Second))
				if d := got - (tc.end - tc.start); d < -100*time.Millisecond || d > 100*time.Millisecond {
					t.Errorf("Clip(%v, %v) track %d lasts %v", tc.start, tc.end, tr.ID, got)
				}
			}
		}
	}
}
