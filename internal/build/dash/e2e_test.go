package dash

import (
	"bufio"
	"bytes"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/jitstream/jitstream/internal/testutil/probe"
)

// TestEndToEnd serves the DASH tree of each fixture over HTTP and has
// ffmpeg read the MPD: no errors, the video and audio representations
// carry exactly the original's packets, and the trick-mode representation
// exactly the original's key frames.
//
// ffmpeg's DASH demuxer ends its whole input as soon as the representation
// with the earliest position ends, so with "-map 0" it cuts the streams
// that end later (the trick-mode representation, whose last key frame
// starts a second before the end, ends it early; audio loses its last
// frame to video). Each representation is therefore read on its own with
// "-map 0:N", which it reads to the end.
func TestEndToEnd(t *testing.T) {
	probe.RequireTools(t)
	for _, fc := range fixtureCases {
		t.Run(fc.name, func(t *testing.T) {
			t.Parallel()
			chapters := fc.chapters(t)
			ix := parseFiles(t, chapters...)
			segs := ix.Segments(0)
			dir := t.TempDir()
			writeDASH(t, ix, segs, dir)
			url := serve(t, dir) + "/dash/manifest.mpd"
			requireClean(t, url)

			want := originalMD5s(t, chapters)
			v := ix.Video()
			var keys []string
			for i, md5 := range want[int(v.ID-1)] {
				if v.Samples.IsSync(i) {
					keys = append(keys, md5)
				}
			}
			want[len(want)] = keys
			got := map[int][]string{}
			for st := range probe.Streams(t, url) {
				got[st] = streamMD5s(t, url, st)
			}
			matchStreams(t, got, want)
		})
	}
}

// streamMD5s returns the MD5 of every packet of stream st of url, read by
// ffmpeg with stream copy (framemd5), failing on any error message.
func streamMD5s(tb testing.TB, url string, st int) []string {
	tb.Helper()
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", url, "-map", "0:"+strconv.Itoa(st),
		"-c", "copy", "-f", "framemd5", "-")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		tb.Fatalf("ffmpeg reading stream %d of %s: %v\n%s", st, url, err, stderr.String())
	}
	var md5s []string
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) < 6 {
			tb.Fatalf("bad framemd5 line %q", line)
		}
		md5s = append(md5s, strings.TrimSpace(f[5]))
	}
	return md5s
}
