package dash

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/build/hls"
	mp4build "github.com/jitstream/jitstream/internal/build/mp4"
	"github.com/jitstream/jitstream/internal/build/trick"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/probe"
	"github.com/jitstream/jitstream/internal/vfile"
)

// fixtureCases are the originals the tests serve.
var fixtureCases = []struct {
	name     string
	chapters func(testing.TB) []string
}{
	{"h264 aac", one(fixtures.H264AAC)},
	{"h265 aac", one(fixtures.H265AAC)},
	{"two chapters", fixtures.TwoChapters},
}

func one(fixture func(testing.TB) string) func(testing.TB) []string {
	return func(tb testing.TB) []string { return []string{fixture(tb)} }
}

// parseFiles indexes the given chapter files; each chapter's Object is its
// path, so that materialize can read the stored ranges.
func parseFiles(tb testing.TB, paths ...string) *media.Index {
	tb.Helper()
	srcs := make([]media.Source, len(paths))
	for i, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { f.Close() })
		fi, err := f.Stat()
		if err != nil {
			tb.Fatal(err)
		}
		srcs[i] = media.Source{Object: p, Name: filepath.Base(p), R: f, Size: fi.Size()}
	}
	ix, err := media.Parse(context.Background(), srcs)
	if err != nil {
		tb.Fatalf("media.Parse(%v): %v", paths, err)
	}
	return ix
}

// materialize returns the bytes of a virtual file, reading stored pieces
// from the files their Object names.
func materialize(tb testing.TB, f *vfile.File) []byte {
	tb.Helper()
	var out bytes.Buffer
	for _, p := range f.Pieces {
		if !p.IsStored() {
			out.Write(p.Data)
			continue
		}
		src, err := os.Open(p.Object)
		if err != nil {
			tb.Fatal(err)
		}
		_, err = io.Copy(&out, io.NewSectionReader(src, p.Off, p.Len))
		src.Close()
		if err != nil {
			tb.Fatal(err)
		}
	}
	if int64(out.Len()) != f.Size {
		tb.Fatalf("materialized %d bytes, vfile says %d", out.Len(), f.Size)
	}
	return out.Bytes()
}

// mediaSegment builds media segment n of the given tracks.
func mediaSegment(tb testing.TB, ix *media.Index, tracks []*media.Track, segs []media.Segment, n int) *vfile.File {
	tb.Helper()
	var b vfile.Builder
	if err := mp4build.MediaSegment(&b, ix, tracks, segs[n], uint32(n+1)); err != nil {
		tb.Fatal(err)
	}
	return b.File("", "", time.Time{}, "")
}

// writeFile writes data to dir/name, making directories.
func writeFile(tb testing.TB, dir, name string, data []byte) {
	tb.Helper()
	path := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// writeDASH writes the DASH tree of ix under dir/dash as the server would
// serve it: the MPD, and init and media segments of every video and audio
// track and of the trick-play tracks. Segments without samples of a track
// are not written (the MPD does not list them).
func writeDASH(tb testing.TB, ix *media.Index, segs []media.Segment, dir string) {
	tb.Helper()
	mpd, err := MPD(ix, segs, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	writeFile(tb, dir, "dash/manifest.mpd", mpd)
	write := func(name string, t *media.Track) {
		tracks := []*media.Track{t}
		init, err := mp4build.InitSegment(ix, tracks)
		if err != nil {
			tb.Fatal(err)
		}
		writeFile(tb, dir, "dash/"+name+"/init.mp4", init)
		for n, seg := range segs {
			if first, end := hls.SegmentSpan(ix, t, seg); first == end {
				continue
			}
			writeFile(tb, dir, "dash/"+name+"/"+strconv.Itoa(n)+".m4s", materialize(tb, mediaSegment(tb, ix, tracks, segs, n)))
		}
	}
	for _, t := range ix.Tracks {
		switch t.Kind {
		case media.KindVideo:
			write(hls.TrackName(t), t)
			write("trick/"+hls.TrackName(t), trick.Keyframes(t))
		case media.KindAudio:
			write(hls.TrackName(t), t)
		}
	}
}

// serve serves dir on 127.0.0.1 for the duration of the test.
func serve(tb testing.TB, dir string) string {
	tb.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	tb.Cleanup(srv.Close)
	return srv.URL
}

// originalMD5s is the per-stream packet MD5s of the chapters, concatenated,
// every sample included (edit lists ignored).
func originalMD5s(tb testing.TB, chapters []string) map[int][]string {
	tb.Helper()
	all := map[int][]string{}
	for _, c := range chapters {
		for st, md5s := range probe.PacketMD5s(tb, c, "-ignore_editlist", "1") {
			all[st] = append(all[st], md5s...)
		}
	}
	return all
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
// streams of want, in any stream order.
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
			tb.Errorf("no stream carries the %d packets of wanted stream %d", len(w), ws)
		}
	}
}
