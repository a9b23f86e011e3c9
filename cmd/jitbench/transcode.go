package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Just-in-time transcoding: a 1080p H.264 recording on a node of its own
// (default settings: the default ladder, one ffmpeg per core), and
//
//   - the time to the first byte of a 720p segment (4 s) that was never
//     made, as a player asks for it once it has the rendition's init
//     segment (made first, from segment 0, as a player loads it first);
//     several segments far apart (no prefetch reaches them), one at a time,
//     each once the prefetches of the one before are done (the node's
//     metrics: two more segments prefetched, no ffmpeg running); median;
//   - the transcoding speed: media seconds per second of wall time of one
//     segment, and per second of ffmpeg CPU time (the server's children:
//     utime + stime of the ffmpeg processes it waited for), that is in
//     multiples of real time per core.

// transcodeArgs make the 1080p fixture: 60 s of testsrc2 at 30 fps, H.264
// with a closed 2 s GOP, and AAC.
var transcodeArgs = []string{
	"-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30",
	"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
	"-t", "60", "-map", "0:v", "-map", "1:a",
	"-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
	"-b:v", "6M", "-maxrate", "6M", "-bufsize", "12M", "-pix_fmt", "yuv420p",
	"-c:a", "aac", "-b:a", "128k", "-ac", "2",
	"-movflags", "+faststart",
}

// transcodeRes holds the figures of the transcoding section.
type transcodeRes struct {
	InitMs         float64   `json:"init_ms"`
	FirstByteMs    []float64 `json:"first_byte_720p_ms"`
	SegmentSeconds float64   `json:"segment_seconds"`
	RealTime       float64   `json:"x_realtime"`
	RealTimePerCPU float64   `json:"x_realtime_per_core"`
	FFmpegCPUSec   float64   `json:"ffmpeg_cpu_seconds_per_segment"`
}

// ensureTranscodeFixture makes (once) the 1080p fixture in cacheDir.
func ensureTranscodeFixture(ctx context.Context, cacheDir string) (string, error) {
	ver := ""
	if out, err := exec.Command("ffmpeg", "-version").Output(); err == nil {
		ver, _, _ = strings.Cut(string(out), "\n")
	}
	h := sha256.Sum256([]byte(strings.Join(transcodeArgs, " ") + "\n" + ver))
	final := filepath.Join(cacheDir, fmt.Sprintf("hd1080-%x.mp4", h[:6]))
	if _, err := os.Stat(final); err == nil {
		return final, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(final + ".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(final); err == nil {
		return final, nil
	}
	fmt.Printf("generating the 1080p transcoding fixture (once; cached in %s) ...\n", cacheDir)
	tmp := final + ".tmp.mp4"
	if err := ffmpeg(ctx, append(transcodeArgs, tmp)...); err != nil {
		return "", err
	}
	return final, os.Rename(tmp, final)
}

// childCPU returns the CPU time (utime + stime) of the children that
// process pid waited for, from /proc/PID/stat; ok is false off Linux.
func childCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The fields after the command name (which may hold spaces), from
	// field 3 on: cutime and cstime are fields 16 and 17.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return 0, false
	}
	cu, err1 := strconv.ParseInt(f[13], 10, 64)
	cs, err2 := strconv.ParseInt(f[14], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(cu+cs) * time.Second / ticks, true
}

// transcodeBench runs the section on a node of its own, with its store in
// work.
func transcodeBench(ctx context.Context, res *results, base *jitstream, repo, work, user string) error {
	fixture, err := ensureTranscodeFixture(ctx, filepath.Join(repo, ".cache", "bench"))
	if err != nil {
		return fmt.Errorf("fixture: %w", err)
	}
	js := &jitstream{bin: base.bin, store: filepath.Join(work, "transcode-store"), logs: base.logs, flags: base.flags}
	id, err := js.ingest(ctx, user, fixture)
	if err != nil {
		return err
	}
	c := newClient()
	defer closeIdle(c)
	node, err := js.start(ctx, c)
	if err != nil {
		return err
	}
	defer node.stop()
	out := &transcodeRes{SegmentSeconds: 4}
	res.Transcode = out
	prefix := node.base + "/streams/" + user + "/" + id + "/hls/"
	get := func(path string) (time.Duration, error) {
		head, _, err := ttfb(ctx, c, prefix+path, 1)
		return head, err
	}
	if _, err := get("master.m3u8"); err != nil {
		return err
	}
	// The master playlist starts the renditions' init segments in the
	// background; the player then asks for one.
	d, err := get("720p/init.mp4")
	if err != nil {
		return err
	}
	out.InitMs = ms(d)
	// Let the background init segments of the other renditions finish.
	if err := waitPrefetched(ctx, node.base, 0, time.Minute); err != nil {
		return err
	}
	prefetched, err := metricValue(ctx, node.base, "jitstream_transcode_prefetched_total")
	if err != nil {
		return err
	}
	var firsts []time.Duration
	var cpu time.Duration
	cpuOK := true
	for _, n := range []int{3, 7, 11} {
		before, ok := childCPU(node.pid)
		d, err := get(fmt.Sprintf("720p/%d.m4s", n))
		if err != nil {
			return err
		}
		firsts = append(firsts, d)
		out.FirstByteMs = append(out.FirstByteMs, ms(d))
		after, ok2 := childCPU(node.pid)
		cpuOK = cpuOK && ok && ok2
		cpu += after - before
		// The prefetches of n+1 and n+2 run now: wait until both are made
		// and the node runs no ffmpeg before the next measurement.
		if err := waitPrefetched(ctx, node.base, prefetched+2, time.Minute); err != nil {
			return err
		}
		prefetched += 2
	}
	first := median(firsts)
	out.RealTime = out.SegmentSeconds / first.Seconds()
	res.add(row{Name: "first byte of a never-seen 4 s 720p segment (from 1080p)", Unit: "ms", Ours: ms(first),
		Target: "<= 1500 ms", Pass: ptr(first <= 1500*time.Millisecond)})
	res.add(row{Name: "transcoding speed, one segment at a time", Unit: "x real time", Ours: out.RealTime})
	if cpuOK && cpu > 0 {
		per := cpu.Seconds() / float64(len(firsts))
		out.FFmpegCPUSec = per
		out.RealTimePerCPU = out.SegmentSeconds / per
		res.add(row{Name: "transcoding speed per core (ffmpeg CPU time)", Unit: "x real time", Ours: out.RealTimePerCPU})
	}
	fmt.Printf("transcoding  1080p H.264 -> 720p: init segment %.0f ms; segments %s ms (first byte); ffmpeg CPU %.2f s per 4 s segment\n",
		out.InitMs, fmtDurs(firsts), out.FFmpegCPUSec)
	return nil
}

// waitPrefetched polls the server's metrics until it has made at least
// want segments ahead of requests and runs no ffmpeg (at four polls in a
// row, 50 ms apart), or fails after timeout.
func waitPrefetched(ctx context.Context, base string, want float64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	idle := 0
	for {
		done, err := metricValue(ctx, base, "jitstream_transcode_prefetched_total")
		if err != nil {
			return err
		}
		running, err := metricValue(ctx, base, "jitstream_transcode_running")
		if err != nil {
			return err
		}
		// Idle for a few polls in a row: a prefetch between two runs
		// shows none running for a moment.
		if done >= want && running == 0 {
			if idle++; idle >= 4 {
				return nil
			}
		} else {
			idle = 0
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%g segments prefetched, %g ffmpeg running after %v; want %g and none", done, running, timeout, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
