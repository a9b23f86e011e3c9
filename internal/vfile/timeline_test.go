package vfile

import (
	"math"
	"reflect"
	"testing"
)

func TestTimelineTimeAndOffset(t *testing.T) {
	// 100 bytes of header, then 1000 bytes per second for 2 s, then a
	// slower second of 200 bytes.
	tl := Timeline{{100, 0}, {1100, 1}, {2100, 2}, {2300, 3}}
	for _, tc := range []struct {
		off  int64
		want float64
	}{
		{0, 0}, {99, 0}, {100, 0}, {600, 0.5}, {1100, 1}, {2000, 1.9}, {2200, 2.5}, {2300, 3}, {5000, 3},
	} {
		if got := tl.Time(tc.off); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("Time(%d) = %v, want %v", tc.off, got, tc.want)
		}
	}
	for _, tc := range []struct {
		time float64
		want int64
	}{
		{-1, 0}, {0, 0}, {0.0005, 101}, {0.5, 600}, {1, 1100}, {2.5, 2200}, {3, 2300}, {3.01, math.MaxInt64},
	} {
		if got := tl.Offset(tc.time); got != tc.want {
			t.Errorf("Offset(%v) = %d, want %d", tc.time, got, tc.want)
		}
	}
	// Offset is the inverse of Time: the first byte at or after t.
	for off := int64(100); off < 2300; off += 37 {
		m := tl.Time(off)
		if o := tl.Offset(m); o > off || tl.Time(o) < m-1e-9 {
			t.Errorf("Offset(Time(%d) = %v) = %d", off, m, o)
		}
	}
	if d, r := tl.Duration(), tl.Bitrate(2300); d != 3 || r != 2300*8/3 {
		t.Errorf("Duration %v, Bitrate %d", d, r)
	}
	var empty Timeline
	if empty.Time(5) != 0 || empty.Offset(1) != math.MaxInt64 || empty.Offset(0) != 0 || empty.Bitrate(10) != 0 {
		t.Error("empty timeline")
	}
}

func TestCompactTimeline(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []TimePoint
		step float64
		want Timeline
	}{
		{"empty", nil, 1, nil},
		{"one", []TimePoint{{5, 1}}, 1, Timeline{{5, 1}}},
		{"sorted and decimated", []TimePoint{{0, 0}, {10, 0.3}, {20, 0.6}, {30, 1.0}, {40, 1.2}, {50, 2.5}}, 1,
			Timeline{{0, 0}, {30, 1}, {50, 2.5}}},
		{"interleaved tracks: running max", []TimePoint{{30, 1}, {0, 0}, {20, 0.5}, {10, 2}, {40, 3}}, 0.1,
			Timeline{{0, 0}, {10, 2}, {40, 3}}},
		{"same offset: the largest time", []TimePoint{{0, 0}, {10, 1}, {10, 2}, {20, 3}}, 0.5,
			Timeline{{0, 0}, {10, 2}, {20, 3}}},
		{"negative times clamped", []TimePoint{{0, -0.5}, {10, 1}}, 0.5, Timeline{{0, 0}, {10, 1}}},
	} {
		got := CompactTimeline(tc.in, tc.step)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
