package transcode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSpriteLayoutFor(t *testing.T) {
	frame := time.Second / 30 // 33.333333 ms: an all-intra 30 fps track
	tests := []struct {
		name           string
		dur, key       time.Duration
		w, h           int
		want           SpriteLayout
		sheetDur       time.Duration
		sheetW, sheetH int
	}{
		{"12 s, GOP 2 s", 12 * time.Second, 2 * time.Second, 1280, 720,
			SpriteLayout{160, 90, 6, 1, 2 * time.Second, 6, 1, 12 * time.Second}, 12 * time.Second, 960, 90},
		{"12.02 s (audio longer), GOP 2 s", 12021 * time.Millisecond, 2 * time.Second, 1280, 720,
			SpriteLayout{160, 90, 7, 1, 2 * time.Second, 7, 1, 12021 * time.Millisecond}, 14 * time.Second, 1120, 90},
		{"1 h, GOP 2 s", time.Hour, 2 * time.Second, 1920, 1080,
			SpriteLayout{160, 90, 10, 10, 8 * time.Second, 450, 5, time.Hour}, 800 * time.Second, 1600, 900},
		{"2 h, GOP 1.001 s", 2 * time.Hour, 1001 * time.Millisecond, 1920, 1080,
			SpriteLayout{160, 90, 10, 10, 15015 * time.Millisecond, 480, 5, 2 * time.Hour}, 1501500 * time.Millisecond, 1600, 900},
		{"10 h, GOP 2 s", 10 * time.Hour, 2 * time.Second, 1280, 720,
			SpriteLayout{160, 90, 10, 10, 72 * time.Second, 500, 5, 10 * time.Hour}, 7200 * time.Second, 1600, 900},
		{"1000 s, GOP 2 s: exactly 5 sheets", 1000 * time.Second, 2 * time.Second, 1280, 720,
			SpriteLayout{160, 90, 10, 10, 2 * time.Second, 500, 5, 1000 * time.Second}, 200 * time.Second, 1600, 900},
		{"90 s, one key frame, 4:3", 90 * time.Second, 0, 320, 240,
			SpriteLayout{160, 120, 10, 9, time.Second, 90, 1, 90 * time.Second}, 90 * time.Second, 1600, 1080},
		{"10 s all-intra", 10 * time.Second, frame, 640, 360,
			SpriteLayout{160, 90, 10, 1, time.Second, 10, 1, 10 * time.Second}, 10 * time.Second, 1600, 90},
		{"0.5 s, GOP 0.3 s", 500 * time.Millisecond, 300 * time.Millisecond, 1280, 720,
			SpriteLayout{160, 90, 1, 1, 1200 * time.Millisecond, 1, 1, 500 * time.Millisecond}, 1200 * time.Millisecond, 160, 90},
		{"portrait", 20 * time.Second, 2 * time.Second, 1080, 1920,
			SpriteLayout{160, 284, 10, 1, 2 * time.Second, 10, 1, 20 * time.Second}, 20 * time.Second, 1600, 284},
		{"no size", 20 * time.Second, 2 * time.Second, 0, 0,
			SpriteLayout{160, 90, 10, 1, 2 * time.Second, 10, 1, 20 * time.Second}, 20 * time.Second, 1600, 90},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := SpriteLayoutFor(tc.dur, tc.key, tc.w, tc.h)
			if l != tc.want {
				t.Fatalf("SpriteLayoutFor = %+v, want %+v", l, tc.want)
			}
			if err := l.check(); err != nil {
				t.Fatal(err)
			}
			if l.SheetDuration() != tc.sheetDur {
				t.Errorf("sheet duration %v, want %v", l.SheetDuration(), tc.sheetDur)
			}
			if w, h := l.SheetSize(); w != tc.sheetW || h != tc.sheetH {
				t.Errorf("sheet size %dx%d, want %dx%d", w, h, tc.sheetW, tc.sheetH)
			}
			if l.Sheets > SpriteMaxSheets || l.Interval < SpriteMinInterval {
				t.Errorf("%d sheets, interval %v", l.Sheets, l.Interval)
			}
			// The tiles cover [0, duration) without gaps, row by row.
			var end time.Duration
			for i := range l.Tiles {
				tile := l.Tile(i)
				if tile.Start != end || tile.End <= tile.Start || tile.Sheet >= l.Sheets ||
					tile.X+tile.W > tc.sheetW || tile.Y+tile.H > tc.sheetH {
					t.Fatalf("tile %d: %+v after %v", i, tile, end)
				}
				end = tile.End
			}
			if end != tc.dur {
				t.Errorf("the tiles end at %v, want %v", end, tc.dur)
			}
			if last := l.Tile(l.Tiles - 1); last.Sheet != l.Sheets-1 {
				t.Errorf("last tile on sheet %d of %d", last.Sheet, l.Sheets)
			}
		})
	}
	if l := SpriteLayoutFor(0, time.Second, 1280, 720); l.Tiles != 0 || l.check() == nil {
		t.Errorf("layout of nothing: %+v", l)
	}
}

// probeImage returns the codec and size of the picture b with ffprobe.
func probeImage(tb testing.TB, b []byte) (codec string, w, h int) {
	tb.Helper()
	p := ffprobe(tb, writeTemp(tb, tb.TempDir(), "pic.jpg", b))
	return p.Codec, p.Width, p.Height
}

// grayTile returns the rectangle (x, y, w, h) of the JPEG b, scaled to
// 32x18 in gray levels by ffmpeg.
func grayTile(tb testing.TB, b []byte, x, y, w, h int) []byte {
	tb.Helper()
	path := writeTemp(tb, tb.TempDir(), "pic.jpg", b)
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-frames:v", "1",
		"-vf", fmt.Sprintf("crop=%d:%d:%d:%d,scale=32:18:flags=area,format=gray", w, h, x, y),
		"-f", "rawvideo", "-").Output()
	if err != nil || len(out) != 32*18 {
		tb.Fatalf("ffmpeg reading a tile: %v (%d bytes)", err, len(out))
	}
	return out
}

// mad is the mean absolute difference of two gray pictures.
func mad(a, b []byte) float64 {
	var s int
	for i := range a {
		d := int(a[i]) - int(b[i])
		s += max(d, -d)
	}
	return float64(s) / float64(len(a))
}

// TestThumbnailShared: concurrent calls for times that one frame shows
// share one ffmpeg run; later calls, and a new transcoder over the same
// store, read the cached picture.
func TestThumbnailShared(t *testing.T) {
	src := smallSource(t, "pat/thumb/r1")
	tr := newTranscoder(t, src.Store, Options{})
	release := make(chan struct{})
	var keys []string
	var mu sync.Mutex
	tr.beforeRun = func(ctx context.Context, key string) {
		mu.Lock()
		keys = append(keys, key)
		mu.Unlock()
		<-release
	}
	// Frame 45 (30 fps) is shown from 1.5 s to 1.5333 s.
	times := []time.Duration{1500 * time.Millisecond, 1510 * time.Millisecond, 1533 * time.Millisecond}
	const callers = 6
	results := make([][]byte, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			results[i], errs[i] = tr.Thumbnail(context.Background(), src, times[i%len(times)], 160)
		})
	}
	n, sample, _, _ := src.shownAt(durationToTicks(times[0], src.Track.Timescale))
	key := CachePrefix + sourceHash(&src) + thumbsDir + "160w/" + fmt.Sprint(sample) + ".jpg"
	waitFor(t, "every caller to join the run", func() bool { return tr.waiters(key) == callers })
	close(release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
		if !bytes.Equal(results[i], results[0]) {
			t.Errorf("caller %d got other bytes than caller 0", i)
		}
	}
	if runs := tr.runs.Load(); runs != 1 || len(keys) != 1 || keys[0] != key || n != 0 {
		t.Errorf("%d runs (keys %v) for %d callers, want 1 (%s, segment %d)", runs, keys, callers, key, n)
	}
	if codec, w, h := probeImage(t, results[0]); codec != "mjpeg" || w != 160 || h != 120 {
		t.Errorf("thumbnail: %s %dx%d, want mjpeg 160x120", codec, w, h)
	}
	if _, err := src.Store.Stat(context.Background(), key); err != nil {
		t.Errorf("the thumbnail is not cached: %v", err)
	}
	b, err := tr.Thumbnail(context.Background(), src, 1520*time.Millisecond, 160)
	if err != nil || !bytes.Equal(b, results[0]) || tr.runs.Load() != 1 {
		t.Errorf("a cached thumbnail: %v, %d runs", err, tr.runs.Load())
	}
	// Another width, another frame: other pictures.
	if _, err := tr.Thumbnail(context.Background(), src, 1500*time.Millisecond, 320); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Thumbnail(context.Background(), src, 1600*time.Millisecond, 160); err != nil {
		t.Fatal(err)
	}
	if runs := tr.runs.Load(); runs != 3 {
		t.Errorf("%d runs, want 3", runs)
	}
	tr2 := newTranscoder(t, src.Store, Options{})
	if b, err := tr2.Thumbnail(context.Background(), src, 1500*time.Millisecond, 160); err != nil || !bytes.Equal(b, results[0]) {
		t.Errorf("the cache of another transcoder: %v", err)
	}
	if runs := tr2.runs.Load(); runs != 0 {
		t.Errorf("a new transcoder ran ffmpeg %d times for a cached thumbnail", runs)
	}
}

// TestSprite: sheets of the small source's layout, and of a layout with
// tiles closer than its key frames (1 s apart), where consecutive tiles
// show the same key frame; concurrent calls share one run.
func TestSprite(t *testing.T) {
	src := smallSource(t, "pat/sprite/r1")
	tr := newTranscoder(t, src.Store, Options{})
	ctx := context.Background()
	l, err := SpriteLayoutOf(src)
	if err != nil {
		t.Fatal(err)
	}
	if l.Interval != time.Second || l.TileWidth != 160 || l.TileHeight != 120 || l.Sheets != 1 || l.Cols != l.Tiles || l.Rows != 1 {
		t.Fatalf("layout of the 6 s 320x240 source with a key frame every second: %+v", l)
	}
	const callers = 4
	res := make([][]byte, callers)
	errs := make([]error, callers)
	release := make(chan struct{})
	tr.beforeRun = func(ctx context.Context, key string) { <-release }
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { res[i], errs[i] = tr.Sprite(ctx, src, 0, l) })
	}
	key := CachePrefix + sourceHash(&src) + thumbsDir + "sprite-" + l.ID() + "/0.jpg"
	waitFor(t, "every caller to join the run", func() bool { return tr.waiters(key) == callers })
	close(release)
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || !bytes.Equal(res[i], res[0]) {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
	}
	if runs := tr.runs.Load(); runs != 1 {
		t.Errorf("%d runs for %d callers", runs, callers)
	}
	sw, sh := l.SheetSize()
	if codec, w, h := probeImage(t, res[0]); codec != "mjpeg" || w != sw || h != sh {
		t.Errorf("sheet: %s %dx%d, want mjpeg %dx%d", codec, w, h, sw, sh)
	}
	tile := func(b []byte, l SpriteLayout, i int) []byte {
		tl := l.Tile(i)
		return grayTile(t, b, tl.X, tl.Y, tl.W, tl.H)
	}
	// Every tile shows another key frame.
	for i := 1; i < l.Tiles-1; i++ {
		d := mad(tile(res[0], l, i-1), tile(res[0], l, i))
		t.Logf("tiles %d and %d differ by %.2f", i-1, i, d)
		if d < 1 {
			t.Errorf("tiles %d and %d look alike (%.2f)", i-1, i, d)
		}
	}

	// Tiles every 0.5 s on sheets of 4x2: tiles 2k and 2k+1 show the key
	// frame at k seconds.
	half := l
	half.Interval = 500 * time.Millisecond
	half.Tiles = int(ceilDiv(l.Duration, half.Interval))
	half.Cols, half.Rows = 4, 2
	half.Sheets = (half.Tiles + 7) / 8
	if half.Sheets != 2 {
		t.Fatalf("layout %+v", half)
	}
	sheet1, err := tr.Sprite(ctx, src, 1, half)
	if err != nil {
		t.Fatal(err)
	}
	if codec, w, h := probeImage(t, sheet1); codec != "mjpeg" || w != 640 || h != 240 {
		t.Errorf("sheet 1 of tiles every 0.5 s: %s %dx%d", codec, w, h)
	}
	// Sheet 1 holds tiles 8 (4 s) to 12 (6 s, the last key frame: 5 s).
	same := mad(tile(sheet1, half, 8), tile(sheet1, half, 9))
	other := mad(tile(sheet1, half, 9), tile(sheet1, half, 10))
	t.Logf("tiles 8 and 9 differ by %.2f, 9 and 10 by %.2f", same, other)
	if same > 1 || other < 2*same+1 {
		t.Errorf("tiles 8 and 9 differ by %.2f (same key frame), tiles 9 and 10 by %.2f", same, other)
	}
	if last := mad(tile(sheet1, half, 11), tile(sheet1, half, 12)); last > 1 {
		t.Errorf("tile 12 (after the last key frame) differs from tile 11 by %.2f", last)
	}
	// The last sheet's place for tiles 13 to 15 is black.
	if black := grayTile(t, sheet1, 160, 120, 160, 120); mad(black, make([]byte, len(black))) > 20 {
		t.Errorf("the tile after the last one is not black")
	}
}

func TestThumbnailErrors(t *testing.T) {
	src := smallSource(t, "quinn/bad/r1")
	tr := newTranscoder(t, src.Store, Options{})
	ctx := context.Background()
	l, err := SpriteLayoutOf(src)
	if err != nil {
		t.Fatal(err)
	}
	dur := src.Index.Duration()
	noPicture := []time.Duration{-time.Nanosecond, dur, dur + time.Second}
	for _, at := range noPicture {
		if _, err := tr.Thumbnail(ctx, src, at, 320); !errors.Is(err, ErrNoSegment) {
			t.Errorf("thumbnail at %v of %v: %v, want ErrNoSegment", at, dur, err)
		}
	}
	for _, w := range []int{0, 8, 321, 4096} {
		if _, err := tr.Thumbnail(ctx, src, 0, w); err == nil || !strings.Contains(err.Error(), "width") {
			t.Errorf("thumbnail %d wide: %v", w, err)
		}
	}
	for _, k := range []int{-1, l.Sheets} {
		if _, err := tr.Sprite(ctx, src, k, l); !errors.Is(err, ErrNoSegment) {
			t.Errorf("sprite sheet %d of %d: %v, want ErrNoSegment", k, l.Sheets, err)
		}
	}
	bad := l
	bad.Tiles++
	if _, err := tr.Sprite(ctx, src, 0, bad); err == nil || !strings.Contains(err.Error(), "cover") {
		t.Errorf("sprite of a layout with a tile too many: %v", err)
	}
	if _, err := tr.Sprite(ctx, src, 0, SpriteLayout{}); err == nil {
		t.Error("sprite of a zero layout")
	}
	audio := src
	audio.Track = src.Index.Audio()
	if _, err := tr.Thumbnail(ctx, audio, 0, 320); err == nil || !strings.Contains(err.Error(), "not video") {
		t.Errorf("thumbnail of the audio track: %v", err)
	}
	if _, err := SpriteLayoutOf(audio); err == nil {
		t.Error("sprite layout of the audio track")
	}
	if runs := tr.runs.Load(); runs != 0 {
		t.Errorf("%d runs for bad requests", runs)
	}
	// The last frame shows until the end of the asset (the audio lasts a
	// little longer than the video).
	if _, err := tr.Thumbnail(ctx, src, dur-time.Millisecond, 320); err != nil {
		t.Errorf("thumbnail at the very end: %v", err)
	}
}

// TestThumbnailFFmpegFails: a failing ffmpeg gives FFmpegErrors that name
// the asset and the picture, nothing is cached, and the failure is
// remembered.
func TestThumbnailFFmpegFails(t *testing.T) {
	src := smallSource(t, "quinn/fails/r1")
	script := filepath.Join(t.TempDir(), "ffmpeg")
	if err := os.WriteFile(script, []byte("#!/bin/sh\ncat >/dev/null\necho 'no picture today' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tr := newTranscoder(t, src.Store, Options{FFmpeg: script})
	ctx := context.Background()
	_, err := tr.Thumbnail(ctx, src, 4500*time.Millisecond, 320)
	var fe *FFmpegError
	if !errors.As(err, &fe) || fe.Key != src.Key || fe.Segment != 1 || fe.Rendition != "thumbnail 320px at 4.5s" {
		t.Fatalf("thumbnail with a failing ffmpeg: %#v", err)
	}
	for _, want := range []string{src.Key, "thumbnail 320px at 4.5s", "segment 1", "exit status 1", "no picture today"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if _, err2 := tr.Thumbnail(ctx, src, 4510*time.Millisecond, 320); err2 != err {
		t.Errorf("the same frame again: %v, want the remembered %v", err2, err)
	}
	l, err := SpriteLayoutOf(src)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tr.Sprite(ctx, src, 0, l)
	if !errors.As(err, &fe) || fe.Key != src.Key || fe.Segment != 0 || !strings.Contains(fe.Rendition, "sprite of") {
		t.Fatalf("sprite with a failing ffmpeg: %#v", err)
	}
	t.Logf("sprite failure: %v", err)
	if runs := tr.runs.Load(); runs != 2 {
		t.Errorf("%d runs, want 2", runs)
	}
	if objs := cacheObjects(t, src.Store); len(objs) != 0 {
		t.Errorf("failed runs cached %v", objs)
	}

	// An ffmpeg that writes something else than a JPEG of the size asked.
	liar := filepath.Join(t.TempDir(), "ffmpeg")
	if err := os.WriteFile(liar, []byte("#!/bin/sh\ncat >/dev/null\necho 'not a picture'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tr2 := newTranscoder(t, src.Store, Options{FFmpeg: liar})
	if _, err := tr2.Thumbnail(ctx, src, 0, 320); !errors.As(err, &fe) || !strings.Contains(err.Error(), "no JPEG") {
		t.Errorf("thumbnail from an ffmpeg that writes text: %v", err)
	}
}
