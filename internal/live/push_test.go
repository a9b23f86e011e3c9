package live_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/live"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/httpt"
	"github.com/jitstream/jitstream/internal/testutil/probe"
)

// storedMD5s returns the packet MD5s of the init segment and fragments of
// epoch 0 of rep, as stored under the asset, concatenated as one file.
func storedMD5s(t *testing.T, e *env, id, rep string) map[int][]string {
	t.Helper()
	prefix := "users/alice/assets/" + id + "/src/" + rep + "-e0-"
	var all []byte
	keys := []string{prefix + "init"}
	for _, k := range e.objects(t, id) {
		if strings.HasPrefix(k, prefix) && !strings.HasSuffix(k, "-init") {
			keys = append(keys, k)
		}
	}
	if len(keys) < 2 {
		t.Fatalf("no fragment of %s stored: %v", rep, e.objects(t, id))
	}
	for _, k := range keys {
		rc, err := e.Store.Get(context.Background(), k, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	path := filepath.Join(t.TempDir(), rep+".mp4")
	if err := os.WriteFile(path, all, 0o644); err != nil {
		t.Fatal(err)
	}
	return probe.PacketMD5s(t, path)
}

// pushAndCheck runs ffmpeg with args (the output URL last) pushing 8 s in
// real time as stream name, checks that the live HLS master playlist of
// the stream answers while it runs, then that the archived asset carries
// the stored samples, want(stored) and that its HLS plays cleanly.
func pushAndCheck(t *testing.T, e *env, name string, args []string, want func() map[int][]string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", append([]string{"-nostdin", "-hide_banner", "-v", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=8",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=8",
		"-c:v", "libx264", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-c:a", "aac"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// The live playlist, while ffmpeg pushes.
	master := e.url + "/live/alice/" + name + "/hls/master.m3u8"
	var live []byte
	for live == nil {
		select {
		case err := <-done:
			checkPush(t, out.Bytes(), err)
			t.Fatalf("ffmpeg ended before the live playlist of %s answered", name)
		default:
		}
		if resp, b := httpt.Get(t, master); resp.StatusCode == http.StatusOK {
			live = b
			break
		}
		time.Sleep(100 * time.Millisecond) // polling interval, bounded by ffmpeg's run
	}
	if !bytes.Contains(live, []byte("#EXT-X-STREAM-INF")) {
		t.Errorf("live master playlist without a variant:\n%s", live)
	}
	checkPush(t, out.Bytes(), <-done)
	e.waitAsset(t, name)
	got := probe.PacketMD5s(t, e.url+"/files/alice/"+name+".mp4?pace=0")
	probe.EqualStreams(t, "consolidated MP4", got, want())
	if d := probe.Duration(t, e.url+"/files/alice/"+name+".mp4?pace=0"); d < 7.5 || d > 8.5 {
		t.Errorf("consolidated MP4 lasts %.3f s, want 8", d)
	}
	probe.RequireClean(t, e.url+"/streams/alice/"+name+"/hls/master.m3u8")
}

// TestFFmpegPushes: ffmpeg pushes 8 s live as HLS (fMP4, PUT) and as
// Smooth Streaming (ismv, one POST); each stream plays live and is
// archived as an asset carrying exactly the samples pushed.
func TestFFmpegPushes(t *testing.T) {
	t.Parallel()
	fixtures.RequireTools(t)
	e := newEnv(t, 0)
	t.Run("hls", func(t *testing.T) {
		t.Parallel()
		key := live.Key(e.secret, "alice", "hlsshow")
		pushAndCheck(t, e, "hlsshow", []string{"-f", "hls", "-method", "PUT", "-hls_segment_type", "fmp4",
			"-hls_time", "2", "-hls_playlist_type", "event", e.url + "/live/alice/" + key + "/stream.m3u8"},
			func() map[int][]string { return storedMD5s(t, e, "hlsshow", live.HLSRep) })
	})
	t.Run("smooth", func(t *testing.T) {
		t.Parallel()
		key := live.Key(e.secret, "alice", "ismshow")
		pushAndCheck(t, e, "ismshow", []string{"-f", "ismv", e.url + "/live/alice/" + key + "/Streams(stream)"},
			func() map[int][]string {
				return map[int][]string{0: storedMD5s(t, e, "ismshow", "stream0")[0], 1: storedMD5s(t, e, "ismshow", "stream1")[0]}
			})
	})
}
