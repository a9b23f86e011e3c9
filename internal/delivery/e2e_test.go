package delivery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/delivery"
	"github.com/jitstream/jitstream/internal/server"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/jitserver"
	"github.com/jitstream/jitstream/internal/testutil/pacetest"
)

// End-to-end tests of fast start, throttling and the budget, with real
// HTTP clients on loopback against the jitstream server, on a one-minute
// recording (fixtures.Long: H.264 1.5 Mbit/s and AAC 96 kbit/s, about
// 1.6 Mbit/s). Byte offsets are mapped to media times with ffprobe's packet
// list of the served file (an independent reading), not with our timeline.
// Rates are measured over windows of seconds, with tolerances for a loaded
// machine.

// env is the server environment shared by the subtests: one library with
// the recording, and its consolidated file's packets.
type env struct {
	e     *jitserver.Env
	id    string
	media *pacetest.Media // of the consolidated file
	size  int64
	rate  float64 // average bit rate of the consolidated file
	plain string  // URL of a server without delivery control
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := jitserver.New(t)
	a := jitserver.Ingest[struct {
		ID string `json:"id"`
	}](t, e, fixtures.Long(t, 1))
	v := &env{e: e, id: a.ID, plain: e.URL}
	v.media = pacetest.Probe(t, v.plain+"/files/"+jitserver.User+"/"+a.ID+".mp4", 1000)
	resp, _ := e.Get(t, "/files/"+jitserver.User+"/"+a.ID+".mp4", "Range", "bytes=0-0")
	cr := resp.Header.Get("Content-Range")
	v.size, _ = strconv.ParseInt(cr[strings.LastIndexByte(cr, '/')+1:], 10, 64)
	last := v.media.Duration()
	v.rate = float64(v.size) * 8 / last
	t.Logf("consolidated file: %d bytes, %d packets, %.1f s, %.2f Mbit/s", v.size, len(v.media.Packets), last, v.rate/1e6)
	return v
}

// serve starts a server over the library with a delivery controller of cfg
// and returns its URL and the controller.
func (v *env) serve(t *testing.T, cfg delivery.Config) (string, *delivery.Controller) {
	t.Helper()
	d, err := delivery.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v.e.Serve(t, server.Options{Delivery: d}), d
}

func (v *env) fileURL(base string) string {
	return base + "/files/" + jitserver.User + "/" + v.id + ".mp4"
}

func TestDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test: not in -short")
	}
	v := newEnv(t)
	ctx := context.Background()

	// (a) The fast start carries the configured media; (b) then the rate
	// is the content's rate times the factor.
	t.Run("fast start then pace", func(t *testing.T) {
		const burst, factor = 3.0, 1.1
		var stats []delivery.SessionStats
		var mu sync.Mutex
		url, _ := v.serve(t, delivery.Config{Burst: 3 * time.Second, Factor: factor,
			OnSessionEnd: func(s delivery.SessionStats) { mu.Lock(); stats = append(stats, s); mu.Unlock() }})
		status, arr := pacetest.Download(t, ctx, v.fileURL(url), "", 4500*time.Millisecond)
		if status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
		k := pacetest.Knee(arr, 150*time.Millisecond)
		if k < 0 {
			t.Fatal("no pause after the fast start")
		}
		m := v.media.MediaAt(k)
		t.Logf("(a) fast start: %d bytes (%.1f ms), %.3f s of media; want %.1f s ± 5%%", k, arr[0].At.Seconds()*1000, m, burst)
		if m < burst*0.95 || m > burst*1.05 {
			t.Errorf("(a) the fast start carried %.3f s of media, want %.1f s ± 5%%", m, burst)
		}

		// (b) From the first chunk received after 0.5 s to the last one
		// (about 3.7 s): whole chunks, so that the window does not cut one.
		b0, b1, got, ok := pacetest.Window(arr, 500*time.Millisecond, 100*time.Millisecond)
		if !ok {
			t.Fatal("(b) no paced chunks after 0.5 s")
		}
		want := v.media.ContentRate(b0, b1) * factor
		t.Logf("(b) paced: %.0f kbit/s over %d bytes, target %.0f kbit/s (content %.0f kbit/s × %.1f): %+.1f%%",
			got/1e3, b1-b0, want/1e3, want/factor/1e3, factor, (got/want-1)*100)
		if got < want*0.9 || got > want*1.1 {
			t.Errorf("(b) delivered %.0f kbit/s, want %.0f kbit/s ± 10%%", got/1e3, want/1e3)
		}
		// The server agrees on where the fast start ended.
		waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(stats) == 1 })
		if s := stats[0]; !s.Paced || s.Start != 0 || s.BurstEnd < k-256<<10 || s.BurstEnd > k+256<<10 {
			t.Errorf("session stats %+v (client saw the fast start end at %d)", s, k)
		}
	})

	// (e) A Range request starts a new fast start from its position.
	t.Run("range restarts fast start", func(t *testing.T) {
		const burst = 3.0
		url, _ := v.serve(t, delivery.Config{Burst: 3 * time.Second, Factor: 1})
		from := v.media.OffsetAt(30, v.size)
		status, arr := pacetest.Download(t, ctx, v.fileURL(url), fmt.Sprintf("bytes=%d-", from), 1500*time.Millisecond)
		if status != http.StatusPartialContent {
			t.Fatalf("status %d", status)
		}
		k := pacetest.Knee(arr, 150*time.Millisecond)
		if k < 0 {
			t.Fatal("no pause after the fast start")
		}
		m := v.media.MediaAt(from+k) - v.media.MediaAt(from+1)
		t.Logf("(e) range from %d (%.2f s): fast start of %d bytes, %.3f s of media", from, v.media.MediaAt(from+1), k, m)
		if m < burst*0.95 || m > burst*1.05 {
			t.Errorf("(e) the fast start of a range carried %.3f s of media, want %.1f s ± 5%%", m, burst)
		}
	})

	// (c) Fifty downloads within a budget: the total stays under it and
	// each gets at least its minimum.
	t.Run("budget", func(t *testing.T) {
		const n = 50
		budget := int64(v.rate * n * 1.25) // minimums take 80%
		url, d := v.serve(t, delivery.Config{Burst: 10 * time.Second, Factor: 1.1, MaxEgress: budget})
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var counts [n]atomic.Int64
		var started, done sync.WaitGroup
		started.Add(n)
		done.Add(n)
		errs := make(chan error, n)
		for i := range n {
			go func() {
				defer done.Done()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, v.fileURL(url), nil)
				resp, err := http.DefaultTransport.RoundTrip(req)
				if err != nil {
					started.Done()
					errs <- err
					return
				}
				defer resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					started.Done()
					errs <- fmt.Errorf("status %d", resp.StatusCode)
					return
				}
				buf := make([]byte, 32<<10)
				first := true
				for {
					k, err := resp.Body.Read(buf)
					counts[i].Add(int64(k))
					if first && k > 0 {
						first = false
						started.Done()
					}
					if err != nil {
						return
					}
				}
			}()
		}
		started.Wait()
		select {
		case err := <-errs:
			t.Fatalf("a download failed: %v", err)
		default:
		}
		// Measure from 0.5 s after every session started, for 3 s.
		time.Sleep(500 * time.Millisecond)
		var c0, c1 [n]int64
		t0 := time.Now()
		for i := range n {
			c0[i] = counts[i].Load()
		}
		time.Sleep(3 * time.Second)
		el := time.Since(t0).Seconds()
		for i := range n {
			c1[i] = counts[i].Load()
		}
		st := d.Stats()
		cancel()
		done.Wait()

		var total int64
		lowest := -1.0
		for i := range n {
			total += c1[i] - c0[i]
			r := float64(c1[i]-c0[i]) * 8 / el
			if lowest < 0 || r < lowest {
				lowest = r
			}
		}
		rate := float64(total) * 8 / el
		minimum := float64(st.Budget.Reserved) / n
		t.Logf("(c) %d downloads, budget %s: total %.2f Mbit/s (%.1f%% of the budget); slowest %.2f Mbit/s, minimum %.2f Mbit/s, share %.2f Mbit/s",
			n, delivery.FormatRate(budget), rate/1e6, rate/float64(budget)*100, lowest/1e6, minimum/1e6, float64(st.Budget.Share)/1e6)
		if st.Budget.Sessions != n {
			t.Errorf("(c) %d sessions in the budget, want %d", st.Budget.Sessions, n)
		}
		if rate > float64(budget)*1.03 {
			t.Errorf("(c) total %.2f Mbit/s, over the budget %s + 3%%", rate/1e6, delivery.FormatRate(budget))
		}
		if lowest < minimum {
			t.Errorf("(c) a session got %.2f Mbit/s, below its minimum %.2f Mbit/s", lowest/1e6, minimum/1e6)
		}
		waitFor(t, func() bool { return d.Stats().Budget.Sessions == 0 })
	})

	// (d) A session beyond the minimums is refused: 503, Retry-After, JSON;
	// so are the manifests whose variants no longer fit.
	t.Run("refused", func(t *testing.T) {
		budget := int64(v.rate * 2.5)
		url, d := v.serve(t, delivery.Config{Burst: time.Second, Factor: 1.1, MaxEgress: budget})
		ctx, cancel := context.WithCancel(ctx)
		var held sync.WaitGroup
		for range 2 {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, v.fileURL(url), nil)
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("session within the budget: %v %v", resp, err)
			}
			held.Add(1)
			go func() { defer held.Done(); io.Copy(io.Discard, resp.Body); resp.Body.Close() }()
		}
		for _, path := range []string{
			"/files/" + jitserver.User + "/" + v.id + ".mp4",
			"/files/" + jitserver.User + "/" + v.id + ".frag.mp4?start=10",
			"/streams/" + jitserver.User + "/" + v.id + "/hls/master.m3u8",
			"/streams/" + jitserver.User + "/" + v.id + "/dash/manifest.mpd",
		} {
			resp, err := http.Get(url + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var j struct{ Error, Detail string }
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "10" ||
				resp.Header.Get("Cache-Control") != "no-store" || json.Unmarshal(body, &j) != nil || j.Error == "" {
				t.Errorf("(d) %s beyond the budget: %d, Retry-After %q, Cache-Control %q, %s", path, resp.StatusCode,
					resp.Header.Get("Retry-After"), resp.Header.Get("Cache-Control"), body)
			} else {
				t.Logf("(d) %s: 503, Retry-After %s, %s", path, resp.Header.Get("Retry-After"), strings.TrimSpace(string(body)))
			}
		}
		if st := d.Stats(); st.Refused[delivery.Progressive] != 2 || st.Active[delivery.Progressive] != 2 {
			t.Errorf("(d) stats %+v", st)
		}
		cancel()
		held.Wait()
		waitFor(t, func() bool { return d.Stats().Budget.Sessions == 0 })
		resp, err := http.Get(v.fileURL(url) + "?pace=0")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("(d) after the others ended: %v %v", resp, err)
		}
		resp.Body.Close()
	})

	// (f) Segments are not paced by default (they are with PaceSegments),
	// nor are files asked with pace=0.
	t.Run("unpaced", func(t *testing.T) {
		cfg := delivery.Config{Burst: 500 * time.Millisecond, Factor: 2}
		url, _ := v.serve(t, cfg)
		cfg.PaceSegments = true
		pacedURL, _ := v.serve(t, cfg)
		seg := "/streams/" + jitserver.User + "/" + v.id + "/hls/v1/3.m4s"
		for _, tc := range []struct {
			name, url string
			paced     bool
		}{
			{"segment", url + seg, false},
			{"segment with --pace-segments", pacedURL + seg, true},
			{"whole file with pace=0", v.fileURL(url) + "?pace=0", false},
		} {
			start := time.Now()
			status, arr := pacetest.Download(t, ctx, tc.url, "", 30*time.Second)
			el := time.Since(start)
			if len(arr) == 0 {
				t.Fatalf("(f) %s: status %d, no body", tc.name, status)
			}
			n := arr[len(arr)-1].N
			t.Logf("(f) %s: %d bytes in %v (%.1f Mbit/s)", tc.name, n, el.Round(time.Millisecond), float64(n)*8/el.Seconds()/1e6)
			switch {
			case status != http.StatusOK:
				t.Errorf("(f) %s: status %d", tc.name, status)
			case !tc.paced && el > 2*time.Second:
				t.Errorf("(f) %s: %d bytes took %v: slowed down", tc.name, n, el)
			case tc.paced && el < 1200*time.Millisecond:
				// A 4 s segment: 0.5 s of fast start, 3.5 s at twice the pace.
				t.Errorf("(f) %s: %d bytes took %v, want about 1.75 s", tc.name, n, el)
			}
		}
	})
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the sessions to end")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
