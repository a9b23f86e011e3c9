package httpserve

import (
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/vfile"
)

func TestParseRange(t *testing.T) {
	const size = 1000
	tests := []struct {
		hdr  string
		size int64
		want []byteRange
		res  rangeResult
	}{
		{"", size, nil, rangeIgnore},
		{"bytes=0-499", size, []byteRange{{0, 500}}, rangeOK},
		{"bytes=500-", size, []byteRange{{500, 500}}, rangeOK},
		{"bytes=-200", size, []byteRange{{800, 200}}, rangeOK},
		{"bytes=-2000", size, []byteRange{{0, 1000}}, rangeOK},
		{"bytes=990-2000", size, []byteRange{{990, 10}}, rangeOK},
		{"bytes=999-999", size, []byteRange{{999, 1}}, rangeOK},
		{"BYTES=1-1", size, []byteRange{{1, 1}}, rangeOK},
		{"bytes=0-0, 5-9 ,,\t-1", size, []byteRange{{0, 1}, {5, 5}, {999, 1}}, rangeOK},
		{"bytes=0-99999999999999999999999", size, []byteRange{{0, 1000}}, rangeOK},
		{"bytes=1000-,5-5", size, []byteRange{{5, 1}}, rangeOK},
		{"bytes=1000-", size, nil, rangeUnsatisfiable},
		{"bytes=-0", size, nil, rangeUnsatisfiable},
		{"bytes=99999999999999999999999-", size, nil, rangeUnsatisfiable},
		{"bytes=0-", 0, nil, rangeUnsatisfiable},
		{"bytes=-5", 0, nil, rangeUnsatisfiable},
		{"bytes=5-4", size, nil, rangeMalformed},
		{"bytes=0-1,5-4", size, nil, rangeMalformed},
		{"bytes=", size, nil, rangeMalformed},
		{"bytes=,", size, nil, rangeMalformed},
		{"bytes=-", size, nil, rangeMalformed},
		{"bytes=a-b", size, nil, rangeMalformed},
		{"bytes=1-2-3", size, nil, rangeMalformed},
		{"bytes=+1-2", size, nil, rangeMalformed},
		{"bytes=1 - 2", size, nil, rangeMalformed},
		{"bytes 1-2", size, nil, rangeIgnore},
		{"items=1-2", size, nil, rangeIgnore},
		{"bytes=1", size, nil, rangeMalformed},
		{"bytes=" + strings.Repeat("0-0,", maxRangeSpecs), size, slices.Repeat([]byteRange{{0, 1}}, maxRangeSpecs), rangeOK},
		{"bytes=" + strings.Repeat("0-0,", maxRangeSpecs+1), size, nil, rangeIgnore},
		{"bytes=" + strings.Repeat(",", 10000) + "0-0", size, []byteRange{{0, 1}}, rangeOK}, // empty elements do not count
	}
	for _, tt := range tests {
		got, res := parseRange(tt.hdr, tt.size)
		if res != tt.res || !slices.Equal(got, tt.want) {
			t.Errorf("parseRange(%q, %d) = %v, %v; want %v, %v", tt.hdr, tt.size, got, res, tt.want, tt.res)
		}
	}
}

func TestParseDigits(t *testing.T) {
	for s, want := range map[string]int64{"0": 0, "007": 7, "9223372036854775807": math.MaxInt64, "9223372036854775808": math.MaxInt64, "123456789012345678901234": math.MaxInt64} {
		if n, ok := parseDigits(s); !ok || n != want {
			t.Errorf("parseDigits(%q) = %d, %v", s, n, ok)
		}
	}
	for _, s := range []string{"", "-1", "1a", " 1"} {
		if _, ok := parseDigits(s); ok {
			t.Errorf("parseDigits(%q) ok", s)
		}
	}
}

func TestCoalesce(t *testing.T) {
	tests := []struct{ in, want []byteRange }{
		{nil, nil},
		{[]byteRange{{5, 1}}, []byteRange{{5, 1}}},
		{[]byteRange{{10, 5}, {0, 5}}, []byteRange{{10, 5}, {0, 5}}},            // kept in order
		{[]byteRange{{10, 5}, {0, 10}}, []byteRange{{0, 15}}},                   // adjacent
		{[]byteRange{{10, 5}, {0, 11}, {30, 1}}, []byteRange{{0, 15}, {30, 1}}}, // overlapping
		{[]byteRange{{0, 100}, {10, 5}, {50, 1}}, []byteRange{{0, 100}}},        // contained
		{[]byteRange{{0, 1}, {0, 1}}, []byteRange{{0, 1}}},                      // duplicate
	}
	for _, tt := range tests {
		if got := coalesce(slices.Clone(tt.in)); !slices.Equal(got, tt.want) {
			t.Errorf("coalesce(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestScanETag(t *testing.T) {
	for s, want := range map[string][2]string{
		`"abc"`:       {`"abc"`, ""},
		` W/"abc", x`: {`W/"abc"`, ", x"},
		`"a b"`:       {"", ""},
		`"abc`:        {"", ""},
		`abc`:         {"", ""},
		`""`:          {`""`, ""},
		`W/`:          {"", ""},
	} {
		e, rest := scanETag(s)
		if e != want[0] || rest != want[1] {
			t.Errorf("scanETag(%q) = %q, %q; want %q, %q", s, e, rest, want[0], want[1])
		}
	}
}

func TestIsZeroTime(t *testing.T) {
	if !isZeroTime(time.Time{}) || !isZeroTime(time.Unix(0, 0)) || isZeroTime(time.Unix(0, 1)) || isZeroTime(time.Unix(1, 0)) {
		t.Error("isZeroTime")
	}
}

func TestIfRangeSecondPrecision(t *testing.T) {
	f := vfile.New("x", "", time.Date(2024, 1, 2, 3, 4, 5, 600e6, time.UTC), `"e"`, nil)
	r, _ := http.NewRequest("GET", "/", nil)
	r.Header.Set("If-Range", "Tue, 02 Jan 2024 03:04:05 GMT")
	if !ifRange(r, f) {
		t.Error("If-Range date with sub-second modtime should match")
	}
	r.Header.Set("If-Modified-Since", "Tue, 02 Jan 2024 03:04:05 GMT")
	if checkPreconditions(r, f) != precondNotModified {
		t.Error("If-Modified-Since equal to the second should be 304")
	}
}
