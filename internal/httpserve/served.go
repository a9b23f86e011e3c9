package httpserve

import (
	"net/http"

	"github.com/jitstream/jitstream/internal/vfile"
)

// BodyRanges returns the byte ranges [start, end) of f that
// ServeFileWith(w, r, st, f, o) sends in its body, in the order it sends
// them: the whole file when it answers 200, the ranges of a 206 (after
// coalescing). It returns nil when the answer has no body: HEAD, another
// method, 304, 412, 416, an empty file. It lets a caller look at what a
// response will hold (and refuse it) before serving it; a store failure
// found while serving (500, 503) is not foreseen.
func BodyRanges(r *http.Request, f *vfile.File, o Options) [][2]int64 {
	if r.Method != http.MethodGet || f == nil || f.Size == 0 || checkPreconditions(r, f) != precondPass {
		return nil
	}
	full := [][2]int64{{0, f.Size}}
	rh := r.Header.Get("Range")
	if rh == "" || !ifRange(r, f) {
		return full
	}
	rs, res := parseRange(rh, f.Size)
	switch res {
	case rangeUnsatisfiable, rangeMalformed:
		return nil
	case rangeOK:
		maxRanges := o.MaxRanges
		if maxRanges <= 0 {
			maxRanges = DefaultMaxRanges
		}
		if rs = coalesce(rs); len(rs) > maxRanges {
			return full
		}
		out := make([][2]int64, len(rs))
		for i, rg := range rs {
			out[i] = [2]int64{rg.start, rg.end()}
		}
		return out
	}
	return full
}
