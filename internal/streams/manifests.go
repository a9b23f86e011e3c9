package streams

import (
	"fmt"
	"math"
	"strconv"
	"sync"

	"github.com/jitstream/jitstream/internal/build/dash"
	"github.com/jitstream/jitstream/internal/build/hls"
	"github.com/jitstream/jitstream/internal/build/trick"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/vfile"
)

// hlsMaster is the fMP4 master playlist, without the tracks of exclude.
func (h *Handler) hlsMaster(a *asset, exclude []uint32) (*vfile.File, error) {
	return textFile("master.m3u8", typeM3U8, hls.Master(a.mix, a.segs, hls.MasterOptions{Exclude: exclude, Images: h.hlsImages(a)})), nil
}

// mediaOptions are the options shared by an asset's media playlists.
func mediaOptions(a *asset, f hls.Format) hls.MediaOptions {
	return hls.MediaOptions{Format: f, Start: a.ix.Created, DateTimeEvery: 15}
}

// hlsMedia is one track's fMP4 media playlist.
func (h *Handler) hlsMedia(a *asset, t *media.Track) (*vfile.File, error) {
	segs, ts := a.segs, a.ix.Reference().Timescale
	if t != a.ix.Reference() {
		segs, ts = hls.TrackSegments(a.mix, t, a.segs), t.Timescale
	}
	return textFile("index.m3u8", typeM3U8, hls.Media(segs, ts, mediaOptions(a, hls.FMP4))), nil
}

// hlsIFrames is a video track's I-frame playlist: each segment's first
// keyframe, as a byte range of its fMP4 segment.
func (h *Handler) hlsIFrames(a *asset, t *media.Track) (*vfile.File, error) {
	if t.Kind != media.KindVideo || t.Rendition != "" {
		return nil, notFound("no I-frame playlist for %s track %s", t.Kind, hls.TrackName(t))
	}
	frames, err := hls.FMP4IFrames(a.ix, t, a.segs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupportedFormat, err)
	}
	return textFile("iframes.m3u8", typeM3U8, hls.IFrames(frames, t.Timescale, mediaOptions(a, hls.FMP4))), nil
}

// hlsTSMaster is the master playlist of the MPEG-TS variant.
func (h *Handler) hlsTSMaster(a *asset) (*vfile.File, error) {
	frames, err := tsIFrames(a)
	if err != nil {
		return nil, err
	}
	opt := hls.TSMasterOptions{MediaURI: "index.m3u8", IFrameURI: "iframes.m3u8", NoIFrames: len(frames) == 0}
	for _, t := range a.mix.Tracks {
		if t.Rendition != "" {
			opt.Renditions = append(opt.Renditions, t)
		}
	}
	if len(frames) > 0 {
		opt.IFrameBandwidth = hls.IFramesPeakBitrate(frames, 1000)
	}
	return textFile("master.m3u8", typeM3U8, hls.TSMaster(a.origIndex(), a.segs, opt)), nil
}

// hlsTSMedia is the media playlist of the MPEG-TS variant.
func (h *Handler) hlsTSMedia(a *asset) (*vfile.File, error) {
	b := hls.Media(a.segs, a.ix.Reference().Timescale, mediaOptions(a, hls.TS))
	return textFile("index.m3u8", typeM3U8, b), nil
}

// hlsTSIFrames is the I-frame playlist of the MPEG-TS variant: every
// keyframe, as the byte range of its PAT, PMT and PES in its segment.
func (h *Handler) hlsTSIFrames(a *asset) (*vfile.File, error) {
	frames, err := tsIFrames(a)
	if err != nil {
		return nil, err
	}
	if len(frames) == 0 {
		return nil, notFound("the asset has no video keyframes")
	}
	return textFile("iframes.m3u8", typeM3U8, hls.IFrames(frames, 1000, mediaOptions(a, hls.TS))), nil
}

// tsIFrames lists the TS keyframes as I-frame entries, times in ms.
func tsIFrames(a *asset) ([]hls.IFrame, error) {
	if a.ix.Video() == nil {
		return nil, nil
	}
	kfs, err := tsKeyframes(a)
	if err != nil {
		return nil, err
	}
	var frames []hls.IFrame
	for n, ks := range kfs {
		for _, k := range ks {
			frames = append(frames, hls.IFrame{URI: strconv.Itoa(n) + ".ts", Segment: n, Offset: k.Offset, Length: k.Length,
				Start: int64(math.Round(k.Time * 1000))})
		}
	}
	end := int64(math.Round(a.ix.Duration().Seconds() * 1000))
	for i := range frames {
		next := end
		if i+1 < len(frames) {
			next = frames[i+1].Start
		}
		frames[i].Duration = max(next-frames[i].Start, 1)
	}
	return frames, nil
}

// dashMPD is the static MPD, without the tracks of exclude, with the
// image AdaptationSet of the thumbnail sheets when there are thumbnails.
func (h *Handler) dashMPD(a *asset, exclude []uint32) (*vfile.File, error) {
	b, err := dash.MPD(a.mix, a.segs, dash.Options{Exclude: exclude, Thumbnails: h.dashThumbnails(a)})
	if err != nil {
		return nil, err
	}
	return textFile("manifest.mpd", typeMPD, b), nil
}

// keyframes returns the keyframe-only trick track of t, derived once per
// asset.
func (a *asset) keyframes(t *media.Track) *media.Track {
	a.trickOnce.Do(func() { a.trick = map[uint32]*media.Track{} })
	a.trickMu.Lock()
	defer a.trickMu.Unlock()
	k, ok := a.trick[t.ID]
	if !ok {
		k = trick.Keyframes(t)
		a.trick[t.ID] = k
	}
	return k
}

// trickState is embedded in asset.
type trickState struct {
	trickOnce sync.Once
	trickMu   sync.Mutex
	trick     map[uint32]*media.Track
}
