package httpserve

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/store"
)

// chunkPacer lets chunks of at most size bytes through and records the
// calls.
type chunkPacer struct {
	size  int64
	mu    sync.Mutex
	calls []pacerCall
	// failAt, when positive, makes Next fail once off reaches it.
	failAt int64
}

type pacerCall struct{ off, n, got int64 }

func (p *chunkPacer) Next(ctx context.Context, off, n int64) (int64, error) {
	if p.failAt > 0 && off >= p.failAt {
		return 0, context.Canceled
	}
	k := min(n, p.size)
	p.mu.Lock()
	p.calls = append(p.calls, pacerCall{off, n, k})
	p.mu.Unlock()
	return k, nil
}

// covered checks that the calls cover exactly [start, end) in order.
func (p *chunkPacer) covered(t *testing.T, ranges ...[2]int64) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	i := 0
	for _, rg := range ranges {
		for off := rg[0]; off < rg[1]; {
			if i >= len(p.calls) {
				t.Fatalf("no call for offset %d", off)
			}
			c := p.calls[i]
			if c.off != off || c.got > p.size || c.got < 1 || off+c.n > rg[1] {
				t.Fatalf("call %d: %+v at offset %d of range %v", i, c, off, rg)
			}
			off += c.got
			i++
		}
	}
	if i != len(p.calls) {
		t.Fatalf("%d calls, %d expected", len(p.calls), i)
	}
}

func TestPacer(t *testing.T) {
	stores(t, func(t *testing.T, fx *fixture, st store.Store) {
		size := int64(len(fx.want))
		for _, tc := range []struct {
			name   string
			hdr    []string
			status int
			want   []byte
			ranges [][2]int64
		}{
			{"full", nil, 200, fx.want, [][2]int64{{0, size}}},
			{"range", []string{"Range", "bytes=1500-2500000"}, 206, fx.want[1500:2500001], [][2]int64{{1500, 2500001}}},
			{"multipart", []string{"Range", "bytes=10-20,1000000-1300000"}, 206, nil, [][2]int64{{10, 21}, {1000000, 1300001}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p := &chunkPacer{size: 64 << 10}
				res := do(t, newServer(t, st, fx.file, Options{Pacer: p}), "GET", tc.hdr...)
				res.check(t, tc.status)
				if tc.want != nil && !bytes.Equal(res.body, tc.want) {
					t.Fatalf("body differs")
				}
				p.covered(t, tc.ranges...)
			})
		}
		t.Run("head", func(t *testing.T) {
			p := &chunkPacer{size: 1}
			do(t, newServer(t, st, fx.file, Options{Pacer: p}), "HEAD").check(t, 200)
			if len(p.calls) != 0 {
				t.Errorf("HEAD asked the pacer %d times", len(p.calls))
			}
		})
		t.Run("error aborts", func(t *testing.T) {
			p := &chunkPacer{size: 64 << 10, failAt: 1 << 20}
			res := do(t, newServer(t, st, fx.file, Options{Pacer: p}), "GET")
			if res.err == nil || int64(len(res.body)) > 1<<20+64<<10 {
				t.Fatalf("body of %d bytes, error %v: want a truncated body", len(res.body), res.err)
			}
		})
	})
}

// sleepyPacer lets chunks of size bytes through, one per interval.
type sleepyPacer struct {
	size     int64
	interval time.Duration
}

func (p sleepyPacer) Next(ctx context.Context, off, n int64) (int64, error) {
	t := time.NewTimer(p.interval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-t.C:
		return min(n, p.size), nil
	}
}

// TestPacerPaces checks that the pacer's waits are what sets the pace, and
// that a client going away ends the body at once.
func TestPacerPaces(t *testing.T) {
	fx := newFixture(t)
	p := sleepyPacer{size: 256 << 10, interval: 20 * time.Millisecond}
	srv := newServer(t, fx.fs, fx.file, Options{Pacer: p})
	start := time.Now()
	res := do(t, srv, "GET")
	res.check(t, 200)
	chunks := (int64(len(fx.want)) + p.size - 1) / p.size // at least, more at piece ends
	if d := time.Since(start); d < time.Duration(chunks)*p.interval {
		t.Errorf("%d bytes in %v, want at least %v", len(fx.want), d, time.Duration(chunks)*p.interval)
	}

	// A client that goes away: the handler returns without waiting.
	slow := sleepyPacer{size: 1 << 10, interval: time.Hour}
	done := make(chan struct{})
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		ServeFileWith(w, r, fx.fs, fx.file, Options{Pacer: slow})
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/f", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := srv.Client().Do(req); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler still waits after the client went away")
	}
}

// nopPacer lets chunks of at most size bytes through at once.
type nopPacer struct{ size int64 }

func (p nopPacer) Next(ctx context.Context, off, n int64) (int64, error) { return min(n, p.size), nil }

// BenchmarkPacedServe serves the 64 MiB file through a pacer that lets
// chunks of 64 KiB through at once: the cost of chunking (one sendfile per
// chunk) against BenchmarkServeFull.
func BenchmarkPacedServe(b *testing.B) {
	fs, f := benchFile(b)
	srv := newServer(b, fs, f, Options{Pacer: nopPacer{size: 64 << 10}})
	b.ReportAllocs()
	b.SetBytes(f.Size)
	for b.Loop() {
		benchGet(b, srv.Client(), srv.URL, "", f.Size)
	}
}
