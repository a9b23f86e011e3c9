package probe

import (
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// Tool runs ffmpeg or ffprobe with args and returns what it wrote to stdout
// and stderr. It fails the test when the tools are not installed or the
// tool exits with an error; messages on stderr are for the caller to judge.
func Tool(tb testing.TB, tool string, args ...string) (stdout, stderr string) {
	tb.Helper()
	RequireTools(tb)
	cmd := exec.Command(tool, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		tb.Fatalf("probe: %s %s: %v: %s", tool, strings.Join(args, " "), err, strings.TrimSpace(e.String()))
	}
	return o.String(), e.String()
}

// FrameMD5 runs
//
//	ffmpeg -nostdin -hide_banner -v error args -f framemd5 -
//
// and returns the lines of its output: packets with stream copy, decoded
// frames otherwise. Unlike Packets it fails the test on any message at
// level error, not only on a failing exit.
func FrameMD5(tb testing.TB, args ...string) []Packet {
	tb.Helper()
	full := append([]string{"-nostdin", "-hide_banner", "-v", "error"}, args...)
	stdout, stderr := Tool(tb, "ffmpeg", append(full, "-f", "framemd5", "-")...)
	if stderr != "" {
		tb.Fatalf("probe: ffmpeg %s reports errors:\n%s", strings.Join(args, " "), stderr)
	}
	pkts, err := ParseFrameMD5([]byte(stdout))
	if err != nil {
		tb.Fatalf("probe: parsing framemd5 of ffmpeg %s: %v", strings.Join(args, " "), err)
	}
	return pkts
}

// MD5s returns the MD5 of each packet, in order.
func MD5s(pkts []Packet) []string {
	md5s := make([]string, len(pkts))
	for i, p := range pkts {
		md5s[i] = p.MD5
	}
	return md5s
}

// RequireClean marks the test failed (and lets it go on) unless ffmpeg
// demuxes every packet of every stream of src, with stream copy, without
// a failing exit and without any message at level error.
func RequireClean(tb testing.TB, src string) {
	tb.Helper()
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", src, "-map", "0", "-c", "copy", "-f", "null", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		tb.Errorf("ffmpeg reading %s: %v\n%s", src, err, stderr.String())
	}
}

// ConcatMD5s is PacketMD5s of each of files (with the same
// extraInputArgs), the lists of each stream index concatenated in the
// order of files: what one file made of them carries.
func ConcatMD5s(tb testing.TB, files []string, extraInputArgs ...string) map[int][]string {
	tb.Helper()
	all := map[int][]string{}
	for _, f := range files {
		for st, md5s := range PacketMD5s(tb, f, extraInputArgs...) {
			all[st] = append(all[st], md5s...)
		}
	}
	return all
}

// EqualStreams marks the test failed unless got and want (per-stream packet
// MD5s, as PacketMD5s returns them) have the same streams, each stream
// index with the same packets. Messages start with what, if not "".
func EqualStreams(tb testing.TB, what string, got, want map[int][]string) {
	tb.Helper()
	if what != "" {
		what += ": "
	}
	if len(got) != len(want) {
		tb.Errorf("%s%d streams, want %d", what, len(got), len(want))
	}
	for st, w := range want {
		g := got[st]
		if len(g) != len(w) {
			tb.Errorf("%sstream %d: %d packets, want %d", what, st, len(g), len(w))
			continue
		}
		for i := range w {
			if g[i] != w[i] {
				tb.Errorf("%sstream %d: packet %d differs (md5 %s, want %s; first of possibly more)", what, st, i, g[i], w[i])
				break
			}
		}
	}
}

// MatchStreams marks the test failed unless the streams of got carry the
// packets of the streams of want (per-stream packet MD5s), in any stream
// order: a demuxer may number the streams of a presentation otherwise than
// the original (ffmpeg's HLS demuxer lists rendition streams before variant
// streams).
func MatchStreams(tb testing.TB, got, want map[int][]string) {
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
