package mp4build

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jitstream/jitstream/internal/testutil/probe"
)

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

// requireClean fails unless ffprobe and ffmpeg (demuxing every packet of
// every stream) read the file without reporting any error.
func requireClean(tb testing.TB, path string) {
	tb.Helper()
	if _, stderr := probe.Tool(tb, "ffprobe", "-v", "error", "-show_format", "-show_streams", path); stderr != "" {
		tb.Errorf("ffprobe reports errors on %s:\n%s", filepath.Base(path), stderr)
	}
	if _, stderr := probe.Tool(tb, "ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0", "-c", "copy", "-f", "null", "-"); stderr != "" {
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
	out, _ := probe.Tool(tb, "ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0:v:0",
		"-fps_mode", "passthrough", "-f", "framemd5", "-")
	pkts, err := probe.ParseFrameMD5([]byte(out))
	if err != nil {
		tb.Fatalf("framemd5 of %s: %v", path, err)
	}
	frames := make([]frame, len(pkts))
	for i, p := range pkts {
		frames[i] = frame{p.PTS, p.MD5}
	}
	return frames
}

// formatDuration is the container duration ffprobe reports, in seconds.
func formatDuration(tb testing.TB, path string) float64 {
	tb.Helper()
	out, _ := probe.Tool(tb, "ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path)
	d, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
	if err != nil {
		tb.Fatalf("ffprobe duration of %s: %q", path, out)
	}
	return d
}
