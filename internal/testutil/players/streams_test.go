package players_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jitstream/jitstream/internal/testutil/fixtures"
)

// The streams of the self-test are made by ffmpeg from a 20 s source, so
// that the helpers are tested without jitstream's streaming code.

// sourceArgs make the 20 s source: 320x240 testsrc2 at 30 fps, H.264 with a
// closed GOP of 1 s, AAC-LC 48 kHz stereo, faststart. Streams cut from it
// with stream copy have 2 s segments.
var sourceArgs = []string{
	"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=20",
	"-f", "lavfi", "-i", "sine=frequency=440:beep_factor=4:sample_rate=48000:duration=20",
	"-map", "0:v", "-map", "1:a",
	"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
	"-g", "30", "-keyint_min", "30", "-sc_threshold", "0",
	"-c:a", "aac", "-ac", "2", "-ar", "48000", "-b:a", "64k",
	"-movflags", "+faststart",
}

var sourceMu sync.Mutex

// source returns the 20 s source, cached in the fixture cache directory
// (fixtures.Dir) under a name that hashes its arguments. Concurrent makers
// write temporary files and rename them into place, so the last one wins
// with identical content.
func source(t *testing.T) string {
	t.Helper()
	fixtures.RequireTools(t)
	sourceMu.Lock() // one maker per process; parallel tests wait
	defer sourceMu.Unlock()
	h := sha256.New()
	for _, a := range append([]string{"players-source-v1"}, sourceArgs...) {
		h.Write([]byte(a))
		h.Write([]byte{0})
	}
	final := filepath.Join(fixtures.Dir(t), "players-20s-"+hex.EncodeToString(h.Sum(nil))[:16]+".mp4")
	if fi, err := os.Stat(final); err == nil && fi.Size() > 0 {
		return final
	}
	f, err := os.CreateTemp(filepath.Dir(final), filepath.Base(final)+".tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	tmp := f.Name()
	f.Close()
	defer os.Remove(tmp)
	ffmpeg(t, append(append([]string{}, sourceArgs...), "-f", "mp4", tmp)...)
	if err := os.Chmod(tmp, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, final); err != nil {
		t.Fatal(err)
	}
	return final
}

// ffmpeg runs ffmpeg quietly and fails the test on error.
func ffmpeg(t *testing.T, args ...string) {
	t.Helper()
	full := append([]string{"-nostdin", "-hide_banner", "-v", "error", "-y"}, args...)
	cmd := exec.Command("ffmpeg", full...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ffmpeg %s: %v: %s", strings.Join(full, " "), err, stderr.String())
	}
}

// makeHLS writes an HLS presentation of src with 2 s segments into a new
// directory: master.m3u8 (as ffmpeg writes it: BANDWIDTH and RESOLUTION, no
// CODECS) and the media playlist index.m3u8, with fMP4 (init.mp4,
// seg<n>.m4s) or MPEG-TS (seg<n>.ts) segments. extra are more ffmpeg
// arguments after the input (e.g. "-map", "0:a").
func makeHLS(t *testing.T, src string, fmp4 bool, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"-i", src}, extra...)
	args = append(args, "-c", "copy", "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
		"-master_pl_name", "master.m3u8")
	if fmp4 {
		args = append(args, "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
			"-hls_segment_filename", filepath.Join(dir, "seg%d.m4s"))
	} else {
		args = append(args, "-hls_segment_filename", filepath.Join(dir, "seg%d.ts"))
	}
	ffmpeg(t, append(args, filepath.Join(dir, "index.m3u8"))...)
	return dir
}

// makeDASH writes a DASH presentation of src (manifest.mpd, SegmentTemplate
// with SegmentTimeline, one adaptation set per stream, 2 s segments) into a
// new directory.
func makeDASH(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	ffmpeg(t, "-i", src, "-c", "copy", "-f", "dash", "-seg_duration", "2", filepath.Join(dir, "manifest.mpd"))
	return dir
}

// makeSmooth writes a Smooth Streaming presentation of src into a new
// directory with ffmpeg's smoothstreaming muxer: Manifest and
// QualityLevels(<bitrate>)/Fragments(<type>=<start>) files, 2 s fragments.
//
// ffmpeg names each fragment file after the fragment's real start time
// (video at 666667 = 2 frames of B-frame delay, audio at 453334), but its
// manifest has only <c n d> entries, from which a client computes start
// times from 0 and asks for Fragments(video=0). makeSmooth adds the real
// start time of the first fragment as t="…" to the first <c> of each
// StreamIndex, which makes every computed start time match a file. With
// asIs, it leaves ffmpeg's manifest as it is (dash.js then gets 404 for
// Fragments(video=0)).
func makeSmooth(t *testing.T, src string, asIs bool) string {
	t.Helper()
	dir := t.TempDir()
	ffmpeg(t, "-i", src, "-c", "copy", "-min_frag_duration", "2000000", "-f", "smoothstreaming", dir)
	if asIs {
		return dir
	}
	manifest := filepath.Join(dir, "Manifest")
	b, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	// Start times of the fragment files per stream type.
	starts := map[string][]int64{}
	files, err := filepath.Glob(filepath.Join(dir, "QualityLevels(*)", "Fragments(*)"))
	if err != nil {
		t.Fatal(err)
	}
	fragRe := regexp.MustCompile(`^Fragments\((\w+)=(\d+)\)$`)
	for _, f := range files {
		m := fragRe.FindStringSubmatch(filepath.Base(f))
		if m == nil {
			t.Fatalf("unexpected fragment file %s", f)
		}
		n, _ := strconv.ParseInt(m[2], 10, 64)
		starts[m[1]] = append(starts[m[1]], n)
	}
	parts := strings.Split(string(b), "<StreamIndex ")
	typeRe := regexp.MustCompile(`^Type="(\w+)"`)
	for i := 1; i < len(parts); i++ {
		m := typeRe.FindStringSubmatch(parts[i])
		if m == nil {
			t.Fatalf("StreamIndex without Type in %s", b)
		}
		s := starts[m[1]]
		if len(s) == 0 {
			t.Fatalf("no fragment files for stream type %s", m[1])
		}
		sort.Slice(s, func(a, b int) bool { return s[a] < s[b] })
		if !strings.Contains(parts[i], `<c n="0" d=`) {
			t.Fatalf("unexpected chunk list in StreamIndex %s", parts[i])
		}
		parts[i] = strings.Replace(parts[i], `<c n="0" d=`, fmt.Sprintf(`<c n="0" t="%d" d=`, s[0]), 1)
	}
	if err := os.WriteFile(manifest, []byte(strings.Join(parts, "<StreamIndex ")), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// serveDir serves dir on 127.0.0.1 and returns the server's URL. With cors,
// every response carries Access-Control-Allow-Origin: * like jitstream's.
func serveDir(t *testing.T, dir string, cors bool) string {
	t.Helper()
	files := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cors {
			w.Header().Set("Access-Control-Allow-Origin", "*")
		}
		switch filepath.Ext(r.URL.Path) {
		case ".m3u8":
			w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
		case ".mpd":
			w.Header().Set("Content-Type", "application/dash+xml")
		case ".m4s", ".mp4":
			w.Header().Set("Content-Type", "video/mp4")
		case ".ts":
			w.Header().Set("Content-Type", "video/mp2t")
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
