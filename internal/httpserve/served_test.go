package httpserve

import (
	"context"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/vfile"
)

// spanPacer records the spans of the file that a body sends.
type spanPacer struct{ spans [][2]int64 }

func (p *spanPacer) Next(ctx context.Context, off, n int64) (int64, error) {
	k := min(n, 100)
	if l := len(p.spans); l > 0 && p.spans[l-1][1] == off {
		p.spans[l-1][1] += k
	} else {
		p.spans = append(p.spans, [2]int64{off, off + k})
	}
	return k, nil
}

// TestBodyRanges: BodyRanges names the bytes that ServeFileWith sends.
func TestBodyRanges(t *testing.T) {
	data := make([]byte, 1000)
	f := vfile.New("f", "video/mp4", time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), `"e1"`,
		[]vfile.Piece{vfile.Bytes(data[:300]), vfile.Bytes(data[300:])})
	for _, tc := range []struct {
		name   string
		method string
		hdr    []string
		want   [][2]int64
	}{
		{"full", "GET", nil, [][2]int64{{0, 1000}}},
		{"head", "HEAD", nil, nil},
		{"one range", "GET", []string{"Range", "bytes=100-199"}, [][2]int64{{100, 200}}},
		{"suffix", "GET", []string{"Range", "bytes=-10"}, [][2]int64{{990, 1000}}},
		{"two ranges in the client's order", "GET", []string{"Range", "bytes=500-599,0-9"}, [][2]int64{{500, 600}, {0, 10}}},
		{"coalesced", "GET", []string{"Range", "bytes=0-9,5-19,500-"}, [][2]int64{{0, 20}, {500, 1000}}},
		{"too many ranges", "GET", []string{"Range", "bytes=0-0,2-2,4-4,6-6,8-8,10-10,12-12,14-14,16-16,18-18,20-20,22-22,24-24,26-26,28-28,30-30,32-32"}, [][2]int64{{0, 1000}}},
		{"another unit", "GET", []string{"Range", "items=0-9"}, [][2]int64{{0, 1000}}},
		{"unsatisfiable", "GET", []string{"Range", "bytes=2000-"}, nil},
		{"malformed", "GET", []string{"Range", "bytes=9-2"}, nil},
		{"if-range matches", "GET", []string{"Range", "bytes=10-19", "If-Range", `"e1"`}, [][2]int64{{10, 20}}},
		{"if-range differs", "GET", []string{"Range", "bytes=10-19", "If-Range", `"e2"`}, [][2]int64{{0, 1000}}},
		{"not modified", "GET", []string{"If-None-Match", `"e1"`}, nil},
		{"precondition failed", "GET", []string{"If-Match", `"e2"`}, nil},
		{"post", "POST", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "/f", nil)
			for i := 0; i+1 < len(tc.hdr); i += 2 {
				r.Header.Set(tc.hdr[i], tc.hdr[i+1])
			}
			got := BodyRanges(r, f, Options{})
			if !slices.Equal(got, tc.want) {
				t.Fatalf("BodyRanges = %v, want %v", got, tc.want)
			}
			p := &spanPacer{}
			w := httptest.NewRecorder()
			ServeFileWith(w, r, nil, f, Options{Pacer: p})
			if !slices.Equal(p.spans, got) {
				t.Fatalf("ServeFileWith sent %v (status %d), BodyRanges says %v", p.spans, w.Code, got)
			}
		})
	}
}
