// Package probe wraps ffprobe and ffmpeg for tests. Every helper takes a
// source that is either a file path or an http(s) URL (ffmpeg reads URLs
// itself, with range requests when it seeks) and fails the test on error.
//
// # framemd5 and AVCC
//
// PacketMD5s uses ffmpeg's framemd5 muxer with stream copy. It hashes each
// packet exactly as the demuxer returns it, with no bitstream filter: for
// H.264 and HEVC in MP4 that is the sample as stored in mdat, in AVCC/HVCC
// form (4-byte big-endian NAL unit lengths, no start codes, no parameter
// sets added). So the MD5 of packet i is the MD5 of sample i's bytes in the
// file, and a file whose samples are byte-identical copies of another file's
// samples has identical PacketMD5s (the test of this package checks this
// against mp4ff). The timestamps in Packets are in the stream's time base
// after the demuxer applied the edit list; compare payload hashes, not
// timestamps, when checking that bytes were copied.
package probe

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Stream is one stream as ffprobe -show_streams reports it. Numeric fields
// that ffprobe reports as "N/A" (for example NbFrames of a fragmented file)
// are zero.
type Stream struct {
	Index          int     // stream index in the file
	CodecType      string  // "video", "audio", "data", ...
	CodecName      string  // "h264", "hevc", "aac", "mpeg4", "bin_data", ...
	CodecTagString string  // sample entry, e.g. "avc1", "hvc1", "mp4a", "gpmd"
	Profile        string  // e.g. "High", "LC"
	Width, Height  int     // video only
	PixFmt         string  // video only
	SampleRate     int     // audio only
	Channels       int     // audio only
	TimeBase       string  // e.g. "1/15360"
	StartTime      float64 // seconds
	Duration       float64 // seconds
	NbFrames       int     // sample count that the container declares
	HandlerName    string  // tags.handler_name
}

// FormatInfo is the container as ffprobe -show_format reports it.
type FormatInfo struct {
	FormatName string  // e.g. "mov,mp4,m4a,3gp,3g2,mj2"
	Duration   float64 // seconds
	StartTime  float64 // seconds
	Size       int64   // bytes
	BitRate    int64   // bit/s
	NbStreams  int
}

// Info is the full result of one ffprobe run.
type Info struct {
	Streams []Stream
	Format  FormatInfo
}

type rawStream struct {
	Index          int               `json:"index"`
	CodecType      string            `json:"codec_type"`
	CodecName      string            `json:"codec_name"`
	CodecTagString string            `json:"codec_tag_string"`
	Profile        string            `json:"profile"`
	Width          int               `json:"width"`
	Height         int               `json:"height"`
	PixFmt         string            `json:"pix_fmt"`
	SampleRate     string            `json:"sample_rate"`
	Channels       int               `json:"channels"`
	TimeBase       string            `json:"time_base"`
	StartTime      string            `json:"start_time"`
	Duration       string            `json:"duration"`
	NbFrames       string            `json:"nb_frames"`
	NbReadPackets  string            `json:"nb_read_packets"`
	Tags           map[string]string `json:"tags"`
}

type rawFormat struct {
	FormatName string `json:"format_name"`
	Duration   string `json:"duration"`
	StartTime  string `json:"start_time"`
	Size       string `json:"size"`
	BitRate    string `json:"bit_rate"`
	NbStreams  int    `json:"nb_streams"`
}

func num[T int | int64 | float64](s string) T {
	var zero T
	switch any(zero).(type) {
	case float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return zero
		}
		return T(f)
	default:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return zero
		}
		return T(n)
	}
}

// RequireTools fails the test unless ffmpeg and ffprobe are on PATH.
func RequireTools(tb testing.TB) {
	tb.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Fatalf("probe: %s not found on PATH (%v); run `make deps` to install it", tool, err)
		}
	}
}

// run runs the tool and returns its stdout; it fails the test with stderr on
// error.
func run(tb testing.TB, tool string, args ...string) []byte {
	tb.Helper()
	stdout, _ := Tool(tb, tool, args...)
	return []byte(stdout)
}

// Probe runs ffprobe -show_streams -show_format on src.
func Probe(tb testing.TB, src string) Info {
	tb.Helper()
	out := run(tb, "ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", src)
	var raw struct {
		Streams []rawStream `json:"streams"`
		Format  rawFormat   `json:"format"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		tb.Fatalf("probe: decoding ffprobe output for %s: %v", src, err)
	}
	info := Info{Format: FormatInfo{
		FormatName: raw.Format.FormatName,
		Duration:   num[float64](raw.Format.Duration),
		StartTime:  num[float64](raw.Format.StartTime),
		Size:       num[int64](raw.Format.Size),
		BitRate:    num[int64](raw.Format.BitRate),
		NbStreams:  raw.Format.NbStreams,
	}}
	for _, s := range raw.Streams {
		info.Streams = append(info.Streams, Stream{
			Index:          s.Index,
			CodecType:      s.CodecType,
			CodecName:      s.CodecName,
			CodecTagString: s.CodecTagString,
			Profile:        s.Profile,
			Width:          s.Width,
			Height:         s.Height,
			PixFmt:         s.PixFmt,
			SampleRate:     num[int](s.SampleRate),
			Channels:       s.Channels,
			TimeBase:       s.TimeBase,
			StartTime:      num[float64](s.StartTime),
			Duration:       num[float64](s.Duration),
			NbFrames:       num[int](s.NbFrames),
			HandlerName:    s.Tags["handler_name"],
		})
	}
	return info
}

// Streams returns the streams of src (headers only; it does not read the
// media data).
func Streams(tb testing.TB, src string) []Stream {
	tb.Helper()
	return Probe(tb, src).Streams
}

// Format returns the container information of src.
func Format(tb testing.TB, src string) FormatInfo {
	tb.Helper()
	return Probe(tb, src).Format
}

// Duration returns the duration of src in seconds, as the container reports
// it.
func Duration(tb testing.TB, src string) float64 {
	tb.Helper()
	return Format(tb, src).Duration
}

// PacketCounts returns the number of packets that ffprobe reads from each
// stream of src, by stream index. Unlike Stream.NbFrames it reads the whole
// input, so it also works for fragmented files.
func PacketCounts(tb testing.TB, src string) map[int]int {
	tb.Helper()
	out := run(tb, "ffprobe", "-v", "error", "-count_packets",
		"-show_entries", "stream=index,nb_read_packets", "-of", "json", src)
	var raw struct {
		Streams []rawStream `json:"streams"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		tb.Fatalf("probe: decoding ffprobe output for %s: %v", src, err)
	}
	counts := make(map[int]int, len(raw.Streams))
	for _, s := range raw.Streams {
		counts[s.Index] = num[int](s.NbReadPackets)
	}
	return counts
}

// Packet is one line of ffmpeg's framemd5 output. Timestamps and duration
// are in the stream's time base.
type Packet struct {
	Stream   int
	DTS, PTS int64
	Duration int64
	Size     int
	MD5      string // hex MD5 of the packet payload
}

// Packets returns every packet of src in demux order, via
//
//	ffmpeg -v error [extraInputArgs] -i src -map 0 -c copy -f framemd5 -
//
// extraInputArgs go before -i (for example "-ss", "2" or "-seekable", "0").
func Packets(tb testing.TB, src string, extraInputArgs ...string) []Packet {
	tb.Helper()
	args := append([]string{"-nostdin", "-hide_banner", "-v", "error"}, extraInputArgs...)
	args = append(args, "-i", src, "-map", "0", "-c", "copy", "-f", "framemd5", "-")
	out := run(tb, "ffmpeg", args...)
	pkts, err := ParseFrameMD5(out)
	if err != nil {
		tb.Fatalf("probe: parsing framemd5 of %s: %v", src, err)
	}
	return pkts
}

// ParseFrameMD5 parses the output of ffmpeg's framemd5 muxer: lines
// "stream, dts, pts, duration, size, hash[, side data...]", skipping
// comments.
func ParseFrameMD5(out []byte) ([]Packet, error) {
	var pkts []Packet
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) < 6 {
			return nil, fmt.Errorf("short framemd5 line %q", line)
		}
		var ints [5]int64
		for i := range ints {
			n, err := strconv.ParseInt(strings.TrimSpace(f[i]), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("field %d of framemd5 line %q: %w", i, line, err)
			}
			ints[i] = n
		}
		pkts = append(pkts, Packet{
			Stream: int(ints[0]), DTS: ints[1], PTS: ints[2], Duration: ints[3], Size: int(ints[4]),
			MD5: strings.TrimSpace(f[5]),
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading framemd5 output: %w", err)
	}
	return pkts, nil
}

// PacketMD5s returns, per stream index, the MD5 of every packet payload of
// src in order (see Packets). Two files whose streams carry the same sample
// bytes in the same order have equal results, whatever their timestamps.
func PacketMD5s(tb testing.TB, src string, extraInputArgs ...string) map[int][]string {
	tb.Helper()
	m := make(map[int][]string)
	for _, p := range Packets(tb, src, extraInputArgs...) {
		m[p.Stream] = append(m[p.Stream], p.MD5)
	}
	return m
}

// StreamHash returns ffmpeg's streamhash lines for src, one per stream, like
// "0,v,SHA256=…": a hash over all packet payloads of each stream, via
//
//	ffmpeg -v error -i src -map 0 -c copy -f streamhash -
func StreamHash(tb testing.TB, src string) []string {
	tb.Helper()
	out := run(tb, "ffmpeg", "-nostdin", "-hide_banner", "-v", "error",
		"-i", src, "-map", "0", "-c", "copy", "-f", "streamhash", "-")
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	return lines
}
