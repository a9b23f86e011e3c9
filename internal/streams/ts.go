package streams

import (
	"context"
	"fmt"
	"strings"
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
	if name, file, ok := strings.Cut(path, "/"); ok {
		return h.renditionTS(ctx, a, path, name, file)
	}
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

// renditionTS serves the MPEG-TS variant of the rendition named name:
// its media playlist (the original's segments) and its segments, the
// transcoded video (the rendition's CMAF segment n) muxed with the
// original's first audio track.
func (h *Handler) renditionTS(ctx context.Context, a *asset, path, name, file string) (*vfile.File, error) {
	t, err := trackByName(a.mix, name)
	if err != nil || t.Rendition == "" {
		return nil, noResource("hls/ts/" + path)
	}
	if file == "index.m3u8" {
		return h.hlsTSMedia(a)
	}
	n, err := segmentNumber(a, file, ".ts")
	if err != nil {
		return nil, err
	}
	r, ok := a.rendition(t)
	if !ok || h.opt.Transcoder == nil {
		return nil, noResource("hls/ts/" + path)
	}
	src := h.source(a)
	init, err := h.opt.Transcoder.Init(ctx, src, r)
	if err != nil {
		return nil, fmt.Errorf("streams: init segment of rendition %s of %s: %w", r.Name, a.meta.ID, err)
	}
	seg, err := h.opt.Transcoder.Segment(ctx, src, r, n)
	if err != nil {
		return nil, fmt.Errorf("streams: segment %d of rendition %s of %s: %w", n, r.Name, a.meta.ID, err)
	}
	h.opt.Transcoder.Prefetch(src, r, n)
	fr, err := media.FragmentSamples(ctx, init, seg)
	if err != nil || len(fr.Tracks) != 1 || fr.BaseTime[0] < 0 {
		return nil, fmt.Errorf("streams: reading segment %d of rendition %s of %s: %v", n, r.Name, a.meta.ID, err)
	}
	// The rendition's samples of segment n, at their decode times, with
	// the source's edit (the init segment's).
	rv := fr.Tracks[0]
	rv.ID, rv.MediaTime = a.ix.Video().ID, a.ix.Video().MediaTime
	for i := range rv.Samples.DTS {
		rv.Samples.DTS[i] += fr.BaseTime[0]
	}
	in := []ts.Input{{Track: rv, First: 0, End: rv.Samples.Len()}}
	tix := &media.Index{Tracks: []*media.Track{rv}}
	for _, x := range tsInputs(a, n) {
		if x.Track.Kind == media.KindAudio {
			if x.Data, err = samples.Read(ctx, h.lib.Store(), a.ix, x.Track, x.First, x.End); err != nil {
				return nil, err
			}
			in, tix.Tracks = append(in, x), append(tix.Tracks, x.Track)
		}
	}
	in[0].Data = make([][]byte, rv.Samples.Len())
	for i := range in[0].Data {
		off, size := rv.Samples.Offset[i], int64(rv.Samples.Size[i])
		if off < 0 || off+size > int64(len(seg)) {
			return nil, fmt.Errorf("streams: segment %d of rendition %s: sample %d outside the segment", n, r.Name, i)
		}
		in[0].Data[i] = seg[off : off+size]
	}
	b, err := ts.Mux(tix, in, ts.Options{})
	if err != nil {
		return nil, fmt.Errorf("streams: TS segment %d of rendition %s: %w", n, r.Name, err)
	}
	f := vfile.New(file, typeTS, time.Time{}, vfile.ETag(buildVersion, a.key, r.ID(), "ts", file), []vfile.Piece{vfile.Bytes(b)})
	segmentTimeline(a, n, f)
	return f, nil
}
