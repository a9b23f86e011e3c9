package hls

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jitstream/jitstream/internal/testutil/probe"
)

// TestEndToEnd serves the fMP4 HLS tree of each fixture over HTTP and has
// ffmpeg read it from the multivariant playlist: no errors, and every
// stream carries exactly the original's packets.
func TestEndToEnd(t *testing.T) {
	probe.RequireTools(t)
	for _, fc := range fixtureCases {
		t.Run(fc.name, func(t *testing.T) {
			t.Parallel()
			chapters := fc.chapters(t)
			ix := parseFiles(t, chapters...)
			segs := ix.Segments(0)
			dir := t.TempDir()
			writeHLS(t, ix, segs, dir)
			base := serve(t, dir) + "/hls/"
			requireClean(t, base+"master.m3u8")
			matchStreams(t, probe.PacketMD5s(t, base+"master.m3u8"), originalMD5s(t, chapters))
			// Each media playlist on its own.
			for _, tr := range ix.Tracks {
				url := base + TrackName(tr) + "/index.m3u8"
				requireClean(t, url)
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
		t.Run(fc.name, func(t *testing.T) {
			t.Parallel()
			src := fc.chapters(t)[0]
			ix := parseFiles(t, src)
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
			writeFile(t, dir, "hls/ts/master.m3u8", TSMaster(ix, segs, TSMasterOptions{NoIFrames: true}))
			writeFile(t, dir, "hls/ts/index.m3u8", Media(segs, ref.Timescale, MediaOptions{Format: TS}))
			url := serve(t, dir) + "/hls/ts/master.m3u8"
			requireClean(t, url)
			got, want := probe.PacketCounts(t, url), probe.PacketCounts(t, src)
			for st, n := range want {
				if got[st] != n {
					t.Errorf("stream %d: %d packets, want %d", st, got[st], n)
				}
			}
		})
	}
}

// requireClean fails unless ffmpeg demuxes every packet of url without
// reporting an error.
func requireClean(tb testing.TB, url string) {
	tb.Helper()
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", url, "-map", "0", "-c", "copy", "-f", "null", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		tb.Errorf("ffmpeg reading %s: %v\n%s", url, err, stderr.String())
	}
}

// matchStreams checks that the streams of got carry the packets of the
// streams of want, in any stream order (ffmpeg's HLS demuxer lists
// rendition streams before variant streams).
func matchStreams(tb testing.TB, got, want map[int][]string) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Errorf("%d streams, want %d", len(got), len(want))
	}
	used := map[int]bool{}
	for ws, w := range want {
		found := false
		for gs, g := range got {
			if !used[gs] && slices.Equal(g, w) {
				used[gs], found = true, true
				break
			}
		}
		if !found {
			tb.Errorf("no stream carries the %d packets of original stream %d", len(w), ws)
		}
	}
}
