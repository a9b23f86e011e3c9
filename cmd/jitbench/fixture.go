package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The fixture: an N-minute recording with a realistic sample count (60 fps
// H.264 + 48 kHz AAC) but few bytes. One minute is encoded, then N copies
// are concatenated without re-encoding.
//
// The minute's audio is cut at 2812 AAC frames (59.99 s, just under the
// video's 60 s), so that each copy's audio ends before the next copy's
// starts: the concat demuxer then produces strictly increasing timestamps
// instead of overlapping (and "fixed up") audio.
var minuteArgs = []string{
	"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=60",
	"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
	"-t", "60", "-map", "0:v", "-map", "1:a",
	"-c:v", "libx264", "-preset", "ultrafast", "-g", "60",
	"-b:v", "600k", "-maxrate", "600k", "-bufsize", "1200k", "-pix_fmt", "yuv420p",
	"-c:a", "aac", "-b:a", "64k", "-ac", "2", "-frames:a", "2812",
	"-movflags", "+faststart",
}

// fixtureInfo is stored next to the fixture (name.json).
type fixtureInfo struct {
	Path         string    `json:"path"`
	Size         int64     `json:"size"`
	Minutes      int       `json:"minutes"`
	VideoSamples int       `json:"video_samples"`
	AudioSamples int       `json:"audio_samples"`
	GenSeconds   float64   `json:"generation_seconds"`
	Generated    time.Time `json:"generated"`
	Cached       bool      `json:"cached"` // reused from an earlier run
}

func ensureFixture(ctx context.Context, cacheDir string, minutes int) (*fixtureInfo, error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, err
	}
	ffmpegVersion := ""
	if out, err := exec.Command("ffmpeg", "-version").Output(); err == nil {
		ffmpegVersion, _, _ = strings.Cut(string(out), "\n")
	}
	h := sha256.Sum256([]byte(strings.Join(minuteArgs, " ") + "\n" + ffmpegVersion))
	name := fmt.Sprintf("rec%dmin-%x", minutes, h[:6])
	final := filepath.Join(cacheDir, name+".mp4")
	meta := filepath.Join(cacheDir, name+".json")

	if info, ok := readFixtureInfo(final, meta); ok {
		return info, nil
	}
	unlock, err := lockFile(final + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	if info, ok := readFixtureInfo(final, meta); ok { // made while we waited
		return info, nil
	}

	if _, err := exec.LookPath("ffmpeg"); err != nil {
		return nil, fmt.Errorf("ffmpeg is needed to generate the fixture: %w", err)
	}
	fmt.Printf("generating the %d-minute fixture (once; cached in %s) ...\n", minutes, cacheDir)
	t0 := time.Now()
	tmp, err := os.MkdirTemp(cacheDir, name+".tmp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	minute := filepath.Join(tmp, "minute.mp4")
	if err := ffmpeg(ctx, append(minuteArgs, minute)...); err != nil {
		return nil, err
	}
	var list strings.Builder
	for range minutes {
		list.WriteString("file 'minute.mp4'\n")
	}
	listPath := filepath.Join(tmp, "list.txt")
	if err := os.WriteFile(listPath, []byte(list.String()), 0o644); err != nil {
		return nil, err
	}
	out := filepath.Join(tmp, "out.mp4")
	if err := ffmpeg(ctx, "-f", "concat", "-safe", "0", "-i", listPath, "-map", "0", "-c", "copy", "-movflags", "+faststart", out); err != nil {
		return nil, err
	}
	gen := time.Since(t0)
	info := &fixtureInfo{Path: final, Minutes: minutes, GenSeconds: gen.Seconds(), Generated: time.Now().UTC()}
	if info.VideoSamples, info.AudioSamples, err = countPackets(ctx, out); err != nil {
		return nil, err
	}
	fi, err := os.Stat(out)
	if err != nil {
		return nil, err
	}
	info.Size = fi.Size()
	if err := os.Rename(out, final); err != nil {
		return nil, err
	}
	b, _ := json.MarshalIndent(info, "", "  ")
	if err := os.WriteFile(meta, append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	return info, nil
}

func readFixtureInfo(final, meta string) (*fixtureInfo, bool) {
	fi, err := os.Stat(final)
	if err != nil || !fi.Mode().IsRegular() {
		return nil, false
	}
	b, err := os.ReadFile(meta)
	if err != nil {
		return nil, false
	}
	var info fixtureInfo
	if json.Unmarshal(b, &info) != nil || info.Size != fi.Size() {
		return nil, false
	}
	info.Path, info.Cached = final, true
	return &info, true
}

func ffmpeg(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "ffmpeg", append([]string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// countPackets returns the number of video and audio samples in file.
func countPackets(ctx context.Context, file string) (video, audio int, err error) {
	cmd := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-count_packets",
		"-show_entries", "stream=codec_type,nb_read_packets", "-of", "csv=p=0", file)
	out, err := cmd.Output()
	if err != nil {
		return 0, 0, fmt.Errorf("ffprobe: %w", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		kind, n, _ := strings.Cut(strings.TrimSpace(line), ",")
		v, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		switch kind {
		case "video":
			video += v
		case "audio":
			audio += v
		}
	}
	if video == 0 || audio == 0 {
		return 0, 0, fmt.Errorf("ffprobe found %d video and %d audio samples in %s", video, audio, file)
	}
	return video, audio, nil
}
