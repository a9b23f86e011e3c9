package streams

import (
	"context"
	"net/http"

	"github.com/jitstream/jitstream/internal/build/hls"
	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/internal/media"
)

// Info describes an asset, or a clip of one, for those that stitch streams
// together (server-side playlists): its timeline and segments, and the
// tracks an HLS rendition of it has.
type Info struct {
	// Duration is the reference track's duration, in seconds.
	Duration float64
	// Segments are the media segments' spans on the reference track, in
	// seconds from the start: segment n is [Segments[n][0], Segments[n][1]).
	Segments [][2]float64
	// Video and Audio describe the first video and audio track; nil
	// when there is none.
	Video, Audio *TrackInfo
	// Bandwidth is the peak bit rate of the fMP4 segments of the first
	// video and audio track together, in bits per second (HLS BANDWIDTH).
	Bandwidth int64
}

// TrackInfo describes one track of an Info.
type TrackInfo struct {
	// Name is the track's name in stream URLs ("v1", "a2").
	Name string
	// Codec is its RFC 6381 codecs parameter.
	Codec string
	// Width and Height are a video track's picture size.
	Width, Height uint32
	// Segments are the decode time spans of the track's samples in each
	// media segment, in seconds (see hls.TrackSegments): what a media
	// playlist of the track lists.
	Segments [][2]float64
	// Spans are the same spans in the track's Timescale: the tfdt of each
	// media segment and the next one's (what a DASH SegmentTimeline
	// lists).
	Spans     []media.Segment
	Timescale uint32
	// MediaTime is the track's edit (see media.Track.MediaTime): DASH's
	// presentationTimeOffset.
	MediaTime int64
}

// Info describes the asset or clip name ("ID" or "ID,START-END") of user.
// The Info is shared by every caller: do not modify it.
func (h *Handler) Info(ctx context.Context, user, name string) (*Info, error) {
	a, err := h.load(ctx, user, name)
	if err != nil {
		return nil, err
	}
	a.infoOnce.Do(func() { a.info, a.infoErr = describe(a, name) })
	return a.info, a.infoErr
}

// describe makes the Info of a.
func describe(a *asset, name string) (*Info, error) {
	ix, ref := a.ix, a.ix.Reference()
	if ref == nil || len(a.segs) == 0 {
		return nil, notFound("asset %s has no media segments", name)
	}
	spans := func(segs []media.Segment, ts uint32) [][2]float64 {
		out := make([][2]float64, len(segs))
		for i, s := range segs {
			out[i] = [2]float64{float64(s.Start) / float64(ts), float64(s.End) / float64(ts)}
		}
		return out
	}
	in := &Info{Duration: ref.Seconds(ref.Duration()), Segments: spans(a.segs, ref.Timescale)}
	var tracks []*media.Track
	for _, t := range []*media.Track{ix.Video(), ix.Audio()} {
		if t == nil || t.Samples.Len() == 0 {
			continue
		}
		tracks = append(tracks, t)
		ti := &TrackInfo{Name: trackName(t), Codec: t.Codec, Width: t.Width, Height: t.Height,
			Spans: hls.TrackSegments(ix, t, a.segs), Timescale: t.Timescale, MediaTime: t.MediaTime}
		ti.Segments = spans(ti.Spans, t.Timescale)
		if t.Kind == media.KindVideo {
			in.Video = ti
		} else {
			in.Audio = ti
		}
	}
	in.Bandwidth = hls.PeakBitrate(ix, tracks, a.segs, hls.FMP4SampleOverhead, hls.FMP4SegmentOverhead)
	return in, nil
}

// ResourceOptions configure ServeResource.
type ResourceOptions struct {
	// CacheControl, if not empty, replaces the Cache-Control of the
	// resource (immutable for segments, short-lived for manifests).
	CacheControl string
	// Delivered, if not nil, is called after a response whose body was
	// written whole (a GET answered 200 or 206 with all of its
	// Content-Length sent): what a viewer was actually given.
	Delivered func()
}

// ServeResource serves path (as below /streams/{user}/{name}/: "hls/v1/3.m4s")
// of the asset or clip name of user, as the stream URL would, with o.
func (h *Handler) ServeResource(w http.ResponseWriter, r *http.Request, user, name, path string, o ResourceOptions) {
	// The delivery log names the user of the path; this request's path
	// (a session's, an opaque one) does not.
	r.SetPathValue("user", user)
	if o.Delivered == nil {
		h.serve(w, r, user, name, path, o.CacheControl)
		return
	}
	cw := httpserve.NewBodyCounter(w)
	h.serve(cw, r, user, name, path, o.CacheControl)
	if cw.Delivered(r) {
		o.Delivered()
	}
}
