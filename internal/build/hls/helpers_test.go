package hls

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	mp4build "github.com/jitstream/jitstream/internal/build/mp4"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/probe"
	"github.com/jitstream/jitstream/internal/vfile"
)

// fixtureCases are the originals the end-to-end tests serve.
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

// materialize returns the bytes of a virtual file: generated pieces as they
// are, stored pieces read from the file named by their Object.
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

// writeHLS writes the fMP4 HLS tree of ix under dir/hls, as the server
// would serve it: the master playlist, and for every video and audio track
// its media playlist, init segment, media segments and (video) I-frame
// playlist.
func writeHLS(tb testing.TB, ix *media.Index, segs []media.Segment, dir string) {
	tb.Helper()
	writeFile(tb, dir, "hls/master.m3u8", Master(ix, segs, MasterOptions{}))
	// The fixtures have no recording time: date the playlists anyway.
	start := ix.Created
	if start.IsZero() {
		start = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	}
	for _, t := range ix.Tracks {
		if t.Kind != media.KindVideo && t.Kind != media.KindAudio {
			continue
		}
		name := "hls/" + TrackName(t) + "/"
		tracks := []*media.Track{t}
		init, err := mp4build.InitSegment(ix, tracks)
		if err != nil {
			tb.Fatal(err)
		}
		writeFile(tb, dir, name+"init.mp4", init)
		for n := range segs {
			writeFile(tb, dir, name+strconv.Itoa(n)+".m4s", materialize(tb, mediaSegment(tb, ix, tracks, segs, n)))
		}
		writeFile(tb, dir, name+"index.m3u8", Media(TrackSegments(ix, t, segs), t.Timescale, MediaOptions{Start: start, DateTimeEvery: 1}))
		if t.Kind == media.KindVideo {
			frames, err := FMP4IFrames(ix, t, segs)
			if err != nil {
				tb.Fatal(err)
			}
			writeFile(tb, dir, name+"iframes.m3u8", IFrames(frames, t.Timescale, MediaOptions{Start: start}))
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
