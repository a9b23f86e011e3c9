package streams

import (
	"context"
	"fmt"
	"time"

	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/transcode"
	"github.com/jitstream/jitstream/internal/vfile"
)

// The AAC audio rendition (issue 9). With Options.Transcoder, an asset
// whose first audio track browsers cannot play (transcode.BrowserAudio:
// LPCM, AC-3, ...) has, in its manifest index (asset.mix), that track
// replaced by the track of its AAC-LC rendition (transcode.AudioTrack:
// same ID, Rendition "aac"), so that the HLS fMP4 master and media
// playlists and the DASH MPD offer AAC:
//
//	hls/aac/index.m3u8                its media playlist
//	hls/aac/init.mp4, {n}.m4s         its CMAF segments, from the transcoder
//	dash/aac/init.mp4, {n}.m4s        the same, the audio Representation
//
// The original audio stays in asset.ix: MPEG-TS, Smooth Streaming and
// downloads keep using it as they are.

// withAudio returns mix with the asset's first audio track replaced by its
// AAC rendition's track when browsers cannot play it, else mix itself.
func withAudio(ix, mix *media.Index, segs []media.Segment) *media.Index {
	src, ok := audioSource(ix, segs)
	if !ok {
		return mix
	}
	out := *mix
	out.Tracks = append([]*media.Track(nil), mix.Tracks...)
	for i, t := range out.Tracks {
		if t == src.Track {
			out.Tracks[i] = transcode.AudioTrack(src)
		}
	}
	return &out
}

// audioSource is the transcoder's view of ix's first audio track when it
// needs the AAC rendition (the store is set by the caller). Only assets
// with video have one: their segments follow the video track.
func audioSource(ix *media.Index, segs []media.Segment) (transcode.AudioSource, bool) {
	t := ix.Audio()
	if t == nil || ix.Video() == nil || t.Samples.Len() == 0 || transcode.BrowserAudio(t) || len(segs) == 0 {
		return transcode.AudioSource{}, false
	}
	return transcode.AudioSource{Source: transcode.Source{Index: ix, Track: t, Segments: segs}, TrackID: t.ID}, true
}

// origIndex returns a.mix with the original audio track in place of the
// AAC rendition's: the manifest index of the outputs (MPEG-TS) that keep
// the original audio.
func (a *asset) origIndex() *media.Index {
	if a.mix == a.ix {
		return a.mix
	}
	out := *a.mix
	out.Tracks = append([]*media.Track(nil), a.mix.Tracks...)
	for i, t := range out.Tracks {
		if t.Rendition == transcode.AudioRendition && i < len(a.ix.Tracks) {
			out.Tracks[i] = a.ix.Tracks[i]
		}
	}
	return &out
}

// transcodedFile builds init.mp4 or {n}.m4s of the transcoded track t: the
// AAC audio rendition or a video rendition.
func (h *Handler) transcodedFile(ctx context.Context, a *asset, t *media.Track, file string) (*vfile.File, error) {
	if t.Rendition != transcode.AudioRendition || t.Kind != media.KindAudio {
		return h.renditionFile(ctx, a, t, file)
	}
	src, ok := audioSource(a.ix, a.segs)
	if !ok || h.opt.Transcoder == nil {
		return nil, notFound("no audio rendition %q", t.Rendition)
	}
	src.Key, src.Store = a.key, h.lib.Store()
	etag := vfile.ETag(buildVersion, a.key, "aac-lc-48k-2ch-128k", file)
	if file == "init.mp4" {
		b, err := h.opt.Transcoder.AudioInit(ctx, src)
		if err != nil {
			return nil, fmt.Errorf("streams: init segment of the AAC rendition of %s: %w", a.meta.ID, err)
		}
		return vfile.New(file, typeAudio, time.Time{}, etag, []vfile.Piece{vfile.Bytes(b)}), nil
	}
	n, err := segmentNumber(a, file, ".m4s")
	if err != nil {
		return nil, err
	}
	b, err := h.opt.Transcoder.AudioSegment(ctx, src, n)
	if err != nil {
		return nil, fmt.Errorf("streams: segment %d of the AAC rendition of %s: %w", n, a.meta.ID, err)
	}
	f := vfile.New(file, typeAudio, time.Time{}, etag, []vfile.Piece{vfile.Bytes(b)})
	segmentTimeline(a, n, f)
	return f, nil
}
