package streams

import (
	"fmt"

	"github.com/jitstream/jitstream/internal/delivery"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/vfile"
)

// Master manifests: the ones whose variants the budget can thin out.
const (
	pathHLSMaster   = "hls/master.m3u8"
	pathHLSTSMaster = "hls/ts/master.m3u8"
	pathDASH        = "dash/manifest.mpd"
	pathSmooth      = "smooth/Manifest"
)

// isMaster reports whether path names a master manifest.
func isMaster(path string) bool {
	switch path {
	case pathHLSMaster, pathHLSTSMaster, pathDASH, pathSmooth:
		return true
	}
	return false
}

// budgetShort checks the variants of the master manifest at path against
// the bandwidth budget (delivery.Budget.Fits). A variant is a video track
// with the lightest audio track (their segments are fetched side by side),
// an audio rendition is an audio track with the lightest video track. It
// returns nil when every variant fits (or there is no budget); the IDs of
// the tracks that do not fit when some do (the HLS fMP4 master and the DASH
// MPD leave them out); and an error wrapping delivery.ErrBusy when none
// fits, or when the manifest has a single variant that does not (HLS
// MPEG-TS and Smooth Streaming, which offer the first video and audio
// tracks only).
func (h *Handler) budgetShort(a *asset, path string) ([]uint32, error) {
	b := h.opt.Delivery.Budget()
	if !b.Limited() {
		return nil, nil
	}
	rate := a.bitrates()
	var videos, audios []*media.Track
	for _, t := range a.mix.Tracks {
		if t.Samples.Len() == 0 {
			continue
		}
		switch t.Kind {
		case media.KindVideo:
			videos = append(videos, t)
		case media.KindAudio:
			audios = append(audios, t)
		}
	}
	busy := func(need int64) error {
		return fmt.Errorf("streams: %w: the server's budget of %s has %s left, the lightest variant of %s needs %s",
			delivery.ErrBusy, delivery.FormatRate(b.Limit()), delivery.FormatRate(b.Free()), a.meta.ID, delivery.FormatRate(need))
	}
	if path == pathHLSTSMaster || path == pathSmooth {
		var need int64
		for _, t := range []*media.Track{a.ix.Video(), a.ix.Audio()} {
			if t != nil {
				need += rate[t.ID]
			}
		}
		if !b.Fits(need) {
			return nil, busy(need)
		}
		return nil, nil
	}
	lightest := func(ts []*media.Track) int64 {
		var r int64
		for i, t := range ts {
			if i == 0 || rate[t.ID] < r {
				r = rate[t.ID]
			}
		}
		return r
	}
	minVideo, minAudio := lightest(videos), lightest(audios)
	var exclude []uint32
	keptVideo, keptAudio := 0, 0
	for _, v := range videos {
		if b.Fits(rate[v.ID] + minAudio) {
			keptVideo++
		} else {
			exclude = append(exclude, v.ID)
		}
	}
	for _, t := range audios {
		if b.Fits(rate[t.ID] + minVideo) {
			keptAudio++
		} else {
			exclude = append(exclude, t.ID)
		}
	}
	if (len(videos) > 0 && keptVideo == 0) || (len(audios) > 0 && keptAudio == 0) {
		return nil, busy(minVideo + minAudio)
	}
	return exclude, nil
}

// buildMaster builds the master manifest at path (HLS fMP4 or DASH)
// without the tracks exclude lists.
func (h *Handler) buildMaster(a *asset, path string, exclude []uint32) (*vfile.File, error) {
	switch path {
	case pathHLSMaster:
		return h.hlsMaster(a, exclude)
	case pathDASH:
		return h.dashMPD(a, exclude)
	}
	return nil, noResource(path)
}

// segmentTimeline gives segment file f of segment n a timeline: its bytes
// spread evenly over the segment's duration, so that its delivery can be
// paced and its bit rate counted against the budget.
func segmentTimeline(a *asset, n int, f *vfile.File) {
	ref := a.ix.Reference()
	if ref == nil || n < 0 || n >= len(a.segs) || f.Size == 0 {
		return
	}
	d := ref.Seconds(a.segs[n].End - a.segs[n].Start)
	if d > 0 {
		f.Timeline = vfile.Timeline{{Off: 0, Time: 0}, {Off: f.Size, Time: d}}
	}
}

// bitrates returns the average bit rate of each track of the manifest
// index (renditions included) by ID, computed once per asset (it sums
// every sample's size).
func (a *asset) bitrates() map[uint32]int64 {
	a.ratesOnce.Do(func() {
		a.rates = make(map[uint32]int64, len(a.mix.Tracks))
		for _, t := range a.mix.Tracks {
			a.rates[t.ID] = t.Bitrate()
		}
	})
	return a.rates
}
