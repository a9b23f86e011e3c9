package streams

import (
	"context"
	"fmt"
	"time"

	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/transcode"
	"github.com/jitstream/jitstream/internal/vfile"
)

// Transcoded renditions (internal/transcode). With Options.Transcoder, an
// asset's manifests offer, beside its own tracks, the renditions of the
// ladder (Options.Ladder) for its first video track: each stands for a
// video track of its own in the manifest index (asset.mix, see
// renditionTrack) named after it, so that every builder lists it as it
// lists a stored track:
//
//	hls/{rendition}/index.m3u8                 its media playlist (the source's segments)
//	hls/{rendition}/init.mp4, {n}.m4s          its CMAF init and media segments, from the transcoder
//	dash/{rendition}/init.mp4, {n}.m4s         the same, a Representation of the video AdaptationSet
//
// where {rendition} is the rendition's name ("720p"). A rendition's
// segment n has the presentation times of the source's segment n, so
// players switch between it, the original and the other renditions at
// any segment.

// renditionTrack returns the track that stands for rendition r of the
// video track v in manifests: track id, the rendition's codec and size, the
// timing of v (each transcoded segment has the source segment's), and
// nominal sample sizes that make its bit rate r.Bandwidth. It has no
// stored bytes: offsets, all zero, one per sample of v, shared by the
// renditions.
func renditionTrack(v *media.Track, r transcode.Rendition, id uint32, offsets []int64) *media.Track {
	t := &media.Track{
		ID: id, Kind: media.KindVideo, Handler: "vide", Name: "jitstream " + r.Name,
		Format: "avc1", Codec: r.Codec, Timescale: v.Timescale, Language: v.Language,
		Width: uint32(r.Width), Height: uint32(r.Height), Matrix: v.Matrix,
		TkhdWidth: uint32(r.Width) << 16, TkhdHeight: uint32(r.Height) << 16,
		MediaTime: v.MediaTime, Rendition: r.Name,
	}
	s := v.Samples
	n := s.Len()
	t.Samples = media.Samples{Dur: s.Dur, CTO: s.CTO, Sync: s.Sync, ChapterStart: s.ChapterStart,
		ChapterDesc: s.ChapterDesc, DTS: s.DTS, Offset: offsets, Size: make([]uint32, n)}
	for i := range n {
		t.Samples.Size[i] = uint32(max(r.Bandwidth*int64(s.Dur[i])/int64(max(v.Timescale, 1))/8, 1))
	}
	return t
}

// withRenditions returns the manifest index of ix: ix itself without
// renditions, else a copy whose tracks are ix's followed by one track per
// rendition of video (renditionTrack), with the next IDs.
func withRenditions(ix *media.Index, video *media.Track, rs []transcode.Rendition) *media.Index {
	if len(rs) == 0 || video == nil {
		return ix
	}
	mix := *ix
	mix.Tracks = append(make([]*media.Track, 0, len(ix.Tracks)+len(rs)), ix.Tracks...)
	offsets := make([]int64, video.Samples.Len())
	for _, r := range rs {
		mix.Tracks = append(mix.Tracks, renditionTrack(video, r, uint32(len(mix.Tracks)+1), offsets))
	}
	return &mix
}

// rendition returns the rendition that track t of a.mix stands for.
func (a *asset) rendition(t *media.Track) (transcode.Rendition, bool) {
	for _, r := range a.rends {
		if r.Name == t.Rendition {
			return r, true
		}
	}
	return transcode.Rendition{}, false
}

// source is the transcoder's view of a's first video track.
func (h *Handler) source(a *asset) transcode.Source {
	return transcode.Source{Key: a.key, Index: a.ix, Track: a.ix.Video(), Segments: a.segs, Store: h.lib.Store()}
}

// renditionFile builds init.mp4 or {n}.m4s of the rendition that track t
// stands for, with the transcoder; a media segment starts the prefetch of
// the next ones.
func (h *Handler) renditionFile(ctx context.Context, a *asset, t *media.Track, file string) (*vfile.File, error) {
	r, ok := a.rendition(t)
	if !ok || h.opt.Transcoder == nil {
		return nil, notFound("no rendition %q", t.Rendition)
	}
	src := h.source(a)
	if file == "init.mp4" {
		b, err := h.opt.Transcoder.Init(ctx, src, r)
		if err != nil {
			return nil, fmt.Errorf("streams: init segment of rendition %s of %s: %w", r.Name, a.meta.ID, err)
		}
		return vfile.New(file, typeMP4, time.Time{}, vfile.ETag(buildVersion, a.key, r.ID(), file), []vfile.Piece{vfile.Bytes(b)}), nil
	}
	n, err := segmentNumber(a, file, ".m4s")
	if err != nil {
		return nil, err
	}
	b, err := h.opt.Transcoder.Segment(ctx, src, r, n)
	if err != nil {
		return nil, fmt.Errorf("streams: segment %d of rendition %s of %s: %w", n, r.Name, a.meta.ID, err)
	}
	h.opt.Transcoder.Prefetch(src, r, n)
	// The ETag names the rendition's encoding (size and bit rate), which
	// a new ladder may change under the same name.
	f := vfile.New(file, typeMP4, time.Time{}, vfile.ETag(buildVersion, a.key, r.ID(), file), []vfile.Piece{vfile.Bytes(b)})
	segmentTimeline(a, n, f)
	return f, nil
}
