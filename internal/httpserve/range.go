package httpserve

import (
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jitstream/jitstream/internal/vfile"
)

// byteRange is the bytes [start, start+length) of a file; length > 0.
type byteRange struct {
	start, length int64
}

func (r byteRange) end() int64 { return r.start + r.length }

// contentRange formats the Content-Range value of r in a file of size bytes.
func (r byteRange) contentRange(size int64) string {
	return "bytes " + strconv.FormatInt(r.start, 10) + "-" + strconv.FormatInt(r.end()-1, 10) + "/" + strconv.FormatInt(size, 10)
}

// rangeResult is the outcome of parsing a Range header.
type rangeResult int

const (
	// rangeIgnore: no Range header, or one that must be ignored (another
	// unit, or an invalid ranges-specifier); the whole file is sent.
	rangeIgnore rangeResult = iota
	// rangeOK: at least one range-spec is satisfiable.
	rangeOK
	// rangeUnsatisfiable: a valid specifier none of whose range-specs is
	// satisfiable.
	rangeUnsatisfiable
	// rangeMalformed: a bytes range that is not well formed ("bytes=abc",
	// "bytes=5-2"); answered 416 with a JSON body naming the problem, as
	// net/http's ServeContent answers 416 too.
	rangeMalformed
)

// maxRangeSpecs is the most range-specs a Range header may have to be
// considered (before coalescing; Options.MaxRanges bounds what is served).
const maxRangeSpecs = 256

// parseRange parses a Range header value (RFC 9110 section 14.1.1 and 14.2)
// for a representation of size bytes. It returns the satisfiable ranges, in
// the order of the header, clipped to the size.
//
// The policy is:
//   - another range unit than "bytes" (compared case-insensitively) makes
//     the whole header ignored (rangeIgnore), as RFC 9110 allows;
//   - a syntactically invalid bytes specifier — including an int-range whose
//     last-pos is below its first-pos, as in "bytes=5-2", or a specifier made
//     only of empty list elements — is rangeMalformed: a clear 416 error, as
//     net/http's ServeContent does, rather than a silent full response;
//   - an int-range whose first-pos is at or past the end, and a suffix-range
//     of length 0, are unsatisfiable and dropped; if nothing is left the
//     result is rangeUnsatisfiable;
//   - a last-pos past the end is clipped, a suffix longer than the file means
//     the whole file; numbers too large for int64 saturate;
//   - empty list elements and optional whitespace around commas are accepted;
//   - more than maxRangeSpecs range-specs make the whole header ignored
//     (rangeIgnore), as RFC 9110 section 14.2 allows for "many small
//     ranges": parsing stops there, so a header of thousands of ranges
//     costs no more than one of maxRangeSpecs.
func parseRange(s string, size int64) ([]byteRange, rangeResult) {
	if s == "" {
		return nil, rangeIgnore
	}
	unit, set, ok := strings.Cut(s, "=")
	if !ok || !strings.EqualFold(unit, "bytes") {
		return nil, rangeIgnore
	}
	// From here on the header claims to be a bytes range: syntax errors
	// are the client's and get a 416 naming them.
	var (
		ranges []byteRange
		specs  int // non-empty list elements
	)
	for elem := range strings.SplitSeq(set, ",") {
		elem = strings.Trim(elem, " \t")
		if elem == "" {
			continue
		}
		if specs++; specs > maxRangeSpecs {
			return nil, rangeIgnore
		}
		first, last, ok := strings.Cut(elem, "-")
		if !ok {
			return nil, rangeMalformed
		}
		if first == "" {
			// suffix-range: the last n bytes.
			n, ok := parseDigits(last)
			if !ok {
				return nil, rangeMalformed
			}
			if n == 0 || size == 0 {
				continue
			}
			n = min(n, size)
			ranges = append(ranges, byteRange{size - n, n})
			continue
		}
		start, ok := parseDigits(first)
		if !ok {
			return nil, rangeMalformed
		}
		end := size // exclusive
		if last != "" {
			l, ok := parseDigits(last)
			if !ok || l < start {
				return nil, rangeMalformed
			}
			if l < size-1 {
				end = l + 1
			}
		}
		if start >= size {
			continue
		}
		ranges = append(ranges, byteRange{start, end - start})
	}
	if specs == 0 {
		return nil, rangeMalformed
	}
	if len(ranges) == 0 {
		return nil, rangeUnsatisfiable
	}
	return ranges, rangeOK
}

// parseDigits parses a non-empty run of ASCII digits, saturating at
// math.MaxInt64.
func parseDigits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			n = math.MaxInt64
			continue
		}
		n = n*10 + d
	}
	return n, true
}

// coalesce merges overlapping and adjacent ranges. If nothing merges, the
// ranges are returned unchanged, in the client's order; otherwise the result
// is sorted by offset (RFC 9110 section 14.2 allows coalescing "regardless of
// the order in which the corresponding range-specs appeared").
func coalesce(ranges []byteRange) []byteRange {
	if len(ranges) < 2 {
		return ranges
	}
	sorted := slices.Clone(ranges)
	slices.SortFunc(sorted, func(a, b byteRange) int {
		switch {
		case a.start < b.start:
			return -1
		case a.start > b.start:
			return 1
		}
		return 0
	})
	out := sorted[:1]
	for _, r := range sorted[1:] {
		last := &out[len(out)-1]
		if r.start <= last.end() {
			if r.end() > last.end() {
				last.length = r.end() - last.start
			}
			continue
		}
		out = append(out, r)
	}
	if len(out) == len(ranges) {
		return ranges
	}
	return out
}

// precondition is the outcome of evaluating a request's preconditions.
type precondition int

const (
	precondPass        precondition = iota // serve the file
	precondFailed                          // 412 Precondition Failed
	precondNotModified                     // 304 Not Modified
)

// checkPreconditions evaluates If-Match, If-Unmodified-Since, If-None-Match
// and If-Modified-Since in the order of RFC 9110 section 13.2.2, for a GET or
// HEAD of f. If-Range is evaluated separately by ifRange.
func checkPreconditions(r *http.Request, f *vfile.File) precondition {
	if im := r.Header.Get("If-Match"); im != "" {
		if !etagListMatch(im, f.ETag, true) {
			return precondFailed
		}
	} else if ius := r.Header.Get("If-Unmodified-Since"); ius != "" && !isZeroTime(f.ModTime) {
		if t, err := http.ParseTime(ius); err == nil && f.ModTime.Truncate(time.Second).After(t) {
			return precondFailed
		}
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		if etagListMatch(inm, f.ETag, false) {
			return precondNotModified // GET and HEAD only reach here
		}
	} else if ims := r.Header.Get("If-Modified-Since"); ims != "" && !isZeroTime(f.ModTime) {
		if t, err := http.ParseTime(ims); err == nil && !f.ModTime.Truncate(time.Second).After(t) {
			return precondNotModified
		}
	}
	return precondPass
}

// ifRange reports whether the Range header may be honoured given the
// request's If-Range (RFC 9110 section 13.1.5): true without If-Range; with
// an entity tag, only if it strongly matches f.ETag; with a date, only if it
// equals f.ModTime to the second.
func ifRange(r *http.Request, f *vfile.File) bool {
	ir := r.Header.Get("If-Range")
	if ir == "" {
		return true
	}
	if etag, _ := scanETag(ir); etag != "" {
		return etagStrongMatch(etag, f.ETag)
	}
	if isZeroTime(f.ModTime) {
		return false
	}
	t, err := http.ParseTime(ir)
	return err == nil && t.Unix() == f.ModTime.Unix()
}

// etagListMatch reports whether the If-Match / If-None-Match list (or "*")
// matches etag, with the strong or the weak comparison. A malformed list
// stops matching at the first bad element.
func etagListMatch(list, etag string, strong bool) bool {
	for {
		list = strings.Trim(list, " \t")
		if list == "" {
			return false
		}
		if list[0] == ',' {
			list = list[1:]
			continue
		}
		if list[0] == '*' {
			// The representation exists.
			return true
		}
		t, rest := scanETag(list)
		if t == "" {
			return false
		}
		if strong && etagStrongMatch(t, etag) || !strong && etagWeakMatch(t, etag) {
			return true
		}
		list = rest
	}
}

// scanETag returns the entity tag (W/"..." or "...") at the start of s,
// after optional whitespace, and the rest of s; "" if there is none.
func scanETag(s string) (etag, rest string) {
	s = strings.TrimLeft(s, " \t")
	start := 0
	if strings.HasPrefix(s, "W/") {
		start = 2
	}
	if len(s)-start < 2 || s[start] != '"' {
		return "", ""
	}
	for i := start + 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return s[:i+1], s[i+1:]
		case c == 0x21 || c >= 0x23 && c <= 0x7e || c >= 0x80:
		default:
			return "", ""
		}
	}
	return "", ""
}

// etagStrongMatch: both tags are strong and identical.
func etagStrongMatch(a, b string) bool {
	return a != "" && a == b && a[0] == '"'
}

// etagWeakMatch: the opaque tags are identical, W/ prefixes aside.
func etagWeakMatch(a, b string) bool {
	return a != "" && strings.TrimPrefix(a, "W/") == strings.TrimPrefix(b, "W/")
}

// isZeroTime reports whether t is unset (zero or the Unix epoch), in which
// case no Last-Modified is sent and date conditions are ignored.
func isZeroTime(t time.Time) bool {
	return t.IsZero() || t.Unix() == 0 && t.Nanosecond() == 0
}
