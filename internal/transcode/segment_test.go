package transcode

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newTranscoder returns a Transcoder caching in st, closed at the end of
// the test.
func newTranscoder(tb testing.TB, st store.Store, o Options) *Transcoder {
	tb.Helper()
	o.Store = st
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	tr := New(o)
	tb.Cleanup(func() { tr.Close() })
	return tr
}

// TestSegmentTiming transcodes every segment of a 720p source to 480p and
// 360p and checks them with ffprobe: H.264 of the rendition's size, a key
// frame first, one frame per source frame, and exactly the presentation
// start and end of the original rendition's segment, so that segment n of
// one rendition followed by segment n+1 of another has no gap or overlap.
func TestSegmentTiming(t *testing.T) {
	fixtures.RequireTools(t)
	src := newSource(t, fixtures.HD(t, 720), "alice/hd720/r1")
	if len(src.Segments) != 3 {
		t.Fatalf("source has %d segments, want 3 (12 s, 4 s segments)", len(src.Segments))
	}
	tr := newTranscoder(t, src.Store, Options{})
	ctx := context.Background()
	dir := t.TempDir()

	names := []string{"480p", "360p"}
	wantSize := map[string][2]int{"480p": {854, 480}, "360p": {640, 360}}
	got := map[string][]probed{}
	var orig []probed
	for n := range src.Segments {
		orig = append(orig, ffprobe(t, writeTemp(t, dir, fmt.Sprintf("orig-%d.mp4", n), originalSegment(t, src, n))))
	}
	for _, name := range names {
		r := rendition(t, DefaultLadder(), src, name)
		init, err := tr.Init(ctx, src, r)
		if err != nil {
			t.Fatalf("Init %s: %v", name, err)
		}
		all := [][]byte{init}
		for n := range src.Segments {
			seg, err := tr.Segment(ctx, src, r, n)
			if err != nil {
				t.Fatalf("Segment %s %d: %v", name, n, err)
			}
			all = append(all, seg)
			p := ffprobe(t, writeTemp(t, dir, fmt.Sprintf("%s-%d.mp4", name, n), init, seg))
			o := orig[n]
			if p.Codec != "h264" || p.Profile != "High" {
				t.Errorf("%s segment %d: codec %s %s, want h264 High", name, n, p.Codec, p.Profile)
			}
			if ws := wantSize[name]; p.Width != ws[0] || p.Height != ws[1] {
				t.Errorf("%s segment %d: %dx%d, want %dx%d", name, n, p.Width, p.Height, ws[0], ws[1])
			}
			if p.TimeBase != o.TimeBase {
				t.Errorf("%s segment %d: time base %s, the original's is %s", name, n, p.TimeBase, o.TimeBase)
			}
			if !p.Packets[0].Key {
				t.Errorf("%s segment %d: first frame is not a key frame", name, n)
			}
			for k, pk := range p.Packets[1:] {
				if pk.Key {
					t.Errorf("%s segment %d: frame %d is a key frame too", name, n, k+1)
				}
			}
			if len(p.Packets) != len(o.Packets) {
				t.Errorf("%s segment %d: %d frames, the original has %d", name, n, len(p.Packets), len(o.Packets))
			}
			if d := p.start() - o.start(); d < -1 || d > 1 {
				t.Errorf("%s segment %d: starts at %d, the original at %d", name, n, p.start(), o.start())
			}
			if d := p.end() - o.end(); d < -1 || d > 1 {
				t.Errorf("%s segment %d: ends at %d, the original at %d", name, n, p.end(), o.end())
			}
			// Frames in presentation order (no B-frames), each following the
			// one before, decoded at the original's decode times.
			for k := 1; k < len(p.Packets) && k < len(o.Packets); k++ {
				if a, b := p.Packets[k-1], p.Packets[k]; a.PTS+a.Dur != b.PTS || b.DTS != o.Packets[k].DTS {
					t.Errorf("%s segment %d: frame %d at %d+%d, frame %d at pts %d dts %d (the original's dts %d)",
						name, n, k-1, a.PTS, a.Dur, k, b.PTS, b.DTS, o.Packets[k].DTS)
					break
				}
			}
			got[name] = append(got[name], p)
		}
		// The whole rendition decodes without an error, frame for frame.
		whole := writeTemp(t, dir, name+"-all.mp4", all...)
		var want int
		for _, o := range orig {
			want += len(o.Packets)
		}
		if frames := decodeClean(t, whole); frames != want {
			t.Errorf("%s: decoded %d frames, the source has %d", name, frames, want)
		}
	}
	// Switching renditions at every boundary: no gap, no overlap.
	for n := 0; n+1 < len(src.Segments); n++ {
		a, b := got["480p"][n], got["360p"][n+1]
		last := a.Packets[len(a.Packets)-1]
		if last.PTS+last.Dur != b.Packets[0].PTS {
			t.Errorf("480p segment %d ends at %d, 360p segment %d starts at %d", n, last.PTS+last.Dur, n+1, b.Packets[0].PTS)
		}
		a, b = got["360p"][n], got["480p"][n+1]
		last = a.Packets[len(a.Packets)-1]
		if last.PTS+last.Dur != b.Packets[0].PTS {
			t.Errorf("360p segment %d ends at %d, 480p segment %d starts at %d", n, last.PTS+last.Dur, n+1, b.Packets[0].PTS)
		}
	}
	if runs := tr.runs.Load(); runs != int64(len(names)*len(src.Segments)) {
		t.Errorf("%d ffmpeg runs, want %d (one per segment, the init from segment 0)", runs, len(names)*len(src.Segments))
	}
}

// TestSegmentH265 transcodes an H.265 source below every rung to its one
// H.264 rendition.
func TestSegmentH265(t *testing.T) {
	fixtures.RequireTools(t)
	src := newSource(t, fixtures.H265AAC(t), "bob/h265/r1")
	rs := Renditions(DefaultLadder(), src.Track)
	if len(rs) != 1 || rs[0].Name != "240p" || rs[0].Width != 320 || rs[0].Height != 240 {
		t.Fatalf("renditions of a 320x240 H.265 source: %+v", rs)
	}
	tr := newTranscoder(t, src.Store, Options{})
	ctx := context.Background()
	init, err := tr.Init(ctx, src, rs[0])
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	parts := [][]byte{init}
	for n := range src.Segments {
		seg, err := tr.Segment(ctx, src, rs[0], n)
		if err != nil {
			t.Fatalf("segment %d: %v", n, err)
		}
		parts = append(parts, seg)
		p := ffprobe(t, writeTemp(t, dir, fmt.Sprintf("seg%d.mp4", n), init, seg))
		o := ffprobe(t, writeTemp(t, dir, fmt.Sprintf("orig%d.mp4", n), originalSegment(t, src, n)))
		if p.Codec != "h264" || p.Width != 320 || p.Height != 240 || !p.Packets[0].Key {
			t.Errorf("segment %d: %s %dx%d, first key %v", n, p.Codec, p.Width, p.Height, p.Packets[0].Key)
		}
		if p.start() != o.start() || p.end() != o.end() || len(p.Packets) != len(o.Packets) {
			t.Errorf("segment %d: [%d, %d) with %d frames, the original [%d, %d) with %d",
				n, p.start(), p.end(), len(p.Packets), o.start(), o.end(), len(o.Packets))
		}
	}
	decodeClean(t, writeTemp(t, dir, "all.mp4", parts...))
}
