package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/jitstream/jitstream/internal/testutil/httpt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/jitstream/jitstream/internal/delivery"
	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/outputs"
	"github.com/jitstream/jitstream/internal/server"
	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/jitserver"
	"github.com/jitstream/jitstream/internal/testutil/minio"
	"github.com/jitstream/jitstream/internal/testutil/teststore"
	miniogo "github.com/minio/minio-go/v7"
)

// scrape gets url/metrics and parses it with Prometheus's own text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s\n%.500s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams
}

// metric is the value of the sample of family name whose labels include
// the given name and value pairs (the sum when several match), and
// whether the family exists.
func metric(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	fam, ok := fams[name]
	if !ok {
		return 0, false
	}
	var sum float64
next:
	for _, m := range fam.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Untyped != nil:
			sum += m.Untyped.GetValue()
		}
	}
	return sum, true
}

// TestMetrics drives a server with pacing and a budget for one session:
// a paced download, a second download refused (503) while the first runs,
// an HLS master playlist, 404s; then checks what /metrics says, parsed
// with Prometheus's text parser.
func TestMetrics(t *testing.T) {
	e := jitserver.New(t)
	a := jitserver.Ingest[asset](t, e, fixtures.H264AAC(t))
	file := "/files/" + jitserver.User + "/" + a.ID + ".mp4"
	_, whole := e.Get(t, file)
	size := int64(len(whole))
	rate := float64(size) * 8 / a.Duration
	// Room for one session of the file (its minimum is its rate), not two.
	budget := int64(rate * 1.5)
	d, err := delivery.New(delivery.Config{Burst: time.Second, Factor: 10, MaxEgress: budget})
	if err != nil {
		t.Fatal(err)
	}
	url := e.Serve(t, server.Options{Delivery: d})
	fams := scrape(t, url)
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total",
		"process_resident_memory_bytes", "jitstream_delivery_active_sessions", "jitstream_http_requests_total"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("no %s in /metrics", name)
		}
	}
	if v, _ := metric(fams, "jitstream_delivery_budget_bits_per_second"); v != float64(budget) {
		t.Errorf("budget %v, want %d", v, budget)
	}

	// (1) A paced download: its response header is in, its session runs.
	resp, err := http.Get(url + file)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("paced download: %v %v", resp, err)
	}
	fams = scrape(t, url)
	for _, c := range []struct {
		name   string
		labels []string
		min    float64
		max    float64
	}{
		{"jitstream_delivery_active_sessions", []string{"kind", "progressive", "paced", "true"}, 1, 1},
		{"jitstream_delivery_active_sessions", []string{"paced", "false"}, 0, 0},
		{"jitstream_delivery_budget_sessions", nil, 1, 1},
		// The minimum is the file's rate by its timeline: within 10% of
		// size / duration.
		{"jitstream_delivery_budget_reserved_bits_per_second", nil, rate * 0.9, rate * 1.1},
		{"jitstream_delivery_budget_allocated_bits_per_second", nil, float64(budget), float64(budget)},
		{"jitstream_delivery_paced_bits_per_second", nil, rate * 10 * 0.9, rate * 10 * 1.1},
	} {
		if v, ok := metric(fams, c.name, c.labels...); !ok || v < c.min || v > c.max {
			t.Errorf("during the download: %s%v = %v, want %v to %v", c.name, c.labels, v, c.min, c.max)
		}
	}
	// (2) A second download does not fit: 503.
	resp2, body2 := getURL(t, url+file)
	if resp2.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("second download: %d %s, want 503", resp2.StatusCode, body2)
	}
	// The first one goes on to its end: 1 s of fast start, 5 s at 10 ×.
	start := time.Now()
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != size {
		t.Fatalf("paced download: %d of %d bytes, %v", n, size, err)
	}
	t.Logf("paced download of %d bytes in %v", n, time.Since(start).Round(time.Millisecond))
	for deadline := time.Now().Add(5 * time.Second); d.Stats().Budget.Sessions != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the session did not end")
		}
	}
	// (3) An HLS master playlist (it fits again), (4) 404s.
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/streams/" + jitserver.User + "/" + a.ID + "/hls/master.m3u8", http.StatusOK},
		{"/files/" + jitserver.User + "/nope.mp4", http.StatusNotFound},
		{"/nope", http.StatusNotFound},
	} {
		if resp, body := getURL(t, url+c.path); resp.StatusCode != c.status {
			t.Errorf("%s: %d %.200s, want %d", c.path, resp.StatusCode, body, c.status)
		}
	}

	fams = scrape(t, url)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"jitstream_http_requests_total", []string{"format", "consolidated", "status_class", "2xx"}, 1},
		{"jitstream_http_requests_total", []string{"format", "consolidated", "status_class", "5xx"}, 1},
		{"jitstream_http_requests_total", []string{"format", "consolidated", "status_class", "4xx"}, 1},
		{"jitstream_http_requests_total", []string{"format", "hls", "status_class", "2xx"}, 1},
		{"jitstream_http_requests_total", []string{"format", "other", "status_class", "4xx"}, 1},
		{"jitstream_http_requests_total", []string{"format", "other", "status_class", "2xx"}, 2}, // the scrapes before
		{"jitstream_http_requests_total", []string{"format", "dash"}, 0},
		{"jitstream_delivery_sessions_total", []string{"kind", "progressive"}, 1},
		{"jitstream_delivery_sessions_total", []string{"kind", "segment"}, 0},
		{"jitstream_delivery_sessions_refused_total", []string{"kind", "progressive"}, 1},
		{"jitstream_delivery_busy_responses_total", nil, 1},
		{"jitstream_delivery_sessions_ended_total", []string{"kind", "progressive", "end", "complete"}, 1},
		{"jitstream_delivery_sessions_ended_total", nil, 1},
		{"jitstream_delivery_sent_bytes_total", []string{"kind", "progressive"}, float64(size)},
		{"jitstream_delivery_sent_bytes_total", []string{"mode", "unpaced"}, 0},
		{"jitstream_delivery_active_sessions", nil, 0},
		{"jitstream_delivery_budget_sessions", nil, 0},
		{"jitstream_delivery_budget_reserved_bits_per_second", nil, 0},
		{"jitstream_delivery_budget_allocated_bits_per_second", nil, 0},
		{"jitstream_delivery_paced_bits_per_second", nil, 0},
	} {
		if v, ok := metric(fams, c.name, c.labels...); !ok || v != c.want {
			t.Errorf("%s%v = %v (found: %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	// The fast start carried about 1 s of the 6 s, the rest was paced.
	burst, _ := metric(fams, "jitstream_delivery_sent_bytes_total", "kind", "progressive", "mode", "burst")
	paced, _ := metric(fams, "jitstream_delivery_sent_bytes_total", "kind", "progressive", "mode", "paced")
	if burst <= 0 || paced <= 0 || burst > paced {
		t.Errorf("sent bytes: %v burst, %v paced, want both, mostly paced", burst, paced)
	}
	// The response bytes count bodies, JSON errors included.
	if v, _ := metric(fams, "jitstream_http_response_bytes_total", "format", "consolidated"); v < float64(size) || v > float64(size)+2000 {
		t.Errorf("response bytes of consolidated files: %v, want %d and two JSON errors", v, size)
	}
	if v, _ := metric(fams, "jitstream_http_response_bytes_total", "format", "hls"); v <= 0 {
		t.Errorf("response bytes of HLS: %v", v)
	}
	if v, _ := metric(fams, "process_cpu_seconds_total"); v <= 0 || math.IsNaN(v) {
		t.Errorf("process_cpu_seconds_total %v", v)
	}
}

// getURL gets url without following redirects.
func getURL(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	return httpt.Get(t, url)
}

// failingStore is a store whose Stat fails when fail is set.
type failingStore struct {
	store.Store
	fail bool
}

func (s *failingStore) Stat(ctx context.Context, key string) (store.Info, error) {
	if s.fail {
		return store.Info{}, errors.New("store: i/o error")
	}
	return s.Store.Stat(ctx, key)
}

// Check is the store's own (store.Checker), which embedding the interface
// hides.
func (s *failingStore) Check(ctx context.Context) error {
	if c, ok := s.Store.(store.Checker); ok {
		return c.Check(ctx)
	}
	return nil
}

// TestHealthz checks that /healthz reports whether the store answers: 200
// normally, 503 with a JSON body when a Stat fails or the store's
// directory (FS) or bucket (S3) is gone.
func TestHealthz(t *testing.T) {
	ts := teststore.New(t)
	st := &failingStore{Store: ts.Store}
	srv := httptest.NewServer(server.New(outputs.New(library.New(st, library.Options{}), 0), server.Options{}))
	defer srv.Close()
	check := func(what string, want int) {
		t.Helper()
		resp, body := getURL(t, srv.URL+"/healthz")
		var j struct{ Status, Store, Error, Detail string }
		if err := json.Unmarshal(body, &j); err != nil || resp.StatusCode != want || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %d %s (Cache-Control %q), want %d", what, resp.StatusCode, body, resp.Header.Get("Cache-Control"), want)
			return
		}
		t.Logf("%s: %d %s", what, resp.StatusCode, strings.TrimSpace(string(body)))
		if ok := want == http.StatusOK; ok != (j.Status == "ok" && j.Store == "ok") || !ok && (j.Error == "" || j.Detail == "") {
			t.Errorf("%s: body %s", what, body)
		}
		if want == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", what)
		}
	}
	check("store answers", http.StatusOK)
	st.fail = true
	check("Stat fails", http.StatusServiceUnavailable)
	st.fail = false
	check("Stat works again", http.StatusOK)
	switch ts.Backend {
	case teststore.FS:
		if err := os.RemoveAll(ts.FS.Root()); err != nil {
			t.Fatal(err)
		}
		check("store directory removed", http.StatusServiceUnavailable)
	case teststore.S3:
		c := ts.MinIO.Client(t)
		if err := c.RemoveBucket(t.Context(), ts.Bucket); err != nil {
			t.Fatal(err)
		}
		check("bucket removed", http.StatusServiceUnavailable)
		// Back, for the removal at the end of the test.
		if err := c.MakeBucket(t.Context(), ts.Bucket, miniogo.MakeBucketOptions{Region: minio.Region}); err != nil {
			t.Fatal(err)
		}
	}
	// The status classes of the health checks are counted as "other".
	fams := scrape(t, srv.URL)
	ok, _ := metric(fams, "jitstream_http_requests_total", "format", "other", "status_class", "2xx")
	bad, _ := metric(fams, "jitstream_http_requests_total", "format", "other", "status_class", "5xx")
	if ok != 2 || bad != 2 {
		t.Errorf("health checks counted %v 2xx and %v 5xx, want 2 and 2", ok, bad)
	}
}
