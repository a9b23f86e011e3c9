package live

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"time"
)

// view is the part of a live stream that a manifest request asks for, from
// its query (see viewOf):
//
//	(none)              a sliding window of Options.DVR (DefaultDVR)
//	dvr=SECONDS         a sliding window of SECONDS (at least three
//	                    fragment durations); dvr=0: from the start
//	type=event          from the start (HLS EVENT)
//	vbegin=T, vend=T    time-shift, as Unified Origin names it: from the
//	                    fragment playing at vbegin (start-over) and/or up
//	                    to the one playing at vend. T is a wall-clock time
//	                    (RFC 3339, "2026-11-21T10:00:00Z") or seconds
//	                    since the Unix epoch. Once the stream has reached
//	                    vend, the view is complete: HLS VOD with ENDLIST, a
//	                    static MPD, an on-demand Smooth manifest.
//
// dvr and type=event cannot be combined with vbegin or vend.
type view struct {
	// dvr is the sliding window in seconds; 0 for none.
	dvr float64
	// begin and end bound the view on the wall clock (zero: unbounded).
	begin, end time.Time
}

// viewParams are the query parameters that select a view, passed on from
// a master playlist to its media playlists.
var viewParams = []string{"dvr", "type", "vbegin", "vend"}

// maxViewParam bounds the length of a view parameter.
const maxViewParam = 40

// viewOf reads the view of a manifest request's query; dvr is the
// window without ?dvr=. Errors wrap errBadQuery.
func viewOf(q url.Values, dvr time.Duration) (view, error) {
	for _, k := range viewParams {
		if len(q[k]) > 1 || len(q.Get(k)) > maxViewParam {
			return view{}, fmt.Errorf("%w: %s given more than once or too long", errBadQuery, k)
		}
	}
	var v view
	var err error
	if v.begin, err = viewTime(q, "vbegin"); err != nil {
		return view{}, err
	}
	if v.end, err = viewTime(q, "vend"); err != nil {
		return view{}, err
	}
	shifted := !v.begin.IsZero() || !v.end.IsZero()
	if !v.begin.IsZero() && !v.end.IsZero() && !v.begin.Before(v.end) {
		return view{}, fmt.Errorf("%w: vbegin %s is not before vend %s", errBadQuery, q.Get("vbegin"), q.Get("vend"))
	}
	typ, dvrq := q.Get("type"), q.Get("dvr")
	if typ != "" && typ != "event" {
		return view{}, fmt.Errorf("%w: type=%q: the only type is event", errBadQuery, typ)
	}
	if shifted && (typ != "" || dvrq != "") {
		return view{}, fmt.Errorf("%w: vbegin and vend cannot be combined with dvr or type", errBadQuery)
	}
	switch {
	case shifted || typ == "event":
	case dvrq == "":
		v.dvr = dvr.Seconds()
	default:
		d, err := strconv.ParseFloat(dvrq, 64)
		if err != nil || d < 0 || math.IsNaN(d) || math.IsInf(d, 0) {
			return view{}, fmt.Errorf("%w: dvr=%q: want a number of seconds, 0 for all", errBadQuery, dvrq)
		}
		v.dvr = d
	}
	return v, nil
}

// viewTime reads the time parameter k: RFC 3339 or seconds since the Unix
// epoch (zero when absent).
func viewTime(q url.Values, k string) (time.Time, error) {
	s := q.Get(k)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 && f < 1e11 {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)), nil
	}
	return time.Time{}, fmt.Errorf("%w: %s=%q: want an RFC 3339 time (2026-11-21T10:00:00Z) or seconds since 1970", errBadQuery, k, s)
}

// shifted reports whether the view is a time-shift one (vbegin or vend).
func (v view) shifted() bool { return !v.begin.IsZero() || !v.end.IsZero() }

// bounds are the view's begin and end on the stream's timeline (seconds
// since st.Start), -Inf and +Inf when unbounded.
func (v view) bounds(st *State) (begin, end float64) {
	begin, end = math.Inf(-1), math.Inf(1)
	if !v.begin.IsZero() {
		begin = v.begin.Sub(st.Start).Seconds()
	}
	if !v.end.IsZero() {
		end = v.end.Sub(st.Start).Seconds()
	}
	return begin, end
}

// span is a stretch of the stream's timeline: a fragment's.
type span struct{ start, end float64 }

// pick returns the range [i, j) of spans (a representation's fragments,
// in timeline order) in the view, and whether the view is complete: the
// stream has ended, or it has reached the view's end. A sliding window
// lasts at least minWindow seconds.
func (v view) pick(st *State, spans []span, minWindow float64) (i, j int, complete bool) {
	i, j = 0, len(spans)
	if v.shifted() {
		begin, end := v.bounds(st)
		for i < j && spans[i].end <= begin {
			i++
		}
		for j > i && spans[j-1].start >= end {
			j--
		}
		complete = st.Ended || len(spans) > 0 && spans[len(spans)-1].end >= end
		return i, j, complete
	}
	if v.dvr > 0 && !st.Ended {
		seconds := max(v.dvr, minWindow)
		total := 0.0
		for i = j; i > 0 && total < seconds; {
			i--
			total += spans[i].end - spans[i].start
		}
	}
	return i, j, st.Ended
}

// pickEntries is pick over playlist entries; it fails (errNoStream) when
// the view holds none of them yet.
func (v view) pickEntries(st *State, es []entry, minWindow float64) ([]entry, bool, error) {
	spans := make([]span, len(es))
	for k, e := range es {
		spans[k] = span{e.start, e.end()}
	}
	i, j, complete := v.pick(st, spans, minWindow)
	if i >= j {
		return nil, false, fmt.Errorf("%w: no fragment of %s/%s in the requested time range (yet)", errNoStream, st.User, st.Name)
	}
	return es[i:j], complete, nil
}
