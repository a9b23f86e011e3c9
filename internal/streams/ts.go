package streams

import (
	"context"
	"fmt"
	"time"

	"github.com/jitstream/jitstream/internal/build/ts"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/samples"
	"github.com/jitstream/jitstream/internal/vfile"
)

// tsInputs are the first video and first audio track's samples of segment
// n, without their bytes.
func tsInputs(a *asset, n int) []ts.Input {
	ref := a.ix.Reference()
	var in []ts.Input
	for _, t := range []*media.Track{a.ix.Video(), a.ix.Audio()} {
		if t == nil {
			continue
		}
		first, end := t.SampleSpan(a.segs[n].Start, a.segs[n].End, ref.Timescale)
		if n == len(a.segs)-1 {
			end = t.Samples.Len() // the last segment takes every remaining sample
		}
		in = append(in, ts.Input{Track: t, First: first, End: end})
	}
	return in
}

// hlsTS serves the MPEG-TS variant: playlists and segments with audio and
// video muxed, transmuxed from the stored MP4 samples at request time.
func (h *Handler) hlsTS(ctx context.Context, a *asset, path string) (*vfile.File, error) {
	switch path {
	case "master.m3u8":
		return h.hlsTSMaster(a)
	case "index.m3u8":
		return h.hlsTSMedia(a)
	case "iframes.m3u8":
		return h.hlsTSIFrames(a)
	}
	n, err := segmentNumber(a, path, ".ts")
	if err != nil {
		return nil, err
	}
	in := tsInputs(a, n)
	for i := range in {
		if in[i].Data, err = samples.Read(ctx, h.lib.Store(), a.ix, in[i].Track, in[i].First, in[i].End); err != nil {
			return nil, err
		}
	}
	b, err := ts.Mux(a.ix, in, ts.Options{})
	if err != nil {
		return nil, fmt.Errorf("streams: TS segment %d: %w", n, err)
	}
	f := vfile.New(path, typeTS, time.Time{}, "", []vfile.Piece{vfile.Bytes(b)})
	segmentTimeline(a, n, f)
	return f, nil
}

// tsKeyframes lists, for every TS segment, its keyframes' byte ranges,
// planned from the index alone.
func tsKeyframes(a *asset) ([][]ts.Range, error) {
	out := make([][]ts.Range, len(a.segs))
	for n := range a.segs {
		l, err := ts.Plan(a.ix, tsInputs(a, n), ts.Options{})
		if err != nil {
			return nil, fmt.Errorf("streams: plan TS segment %d: %w", n, err)
		}
		out[n] = l.Keyframes
	}
	return out, nil
}
