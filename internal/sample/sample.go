// Package sample puts a short generated recording into an empty library so
// that a newcomer has something to click and play.
package sample

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/jitstream/jitstream/internal/library"
)

// User owns the sample recording.
const User = "demo"

// Ensure ingests the sample for User when the library has no users at all.
// It needs ffmpeg on PATH to generate the sample. It reports whether it
// ingested anything.
func Ensure(ctx context.Context, lib *library.Library) (bool, error) {
	users, err := lib.Users(ctx)
	if err != nil {
		return false, err
	}
	if len(users) > 0 {
		return false, nil
	}
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return false, fmt.Errorf("sample: ffmpeg is needed to generate the sample (run 'make deps'): %w", err)
	}
	dir, err := os.MkdirTemp("", "jitstream-sample-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "SAMPLE.MP4")
	cmd := exec.CommandContext(ctx, ffmpeg, "-v", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=20",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=20",
		"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "30",
		"-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart", file)
	if out, err := cmd.CombinedOutput(); err != nil {
		return false, fmt.Errorf("sample: ffmpeg: %w: %s", err, out)
	}
	if err := lib.AddUser(ctx, User); err != nil {
		return false, err
	}
	f, err := os.Open(file)
	if err != nil {
		return false, err
	}
	defer f.Close()
	once := false
	_, err = lib.Ingest(ctx, User, "Sample recording", func() (*library.Upload, error) {
		if once {
			return nil, nil
		}
		once = true
		return &library.Upload{Name: "SAMPLE.MP4", R: f}, nil
	})
	return err == nil, err
}
