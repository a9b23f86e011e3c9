package outputs

import (
	"errors"
	"math"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// maxErrorLen bounds the message of a refused query parameter, whatever
// the query's length: values are quoted back only up to MaxParamLen bytes
// (each at most 4 characters quoted, as \x00).
const maxErrorLen = 4*MaxParamLen + 100

var querySeeds = []string{
	"", "start=12.5&end=40", "start=3", "end=3", "start=abc", "start=-1", "start=NaN", "start=Inf",
	"start=5&end=5", "end=1e300", "start=0x1p3", "start=1e7", "start=10000000.000000001",
	"start=" + string(make([]byte, 40)), "start=1&start=2", "rate=8", "rate=-4&pos=12.5",
	"start=" + strings.Repeat("\x00", 19) + "\x0f" + strings.Repeat("\x00", 5), // found by the fuzzer: a quoted value grows
	"rate=2&pos=2.0004", "rate=", "rate=2.5", "rate=2&pos=-1", "rate=2&start=1", "rate=+2",
	"rate=99999999999999999999", "rate=2&pos=0.0005", "pos=3&rate=1",
}

// FuzzParseSelection checks ParseSelection on any query: it refuses with
// ErrBadQuery and a short message, or returns a clip from 0 to maxSeconds
// whose end is after its start, the start and end read from the query.
func FuzzParseSelection(f *testing.F) {
	for _, s := range querySeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw)
		sel, err := ParseSelection(q)
		if err != nil {
			if !errors.Is(err, ErrBadQuery) || len(err.Error()) > maxErrorLen {
				t.Fatalf("ParseSelection(%q): %v", raw, err)
			}
			return
		}
		const most = time.Duration(maxSeconds * float64(time.Second))
		if sel.Start < 0 || sel.Start > most || sel.End < 0 || sel.End > most {
			t.Fatalf("ParseSelection(%q) = %v..%v: out of bounds", raw, sel.Start, sel.End)
		}
		if sel.End != 0 && sel.End <= sel.Start {
			t.Fatalf("ParseSelection(%q) = %v..%v: end not after start", raw, sel.Start, sel.End)
		}
		for _, p := range []struct {
			name string
			got  time.Duration
		}{{"start", sel.Start}, {"end", sel.End}} {
			v := q.Get(p.name)
			if v == "" {
				if p.got != 0 {
					t.Fatalf("ParseSelection(%q): %s %v without %s", raw, p.name, p.got, p.name)
				}
				continue
			}
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || len(v) > MaxParamLen || time.Duration(f*float64(time.Second)) != p.got {
				t.Fatalf("ParseSelection(%q): %s = %v from %q", raw, p.name, p.got, v)
			}
		}
	})
}

// FuzzParseTrick checks ParseTrick on any query: it refuses with
// ErrBadQuery and a short message, or returns the integer rate of the
// query and a whole number of milliseconds from 0 to maxSeconds as the
// position, for a query without start or end.
func FuzzParseTrick(f *testing.F) {
	for _, s := range querySeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw)
		rate, pos, err := ParseTrick(q)
		if err != nil {
			if !errors.Is(err, ErrBadQuery) || len(err.Error()) > maxErrorLen {
				t.Fatalf("ParseTrick(%q): %v", raw, err)
			}
			return
		}
		if q.Has("start") || q.Has("end") {
			t.Fatalf("ParseTrick(%q) accepted start or end", raw)
		}
		if r, err := strconv.Atoi(q.Get("rate")); err != nil || r != rate || len(q.Get("rate")) > MaxParamLen {
			t.Fatalf("ParseTrick(%q): rate %d from %q", raw, rate, q.Get("rate"))
		}
		if pos < 0 || pos > time.Duration(maxSeconds)*time.Second || pos%time.Millisecond != 0 {
			t.Fatalf("ParseTrick(%q): pos %v", raw, pos)
		}
		if v := q.Get("pos"); v != "" {
			f, _ := strconv.ParseFloat(v, 64)
			if d := math.Abs(pos.Seconds() - f); d > 0.0005+1e-9*f {
				t.Fatalf("ParseTrick(%q): pos %v from %q", raw, pos, v)
			}
		} else if pos != 0 {
			t.Fatalf("ParseTrick(%q): pos %v without pos", raw, pos)
		}
	})
}
