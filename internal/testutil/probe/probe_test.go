package probe_test

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/probe"
)

func TestStreamsAndFormat(t *testing.T) {
	t.Parallel()
	src := fixtures.H264AAC(t)
	s := probe.Streams(t, src)
	if len(s) != 2 {
		t.Fatalf("%d streams, want 2: %+v", len(s), s)
	}
	v, a := s[0], s[1]
	if v.CodecType != "video" || v.CodecName != "h264" || v.CodecTagString != "avc1" || v.Width != 320 || v.Height != 240 || v.NbFrames != 180 {
		t.Errorf("video stream %+v", v)
	}
	if a.CodecType != "audio" || a.CodecName != "aac" || a.SampleRate != 48000 || a.Channels != 2 || a.NbFrames == 0 {
		t.Errorf("audio stream %+v", a)
	}
	if math.Abs(v.Duration-6) > 0.1 {
		t.Errorf("video duration %f", v.Duration)
	}
	f := probe.Format(t, src)
	if !strings.Contains(f.FormatName, "mp4") || f.NbStreams != 2 || f.Size == 0 {
		t.Errorf("format %+v", f)
	}
	if d := probe.Duration(t, src); math.Abs(d-6) > 0.1 {
		t.Errorf("duration %f, want about 6", d)
	}
	counts := probe.PacketCounts(t, src)
	if counts[0] != v.NbFrames || counts[1] != a.NbFrames {
		t.Errorf("packet counts %v, want %d and %d", counts, v.NbFrames, a.NbFrames)
	}
}

// TestPacketMD5sAreStoredSamples shows that framemd5 with stream copy hashes
// the H.264 samples exactly as stored in the MP4 (AVCC, length-prefixed NAL
// units), by comparing with the sample bytes that mp4ff locates.
func TestPacketMD5sAreStoredSamples(t *testing.T) {
	t.Parallel()
	src := fixtures.H264AAC(t)
	md5s := probe.PacketMD5s(t, src)
	if len(md5s) != 2 {
		t.Fatalf("streams %d, want 2", len(md5s))
	}

	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := mp4.ReadMP4File(src)
	if err != nil {
		t.Fatal(err)
	}
	for ti, trak := range f.Moov.Traks {
		n := int(trak.GetNrSamples())
		if len(md5s[ti]) != n {
			t.Fatalf("track %d: %d packets, %d samples", ti, len(md5s[ti]), n)
		}
		for i := 1; i <= n; i++ {
			ranges, err := trak.GetRangesForSampleInterval(uint32(i), uint32(i))
			if err != nil || len(ranges) != 1 {
				t.Fatalf("track %d sample %d: ranges %v, %v", ti, i, ranges, err)
			}
			sample := data[ranges[0].Offset : ranges[0].Offset+ranges[0].Size]
			sum := md5.Sum(sample)
			if got := hex.EncodeToString(sum[:]); got != md5s[ti][i-1] {
				t.Fatalf("track %d sample %d: md5 %s, framemd5 %s", ti, i, got, md5s[ti][i-1])
			}
			if ti == 0 {
				checkAVCC(t, i, sample)
			}
		}
	}
}

// checkAVCC checks that sample is a sequence of 4-byte-length-prefixed NAL
// units that fills it exactly.
func checkAVCC(t *testing.T, nr int, sample []byte) {
	t.Helper()
	for p := 0; p < len(sample); {
		if p+4 > len(sample) {
			t.Fatalf("sample %d: truncated NAL length at %d", nr, p)
		}
		n := int(binary.BigEndian.Uint32(sample[p:]))
		if n <= 1 { // 0x00000001 would be an Annex B start code
			t.Fatalf("sample %d: NAL length %d at %d, not AVCC", nr, n, p)
		}
		p += 4 + n
		if p > len(sample) {
			t.Fatalf("sample %d: NAL runs past the sample", nr)
		}
	}
}

func TestPacketsAndStreamHash(t *testing.T) {
	t.Parallel()
	src := fixtures.H264AAC(t)
	pkts := probe.Packets(t, src)
	if len(pkts) == 0 || pkts[0].Size == 0 || len(pkts[0].MD5) != 32 {
		t.Fatalf("packets %+v", pkts[:min(len(pkts), 2)])
	}
	var total int64
	for _, p := range pkts {
		if p.Stream == 0 {
			total += p.Duration
		}
	}
	if total != 6*15360 { // 180 frames of 512 ticks in 1/15360
		t.Errorf("total video duration %d ticks, want %d", total, 6*15360)
	}

	h := probe.StreamHash(t, src)
	if len(h) != 2 || !strings.HasPrefix(h[0], "0,v,SHA256=") || !strings.HasPrefix(h[1], "1,a,SHA256=") {
		t.Errorf("streamhash %q", h)
	}
	// Remuxing keeps the packets, so the hashes stay.
	remux := filepath.Join(t.TempDir(), "remux.mp4")
	if err := runFFmpeg(t, "-i", src, "-map", "0", "-c", "copy", remux); err != nil {
		t.Fatal(err)
	}
	if got := probe.StreamHash(t, remux); !slices.Equal(got, h) {
		t.Errorf("remux streamhash %q, want %q", got, h)
	}
	a, b := probe.PacketMD5s(t, src), probe.PacketMD5s(t, remux)
	for i := range 2 {
		if !slices.Equal(a[i], b[i]) {
			t.Errorf("stream %d: packet md5s differ after remux", i)
		}
	}
}

func TestHTTPSource(t *testing.T) {
	t.Parallel()
	src := fixtures.H264AAC(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, src)
	}))
	defer srv.Close()
	url := srv.URL + "/video.mp4"

	if got, want := probe.Duration(t, url), probe.Duration(t, src); got != want {
		t.Errorf("duration over HTTP %f, from file %f", got, want)
	}
	if got := probe.Streams(t, url); len(got) != 2 || got[0].CodecName != "h264" {
		t.Errorf("streams over HTTP %+v", got)
	}
	a, b := probe.PacketMD5s(t, url), probe.PacketMD5s(t, src)
	for i := range 2 {
		if !slices.Equal(a[i], b[i]) {
			t.Errorf("stream %d: packet md5s over HTTP differ from the file's", i)
		}
	}
	// Extra input args: start at the keyframe at 3 s.
	seeked := probe.PacketMD5s(t, url, "-ss", "3")
	if n := len(seeked[0]); n == 0 || n >= len(b[0]) || !slices.Equal(seeked[0], b[0][len(b[0])-n:]) {
		t.Errorf("-ss 3: %d video packets, want a tail of the %d", n, len(b[0]))
	}
}
