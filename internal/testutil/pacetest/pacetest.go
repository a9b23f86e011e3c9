// Package pacetest measures paced HTTP deliveries for tests: a client that
// downloads as fast as it can and records when the bytes arrive (Download),
// the end of the fast start (Knee), the chunks of the paced part
// (ChunkEnds) and the delivered rate over a window of whole chunks
// (Window); and the media time of each byte of a served MP4 as ffprobe
// reads it (Probe), an independent reading to compare delivered rates with
// the content's rate.
package pacetest

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/testutil/probe"
)

// Arrival is when the client had received N bytes of the body.
type Arrival struct {
	At time.Duration // since the first byte
	N  int64
}

// Download reads url (with an optional Range) as fast as it can for at
// most d, or to the end, recording arrivals. It returns the status too.
func Download(tb testing.TB, ctx context.Context, url, rng string, d time.Duration) (int, []Arrival) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64<<10)
	var arr []Arrival
	var total int64
	var first time.Time
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if first.IsZero() {
				first = time.Now()
			}
			total += int64(n)
			arr = append(arr, Arrival{time.Since(first), total})
		}
		if err != nil {
			break
		}
	}
	return resp.StatusCode, arr
}

// Knee is the number of bytes received before the first pause of at least
// gap: the end of the fast start; -1 when there is no such pause.
func Knee(arr []Arrival, gap time.Duration) int64 {
	for i := 1; i < len(arr); i++ {
		if arr[i].At-arr[i-1].At >= gap {
			return arr[i-1].N
		}
	}
	return -1
}

// ChunkEnds lists the indexes of the arrivals that end a chunk: followed
// by a pause of at least gap, or the last one.
func ChunkEnds(arr []Arrival, gap time.Duration) []int {
	var ends []int
	for i := range arr {
		if i == len(arr)-1 || arr[i+1].At-arr[i].At >= gap {
			ends = append(ends, i)
		}
	}
	return ends
}

// Window measures the delivery from the end of the first chunk received
// at or after from to the end of the last chunk (chunks end with a pause
// of at least gap): whole chunks, so that the window cuts none. It returns
// the body offsets b0 and b1 at both ends and the delivered rate in bits
// per second; ok is false when there are not two chunk ends in the window.
func Window(arr []Arrival, from, gap time.Duration) (b0, b1 int64, rate float64, ok bool) {
	ends := ChunkEnds(arr, gap)
	j := sort.Search(len(ends), func(i int) bool { return arr[ends[i]].At >= from })
	if j >= len(ends)-1 {
		return 0, 0, 0, false
	}
	i0, i1 := ends[j], ends[len(ends)-1]
	b0, b1 = arr[i0].N, arr[i1].N
	return b0, b1, float64(b1-b0) * 8 / (arr[i1].At - arr[i0].At).Seconds(), true
}

// Packet is a packet of a media file: its byte range and decode time.
type Packet struct {
	Pos, Size int64
	DTS       float64 // seconds, negative times as 0
}

// Media is the packets of a file by position, as ffprobe reads them, to
// map byte offsets to media times.
type Media struct {
	Packets []Packet
}

// Probe reads the packets of src (a path or URL; serve it unpaced) with
// ffprobe. It fails the test when ffprobe finds fewer than minPackets.
func Probe(tb testing.TB, src string, minPackets int) *Media {
	tb.Helper()
	out, _ := probe.Tool(tb, "ffprobe", "-v", "error", "-show_entries", "packet=pos,size,dts_time", "-of", "csv=p=0", src)
	m := &Media{}
	for line := range strings.Lines(out) {
		// ffprobe's field order: dts_time, size, pos.
		f := strings.Split(strings.TrimSpace(line), ",")
		if len(f) < 3 {
			continue
		}
		dts, err1 := strconv.ParseFloat(f[0], 64)
		size, err2 := strconv.ParseInt(f[1], 10, 64)
		pos, err3 := strconv.ParseInt(f[2], 10, 64)
		if err1 == nil && err2 == nil && err3 == nil {
			m.Packets = append(m.Packets, Packet{pos, size, max(dts, 0)})
		}
	}
	if len(m.Packets) < minPackets {
		tb.Fatalf("ffprobe found %d packets in %s, want at least %d", len(m.Packets), src, minPackets)
	}
	sort.Slice(m.Packets, func(i, j int) bool { return m.Packets[i].Pos < m.Packets[j].Pos })
	return m
}

// Duration is the latest decode time of the packets.
func (m *Media) Duration() float64 {
	var d float64
	for _, p := range m.Packets {
		d = max(d, p.DTS)
	}
	return d
}

// MediaAt is the media time reached by the bytes before off: the latest
// decode time of the packets that start before off.
func (m *Media) MediaAt(off int64) float64 {
	var t float64
	for _, p := range m.Packets {
		if p.Pos >= off {
			break
		}
		t = max(t, p.DTS)
	}
	return t
}

// OffsetAt is the position of the first packet decoded at or after t, or
// end when there is none.
func (m *Media) OffsetAt(t float64, end int64) int64 {
	for _, p := range m.Packets {
		if p.DTS >= t {
			return p.Pos
		}
	}
	return end
}

// ContentRate is the bit rate, in bits per second, of the media between
// offsets a and b.
func (m *Media) ContentRate(a, b int64) float64 {
	return float64(b-a) * 8 / (m.MediaAt(b) - m.MediaAt(a))
}
