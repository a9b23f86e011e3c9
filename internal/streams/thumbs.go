package streams

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jitstream/jitstream/internal/build/dash"
	"github.com/jitstream/jitstream/internal/build/hls"
	"github.com/jitstream/jitstream/internal/transcode"
	"github.com/jitstream/jitstream/internal/vfile"
)

// Thumbnails. With Options.Transcoder, an asset with video has, below its
// stream root, pictures that ffmpeg makes on demand from the stored
// original (transcode.Transcoder.Thumbnail and Sprite: cached in the
// transcoder's cache, within its ffmpeg slots, one run for concurrent
// requests):
//
//	thumbs/{t}.jpg              the picture shown at t seconds ("12.5"), 320 pixels wide
//	thumbs/{w}/{t}.jpg          the same, w pixels wide: 160, 320 or 640
//	thumbs/sprite-{k}.jpg       sprite sheet k (from 0) of the thumbnail track
//	thumbs/thumbnails.vtt       the WebVTT thumbnail track: cue i is tile i, "sprite-{k}.jpg#xywh=x,y,w,h"
//	hls/images.m3u8             the sheets as an HLS image media playlist (EXT-X-TILES), which the
//	                            HLS master lists with EXT-X-IMAGE-STREAM-INF (Roku, Apple)
//
// Times are on the presentation timeline, as players show it; t is a
// decimal number of seconds (digits, an optional fraction) before the end
// of the asset (the last picture stays shown until then). The width is a
// path element rather than a query, so that the few variants are plain
// URLs that every HTTP cache keeps apart. The sprite layout (tile size,
// interval, grid, sheets) is transcode.SpriteLayoutOf's; the MPD lists
// the sheets as an image AdaptationSet (dash.ThumbnailSet).
//
// Without a transcoder, or for an asset without video, thumbs/ names
// nothing (404).

// Content types of the thumbnails.
const (
	typeJPEG = "image/jpeg"
	typeVTT  = "text/vtt"
)

// thumbWidths are the widths of thumbs/{w}/{t}.jpg; defaultThumbWidth is
// that of thumbs/{t}.jpg.
var thumbWidths = []int{160, 320, 640}

const defaultThumbWidth = 320

// thumbsVersion is in the ETag of every thumbs/ file: bump it when their
// bytes change.
const thumbsVersion = "thumbs-1"

// thumbs builds the file rest of thumbs/ (path is the whole path).
func (h *Handler) thumbs(ctx context.Context, a *asset, path, rest string) (*vfile.File, error) {
	if h.opt.Transcoder == nil || a.ix.Video() == nil || a.ix.Video().Samples.Len() == 0 || len(a.segs) == 0 {
		return nil, fmt.Errorf("%w: thumbnails need a video track and a server with a transcoder", ErrUnsupportedFormat)
	}
	src := h.source(a)
	tc := h.opt.Transcoder
	etag := func(extra ...string) string {
		return vfile.ETag(append([]string{buildVersion, thumbsVersion, a.key, path}, extra...)...)
	}
	switch {
	case rest == "thumbnails.vtt":
		l, err := transcode.SpriteLayoutOf(src)
		if err != nil {
			return nil, err
		}
		return vfile.New("thumbnails.vtt", typeVTT, time.Time{}, etag(l.ID()), []vfile.Piece{vfile.Bytes(thumbnailsVTT(l))}), nil
	case strings.HasPrefix(rest, "sprite-"):
		l, err := transcode.SpriteLayoutOf(src)
		if err != nil {
			return nil, err
		}
		num, ok := strings.CutSuffix(strings.TrimPrefix(rest, "sprite-"), ".jpg")
		k, err := strconv.Atoi(num)
		if !ok || err != nil || k < 0 || k >= l.Sheets || strconv.Itoa(k) != num {
			return nil, notFound("no sprite sheet %q: the thumbnail track has sheets 0 to %d", rest, l.Sheets-1)
		}
		b, err := tc.Sprite(ctx, src, k, l)
		if err != nil {
			return nil, fmt.Errorf("streams: sprite sheet %d of %s: %w", k, a.meta.ID, err)
		}
		return vfile.New(rest, typeJPEG, time.Time{}, etag(l.ID()), []vfile.Piece{vfile.Bytes(b)}), nil
	}
	width, file := defaultThumbWidth, rest
	if ws, f, ok := strings.Cut(rest, "/"); ok {
		w, err := strconv.Atoi(ws)
		if err != nil || strconv.Itoa(w) != ws || !validThumbWidth(w) {
			return nil, notFound("no thumbnail width %q: the widths are %v", ws, thumbWidths)
		}
		width, file = w, f
	}
	at, err := thumbTime(file)
	if err != nil {
		return nil, err
	}
	if d := a.ix.Duration(); at >= d {
		return nil, notFound("no picture at %s s: the asset lasts %.3f s", strings.TrimSuffix(file, ".jpg"), d.Seconds())
	}
	b, err := tc.Thumbnail(ctx, src, at, width)
	if err != nil {
		return nil, fmt.Errorf("streams: thumbnail at %v of %s: %w", at, a.meta.ID, err)
	}
	return vfile.New(file, typeJPEG, time.Time{}, etag(), []vfile.Piece{vfile.Bytes(b)}), nil
}

func validThumbWidth(w int) bool {
	for _, x := range thumbWidths {
		if x == w {
			return true
		}
	}
	return false
}

// maxThumbTime bounds the length of the {t} of thumbs/{t}.jpg.
const maxThumbTime = 24

// thumbTime parses "{t}.jpg": t is digits with an optional fraction
// ("12", "12.5"), in seconds.
func thumbTime(file string) (time.Duration, error) {
	s, ok := strings.CutSuffix(file, ".jpg")
	bad := func() (time.Duration, error) {
		return 0, notFound("%q is not a thumbnail: want {seconds}.jpg, e.g. 12.5.jpg", file)
	}
	if !ok || s == "" || len(s) > maxThumbTime {
		return bad()
	}
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || !digits(whole) || (dot && (frac == "" || !digits(frac))) {
		return bad()
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f > 1e7 {
		return bad()
	}
	return time.Duration(math.Round(f * float64(time.Second))), nil
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// thumbnailsVTT is the WebVTT thumbnail track of l: one cue per tile,
// from its start to the next one's (the last to the end of the asset),
// times rounded up to the millisecond, whose text is the tile's sheet
// and rectangle as a media fragment ("sprite-0.jpg#xywh=160,0,160,90",
// relative to the track).
func thumbnailsVTT(l transcode.SpriteLayout) []byte {
	var b strings.Builder
	b.WriteString("WEBVTT\n")
	for i := range l.Tiles {
		t := l.Tile(i)
		fmt.Fprintf(&b, "\n%s --> %s\nsprite-%d.jpg#xywh=%d,%d,%d,%d\n",
			vttTime(t.Start), vttTime(t.End), t.Sheet, t.X, t.Y, t.W, t.H)
	}
	return []byte(b.String())
}

// vttTime formats d, rounded up to the millisecond, as "hh:mm:ss.ttt".
func vttTime(d time.Duration) string {
	ms := int64((d + time.Millisecond - 1) / time.Millisecond)
	return fmt.Sprintf("%02d:%02d:%02d.%03d", ms/3600000, ms/60000%60, ms/1000%60, ms%1000)
}

// dashThumbnails is the thumbnail option of a's MPD: the sheets of
// transcode.SpriteLayoutOf at thumbs/sprite-{k}.jpg, nil without a
// transcoder or video.
func (h *Handler) dashThumbnails(a *asset) *dash.ThumbnailSet {
	v := a.ix.Video()
	if h.opt.Transcoder == nil || v == nil || v.Samples.Len() == 0 || len(a.segs) == 0 {
		return nil
	}
	l, err := transcode.SpriteLayoutOf(h.source(a))
	if err != nil || l.Tiles == 0 {
		return nil
	}
	return &dash.ThumbnailSet{
		Cols: l.Cols, Rows: l.Rows, TileWidth: l.TileWidth, TileHeight: l.TileHeight,
		SheetDuration: l.SheetDuration(), Sheets: l.Sheets,
		// The MPD is dash/manifest.mpd.
		MediaTemplate: "../thumbs/sprite-$Number$.jpg",
	}
}

// hlsImages is the thumbnail track of a for HLS (hls.ImageTrack): the
// sheets of transcode.SpriteLayoutOf, listed by hls/images.m3u8; nil
// without a transcoder or video.
func (h *Handler) hlsImages(a *asset) *hls.ImageTrack {
	v := a.ix.Video()
	if h.opt.Transcoder == nil || v == nil || v.Samples.Len() == 0 || len(a.segs) == 0 {
		return nil
	}
	l, err := transcode.SpriteLayoutOf(h.source(a))
	if err != nil || l.Tiles == 0 {
		return nil
	}
	tr := &hls.ImageTrack{URI: "images.m3u8", TileWidth: l.TileWidth, TileHeight: l.TileHeight, Cols: l.Cols, Rows: l.Rows,
		Interval: l.Interval, Tiles: l.Tiles, Duration: l.Duration}
	for k := range l.Sheets {
		// The playlist is hls/images.m3u8.
		tr.Sheets = append(tr.Sheets, fmt.Sprintf("../thumbs/sprite-%d.jpg", k))
	}
	// A nominal bit rate: a JPEG tile of about a quarter of a byte per
	// pixel, a sheet of them per sheet duration.
	if d := l.SheetDuration().Seconds(); d > 0 {
		tr.Bandwidth = int64(float64(l.Cols*l.Rows*l.TileWidth*l.TileHeight/4*8) / d)
	}
	return tr
}
