package transcode

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
)

// audioSource returns the AAC rendition source of the AC-3 fixture (a
// 1 kHz sine, mono 44.1 kHz), cut into segments of about 1 s.
func audioSource(tb testing.TB) AudioSource {
	tb.Helper()
	fixtures.RequireTools(tb)
	src := newSource(tb, fixtures.AC3Audio(tb), "alice/ac3/1")
	src.Track = src.Index.Audio()
	if src.Track == nil || BrowserAudio(src.Track) {
		tb.Fatalf("fixture audio %+v: want a track browsers cannot play", src.Track)
	}
	src.Segments = src.Index.Segments(time.Second)
	if len(src.Segments) < 4 {
		tb.Fatalf("want at least 4 segments, got %v", src.Segments)
	}
	return AudioSource{Source: src, TrackID: uint32(len(src.Index.Tracks) + 1)}
}

// decodePCM decodes the file's audio with ffmpeg to mono float samples at
// 48 kHz, failing on any ffmpeg error.
func decodePCM(tb testing.TB, path string) []float32 {
	tb.Helper()
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", path, "-map", "0:a:0",
		"-ac", "1", "-ar", "48000", "-f", "f32le", "-")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		tb.Fatalf("decoding %s: %v: %s", path, err, stderr.String())
	}
	pcm := make([]float32, out.Len()/4)
	if err := binary.Read(&out, binary.LittleEndian, pcm); err != nil {
		tb.Fatal(err)
	}
	return pcm
}

// probeAudio returns the codec, sample rate and packet count of a file's
// audio stream, as ffprobe reads them.
func probeAudio(tb testing.TB, path string) (codec string, rate, packets int) {
	tb.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a:0", "-count_packets",
		"-show_entries", "stream=codec_name,sample_rate,nb_read_packets", "-of", "csv=p=0", path).Output()
	if err != nil {
		tb.Fatalf("ffprobe %s: %v", path, err)
	}
	f := strings.Split(strings.TrimSpace(string(out)), ",")
	if len(f) != 3 {
		tb.Fatalf("ffprobe %s: %q", path, out)
	}
	rate, _ = strconv.Atoi(f[1])
	packets, _ = strconv.Atoi(f[2])
	return f[0], rate, packets
}

func TestBrowserAudio(t *testing.T) {
	for codec, want := range map[string]bool{"mp4a.40.2": true, "mp4a.40.5": true, "mp4a.69": true, "mp4a.6B": true,
		"ac-3": false, "ec-3": false, "sowt": false, "ipcm": false, "Opus": false, "mp4a.a5": false} {
		if got := BrowserAudio(&media.Track{Codec: codec}); got != want {
			t.Errorf("BrowserAudio(%s) = %v, want %v", codec, got, want)
		}
	}
}

// TestAudioRendition checks every segment of the AAC rendition with
// ffprobe/ffmpeg, that their concatenation decodes without error to the
// source's duration, in phase with the source sine (which checks that
// ffmpeg's packet i covers input samples [(i-1)*1024, i*1024)), and that
// the joins are seamless.
func TestAudioRendition(t *testing.T) {
	src := audioSource(t)
	st, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tr := New(Options{Store: st, Concurrency: 2})
	defer tr.Close()
	ctx := context.Background()
	dir := t.TempDir()

	init, err := tr.AudioInit(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	track := AudioTrack(src)
	if got, want := int64(track.Samples.Len()), src.audioFrames(); got != want {
		t.Fatalf("AudioTrack has %d frames, want %d", got, want)
	}
	parts := [][]byte{init}
	var joins []int64 // grid samples where a segment starts
	total := 0
	for n := range src.Segments {
		seg, err := tr.AudioSegment(ctx, src, n)
		if err != nil {
			t.Fatalf("segment %d: %v", n, err)
		}
		k0, k1 := src.audioSpan(n)
		// The manifest track's samples of segment n are the same frames.
		ref := src.Index.Reference()
		first := track.Find(media.Rescale(src.Segments[n].Start, ref.Timescale, AudioRate))
		if int64(first) != k0 {
			t.Errorf("segment %d: AudioTrack puts frame %d first, the transcoder %d", n, first, k0)
		}
		codec, rate, packets := probeAudio(t, writeTemp(t, dir, "seg"+strconv.Itoa(n)+".mp4", init, seg))
		if codec != "aac" || rate != AudioRate || int64(packets) != k1-k0 {
			t.Errorf("segment %d: %s %d Hz %d frames, want aac %d Hz %d frames", n, codec, rate, packets, AudioRate, k1-k0)
		}
		total += packets
		if n > 0 {
			joins = append(joins, k0*AudioFrame)
		}
		parts = append(parts, seg)
	}
	// Again from the cache: the same bytes, no new run.
	runs := tr.runs.Load()
	if again, err := tr.AudioSegment(ctx, src, 1); err != nil || !bytes.Equal(again, parts[2]) || tr.runs.Load() != runs {
		t.Errorf("cached segment 1: err %v, same bytes %v, runs %d -> %d", err, bytes.Equal(again, parts[2]), runs, tr.runs.Load())
	}

	all := writeTemp(t, dir, "all.mp4", parts...)
	pcm := decodePCM(t, all)
	srcEnd := src.audioEnd()
	t.Logf("%d segments, %d frames, %d decoded samples, source audio %d samples at 48 kHz", len(src.Segments), total, len(pcm), srcEnd)
	if d := int64(len(pcm)) - srcEnd; d < 0 || d >= AudioFrame {
		t.Errorf("decoded %d samples, the source audio lasts %d (difference %d, want [0, %d))", len(pcm), srcEnd, d, AudioFrame)
	}

	// The source is sin(2π·1000·t)/8 from t = 0: find the lag (in
	// samples) that best matches the decoded audio, over one period.
	const period = 48 // samples of 1 kHz at 48 kHz
	from, to := 4*AudioFrame, len(pcm)-4*AudioFrame
	bestLag, bestErr := 0, math.Inf(1)
	var amp float64
	for lag := -period / 2; lag < period/2; lag++ {
		var e, a float64
		for i := from; i < to; i++ {
			s := math.Sin(2 * math.Pi * float64(i-lag) / period)
			e += (float64(pcm[i]) - s/8) * (float64(pcm[i]) - s/8)
			a += float64(pcm[i]) * s
		}
		if e < bestErr {
			bestLag, bestErr, amp = lag, e, a/float64(to-from)*2
		}
	}
	rms := math.Sqrt(bestErr / float64(to-from))
	t.Logf("decoded sine: lag %d samples, amplitude %.4f (want 0.125), RMS error %.5f", bestLag, amp, rms)
	if bestLag < -2 || bestLag > 2 {
		t.Errorf("the decoded audio lags the source by %d samples: the frames are not on the grid", bestLag)
	}
	if rms > 0.01 {
		t.Errorf("RMS error to the source sine %.5f, want < 0.01", rms)
	}

	// Seamless joins: the difference between the audio and itself one
	// period later is coding noise only; near a join it must be no larger
	// than in the middle of segments.
	resid := func(a, b int) float64 {
		var s float64
		for i := a; i < b; i++ {
			d := float64(pcm[i] - pcm[i-period])
			s += d * d
		}
		return math.Sqrt(s / float64(b-a))
	}
	var mid float64
	for n := range len(joins) {
		k0, k1 := src.audioSpan(n + 1)
		c := int((k0 + k1) / 2 * AudioFrame)
		mid = max(mid, resid(c-AudioFrame, c+AudioFrame))
	}
	for _, j := range joins {
		r := resid(int(j)-AudioFrame, int(j)+AudioFrame)
		t.Logf("join at %d: residual RMS %.5f (mid-segment max %.5f)", j, r, mid)
		if r > 2*mid+0.001 {
			t.Errorf("join at sample %d: residual RMS %.5f, mid-segment %.5f: not seamless", j, r, mid)
		}
	}
}
