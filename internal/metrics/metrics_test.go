package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/jitstream/jitstream/internal/delivery"
	"github.com/jitstream/jitstream/internal/vfile"
)

// gathered is the value of the sample of family name with exactly the
// given label values (in the order of the label names, sorted), and
// whether it exists.
func gathered(t *testing.T, m *Metrics, name string, values ...string) (float64, bool) {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			if len(s.GetLabel()) != len(values) {
				continue
			}
			match := true
			for i, lp := range s.GetLabel() {
				match = match && lp.GetValue() == values[i]
			}
			if match {
				return value(s), true
			}
		}
	}
	return 0, false
}

func value(s *dto.Metric) float64 {
	switch {
	case s.Counter != nil:
		return s.Counter.GetValue()
	case s.Gauge != nil:
		return s.Gauge.GetValue()
	}
	return 0
}

func TestFormatNames(t *testing.T) {
	seen := map[string]bool{}
	for f := range Format(NumFormats) {
		s := f.String()
		if seen[s] || strings.HasPrefix(s, "format") {
			t.Errorf("format %d is %q", f, s)
		}
		seen[s] = true
	}
	for _, want := range []string{"original", "consolidated", "clip", "fmp4", "trick", "hls", "hls_ts", "dash", "smooth", "api", "listing", "other"} {
		if !seen[want] {
			t.Errorf("no format %q", want)
		}
	}
	for status, want := range map[int]string{100: "2xx", 200: "2xx", 206: "2xx", 304: "3xx", 404: "4xx", 503: "5xx", 600: "5xx"} {
		if got := className(class(status)); got != want {
			t.Errorf("class of %d: %s, want %s", status, got, want)
		}
	}
}

func TestRequests(t *testing.T) {
	m := New(nil)
	m.Request(HLS, 200, 1000)
	m.Request(HLS, 206, 500)
	m.Request(HLS, 404, 50)
	m.Request(Format(200), 500, 0) // out of range: other
	for _, c := range []struct {
		name   string
		values []string
		want   float64
	}{
		{"jitstream_http_requests_total", []string{"hls", "2xx"}, 2},
		{"jitstream_http_requests_total", []string{"hls", "4xx"}, 1},
		{"jitstream_http_requests_total", []string{"other", "5xx"}, 1},
		{"jitstream_http_requests_total", []string{"dash", "2xx"}, 0}, // every child exists
		{"jitstream_http_response_bytes_total", []string{"hls"}, 1550},
		// Nil controller: the delivery metrics are there, at zero.
		{"jitstream_delivery_active_sessions", []string{"progressive", "true"}, 0},
		{"jitstream_delivery_budget_bits_per_second", nil, 0},
	} {
		if v, ok := gathered(t, m, c.name, c.values...); !ok || v != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.values, v, ok, c.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { m.Request(Trick, 206, 12345) }); n != 0 {
		t.Errorf("Request allocates %v times", n)
	}
}

// TestDeliveryCollector checks the delivery metrics against a controller
// with sessions in progress and ended.
func TestDeliveryCollector(t *testing.T) {
	// A 10 s file at 100 kB/s (800 kbit/s), without header.
	const size = 1_000_000
	f := vfile.New("f.mp4", "video/mp4", time.Time{}, `"x"`, []vfile.Piece{vfile.Bytes(make([]byte, size))})
	f.Timeline = vfile.Timeline{{Off: 0, Time: 0}, {Off: size, Time: 10}}
	d, err := delivery.New(delivery.Config{Burst: time.Second, Factor: 2, MaxEgress: 1_900_000})
	if err != nil {
		t.Fatal(err)
	}
	m := New(d)
	paced, err := d.Start(f, delivery.Params{Kind: delivery.Progressive, Pace: true})
	if err != nil {
		t.Fatal(err)
	}
	seg, err := d.Start(f, delivery.Params{Kind: delivery.Trick, Pace: false})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Start(f, delivery.Params{Kind: delivery.Segment}); err == nil {
		t.Fatal("a third session fits")
	}
	d.Refuse(httptest.NewRecorder(), delivery.ErrBusy)
	// A first chunk of each: the paced one's is in its fast start (1 s,
	// 100 kB, in chunks of 250 ms at its budget's target rate).
	burst, err := paced.Next(context.Background(), 0, size)
	if err != nil || burst <= 0 || burst > 100_000 {
		t.Fatalf("burst: %d, %v", burst, err)
	}
	if k, err := seg.Next(context.Background(), 0, 10_000); err != nil || k != 10_000 {
		t.Fatalf("unpaced: %d, %v", k, err)
	}
	check := func(when string, cases []struct {
		name   string
		values []string
		want   float64
	}) {
		t.Helper()
		for _, c := range cases {
			if v, ok := gathered(t, m, c.name, c.values...); !ok || v != c.want {
				t.Errorf("%s: %s%v = %v (found %v), want %v", when, c.name, c.values, v, ok, c.want)
			}
		}
	}
	check("running", []struct {
		name   string
		values []string
		want   float64
	}{
		{"jitstream_delivery_active_sessions", []string{"progressive", "true"}, 1},
		{"jitstream_delivery_active_sessions", []string{"progressive", "false"}, 0},
		{"jitstream_delivery_active_sessions", []string{"trick", "false"}, 1},
		{"jitstream_delivery_sessions_total", []string{"progressive"}, 1},
		{"jitstream_delivery_sessions_total", []string{"trick"}, 1},
		{"jitstream_delivery_sessions_refused_total", []string{"segment"}, 1},
		{"jitstream_delivery_busy_responses_total", nil, 1},
		{"jitstream_delivery_sent_bytes_total", []string{"progressive", "burst"}, float64(burst)},
		{"jitstream_delivery_sent_bytes_total", []string{"trick", "unpaced"}, 10_000},
		{"jitstream_delivery_sent_bytes_total", []string{"progressive", "paced"}, 0},
		{"jitstream_delivery_paced_bits_per_second", nil, 1_600_000},
		{"jitstream_delivery_budget_bits_per_second", nil, 1_900_000},
		// Minimums: 800 kbit/s (progressive) + 400 kbit/s (trick, 50%).
		{"jitstream_delivery_budget_reserved_bits_per_second", nil, 1_200_000},
		{"jitstream_delivery_budget_allocated_bits_per_second", nil, 1_900_000},
		{"jitstream_delivery_budget_sessions", nil, 2},
	})
	paced.EndBody(nil, false)
	paced.Close()
	seg.EndBody(context.Canceled, true)
	seg.Close()
	check("ended", []struct {
		name   string
		values []string
		want   float64
	}{
		{"jitstream_delivery_active_sessions", []string{"progressive", "true"}, 0},
		{"jitstream_delivery_active_sessions", []string{"trick", "false"}, 0},
		{"jitstream_delivery_sessions_ended_total", []string{"complete", "progressive"}, 1},
		{"jitstream_delivery_sessions_ended_total", []string{"client_gone", "trick"}, 1},
		{"jitstream_delivery_sessions_ended_total", []string{"error", "trick"}, 0},
		{"jitstream_delivery_paced_bits_per_second", nil, 0},
		{"jitstream_delivery_budget_reserved_bits_per_second", nil, 0},
		{"jitstream_delivery_budget_allocated_bits_per_second", nil, 0},
		{"jitstream_delivery_sent_bytes_total", []string{"progressive", "burst"}, float64(burst)},
	})
}

// TestHandler checks that the handler serves the text format with the Go
// and process collectors.
func TestHandler(t *testing.T) {
	m := New(nil)
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := w.Body.String()
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("%d %s", w.Code, w.Header().Get("Content-Type"))
	}
	for _, want := range []string{"\ngo_goroutines ", "\nprocess_cpu_seconds_total ", "# TYPE jitstream_http_requests_total counter",
		`jitstream_delivery_active_sessions{kind="segment",paced="false"} 0`} {
		if !strings.Contains(body, want) {
			t.Errorf("no %q in\n%.2000s", want, body)
		}
	}
}
