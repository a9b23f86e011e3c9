package httpserve

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseRange checks parseRange and coalesce on any header and size:
// an accepted range lies within the file and is not empty; the ranges
// re-parse to themselves once written back as first-last pairs; coalescing
// keeps them in the file, leaves none overlapping or adjacent, covers
// exactly the same bytes, and changes nothing when nothing merges.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{
		"bytes=0-499", "bytes=500-", "bytes=-200", "bytes=0-0, 5-9 ,,\t-1", "BYTES=1-1",
		"bytes=0-99999999999999999999999", "bytes=1000-,5-5", "bytes=5-4", "bytes=", "bytes=,",
		"bytes=1 - 2", "items=1-2", "bytes=10-20,15-30,0-5,31-40", "bytes=-0", "bytes=0-1,1-2,2-3",
		"bytes=" + strings.Repeat("0-0,", maxRangeSpecs+1),
	} {
		f.Add(s, int64(1000))
	}
	f.Add("bytes=0-", int64(0))
	f.Add("bytes=-5", int64(1<<62))
	f.Fuzz(func(t *testing.T, s string, size int64) {
		if size < 0 {
			size = -(size + 1)
		}
		rs, res := parseRange(s, size)
		if res != rangeOK {
			if rs != nil {
				t.Fatalf("result %d with ranges %v", res, rs)
			}
			return
		}
		if len(rs) == 0 || len(rs) > maxRangeSpecs {
			t.Fatalf("rangeOK with %d ranges", len(rs))
		}
		var spec []string
		for _, r := range rs {
			if r.start < 0 || r.length <= 0 || r.start > size-r.length {
				t.Fatalf("range %+v outside a file of %d bytes (header %q)", r, size, s)
			}
			spec = append(spec, strconv.FormatInt(r.start, 10)+"-"+strconv.FormatInt(r.end()-1, 10))
		}
		again, res2 := parseRange("bytes="+strings.Join(spec, ","), size)
		if res2 != rangeOK || !slices.Equal(again, rs) {
			t.Fatalf("ranges %v written back parse to %v, %d", rs, again, res2)
		}

		c := coalesce(slices.Clone(rs))
		if len(c) == 0 || len(c) > len(rs) {
			t.Fatalf("coalesce(%v) = %v", rs, c)
		}
		if len(c) == len(rs) && !slices.Equal(c, rs) {
			t.Fatalf("coalesce(%v) = %v: changed without merging", rs, c)
		}
		sorted := slices.Clone(c)
		slices.SortFunc(sorted, func(a, b byteRange) int { return compareInt64(a.start, b.start) })
		var covered int64
		for i, r := range sorted {
			if r.start < 0 || r.length <= 0 || r.start > size-r.length {
				t.Fatalf("coalesced range %+v outside a file of %d bytes", r, size)
			}
			if i > 0 && sorted[i-1].end() >= r.start {
				t.Fatalf("coalesced ranges %+v and %+v overlap or touch", sorted[i-1], r)
			}
			covered += r.length
		}
		// Every range is inside a coalesced one, and the coalesced ones
		// cover no more than the union of the ranges.
		for _, r := range rs {
			if !slices.ContainsFunc(c, func(o byteRange) bool { return o.start <= r.start && r.end() <= o.end() }) {
				t.Fatalf("range %+v not within the coalesced %v", r, c)
			}
		}
		if u := unionLength(rs); covered != u {
			t.Fatalf("coalesced ranges cover %d bytes, the ranges %d", covered, u)
		}
	})
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// unionLength is the number of bytes in the union of the ranges, computed
// with a sweep independent of coalesce.
func unionLength(rs []byteRange) int64 {
	type edge struct {
		at    int64
		delta int
	}
	var edges []edge
	for _, r := range rs {
		edges = append(edges, edge{r.start, +1}, edge{r.end(), -1})
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := compareInt64(a.at, b.at); c != 0 {
			return c
		}
		return b.delta - a.delta // starts before ends at the same offset
	})
	var n, from int64
	depth := 0
	for _, e := range edges {
		if depth == 0 && e.delta > 0 {
			from = e.at
		}
		depth += e.delta
		if depth == 0 {
			n += e.at - from
		}
	}
	return n
}

// FuzzETagList checks scanETag and etagListMatch (If-Match, If-None-Match,
// If-Range) on any input: a scanned tag is a well-formed entity tag at the
// start of the input, which scans to itself; a strong match is also a weak
// one; a valid tag matches a list that starts with it, or with its weak
// form under the weak comparison, and "*" matches anything.
func FuzzETagList(f *testing.F) {
	for _, s := range [][2]string{
		{`"abc"`, `"abc"`}, {` W/"abc", "x"`, `"abc"`}, {`"a b"`, `"a b"`}, {`"abc`, `"abc"`},
		{`*`, `"q"`}, {`, ,"x", W/"y"`, `W/"y"`}, {`""`, `""`}, {`W/`, `"e"`}, {"\"\x80\"", "\"\x80\""},
	} {
		f.Add(s[0], s[1])
	}
	f.Add(`"0000`, "")   // found by the fuzzer: "" is no entity tag
	f.Add(`, *`, `W/""`) // found by the fuzzer: "*" matches anywhere in a list

	f.Fuzz(func(t *testing.T, list, etag string) {
		strong, weak := etagListMatch(list, etag, true), etagListMatch(list, etag, false)
		if strong && !weak {
			t.Fatalf("%q matches %q strongly but not weakly", list, etag)
		}
		if tag, rest := scanETag(list); tag != "" {
			trimmed := strings.TrimLeft(list, " \t")
			if trimmed != tag+rest {
				t.Fatalf("scanETag(%q) = %q, %q: not a split of the input", list, tag, rest)
			}
			if len(tag) < 2 || tag[len(tag)-1] != '"' || !(tag[0] == '"' || strings.HasPrefix(tag, `W/"`)) {
				t.Fatalf("scanETag(%q) = %q: not an entity tag", list, tag)
			}
			if again, r := scanETag(tag); again != tag || r != "" {
				t.Fatalf("scanETag(%q) = %q, %q", tag, again, r)
			}
		} else if rest != "" {
			t.Fatalf("scanETag(%q) = %q, %q", list, tag, rest)
		}
		if !etagListMatch("*", etag, true) {
			t.Fatal(`"*" does not match`)
		}
		if tag, rest := scanETag(etag); tag != "" && tag == etag && rest == "" {
			if !etagListMatch(etag+", "+list, etag, false) {
				t.Fatalf("%q does not match a list that starts with it", etag)
			}
			// (Not with the list after it: "*" anywhere in a list matches,
			// as in net/http.)
			if got := etagListMatch(etag, etag, true); got != (etag[0] == '"') {
				t.Fatalf("strong match of %q with itself = %v", etag, got)
			}
			if etag[0] == '"' && !etagListMatch(" W/"+etag, etag, false) {
				t.Fatalf("W/%s does not weakly match %s", etag, etag)
			}
		}
	})
}
