package probe_test

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

func runFFmpeg(t *testing.T, args ...string) error {
	t.Helper()
	cmd := exec.Command("ffmpeg", append([]string{"-nostdin", "-v", "error", "-y"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ffmpeg %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return nil
}
