package transcode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// FFmpegError is the failure of ffmpeg to transcode a segment: it did not
// run, it exited with an error, or what it wrote is not the segment asked
// for (wrong frame count, no key frame first, parameter sets that differ
// from the rendition's init segment). Nothing is cached for it.
type FFmpegError struct {
	// Key is the source's key (Source.Key), Rendition the rendition's name
	// and Segment the segment number.
	Key       string
	Rendition string
	Segment   int
	// Err is what went wrong.
	Err error
	// Stderr holds ffmpeg's last lines of diagnostics, if any.
	Stderr string
}

func (e *FFmpegError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "transcode %s to %s, segment %d: ffmpeg: %v", e.Key, e.Rendition, e.Segment, e.Err)
	if e.Stderr != "" {
		b.WriteString(": ")
		b.WriteString(e.Stderr)
	}
	return b.String()
}

func (e *FFmpegError) Unwrap() error { return e.Err }

// stderrLines is how many of ffmpeg's last stderr lines an FFmpegError
// keeps.
const stderrLines = 12

// tailBuffer keeps the last bytes written to it (at most max).
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return n, nil
}

// lastLines returns the last n non-empty lines, joined with " | ".
func (t *tailBuffer) lastLines(n int) string {
	lines := strings.Split(strings.TrimSpace(string(t.b)), "\n")
	var out []string
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return strings.Join(out, " | ")
}

// ffmpegArgs returns the arguments of the ffmpeg run that transcodes one
// source segment (a fragmented MP4 of the video track alone, on stdin) to
// the rendition r, writing a fragmented MP4 to stdout.
//
//   - -r before the input makes ffmpeg ignore the input's timestamps and
//     number the decoded frames at the source's average frame rate: the
//     encoder's rate control sees a constant frame rate, its parameter sets
//     (VUI timing) are the same for every segment, and the output's own
//     timestamps are replaced anyway (see timing.go);
//   - -fps_mode passthrough: one output frame per decoded frame;
//   - -noautorotate: pictures stay in the coded orientation, the init
//     segment keeps the source's rotation matrix;
//   - x264: High profile at the rendition's level, no B-frames (decode order
//     is presentation order), one IDR frame at the start and no other
//     (keyint=infinite, no scene cuts), parameter sets in-band too
//     (repeat-headers), capped bit rate (maxrate = bitrate, one second of
//     buffer).
func ffmpegArgs(r Rendition, threads int) []string {
	br := strconv.FormatInt(r.VideoBitrate, 10)
	args := []string{
		"-nostdin", "-hide_banner", "-nostats", "-v", "error",
		"-noautorotate", "-r", r.FrameRate, "-f", "mp4", "-i", "pipe:0",
		"-map", "0:v:0", "-an", "-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1",
		"-vf", fmt.Sprintf("scale=%d:%d:flags=bicubic,setsar=1", r.Width, r.Height),
		"-pix_fmt", "yuv420p",
		"-c:v", "libx264", "-preset", "veryfast",
		"-profile:v", "high", "-level:v", levelString(r.Level),
		"-bf", "0",
		"-x264-params", "keyint=infinite:scenecut=0:open-gop=0:repeat-headers=1",
		"-b:v", br, "-maxrate", br, "-bufsize", br,
		"-fps_mode", "passthrough",
	}
	if threads > 0 {
		args = append(args, "-threads", strconv.Itoa(threads))
	}
	return append(args,
		"-f", "mp4", "-movflags", "frag_keyframe+empty_moov+default_base_moof", "pipe:1")
}

// runFFmpeg runs the ffmpeg binary with args, input on stdin, and returns
// its stdout and the last lines of its stderr. The process is killed when
// ctx ends. On failure the error is an *FFmpegError without Key, Rendition
// and Segment (the caller sets them).
func runFFmpeg(ctx context.Context, bin string, args []string, input []byte) (stdout []byte, diag string, err error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = bytes.NewReader(input)
	var out bytes.Buffer
	stderr := &tailBuffer{max: 8 << 10}
	cmd.Stdout, cmd.Stderr = &out, stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			// Killed because the caller is gone: not ffmpeg's failure.
			return nil, "", fmt.Errorf("ffmpeg stopped: %w", context.Cause(ctx))
		}
		if cmd.ProcessState == nil { // it did not start
			var ee *exec.Error
			if errors.As(err, &ee) {
				err = ee.Err
			}
			err = fmt.Errorf("cannot run %q: %w", bin, err)
		}
		return nil, "", &FFmpegError{Err: err, Stderr: stderr.lastLines(stderrLines)}
	}
	return out.Bytes(), stderr.lastLines(stderrLines), nil
}
