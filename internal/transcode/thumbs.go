package transcode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"slices"
	"sort"
	"strconv"
	"time"

	mp4build "github.com/jitstream/jitstream/internal/build/mp4"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/vfile"
)

// Thumbnails: JPEG pictures of a source, made by ffmpeg from the stored
// original on demand and cached like transcoded segments (same store
// prefix, budget, ffmpeg slots, shared runs and remembered failures):
//
//	cache/transcode/{source}/thumbs/v1/{width}w/{sample}.jpg        Thumbnail
//	cache/transcode/{source}/thumbs/v1/sprite-{layout}/{k}.jpg      Sprite
//
// where {sample} is the number (in decode order) of the frame shown, so
// that every time shown by one frame shares one object, and {layout} is
// SpriteLayout.ID.
//
// Times are on the asset's presentation timeline, as players see it: a
// frame is shown from its composition time minus the track's edit
// (media.Track.MediaTime, DASH's presentationTimeOffset) until the next
// frame's; the last frame stays shown until the end of the asset
// (media.Index.Duration, which may be longer than the video).

// Limits of a thumbnail's width (Thumbnail) and of a sprite's tiles.
const (
	MinThumbnailWidth = 16
	MaxThumbnailWidth = 1920
)

// The sprite layout rule (SpriteLayoutFor).
const (
	// SpriteTileWidth is the width of a sprite's tiles in pixels; their
	// height follows the picture's aspect ratio.
	SpriteTileWidth = 160
	// SpriteColumns and SpriteRows are the largest grid of a sheet.
	SpriteColumns = 10
	SpriteRows    = 10
	// SpriteMaxSheets is the most sheets an asset has.
	SpriteMaxSheets = 5
	// SpriteMinInterval is the shortest time between two tiles.
	SpriteMinInterval = time.Second
)

// thumbsDir is the element of the cache keys under the source's: bump its
// version when the pictures change (ffmpeg arguments, tile choice).
const thumbsDir = "/thumbs/v1/"

// jpegQuality is ffmpeg's -q:v for the mjpeg encoder (2 best, 31 worst).
const jpegQuality = "3"

// SpriteLayout is the arrangement of an asset's thumbnail sprite sheets:
// Tiles tiles of TileWidth x TileHeight pixels, tile i showing the picture
// at i*Interval (see Sprite), laid out row by row on Sheets sheets of Cols
// x Rows tiles each (the last one may be partly black). Tile i is shown
// from i*Interval to (i+1)*Interval, the last one until Duration: the
// tiles cover [0, Duration) without gaps.
type SpriteLayout struct {
	TileWidth, TileHeight int
	Cols, Rows            int
	// Interval is the time between two tiles.
	Interval time.Duration
	// Tiles is the number of tiles, Sheets the number of sheets.
	Tiles, Sheets int
	// Duration is the asset's duration, which the tiles cover.
	Duration time.Duration
}

// SpriteLayoutFor returns the sprite layout of an asset that lasts
// duration, whose key frames follow each other every keyInterval (0 when
// unknown) and whose pictures are shown at width x height (their display
// aspect ratio). The rule:
//
//   - tiles are SpriteTileWidth pixels wide and as high as the aspect
//     ratio makes them, rounded to an even number;
//   - the interval is the shortest that is at least SpriteMinInterval and
//     leaves at most SpriteMaxSheets full sheets (duration / 500 with the
//     defaults) and, when keyInterval is known, a whole number of key
//     intervals (so that with a regular key frame grid every tile is the
//     key frame at its start, and no two tiles show the same key frame),
//     else a whole number of seconds; it is rounded to the microsecond;
//   - there are ceil(duration / interval) tiles, on sheets of
//     min(SpriteColumns, tiles) columns and min(SpriteRows,
//     ceil(tiles/columns)) rows (a short asset gets one small sheet).
//
// For example a 12 s asset with a key frame every 2 s gets 6 tiles of
// 160x90 every 2 s on one sheet of 6x1, a 1-hour one with the same key
// frames a tile every 8 s, 450 tiles on 5 sheets of 10x10. The result is
// deterministic. A duration of 0 or less gives a layout without tiles.
func SpriteLayoutFor(duration, keyInterval time.Duration, width, height int) SpriteLayout {
	l := SpriteLayout{TileWidth: SpriteTileWidth, TileHeight: scaledHeight(SpriteTileWidth, width, height), Duration: duration}
	if duration <= 0 {
		return l
	}
	minInterval := max(SpriteMinInterval, ceilDiv(duration, SpriteMaxSheets*SpriteColumns*SpriteRows))
	if keyInterval > 0 {
		// A millisecond of slack: a key interval rounded to the nanosecond
		// (1/30 s) times a whole number just below a whole second.
		l.Interval = keyInterval * ceilDiv(minInterval-time.Millisecond, keyInterval)
	} else {
		l.Interval = ceilDiv(minInterval, time.Second) * time.Second
	}
	l.Interval = max(l.Interval.Round(time.Microsecond), time.Microsecond)
	l.Tiles = int(ceilDiv(duration, l.Interval))
	l.Cols = min(SpriteColumns, l.Tiles)
	l.Rows = min(SpriteRows, (l.Tiles+l.Cols-1)/l.Cols)
	l.Sheets = (l.Tiles + l.Cols*l.Rows - 1) / (l.Cols * l.Rows)
	return l
}

// ceilDiv returns ceil(a / b) for positive b.
func ceilDiv(a, b time.Duration) time.Duration {
	if a <= 0 {
		return 0
	}
	return (a + b - 1) / b
}

// scaledHeight returns the height of a picture width pixels wide with the
// aspect ratio of w x h: an even number, at least 2.
func scaledHeight(width, w, h int) int {
	if w <= 0 || h <= 0 {
		w, h = 16, 9
	}
	return max(2, int((int64(width)*int64(h)+int64(w))/(2*int64(w)))*2)
}

// SpriteLayoutOf returns the sprite layout of src by SpriteLayoutFor: its
// duration (src.Index.Duration), the median interval between the key
// frames of its track and its pictures' display size (DisplaySize).
func SpriteLayoutOf(src Source) (SpriteLayout, error) {
	if err := src.checkVideo(); err != nil {
		return SpriteLayout{}, err
	}
	w, h := DisplaySize(src.Track)
	return SpriteLayoutFor(src.Index.Duration(), keyInterval(src.Track), w, h), nil
}

// DisplaySize returns the size at which the pictures of the video track t
// are shown: its track header's presentation size (which accounts for
// non-square pixels) or else its coded size, turned by a quarter when its
// matrix rotates the pictures by 90 or 270 degrees (as ffmpeg does).
func DisplaySize(t *media.Track) (w, h int) {
	w, h = int(t.TkhdWidth>>16), int(t.TkhdHeight>>16)
	if w <= 0 || h <= 0 {
		w, h = int(t.Width), int(t.Height)
	}
	m := t.Matrix
	if m[0] == 0 && m[4] == 0 && m[1] != 0 && m[3] != 0 {
		w, h = h, w
	}
	return w, h
}

// ThumbnailSize returns the size of src's thumbnails width pixels wide:
// the display aspect ratio (DisplaySize), the height even.
func ThumbnailSize(src Source, width int) (w, h int) {
	dw, dh := DisplaySize(src.Track)
	return width, scaledHeight(width, dw, dh)
}

// keyInterval returns the median time between the track's consecutive
// key frames (by decode time), 0 with fewer than two key frames.
func keyInterval(t *media.Track) time.Duration {
	s := &t.Samples
	var gaps []int64
	prev := int64(-1)
	for i := range s.Len() {
		if !s.IsSync(i) {
			continue
		}
		if prev >= 0 {
			gaps = append(gaps, s.DTS[i]-prev)
		}
		prev = s.DTS[i]
	}
	if len(gaps) == 0 || t.Timescale == 0 {
		return 0
	}
	slices.Sort(gaps)
	return ticksToDuration(gaps[len(gaps)/2], t.Timescale)
}

func ticksToDuration(ticks int64, ts uint32) time.Duration {
	q, r := ticks/int64(ts), ticks%int64(ts)
	return time.Duration(q)*time.Second + time.Duration(r)*time.Second/time.Duration(ts)
}

// durationToTicks converts d to ticks of timescale ts, rounding down.
func durationToTicks(d time.Duration, ts uint32) int64 {
	q, r := d/time.Second, d%time.Second
	return int64(q)*int64(ts) + int64(r)*int64(ts)/int64(time.Second)
}

// SheetDuration is the time the tiles of one full sheet cover:
// Cols*Rows*Interval.
func (l SpriteLayout) SheetDuration() time.Duration {
	return time.Duration(l.Cols*l.Rows) * l.Interval
}

// SheetSize is the size of a sheet in pixels.
func (l SpriteLayout) SheetSize() (w, h int) { return l.Cols * l.TileWidth, l.Rows * l.TileHeight }

// Tile is the place of one tile of a SpriteLayout.
type Tile struct {
	// Start and End are when the tile is shown: [Start, End).
	Start, End time.Duration
	// Sheet is its sheet's number, X, Y, W, H its rectangle in it.
	Sheet      int
	X, Y, W, H int
}

// Tile returns tile i (0 <= i < Tiles).
func (l SpriteLayout) Tile(i int) Tile {
	per := l.Cols * l.Rows
	k := i % per
	return Tile{
		Start: time.Duration(i) * l.Interval,
		End:   min(time.Duration(i+1)*l.Interval, l.Duration),
		Sheet: i / per,
		X:     (k % l.Cols) * l.TileWidth, Y: (k / l.Cols) * l.TileHeight,
		W: l.TileWidth, H: l.TileHeight,
	}
}

// ID names the layout in cache keys: "160x90-10x10-2000000us-450".
func (l SpriteLayout) ID() string {
	return fmt.Sprintf("%dx%d-%dx%d-%dus-%d", l.TileWidth, l.TileHeight, l.Cols, l.Rows, l.Interval.Microseconds(), l.Tiles)
}

// check reports whether l is a usable layout.
func (l SpriteLayout) check() error {
	sw, sh := l.SheetSize()
	switch {
	case l.TileWidth < MinThumbnailWidth || l.TileWidth > MaxThumbnailWidth || l.TileWidth%2 != 0 ||
		l.TileHeight < 2 || l.TileHeight > 4*MaxThumbnailWidth || l.TileHeight%2 != 0:
		return fmt.Errorf("transcode: sprite tiles of %dx%d: want even sizes, %d to %d pixels wide",
			l.TileWidth, l.TileHeight, MinThumbnailWidth, MaxThumbnailWidth)
	case l.Cols < 1 || l.Rows < 1 || sw > 16384 || sh > 16384:
		return fmt.Errorf("transcode: sprite sheets of %dx%d tiles (%dx%d pixels)", l.Cols, l.Rows, sw, sh)
	case l.Interval <= 0 || l.Tiles < 1 || l.Duration <= 0 ||
		time.Duration(l.Tiles-1)*l.Interval >= l.Duration || time.Duration(l.Tiles)*l.Interval < l.Duration:
		return fmt.Errorf("transcode: %d sprite tiles every %v do not cover %v", l.Tiles, l.Interval, l.Duration)
	case l.Sheets != (l.Tiles+l.Cols*l.Rows-1)/(l.Cols*l.Rows):
		return fmt.Errorf("transcode: %d sprite tiles on %d sheets of %dx%d", l.Tiles, l.Sheets, l.Cols, l.Rows)
	}
	return nil
}

// checkVideo reports whether src has what renditions and thumbnails are
// made from: a video track of its index with samples, segments, a key.
func (src *Source) checkVideo() error {
	switch {
	case src.Index == nil || src.Track == nil || src.Store == nil:
		return errors.New("transcode: source without index, track or store")
	case src.Key == "":
		return errors.New("transcode: source without key")
	case src.Track.Kind != media.KindVideo:
		return fmt.Errorf("transcode: %s: track %d is not video", src.Key, src.Track.ID)
	case src.Index.Reference() == nil || src.Track.Samples.Len() == 0 || len(src.Segments) == 0:
		return fmt.Errorf("transcode: %s: no video samples or segments", src.Key)
	case src.Track.Timescale == 0:
		return fmt.Errorf("transcode: %s: track %d has no timescale", src.Key, src.Track.ID)
	}
	if !slices.Contains(src.Index.Tracks, src.Track) {
		return fmt.Errorf("transcode: %s: track %d is not a track of the index", src.Key, src.Track.ID)
	}
	return nil
}

// pts returns the presentation time of sample i of the source's track, in
// its timescale, on the presentation timeline (edit applied): the time
// that ffmpeg gives it with -copyts in the fragmented MP4 of
// sourceSegment, whose init segment carries the edit.
func (src *Source) pts(i int) int64 {
	s := &src.Track.Samples
	return s.DTS[i] + int64(s.CompOffset(i)) - src.Track.MediaTime
}

// shownAt returns the frame shown at at (ticks): segment n holding it,
// the frame's sample number and, when a frame of segment n is presented
// before it, the presentation time of the latest such frame (prev, with
// hasPrev). sample is -1 when segment n has no frame of the track (a
// video track other than the reference).
func (src *Source) shownAt(at int64) (n, sample int, prev int64, hasPrev bool) {
	// The segment: the last one whose first frame (a key frame, the first
	// presented of a closed GOP) is presented at or before at.
	n = sort.Search(len(src.Segments), func(k int) bool {
		first, _ := src.sampleSpan(k)
		return first < src.Track.Samples.Len() && src.pts(first) > at
	}) - 1
	n = max(n, 0)
	first, end := src.sampleSpan(n)
	if first >= end {
		return n, -1, 0, false
	}
	best, bestPTS := -1, int64(0)
	earliest, earliestPTS := first, src.pts(first)
	for i := first; i < end; i++ {
		p := src.pts(i)
		if p <= at && (best < 0 || p > bestPTS) {
			best, bestPTS = i, p
		}
		if p < earliestPTS {
			earliest, earliestPTS = i, p
		}
	}
	if best < 0 { // at is before every frame: the first one shows
		best, bestPTS = earliest, earliestPTS
	}
	for i := first; i < end; i++ {
		if p := src.pts(i); p < bestPTS && (!hasPrev || p > prev) {
			prev, hasPrev = p, true
		}
	}
	return n, best, prev, hasPrev
}

// Thumbnail returns a JPEG of the picture of src shown at at (see the
// top of thumbs.go), width pixels wide (even, MinThumbnailWidth to
// MaxThumbnailWidth) and as high as the display aspect ratio makes it
// (ThumbnailSize). ffmpeg makes it from the source segment that holds the
// frame, seeking to it (output -ss, accurate); every time shown by the
// same frame gives the same cached object. Concurrent calls for one
// picture share one run, which takes an ffmpeg slot like a segment's.
//
// Errors: an error wrapping ErrNoSegment for at outside [0, duration of
// the asset); ErrBusy, ctx's error and *FFmpegError (Rendition names the
// picture, "thumbnail 320px at 12.5s", and Segment the source segment;
// remembered for 30 s, never cached) as for Segment.
func (t *Transcoder) Thumbnail(ctx context.Context, src Source, at time.Duration, width int) ([]byte, error) {
	if err := src.checkVideo(); err != nil {
		return nil, err
	}
	if width < MinThumbnailWidth || width > MaxThumbnailWidth || width%2 != 0 {
		return nil, fmt.Errorf("transcode: thumbnail width %d: want an even number from %d to %d", width, MinThumbnailWidth, MaxThumbnailWidth)
	}
	if d := src.Index.Duration(); at < 0 || at >= d {
		return nil, fmt.Errorf("transcode: %s: no picture at %v, the asset lasts %v: %w", src.Key, at, d, ErrNoSegment)
	}
	n, sample, prev, hasPrev := src.shownAt(durationToTicks(at, src.Track.Timescale))
	if sample < 0 {
		return nil, fmt.Errorf("transcode: %s: no picture at %v, segment %d has no frame of track %d: %w",
			src.Key, at, n, src.Track.ID, ErrNoSegment)
	}
	sh := sourceHash(&src)
	key := CachePrefix + sh + thumbsDir + strconv.Itoa(width) + "w/" + strconv.Itoa(sample) + ".jpg"
	if b, ok := t.cached(ctx, key); ok {
		return b, nil
	}
	w, h := ThumbnailSize(src, width)
	what := fmt.Sprintf("thumbnail %dpx at %s", width, seconds(at))
	res, err := t.run(ctx, key, func(ctx context.Context) (result, error) {
		return t.produceImage(ctx, &src, key, what, n, func(ctx context.Context) ([]byte, string, error) {
			input, err := sourceSegment(ctx, &src, n)
			if err != nil {
				return nil, "", err
			}
			// Seek half way between the frame and the one presented before
			// it: the first frame kept is the one asked for, whatever the
			// rounding of times to microseconds.
			seek := ""
			if hasPrev {
				ts := float64(src.Track.Timescale)
				seek = strconv.FormatFloat((float64(prev)+float64(src.pts(sample)))/2/ts, 'f', 6, 64)
			}
			return t.runImage(ctx, thumbnailArgs(seek, w, h, t.o.Threads), input, w, h)
		})
	})
	return res.media, err
}

// seconds formats d in seconds, "12.5s".
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

// Sprite returns sheet k (0 <= k < layout.Sheets) of the sprite sheets of
// src with layout (normally SpriteLayoutOf(src)): a JPEG of layout.Cols x
// layout.Rows tiles, tile i of the layout in the k-th sheet's place of
// layout.Tile(i), tiles after the last one black.
//
// Tile i shows the last key frame of src presented no later than a
// quarter interval after its start, i*Interval (the first key frame when
// none is): the picture at its start when the key frames fall on the
// tile grid, which SpriteLayoutFor arranges for a regular key frame
// interval; the quarter interval of slack catches key frames that jitter
// or drift just past it. Only those key frames are read from the store
// and decoded: ffmpeg gets a fragmented MP4 of them, one per tile, and
// tiles them at once. Caching, sharing, slots and errors are those of
// Thumbnail (Rendition names the layout, Segment is k); k out of range is
// an error wrapping ErrNoSegment.
func (t *Transcoder) Sprite(ctx context.Context, src Source, k int, layout SpriteLayout) ([]byte, error) {
	if err := src.checkVideo(); err != nil {
		return nil, err
	}
	if err := layout.check(); err != nil {
		return nil, err
	}
	if k < 0 || k >= layout.Sheets {
		return nil, fmt.Errorf("transcode: %s: sprite sheet %d out of range [0, %d): %w", src.Key, k, layout.Sheets, ErrNoSegment)
	}
	sh := sourceHash(&src)
	key := CachePrefix + sh + thumbsDir + "sprite-" + layout.ID() + "/" + strconv.Itoa(k) + ".jpg"
	if b, ok := t.cached(ctx, key); ok {
		return b, nil
	}
	sw, shh := layout.SheetSize()
	what := fmt.Sprintf("sprite of %dx%d tiles of %dx%d every %s", layout.Cols, layout.Rows, layout.TileWidth, layout.TileHeight, seconds(layout.Interval))
	res, err := t.run(ctx, key, func(ctx context.Context) (result, error) {
		return t.produceImage(ctx, &src, key, what, k, func(ctx context.Context) ([]byte, string, error) {
			input, err := src.tileFrames(ctx, layout, k)
			if err != nil {
				return nil, "", err
			}
			return t.runImage(ctx, spriteArgs(layout, t.o.Threads), input, sw, shh)
		})
	})
	return res.media, err
}

// tileKeyframes returns, for each tile of sheet k, the sample number of
// the key frame it shows (see Sprite).
func (src *Source) tileKeyframes(l SpriteLayout, k int) []int {
	s := &src.Track.Samples
	type key struct {
		pts    int64
		sample int
	}
	var keys []key
	for i := range s.Len() {
		if s.IsSync(i) {
			keys = append(keys, key{src.pts(i), i})
		}
	}
	if len(keys) == 0 { // not a playable track: let ffmpeg say so
		keys = append(keys, key{src.pts(0), 0})
	}
	sort.SliceStable(keys, func(a, b int) bool { return keys[a].pts < keys[b].pts })
	per := l.Cols * l.Rows
	var out []int
	for i := k * per; i < min((k+1)*per, l.Tiles); i++ {
		at := durationToTicks(l.Tile(i).Start+l.Interval/4, src.Track.Timescale)
		j := sort.Search(len(keys), func(j int) bool { return keys[j].pts > at }) - 1
		out = append(out, keys[max(j, 0)].sample)
	}
	return out
}

// tileFrames returns the input of sheet k: a fragmented MP4 of the
// source's track holding, in order, the key frame of each of its tiles
// (tileKeyframes; a key frame shown by several tiles is there several
// times), each lasting an interval, without edit.
func (src *Source) tileFrames(ctx context.Context, l SpriteLayout, k int) ([]byte, error) {
	picks := src.tileKeyframes(l, k)
	s := &src.Track.Samples
	d := *src.Track
	d.MediaTime = 0
	dur := uint32(min(max(durationToTicks(l.Interval, d.Timescale), 1), 1<<31))
	d.Samples = media.Samples{
		Offset:       make([]int64, 0, len(picks)),
		Size:         make([]uint32, 0, len(picks)),
		Dur:          make([]uint32, 0, len(picks)),
		ChapterStart: make([]int, len(s.ChapterStart)),
		ChapterDesc:  s.ChapterDesc,
	}
	ds := &d.Samples
	c := 0 // chapter of the last pick
	for n, i := range picks {
		ci := s.Chapter(i)
		if ci < c {
			return nil, fmt.Errorf("transcode %s: sprite sheet %d: key frames out of chapter order", src.Key, k)
		}
		for ; c < ci; c++ {
			ds.ChapterStart[c+1] = n
		}
		ds.Offset = append(ds.Offset, s.Offset[i])
		ds.Size = append(ds.Size, s.Size[i])
		ds.Dur = append(ds.Dur, dur)
	}
	for c++; c < len(s.ChapterStart); c++ {
		ds.ChapterStart[c] = len(picks)
	}
	ds.Derive()
	tracks := []*media.Track{&d}
	init, err := mp4build.InitSegment(src.Index, tracks)
	if err != nil {
		return nil, fmt.Errorf("transcode %s: sprite sheet %d: %w", src.Key, k, err)
	}
	var b vfile.Builder
	b.Add(init)
	// A segment from 0 to the reference's end takes every sample.
	ref := src.Index.Reference()
	if err := mp4build.MediaSegment(&b, src.Index, tracks, media.Segment{Start: 0, End: ref.Duration()}, 1); err != nil {
		return nil, fmt.Errorf("transcode %s: sprite sheet %d: %w", src.Key, k, err)
	}
	data, err := readFile(ctx, src.Store, b.File("", "", time.Time{}, ""))
	if err != nil {
		return nil, fmt.Errorf("transcode %s: reading the key frames of sprite sheet %d: %w", src.Key, k, err)
	}
	return data, nil
}

// thumbnailArgs returns the arguments of the ffmpeg run that writes the
// JPEG of one picture of a source segment (fragmented MP4 on stdin) to
// stdout, w x h pixels: -copyts keeps the presentation times of the input
// (the edit of its init segment applied), so that seek (seconds, empty for
// the first frame) is one of them; -ss after the input decodes from the
// segment's key frame and drops the frames before seek.
func thumbnailArgs(seek string, w, h, threads int) []string {
	args := []string{"-nostdin", "-hide_banner", "-nostats", "-v", "error",
		"-copyts", "-f", "mp4", "-i", "pipe:0"}
	if seek != "" {
		args = append(args, "-ss", seek)
	}
	return imageArgs(args, fmt.Sprintf("scale=%d:%d:flags=lanczos,setsar=1", w, h), threads)
}

// spriteArgs returns the arguments of the ffmpeg run that tiles every
// frame of its input (the key frames of tileFrames) into one sheet of l.
func spriteArgs(l SpriteLayout, threads int) []string {
	args := []string{"-nostdin", "-hide_banner", "-nostats", "-v", "error", "-f", "mp4", "-i", "pipe:0"}
	return imageArgs(args, fmt.Sprintf("scale=%d:%d:flags=lanczos,setsar=1,tile=%dx%d",
		l.TileWidth, l.TileHeight, l.Cols, l.Rows), threads)
}

// imageArgs appends to args the output of one JPEG made by the filters vf
// to stdout. ffmpeg turns the pictures as the track's matrix says (no
// -noautorotate): thumbnails are shown as the video is.
func imageArgs(args []string, vf string, threads int) []string {
	args = append(args, "-map", "0:v:0", "-an", "-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1",
		"-vf", vf, "-fps_mode", "passthrough", "-frames:v", "1")
	if threads > 0 {
		args = append(args, "-threads", strconv.Itoa(threads))
	}
	return append(args, "-c:v", "mjpeg", "-q:v", jpegQuality, "-f", "image2pipe", "pipe:1")
}

// runImage runs ffmpeg with args and input and checks that it wrote a
// JPEG of w x h pixels; it returns the JPEG and ffmpeg's diagnostics.
func (t *Transcoder) runImage(ctx context.Context, args []string, input []byte, w, h int) ([]byte, string, error) {
	out, diag, err := runFFmpeg(ctx, t.o.FFmpeg, args, input)
	if err != nil {
		return nil, "", err
	}
	if len(out) == 0 {
		return nil, "", &FFmpegError{Err: errors.New("wrote no picture"), Stderr: diag}
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(out))
	if err != nil {
		return nil, "", &FFmpegError{Err: fmt.Errorf("wrote no JPEG: %w", err), Stderr: diag}
	}
	if cfg.Width != w || cfg.Height != h {
		return nil, "", &FFmpegError{Err: fmt.Errorf("wrote a %dx%d picture, want %dx%d", cfg.Width, cfg.Height, w, h), Stderr: diag}
	}
	return out, diag, nil
}

// produceImage returns the object key: from the cache if it is there,
// else made by mk (which runs ffmpeg) while holding an ffmpeg slot (and,
// with a Locker, the cluster lock of key), then cached. what names the
// object in errors and logs, with segment n. It is produce for pictures.
func (t *Transcoder) produceImage(ctx context.Context, src *Source, key, what string, n int,
	mk func(context.Context) ([]byte, string, error)) (result, error) {
	cached := func() (result, bool) {
		b, ok := t.cached(ctx, key)
		return result{media: b}, ok
	}
	var b []byte
	var diag string
	res, took, ran, err := t.exclusive(ctx, key, cached, func(ctx context.Context) (result, error) {
		var err error
		b, diag, err = mk(ctx)
		return result{media: b}, err
	})
	if !ran {
		return res, err
	}
	if err != nil {
		if ctx.Err() != nil {
			// The callers left (or Close): not a failure to remember.
			return result{}, fmt.Errorf("transcode %s to %s: %w", src.Key, what, context.Cause(ctx))
		}
		var fe *FFmpegError
		if errors.As(err, &fe) {
			fe.Key, fe.Rendition, fe.Segment = src.Key, what, n
		}
		t.log.Warn("transcode: picture failed", "source", src.Key, "picture", what, "segment", n, "err", err)
		return result{}, err
	}
	t.runTime.Add(int64(took))
	if diag != "" {
		t.log.Warn("transcode: ffmpeg reported errors but made the picture", "source", src.Key,
			"picture", what, "segment", n, "stderr", diag)
	}
	t.log.Info("transcode: picture made", "source", src.Key, "picture", what, "segment", n,
		"bytes", len(b), "took", took.Round(time.Millisecond))
	t.keep(ctx, "picture", key, b)
	return res, nil
}

// exclusive runs mk for the object key unless cached finds it: with a
// Locker, under the cluster lock of key (cached is asked again once it is
// taken: another node may have made it meanwhile), and holding an ffmpeg
// slot, with the beforeRun hook and the runs counter. ran tells whether mk
// ran; took is its wall time.
func (t *Transcoder) exclusive(ctx context.Context, key string, cached func() (result, bool),
	mk func(context.Context) (result, error)) (res result, took time.Duration, ran bool, err error) {
	if res, ok := cached(); ok {
		return res, 0, false, nil
	}
	if t.o.Locker != nil {
		unlock, err := t.lock(ctx, key, false)
		if err != nil {
			return result{}, 0, false, err
		}
		if unlock != nil {
			defer unlock()
			if res, ok := cached(); ok {
				return res, 0, false, nil
			}
		}
	}
	if err := t.acquire(ctx); err != nil {
		return result{}, 0, false, err
	}
	defer func() { <-t.slots }()
	if t.beforeRun != nil {
		t.beforeRun(ctx, key)
	}
	t.runs.Add(1)
	start := time.Now()
	res, err = mk(ctx)
	return res, time.Since(start), true, err
}

// keep caches b under key (what names it in the log), even if its callers
// have left meanwhile.
func (t *Transcoder) keep(ctx context.Context, what, key string, b []byte) {
	if t.cache == nil {
		return
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := t.cache.put(pctx, key, b); err != nil {
		t.log.Warn("transcode: caching "+what, "key", key, "err", err)
	}
}
