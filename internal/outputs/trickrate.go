package outputs

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	mp4build "github.com/jitstream/jitstream/internal/build/mp4"
	"github.com/jitstream/jitstream/internal/vfile"
)

// Trick play by rate: ID.mp4?rate=N&pos=SECONDS and ID.frag.mp4?rate=...
// serve mp4build.TrickRate's keyframe-only stream, or, when the recording's
// key frames are too sparse for the rate, the ordinary stream as a clip
// (see Delivery and mp4build.ErrSparseKeyframes).

// Delivery tells the serving layer how to pace a file that Open returned.
type Delivery struct {
	// Speed multiplies the pace at which the file is delivered: 1 for
	// every ordinary file and for trick streams (whose timestamps already
	// run at the trick rate: pace them by their own timeline), |rate| for
	// the ordinary clip sent instead of a fast forward whose recording has
	// too sparse key frames.
	Speed int
	// Trick is set for a keyframe-only trick stream (mp4build.TrickRate).
	// It plays |Rate| times faster than the content, so its bit rate per
	// second of playback can exceed the asset's (see
	// mp4build.TrickRateBitrate); a pacer that keeps it within the
	// ordinary stream's budget paces it at the asset's bit rate.
	Trick bool
	// Rate is the requested trick rate (0 without rate).
	Rate int
	// Stream, when not nil, is a rendition file not transcoded whole yet
	// (the file is then nil): serve it with Stream.Serve, not as a
	// virtual file.
	Stream *Stream
}

// OpenDelivery is Open, and says how to pace the file. Open resolves the
// same names to the same files; the serving layer calls OpenDelivery when
// it paces.
func (o *Outputs) OpenDelivery(ctx context.Context, user, name string, q url.Values) (*vfile.File, Delivery, error) {
	if id, frag, ok := trickTarget(name, q); ok {
		return o.openTrick(ctx, user, name, id, frag, q)
	}
	f, st, err := o.open(ctx, user, name, q)
	return f, Delivery{Speed: 1, Stream: st}, err
}

// trickTarget reports whether name and q ask for a trick stream: the
// query has rate and name is an asset's consolidated or fragmented MP4. It
// returns the asset id and whether the name is the fragmented one.
func trickTarget(name string, q url.Values) (id string, frag, ok bool) {
	if !q.Has("rate") || strings.Contains(name, "/") {
		return "", false, false
	}
	if id, ok := strings.CutSuffix(name, SuffixFMP4); ok {
		return id, true, true
	}
	if id, ok := strings.CutSuffix(name, SuffixConsolidated); ok {
		return id, false, true
	}
	return "", false, false
}

// ParseTrick reads the trick-play parameters from q: rate (an integer;
// whether it is a valid trick rate is for mp4build.TrickRate to say) and
// pos (seconds, default 0), rounded to the millisecond. Clip parameters
// (start, end) cannot be combined with rate.
func ParseTrick(q url.Values) (rate int, pos time.Duration, err error) {
	v := q.Get("rate")
	if len(v) > MaxParamLen {
		return 0, 0, fmt.Errorf("%w: rate has %d characters, more than %d", ErrBadQuery, len(v), MaxParamLen)
	}
	rate, err = strconv.Atoi(v)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: rate=%q is not an integer", ErrBadQuery, v)
	}
	if q.Has("start") || q.Has("end") {
		return 0, 0, fmt.Errorf("%w: rate cannot be combined with start or end (use pos)", ErrBadQuery)
	}
	if v := q.Get("pos"); v != "" {
		f, err := parseSeconds("pos", v)
		if err != nil {
			return 0, 0, err
		}
		pos = time.Duration(math.Round(f*1000)) * time.Millisecond
	}
	return rate, pos, nil
}

// openTrick serves a trick request for asset id (name is the requested
// file name, frag whether it is the fragmented one): the trick stream,
// cached by rate and position (ms), or its fallback.
func (o *Outputs) openTrick(ctx context.Context, user, name, id string, frag bool, q url.Values) (*vfile.File, Delivery, error) {
	rate, pos, err := ParseTrick(q)
	if err != nil {
		return nil, Delivery{}, err
	}
	a, err := o.lib.Asset(ctx, user, id)
	if err != nil {
		return nil, Delivery{}, err
	}
	trick := Delivery{Speed: 1, Trick: true, Rate: rate}
	key := fmt.Sprintf("%s/%s/%s/%t/rate=%d/pos=%d", a.User, a.ID, a.Rev, frag, rate, pos.Milliseconds())
	if f, ok := o.files.Get(key); ok {
		return f, trick, nil
	}
	ix, err := o.lib.Index(ctx, a)
	if err != nil {
		return nil, Delivery{}, err
	}
	f, err := mp4build.TrickRate(ix, rate, pos)
	if errors.Is(err, mp4build.ErrSparseKeyframes) {
		return o.openTrickFallback(ctx, user, name, rate, pos)
	}
	if err != nil {
		return nil, Delivery{}, err
	}
	f.Name = path.Base(name)
	f.ModTime = a.Ingested
	o.files.Add(key, f, generatedBytes(f))
	return f, trick, nil
}

// openTrickFallback opens the ordinary stream sent instead of a trick
// stream when the key frames are too sparse (mp4build.ErrSparseKeyframes):
// fast forward gets the clip of name from pos, to deliver |rate| times
// faster; rewind gets the clip from max(0, pos - |rate| ×
// mp4build.TrickRewindFallback), at the normal pace. The clip is the
// ordinary output of the name (progressive for .mp4, fragmented for
// .frag.mp4), cached as such.
func (o *Outputs) openTrickFallback(ctx context.Context, user, name string, rate int, pos time.Duration) (*vfile.File, Delivery, error) {
	start, d := pos, Delivery{Speed: rate, Rate: rate}
	if rate < 0 {
		start = max(0, pos+time.Duration(rate)*mp4build.TrickRewindFallback)
		d.Speed = 1
	}
	q := url.Values{}
	if start > 0 {
		q.Set("start", strconv.FormatFloat(start.Seconds(), 'f', -1, 64))
	}
	f, err := o.Open(ctx, user, name, q)
	if err != nil {
		return nil, Delivery{}, fmt.Errorf("outputs: fallback for trick rate %d at %v: %w", rate, pos, err)
	}
	return f, d, nil
}
