package hls

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jitstream/jitstream/internal/testutil/mediatest"
	"github.com/jitstream/jitstream/internal/testutil/probe"
)

// TestEndToEnd serves the fMP4 HLS tree of each fixture over HTTP and has
// ffmpeg read it from the multivariant playlist: no errors, and every
// stream carries exactly the original's packets.
func TestEndToEnd(t *testing.T) {
	probe.RequireTools(t)
	for _, fc := range fixtureCases {
		t.Run(fc.Name, func(t *testing.T) {
			t.Parallel()
			chapters := fc.Chapters(t)
			ix := mediatest.Index(t, chapters...)
			segs := ix.Segments(0)
			dir := t.TempDir()
			writeHLS(t, ix, segs, dir)
			base := mediatest.Serve(t, dir) + "/hls/"
			probe.RequireClean(t, base+"master.m3u8")
			probe.MatchStreams(t, probe.PacketMD5s(t, base+"master.m3u8"), mediatest.OriginalMD5s(t, chapters))
			// Each media playlist on its own.
			for _, tr := range ix.Tracks {
				url := base + TrackName(tr) + "/index.m3u8"
				probe.RequireClean(t, url)
				if n := probe.PacketCounts(t, url)[0]; n != tr.Samples.Len() {
					t.Errorf("%s: %d packets, want %d", url, n, tr.Samples.Len())
				}
			}
		})
	}
}

// TestTSEndToEnd checks TSMaster and TS media playlists with TS segments
// that ffmpeg cuts from the original at the same boundaries (the TS muxer
// of jitstream is tested elsewhere): ffmpeg reads the multivariant
// playlist without errors and finds every packet.
func TestTSEndToEnd(t *testing.T) {
	probe.RequireTools(t)
	for _, fc := range fixtureCases[:2] {
		t.Run(fc.Name, func(t *testing.T) {
			t.Parallel()
			src := fc.Chapters(t)[0]
			ix := mediatest.Index(t, src)
			segs := ix.Segments(0)
			ref := ix.Reference()
			dir := t.TempDir()
			tsDir := filepath.Join(dir, "hls", "ts")
			if err := os.MkdirAll(tsDir, 0o755); err != nil {
				t.Fatal(err)
			}
			var times []string
			for _, s := range segs[1:] {
				times = append(times, strconv.FormatFloat(ref.Seconds(s.Start)-0.001, 'f', 3, 64))
			}
			cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", src, "-map", "0", "-c", "copy",
				"-f", "segment", "-segment_format", "mpegts", "-segment_times", strings.Join(times, ","),
				filepath.Join(tsDir, "%d.ts"))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("ffmpeg: %v\n%s", err, out)
			}
			if files, _ := filepath.Glob(filepath.Join(tsDir, "*.ts")); len(files) != len(segs) {
				t.Fatalf("ffmpeg cut %d TS segments, want %d", len(files), len(segs))
			}
			mediatest.WriteFile(t, dir, "hls/ts/master.m3u8", TSMaster(ix, segs, TSMasterOptions{NoIFrames: true}))
			mediatest.WriteFile(t, dir, "hls/ts/index.m3u8", Media(segs, ref.Timescale, MediaOptions{Format: TS}))
			url := mediatest.Serve(t, dir) + "/hls/ts/master.m3u8"
			probe.RequireClean(t, url)
			got, want := probe.PacketCounts(t, url), probe.PacketCounts(t, src)
			for st, n := range want {
				if got[st] != n {
					t.Errorf("stream %d: %d packets, want %d", st, got[st], n)
				}
			}
		})
	}
}
