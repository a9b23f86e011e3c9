// Package metrics exposes a jitstream server's Prometheus metrics: its
// requests by output format and status class, the state of its delivery
// controller (sessions, bytes sent by kind and mode, allocated rates, the
// bandwidth budget, refusals), and the Go runtime and process collectors.
//
// Every server has its own registry (no global state), served by Handler
// (GET /metrics). The delivery metrics are pulled: a collector reads
// delivery.Controller.Stats at scrape time, so the sending path only keeps
// its atomic counters. The only per-request work is Request, on counters
// created in advance (no allocation, no label lookup).
package metrics

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/jitstream/jitstream/internal/delivery"
	"github.com/jitstream/jitstream/internal/transcode"
)

// Namespace prefixes jitstream's own metric names.
const Namespace = "jitstream"

// Format is the output format a request asked for, the format label of
// jitstream_http_requests_total.
type Format uint8

// Formats of requests.
const (
	// Other is anything else: the home page, /watch, /play, /healthz,
	// /metrics, unknown routes.
	Other Format = iota
	// Original is an original chapter, byte-exact (/files/U/ID/NAME).
	Original
	// Consolidated is the consolidated MP4 of a recording (/files/U/ID.mp4).
	Consolidated
	// Clip is a clip of the consolidated MP4 (ID.mp4?start=&end=).
	Clip
	// FMP4 is the fragmented MP4, whole or clipped (ID.frag.mp4).
	FMP4
	// Trick is trick play by rate (ID.mp4?rate=, ID.frag.mp4?rate=),
	// including the fallback to the ordinary stream sent faster.
	Trick
	// HLS is HLS with CMAF segments (/streams/U/A/hls/...).
	HLS
	// HLSTS is HLS with MPEG-TS segments (/streams/U/A/hls/ts/...).
	HLSTS
	// DASH is MPEG-DASH (/streams/U/A/dash/...).
	DASH
	// Smooth is Smooth Streaming (/streams/U/A/smooth/...).
	Smooth
	// API is the JSON API (/api/...).
	API
	// Listing is a library or asset listing (/files/U/, /files/U/ID/).
	Listing

	// NumFormats is the number of formats.
	NumFormats = 12
)

// String is the format's label value: "other", "original", "consolidated",
// "clip", "fmp4", "trick", "hls", "hls_ts", "dash", "smooth", "api" or
// "listing".
func (f Format) String() string {
	switch f {
	case Other:
		return "other"
	case Original:
		return "original"
	case Consolidated:
		return "consolidated"
	case Clip:
		return "clip"
	case FMP4:
		return "fmp4"
	case Trick:
		return "trick"
	case HLS:
		return "hls"
	case HLSTS:
		return "hls_ts"
	case DASH:
		return "dash"
	case Smooth:
		return "smooth"
	case API:
		return "api"
	case Listing:
		return "listing"
	}
	return "format" + strconv.Itoa(int(f))
}

// numClasses is the number of status classes: 2xx, 3xx, 4xx, 5xx.
const numClasses = 4

// class is the status class index of an HTTP status, 0 to numClasses-1
// for 2xx to 5xx (1xx, never final, counts as 2xx; anything beyond 5xx as
// 5xx).
func class(status int) int {
	return min(max(status/100-2, 0), numClasses-1)
}

// className is the label value of status class c: "2xx" to "5xx".
func className(c int) string {
	return strconv.Itoa(c+2) + "xx"
}

// Metrics is the registry of one server and its request counters. Its
// methods are safe for concurrent use.
type Metrics struct {
	reg      *prometheus.Registry
	requests [NumFormats][numClasses]prometheus.Counter
	bytes    [NumFormats]prometheus.Counter
}

// New returns the metrics of a server whose delivery controller is d (nil
// for none: its metrics are then all zero), in a new registry with the Go
// runtime and process collectors.
func New(d *delivery.Controller) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "http", Name: "requests_total",
		Help: "HTTP requests answered, by the output format asked for and the status class of the answer.",
	}, []string{"format", "status_class"})
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "http", Name: "response_bytes_total",
		Help: "Bytes of HTTP response bodies written, by output format (with or without delivery control).",
	}, []string{"format"})
	for f := range Format(NumFormats) {
		for c := range numClasses {
			m.requests[f][c] = requests.WithLabelValues(f.String(), className(c))
		}
		m.bytes[f] = bytes.WithLabelValues(f.String())
	}
	m.reg.MustRegister(requests, bytes, newDeliveryCollector(d),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the server's registry, for more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats (text
// or, as negotiated, protobuf/OpenMetrics), with promhttp's own metrics of
// the scrapes.
func (m *Metrics) Handler() http.Handler {
	return promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
}

// Request counts a request for format f answered with status, whose body
// had n bytes. It does not allocate.
func (m *Metrics) Request(f Format, status int, n int64) {
	if f >= NumFormats {
		f = Other
	}
	m.requests[f][class(status)].Inc()
	if n > 0 {
		m.bytes[f].Add(float64(n))
	}
}

// deliveryCollector reads a delivery controller's statistics at scrape
// time.
type deliveryCollector struct {
	d *delivery.Controller

	active, sessions, ended, refused, busy, sent, waited *prometheus.Desc
	paced, limit, reserved, allocated, budgetSessions    *prometheus.Desc
}

func newDeliveryCollector(d *delivery.Controller) *deliveryCollector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "delivery", name), help, labels, nil)
	}
	return &deliveryCollector{d: d,
		active: desc("active_sessions",
			"Delivery sessions (responses under pacing or the bandwidth budget) in progress, by kind and whether they are paced.", "kind", "paced"),
		sessions: desc("sessions_total", "Delivery sessions started, by kind.", "kind"),
		ended: desc("sessions_ended_total",
			"Delivery sessions ended, by kind and why: complete, client_gone, error, no_body.", "kind", "end"),
		refused: desc("sessions_refused_total",
			"Delivery sessions refused (503) because their minimum rate did not fit the bandwidth budget, by kind.", "kind"),
		busy: desc("busy_responses_total",
			"Responses answered 503 for lack of bandwidth budget: refused sessions and master manifests with no variant that fits."),
		sent: desc("sent_bytes_total",
			"Bytes sent by delivery sessions, by kind and mode: burst (fast start, full speed), paced (throttled after the fast start), unpaced (sessions only under the budget).", "kind", "mode"),
		waited: desc("wait_seconds_total", "Time delivery sessions spent waiting between chunks (counted when they end)."),
		paced: desc("paced_bits_per_second",
			"Sum of the rates the active paced sessions are throttled to after their fast start (content bit rate × pace factor × speed)."),
		limit: desc("budget_bits_per_second", "The server's bandwidth budget (--max-egress); 0 when unlimited."),
		reserved: desc("budget_reserved_bits_per_second",
			"Sum of the minimum rates the budget reserves for its sessions."),
		allocated: desc("budget_allocated_bits_per_second",
			"Sum of the target rates of the budget's sessions (each its minimum plus an even share of what the minimums leave): the whole budget while it has sessions, 0 otherwise."),
		budgetSessions: desc("budget_sessions", "Sessions counted against the bandwidth budget."),
	}
}

// Describe implements prometheus.Collector.
func (c *deliveryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.active, c.sessions, c.ended, c.refused, c.busy, c.sent, c.waited,
		c.paced, c.limit, c.reserved, c.allocated, c.budgetSessions} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *deliveryCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.d.Stats()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for k := range delivery.Kind(delivery.NumKinds) {
		kind := k.String()
		gauge(c.active, float64(st.ActivePaced[k]), kind, "true")
		gauge(c.active, float64(st.Active[k]-st.ActivePaced[k]), kind, "false")
		counter(c.sessions, float64(st.Started[k]), kind)
		counter(c.refused, float64(st.Refused[k]), kind)
		for e := range delivery.End(delivery.NumEnds) {
			counter(c.ended, float64(st.Ended[k][e]), kind, e.String())
		}
		for m := range delivery.Mode(delivery.NumModes) {
			counter(c.sent, float64(st.Sent[k][m]), kind, m.String())
		}
	}
	counter(c.busy, float64(st.Busy))
	counter(c.waited, st.WaitTime.Seconds())
	gauge(c.paced, float64(st.PacedRate))
	b := st.Budget
	var allocated int64
	if b.Sessions > 0 {
		allocated = b.Reserved + b.Share*int64(b.Sessions)
	}
	gauge(c.limit, float64(b.Limit))
	gauge(c.reserved, float64(b.Reserved))
	gauge(c.allocated, float64(allocated))
	gauge(c.budgetSessions, float64(b.Sessions))
}

// AddTranscoder adds the metrics of a transcoder (internal/transcode),
// read from tc.Stats at scrape time.
func (m *Metrics) AddTranscoder(tc *transcode.Transcoder) {
	m.reg.MustRegister(&transcodeCollector{tc: tc,
		runs: prometheus.NewDesc(Namespace+"_transcode_runs_total",
			"ffmpeg runs started (segments of transcoded renditions, thumbnails).", nil, nil),
		prefetched: prometheus.NewDesc(Namespace+"_transcode_prefetched_total",
			"Segments transcoded ahead of a request.", nil, nil),
		failures: prometheus.NewDesc(Namespace+"_transcode_failures_total",
			"ffmpeg runs that failed (never cached; the segment answers 502 for a while).", nil, nil),
		busy: prometheus.NewDesc(Namespace+"_transcode_busy_total",
			"Requests answered 503: no ffmpeg slot within the queue wait.", nil, nil),
		seconds: prometheus.NewDesc(Namespace+"_transcode_run_seconds_total",
			"Wall time of the ffmpeg runs that succeeded.", nil, nil),
		running: prometheus.NewDesc(Namespace+"_transcode_running",
			"ffmpeg processes running now.", nil, nil),
		slots: prometheus.NewDesc(Namespace+"_transcode_slots",
			"The most ffmpeg processes that may run at once.", nil, nil),
		cacheBytes: prometheus.NewDesc(Namespace+"_transcode_cache_bytes",
			"Bytes of transcoded segments in the store that this node knows of.", nil, nil),
		cacheBudget: prometheus.NewDesc(Namespace+"_transcode_cache_budget_bytes",
			"The budget of the transcoded segments in the store.", nil, nil),
	})
}

// transcodeCollector reads a transcoder's statistics at scrape time.
type transcodeCollector struct {
	tc                                        *transcode.Transcoder
	runs, prefetched, failures, busy, seconds *prometheus.Desc
	running, slots, cacheBytes, cacheBudget   *prometheus.Desc
}

func (c *transcodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.runs, c.prefetched, c.failures, c.busy, c.seconds, c.running, c.slots, c.cacheBytes, c.cacheBudget} {
		ch <- d
	}
}

func (c *transcodeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.tc.Stats()
	for _, x := range []struct {
		d *prometheus.Desc
		t prometheus.ValueType
		v float64
	}{
		{c.runs, prometheus.CounterValue, float64(s.Runs)},
		{c.prefetched, prometheus.CounterValue, float64(s.Prefetched)},
		{c.failures, prometheus.CounterValue, float64(s.Failures)},
		{c.busy, prometheus.CounterValue, float64(s.Busy)},
		{c.seconds, prometheus.CounterValue, s.RunTime.Seconds()},
		{c.running, prometheus.GaugeValue, float64(s.Running)},
		{c.slots, prometheus.GaugeValue, float64(s.Slots)},
		{c.cacheBytes, prometheus.GaugeValue, float64(s.CacheBytes)},
		{c.cacheBudget, prometheus.GaugeValue, float64(s.CacheBudget)},
	} {
		ch <- prometheus.MustNewConstMetric(x.d, x.t, x.v)
	}
}
