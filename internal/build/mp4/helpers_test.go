package mp4build

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/vfile"
)

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

// materialize writes the virtual file to a temporary file and returns its
// path: generated pieces as they are, stored pieces read from the file named
// by their Object.
func materialize(tb testing.TB, f *vfile.File, name string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), name)
	out, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	files := map[string]*os.File{}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	var n int64
	for _, p := range f.Pieces {
		if !p.IsStored() {
			if _, err := out.Write(p.Data); err != nil {
				tb.Fatal(err)
			}
			n += int64(len(p.Data))
			continue
		}
		src := files[p.Object]
		if src == nil {
			if src, err = os.Open(p.Object); err != nil {
				tb.Fatal(err)
			}
			files[p.Object] = src
		}
		if _, err := io.Copy(out, io.NewSectionReader(src, p.Off, p.Len)); err != nil {
			tb.Fatal(err)
		}
		n += p.Len
	}
	if n != f.Size {
		tb.Fatalf("materialized %d bytes, vfile says %d", n, f.Size)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
	return path
}

// topBox is a top-level box of a file.
type topBox struct {
	typ       string
	off, size int64
}

// topLevel lists the top-level boxes of b, failing on a malformed box
// structure (sizes that do not add up to the file).
func topLevel(tb testing.TB, b []byte) []topBox {
	tb.Helper()
	var boxes []topBox
	for off := int64(0); off < int64(len(b)); {
		if int64(len(b))-off < 8 {
			tb.Fatalf("trailing %d bytes at %d", int64(len(b))-off, off)
		}
		size := int64(binary.BigEndian.Uint32(b[off:]))
		typ := string(b[off+4 : off+8])
		if size == 1 {
			size = int64(binary.BigEndian.Uint64(b[off+8:]))
		}
		if size < 8 || off+size > int64(len(b)) {
			tb.Fatalf("box %q at %d has bad size %d (file %d bytes)", typ, off, size, len(b))
		}
		boxes = append(boxes, topBox{typ, off, size})
		off += size
	}
	return boxes
}

// topLevelFile is topLevel of a file's contents.
func topLevelFile(tb testing.TB, path string) []topBox {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return topLevel(tb, b)
}

func boxTypes(boxes []topBox) []string {
	var s []string
	for _, b := range boxes {
		s = append(s, b.typ)
	}
	return s
}

// runTool runs ffmpeg or ffprobe and returns stdout and stderr; it fails
// the test when the tool exits with an error.
func runTool(tb testing.TB, tool string, args ...string) (stdout, stderr string) {
	tb.Helper()
	cmd := exec.Command(tool, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		tb.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, errb.String())
	}
	return out.String(), errb.String()
}

// requireClean fails unless ffprobe and ffmpeg (demuxing every packet of
// every stream) read the file without reporting any error.
func requireClean(tb testing.TB, path string) {
	tb.Helper()
	if _, stderr := runTool(tb, "ffprobe", "-v", "error", "-show_format", "-show_streams", path); stderr != "" {
		tb.Errorf("ffprobe reports errors on %s:\n%s", filepath.Base(path), stderr)
	}
	if _, stderr := runTool(tb, "ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0", "-c", "copy", "-f", "null", "-"); stderr != "" {
		tb.Errorf("ffmpeg reports errors demuxing %s:\n%s", filepath.Base(path), stderr)
	}
}

// frame is one decoded video frame.
type frame struct {
	pts int64 // in the stream time base
	md5 string
}

// decodedFrames decodes the first video stream of path (honouring edit
// lists, without dropping or duplicating frames) and returns its frames in
// presentation order, and the stream time base.
func decodedFrames(tb testing.TB, path string) []frame {
	tb.Helper()
	out, _ := runTool(tb, "ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0:v:0",
		"-fps_mode", "passthrough", "-f", "framemd5", "-")
	var frames []frame
	for _, line := range strings.Split(out, "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) < 6 {
			tb.Fatalf("bad framemd5 line %q", line)
		}
		pts, err := strconv.ParseInt(strings.TrimSpace(f[2]), 10, 64)
		if err != nil {
			tb.Fatalf("bad framemd5 line %q", line)
		}
		frames = append(frames, frame{pts, strings.TrimSpace(f[5])})
	}
	return frames
}

// formatDuration is the container duration ffprobe reports, in seconds.
func formatDuration(tb testing.TB, path string) float64 {
	tb.Helper()
	out, _ := runTool(tb, "ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path)
	d, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
	if err != nil {
		tb.Fatalf("ffprobe duration of %s: %q", path, out)
	}
	return d
}
