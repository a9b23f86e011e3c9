package outputs

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseSelection(t *testing.T) {
	for _, tc := range []struct {
		query      string
		start, end time.Duration
		ok         bool
	}{
		{"", 0, 0, true},
		{"start=12.5&end=40", 12500 * time.Millisecond, 40 * time.Second, true},
		{"start=3", 3 * time.Second, 0, true},
		{"end=3", 0, 3 * time.Second, true},
		{"start=abc", 0, 0, false},
		{"start=-1", 0, 0, false},
		{"start=NaN", 0, 0, false},
		{"start=Inf", 0, 0, false},
		{"start=5&end=5", 0, 0, false},
		{"start=5&end=2", 0, 0, false},
		{"end=1e300", 0, 0, false},
		{"start=10000000", 1e7 * time.Second, 0, true},
		{"start=10000000.1", 0, 0, false},
		{"start=" + strings.Repeat("0", 28) + "12.5", 12500 * time.Millisecond, 0, true}, // 32 characters
		{"start=" + strings.Repeat("0", 29) + "12.5", 0, 0, false},                       // 33
	} {
		q, _ := url.ParseQuery(tc.query)
		sel, err := ParseSelection(q)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrBadQuery)) {
			t.Errorf("ParseSelection(%q) error = %v, want ok=%v", tc.query, err, tc.ok)
			continue
		}
		if tc.ok && (sel.Start != tc.start || sel.End != tc.end) {
			t.Errorf("ParseSelection(%q) = %v..%v, want %v..%v", tc.query, sel.Start, sel.End, tc.start, tc.end)
		}
	}
}
