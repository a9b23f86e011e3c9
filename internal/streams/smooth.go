package streams

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jitstream/jitstream/internal/build/smooth"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/transcode"
	"github.com/jitstream/jitstream/internal/vfile"
)

// smooth serves the Smooth Streaming manifest and fragments; the
// transcoded renditions are QualityLevels of the video StreamIndex (see
// smoothLevels), which an H.265 asset offers alone.
func (h *Handler) smooth(ctx context.Context, a *asset, path string) (*vfile.File, error) {
	if path == "Manifest" {
		levels, err := h.smoothLevels(ctx, a)
		if err != nil {
			return nil, err
		}
		b, err := smooth.Manifest(a.ix, a.segs, smooth.ManifestOptions{Repeat: true, VideoLevels: levels})
		if err != nil {
			return nil, smoothErr(err)
		}
		return textFile("Manifest", smooth.ManifestContentType, b), nil
	}
	bitrate, typ, start, err := smooth.ParseFragmentPath(path)
	if err != nil {
		return nil, smoothErr(err)
	}
	if r, ok := a.smoothRendition(typ, bitrate); ok {
		return h.smoothRenditionFragment(ctx, a, r, path, start)
	}
	t, ok, err := smooth.Lookup(a.ix, typ, bitrate)
	if err != nil {
		return nil, smoothErr(err)
	}
	if !ok {
		return nil, notFound("no %s quality level with bit rate %d", typ, bitrate)
	}
	n, ok := smooth.FragmentIndex(a.ix, t, a.segs, start)
	if !ok {
		return nil, notFound("no %s fragment starts at time %d", typ, start)
	}
	var b vfile.Builder
	if err := smooth.Fragment(&b, a.ix, t, a.segs, n); err != nil {
		return nil, smoothErr(err)
	}
	f := b.File(path, smooth.ContentType(t), time.Time{}, "")
	segmentTimeline(a, n, f)
	return f, nil
}

func smoothErr(err error) error {
	switch {
	case errors.Is(err, smooth.ErrUnsupported):
		return fmt.Errorf("%w: %w", ErrUnsupportedFormat, err)
	case errors.Is(err, smooth.ErrNoFragment):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// smoothBitrate is the Bitrate that names rendition r in Smooth
// Streaming: its Bandwidth, moved off the original video's bit rate.
func (a *asset) smoothBitrate(r transcode.Rendition) int64 {
	b := r.Bandwidth
	if v := a.ix.Video(); v != nil && b == smooth.Bitrate(v) {
		b++
	}
	return b
}

// smoothRendition returns the rendition that the Smooth bit rate of a
// fragment URL names.
func (a *asset) smoothRendition(typ string, bitrate int64) (transcode.Rendition, bool) {
	if typ != smooth.TypeVideo {
		return transcode.Rendition{}, false
	}
	for _, r := range a.rends {
		if a.smoothBitrate(r) == bitrate {
			return r, true
		}
	}
	return transcode.Rendition{}, false
}

// smoothLevels describes the renditions of a as Smooth quality levels,
// from their init segments (the transcoder's, made at once for all).
func (h *Handler) smoothLevels(ctx context.Context, a *asset) ([]smooth.VideoLevel, error) {
	if len(a.rends) == 0 || h.opt.Transcoder == nil {
		return nil, nil
	}
	levels := make([]smooth.VideoLevel, len(a.rends))
	errs := make([]error, len(a.rends))
	var wg sync.WaitGroup
	src := h.source(a)
	for i, r := range a.rends {
		wg.Go(func() {
			init, err := h.opt.Transcoder.Init(ctx, src, r)
			if err == nil {
				levels[i].SampleEntry, err = transcode.InitSampleEntry(init)
			}
			if err != nil {
				errs[i] = fmt.Errorf("streams: init segment of rendition %s of %s: %w", r.Name, a.meta.ID, err)
			}
			levels[i].Bitrate, levels[i].Width, levels[i].Height = a.smoothBitrate(r), uint32(r.Width), uint32(r.Height)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return levels, nil
}

// smoothRenditionFragment is the Smooth fragment of rendition r that
// starts at start: the transcoded segment, its moof rewritten for Smooth
// Streaming (smooth.RewriteCMAF).
func (h *Handler) smoothRenditionFragment(ctx context.Context, a *asset, r transcode.Rendition, path string, start uint64) (*vfile.File, error) {
	v := a.ix.Video()
	n, ok := smooth.FragmentIndex(a.ix, v, a.segs, start)
	if !ok {
		return nil, notFound("no video fragment starts at time %d", start)
	}
	src := h.source(a)
	seg, err := h.opt.Transcoder.Segment(ctx, src, r, n)
	if err != nil {
		return nil, fmt.Errorf("streams: segment %d of rendition %s of %s: %w", n, r.Name, a.meta.ID, err)
	}
	h.opt.Transcoder.Prefetch(src, r, n)
	l, err := smooth.ScanCMAF(seg)
	if err != nil {
		return nil, err
	}
	ref := a.ix.Reference()
	d := media.Rescale(a.segs[n].End, ref.Timescale, v.Timescale) - media.Rescale(a.segs[n].Start, ref.Timescale, v.Timescale)
	moof, err := smooth.RewriteCMAF(seg[l.MoofOff:l.MoofOff+l.MoofSize], l, start, uint64(d), smooth.PresentationOffset(v), nil)
	if err != nil {
		return nil, fmt.Errorf("streams: Smooth fragment %d of rendition %s of %s: %w", n, r.Name, a.meta.ID, err)
	}
	f := vfile.New(path, smooth.ContentType(v), time.Time{}, vfile.ETag(buildVersion, a.key, r.ID(), path),
		[]vfile.Piece{vfile.Bytes(moof), vfile.Bytes(seg[l.MdatOff:])})
	segmentTimeline(a, n, f)
	return f, nil
}
