package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/internal/vfile"
)

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1Gbit", 1_000_000_000, true},
		{"500Mbit", 500_000_000, true},
		{"500 Mbit/s", 500_000_000, true},
		{"100MB/s", 800_000_000, true},
		{"100MBps", 800_000_000, true},
		{"2.5Gbps", 2_500_000_000, true},
		{"800kbps", 800_000, true},
		{"800Kbit", 800_000, true},
		{"1mbit", 1_000_000, true},
		{"10MiB/s", 10 * 1024 * 1024 * 8, true},
		{"1Gib", 1 << 30, true},
		{"64kB", 512_000, true},
		{"3 bytes/s", 24, true},
		{"1e6", 1_000_000, true},
		{"1.5e3bit", 1500, true},
		{"1000", 1000, true},
		{"  40Mbit  ", 40_000_000, true},
		{"", 0, false},
		{"fast", 0, false},
		{"-1Mbit", 0, false},
		{"10M", 0, false}, // bits or bytes?
		{"10Xbit", 0, false},
		{"10 parsecs", 0, false},
		{"1e400bit", 0, false},
		{"1e30Tbit", 0, false},
		{"NaN", 0, false},
		{"1.2.3Mbit", 0, false},
	} {
		got, err := ParseRate(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestFormatRate(t *testing.T) {
	for _, tc := range []struct {
		in   int64
		want string
	}{
		{0, "0 bit/s"}, {999, "999 bit/s"}, {1500, "1.5 kbit/s"}, {40_000_000, "40 Mbit/s"},
		{1_234_567_890, "1.23 Gbit/s"}, {math.MaxInt64, "unlimited"},
	} {
		if got := FormatRate(tc.in); got != tc.want {
			t.Errorf("FormatRate(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestBudgetArithmetic checks admissions, shares and targets step by step.
func TestBudgetArithmetic(t *testing.T) {
	type step struct {
		op       string // "+" acquire, "-" release, "fits"
		min      int64
		ok       bool    // acquire or fits result
		share    float64 // after the step
		reserved int64
	}
	for _, tc := range []struct {
		name  string
		limit int64
		steps []step
	}{
		{"even shares", 100, []step{
			{"fits", 100, true, 100, 0},
			{"+", 10, true, 90, 10},     // alone: 10 + 90 = the whole budget
			{"+", 30, true, 30, 40},     // (100-40)/2: targets 40 and 60
			{"+", 60, true, 0, 100},     // exactly full: targets are the minimums
			{"fits", 1, false, 0, 100},  // nothing left
			{"+", 1, false, 0, 100},     // refused, nothing changes
			{"-", 30, true, 15, 70},     // (100-70)/2
			{"fits", 30, true, 15, 70},  // fits again
			{"fits", 31, false, 15, 70}, // not quite
			{"-", 10, true, 40, 60},     // alone again: 60 + 40
			{"-", 60, true, 100, 0},     // empty
		}},
		{"a minimum larger than the budget", 50, []step{
			{"fits", 51, false, 50, 0},
			{"+", 51, false, 50, 0},
			{"+", 50, true, 0, 50},
		}},
		{"zero minimums share everything", 90, []step{
			{"+", 0, true, 90, 0},
			{"+", 0, true, 45, 0},
			{"+", 0, true, 30, 0},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBudget(tc.limit)
			for i, s := range tc.steps {
				ok := true
				switch s.op {
				case "+":
					ok = b.acquire(s.min)
				case "-":
					b.release(s.min)
				case "fits":
					ok = b.Fits(s.min)
				}
				st := b.Stats()
				if ok != s.ok || st.Reserved != s.reserved || math.Abs(math.Float64frombits(b.share.Load())-s.share) > 1e-9 {
					t.Fatalf("step %d %s%d: ok %v, reserved %d, share %v; want %v, %d, %v", i, s.op, s.min, ok,
						st.Reserved, math.Float64frombits(b.share.Load()), s.ok, s.reserved, s.share)
				}
				// The targets of the sessions add up to the limit (when
				// there are sessions).
				if st.Sessions > 0 && math.Abs(float64(st.Reserved)+float64(st.Sessions)*math.Float64frombits(b.share.Load())-float64(tc.limit)) > 1e-6 {
					t.Fatalf("step %d: targets do not add up to the limit: %+v", i, st)
				}
			}
		})
	}
	var unlimited *Budget
	if !unlimited.Fits(1<<60) || unlimited.Limited() || !math.IsInf(unlimited.target(5), 1) || !NewBudget(0).Fits(1<<60) {
		t.Error("a nil or zero budget is not unlimited")
	}
}

// linear is a timeline of a file of size bytes: header bytes of headers,
// then rate bytes per media second for dur seconds.
func linear(header, rate int64, dur float64) *vfile.File {
	size := header + int64(float64(rate)*dur)
	f := vfile.New("f.mp4", "video/mp4", time.Time{}, `"x"`, []vfile.Piece{vfile.Bytes(make([]byte, size))})
	f.Timeline = vfile.Timeline{{Off: header, Time: 0}, {Off: size, Time: dur}}
	return f
}

func TestStartAndServe(t *testing.T) {
	f := linear(1000, 1_000_000, 0.3)
	rate := f.Timeline.Bitrate(f.Size) // about 8 Mbit/s
	var nilc *Controller
	if s, err := nilc.Start(f, Params{Kind: Progressive, Pace: true}); s != nil || err != nil {
		t.Fatalf("nil controller: %v %v", s, err)
	}
	if _, err := New(Config{Factor: -1}); err == nil {
		t.Error("negative factor accepted")
	}
	if _, err := New(Config{Burst: -time.Second}); err == nil {
		t.Error("negative burst accepted")
	}
	off, _ := New(Config{})
	if s, _ := off.Start(f, Params{Kind: Progressive, Pace: true}); s != nil {
		t.Error("the zero config controls responses")
	}
	c, _ := New(DefaultConfig())
	if !c.Paces(Progressive) || c.Paces(Segment) {
		t.Error("default: progressive paced, segments not")
	}
	if s, _ := c.Start(f, Params{Kind: Segment, Pace: false}); s != nil {
		t.Error("an unpaced session without budget")
	}
	if s, _ := c.Start(&vfile.File{Size: 10}, Params{Kind: Progressive, Pace: true}); s != nil {
		t.Error("a paced session without timeline")
	}

	// A budget for one session of this file and a half.
	var ended []SessionStats
	cfg := DefaultConfig()
	cfg.MaxEgress = rate * 3 / 2
	cfg.OnSessionEnd = func(s SessionStats) { ended = append(ended, s) }
	c, _ = New(cfg)
	s, err := c.Start(f, Params{Kind: Progressive, Pace: true})
	if err != nil || s == nil || s.min != rate {
		t.Fatalf("first session: %v, %v", s, err)
	}
	if _, err := c.Start(f, Params{Kind: Progressive, Pace: true}); !errors.Is(err, ErrBusy) {
		t.Fatalf("second session: %v, want ErrBusy", err)
	}
	if st := c.Stats(); st.Active[Progressive] != 1 || st.Refused[Progressive] != 1 || st.Budget.Reserved != rate {
		t.Errorf("stats %+v", st)
	}
	// Served while the budget is full: 503 with Retry-After and JSON.
	w := httptest.NewRecorder()
	c.Serve(w, httptest.NewRequest("GET", "/f.mp4", nil), nil, f, Params{Kind: Progressive, Pace: true}, httpserve.Options{})
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "10" ||
		w.Header().Get("Content-Type") != "application/json" || !strings.Contains(w.Body.String(), `"error":"bandwidth budget exhausted"`) {
		t.Errorf("refused: %d %v %s", w.Code, w.Header(), w.Body)
	}
	// HEAD and revalidations are not controlled.
	w = httptest.NewRecorder()
	c.Serve(w, httptest.NewRequest("HEAD", "/f.mp4", nil), nil, f, Params{Kind: Progressive, Pace: true}, httpserve.Options{})
	if w.Code != http.StatusOK {
		t.Errorf("HEAD: %d", w.Code)
	}
	w = httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/f.mp4", nil)
	req.Header.Set("If-None-Match", `W/"x"`)
	c.Serve(w, req, nil, f, Params{Kind: Progressive, Pace: true}, httpserve.Options{})
	if w.Code != http.StatusNotModified {
		t.Errorf("revalidation: %d", w.Code)
	}
	s.Close()
	s.Close()
	if st := c.Stats(); st.Active[Progressive] != 0 || st.Budget.Reserved != 0 || len(ended) != 1 {
		t.Errorf("after Close: %+v, %d ended", st, len(ended))
	}
	// Now it fits: served whole, unpaced with pace=0 (the burst covers
	// it anyway).
	w = httptest.NewRecorder()
	c.Serve(w, httptest.NewRequest("GET", "/f.mp4?pace=0", nil), nil, f, Params{Kind: Progressive, Pace: true}, httpserve.Options{})
	if w.Code != http.StatusOK || int64(w.Body.Len()) != f.Size || len(ended) != 2 || ended[1].Paced || !ended[1].Budgeted {
		t.Errorf("served: %d, %d bytes, %+v", w.Code, w.Body.Len(), ended)
	}
	// The first session was closed without a body, the second sent its
	// body whole, unpaced.
	if ended[0].End != NoBody || ended[1].End != Complete {
		t.Errorf("ends %v, %v; want no_body, complete", ended[0].End, ended[1].End)
	}
	st := c.Stats()
	if st.Ended[Progressive][NoBody] != 1 || st.Ended[Progressive][Complete] != 1 ||
		st.Sent[Progressive][Unpaced] != f.Size || st.Bytes != f.Size || st.BurstBytes != 0 ||
		st.Busy != 1 || st.Started[Progressive] != 2 || st.Active != [NumKinds]int64{} || st.PacedRate != 0 {
		t.Errorf("stats after two sessions: %+v", st)
	}
}

// TestServeLogsAndCounts checks what Serve tells of its sessions: the
// counters by kind and mode (fast start, paced), the end (complete, client
// gone), and the logs at session start (debug) and end (info).
func TestServeLogsAndCounts(t *testing.T) {
	// 100 ms of media at 8 Mbit/s after a 1000-byte header; a fast start of
	// 50 ms and a factor of 10: the paced part takes about 5 ms.
	f := linear(1000, 1_000_000, 0.1)
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var ended []SessionStats
	c, _ := New(Config{Burst: 50 * time.Millisecond, Factor: 10, OnSessionEnd: func(s SessionStats) { ended = append(ended, s) }})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /files/{user}/{name}", func(w http.ResponseWriter, r *http.Request) {
		c.Serve(w, r, nil, f, Params{Kind: Trick, Pace: true}, httpserve.Options{Logger: log})
	})
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/files/bob/f.mp4?rate=4", nil))
	if w.Code != http.StatusOK || int64(w.Body.Len()) != f.Size {
		t.Fatalf("served %d, %d bytes", w.Code, w.Body.Len())
	}
	st := c.Stats()
	burst, paced := st.Sent[Trick][Burst], st.Sent[Trick][Paced]
	if burst != 51_000 || burst+paced != f.Size || st.Sent[Trick][Unpaced] != 0 || st.BurstBytes != burst {
		t.Errorf("sent: burst %d, paced %d (want 51000 and the rest of %d): %+v", burst, paced, f.Size, st.Sent)
	}
	if len(ended) != 1 || ended[0].End != Complete || !ended[0].Paced || ended[0].Kind != Trick {
		t.Errorf("ended %+v", ended)
	}

	// A client gone in the middle of the paced part.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/files/bob/f.mp4", nil).WithContext(ctx))
	if len(ended) != 2 || ended[1].End != ClientGone || ended[1].Bytes != 0 {
		t.Errorf("canceled request: %+v", ended[1:])
	}
	if st := c.Stats(); st.Ended[Trick][Complete] != 1 || st.Ended[Trick][ClientGone] != 1 || st.ActivePaced[Trick] != 0 {
		t.Errorf("stats %+v", st)
	}

	var recs []map[string]any // of sessions (httpserve logs the client gone too)
	for line := range strings.Lines(logs.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if msg, _ := m["msg"].(string); strings.HasPrefix(msg, "delivery session") {
			recs = append(recs, m)
		}
	}
	if len(recs) != 4 {
		t.Fatalf("%d log records, want 4 (start and end of two sessions):\n%s", len(recs), logs.String())
	}
	want := []map[string]any{
		{"level": "DEBUG", "msg": "delivery session start", "user": "bob", "path": "/files/bob/f.mp4?rate=4", "kind": "trick", "paced": true},
		{"level": "INFO", "msg": "delivery session", "user": "bob", "path": "/files/bob/f.mp4?rate=4", "kind": "trick", "paced": true,
			"end": "complete", "bytes": float64(f.Size), "burst_bytes": float64(burst)},
		{"level": "DEBUG", "msg": "delivery session start"},
		{"level": "INFO", "msg": "delivery session", "end": "client_gone", "bytes": float64(0)},
	}
	for i, w := range want {
		for k, v := range w {
			if recs[i][k] != v {
				t.Errorf("log record %d: %s = %v, want %v\n%v", i, k, recs[i][k], v, recs[i])
			}
		}
	}
	if d, ok := recs[1]["duration"].(float64); !ok || d <= 0 {
		t.Errorf("no duration in %v", recs[1])
	}
	if r, ok := recs[1]["avg_bps"].(float64); !ok || r <= 0 {
		t.Errorf("no average rate in %v", recs[1])
	}
}

// TestSessionSchedule drives a session directly: fast start, then the
// content rate times the factor, then a context cancelled mid-wait.
func TestSessionSchedule(t *testing.T) {
	// 1 MB per media second; factor 4: 4 MB/s after a 0.5 s burst.
	f := linear(5000, 1_000_000, 10)
	c, _ := New(Config{Burst: 500 * time.Millisecond, Factor: 4})
	s, err := c.Start(f, Params{Kind: Progressive, Pace: true})
	if err != nil || s == nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	start := time.Now()
	var off int64
	// The burst: header and 0.5 s of media, at once, in one chunk.
	k, err := s.Next(ctx, off, f.Size)
	if err != nil || k != 5000+500_000 {
		t.Fatalf("burst chunk %d, %v; want %d", k, err, 505_000)
	}
	off += k
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("burst took %v", d)
	}
	// Then chunks of about 250 ms at 4 MB/s (the maximum, 256 KiB), for
	// 2 MB: about 0.5 s.
	for off < 505_000+2_000_000 {
		k, err := s.Next(ctx, off, f.Size-off)
		if err != nil {
			t.Fatal(err)
		}
		if k > maxChunk {
			t.Fatalf("chunk of %d bytes", k)
		}
		off += k
	}
	el := time.Since(start).Seconds()
	want := float64(off-505_000) / 4_000_000
	if el < want-0.07 || el > want+0.25 {
		t.Errorf("%d bytes after the burst in %.3f s, want about %.3f s", off-505_000, el, want)
	}
	if st := s.Stats(); st.BurstEnd != 505_000 || st.Bytes != off || st.Start != 0 {
		t.Errorf("stats %+v", st)
	}
	// A cancelled context ends a wait at once.
	ctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(20*time.Millisecond, cancel)
	t0 := time.Now()
	for err == nil {
		var k int64
		k, err = s.Next(ctx, off, f.Size-off)
		off += k
	}
	if !errors.Is(err, context.Canceled) || time.Since(t0) > 200*time.Millisecond {
		t.Errorf("cancel: %v after %v", err, time.Since(t0))
	}
}

// TestSessionRangeStart checks that a session starting inside the file
// starts its own fast start there, and that a jump (the next part of a
// multipart response) keeps the schedule.
func TestSessionRangeStart(t *testing.T) {
	f := linear(0, 100_000, 100)
	c, _ := New(Config{Burst: 2 * time.Second, Factor: 1})
	s, _ := c.Start(f, Params{Kind: Progressive, Pace: true})
	defer s.Close()
	ctx := context.Background()
	k, err := s.Next(ctx, 5_000_000, f.Size)
	if err != nil || k != 200_000 {
		t.Fatalf("burst from the middle: %d, %v; want 200000 (2 s)", k, err)
	}
	// Jump ahead by 30 s of media: still paced, not a new burst; the first
	// chunk there is due after its own duration.
	s.next = 5_200_000
	s.jump(8_000_000)
	if s.burstEnd > 8_000_000 {
		t.Errorf("a jump restarted fast start: burst ends at %d", s.burstEnd)
	}
	if d := s.due(f.Timeline.Time(8_025_000)); d < 200*time.Millisecond || d > 300*time.Millisecond {
		t.Errorf("after a jump, a chunk of 0.25 s is due at %v", d)
	}
}

// TestSessionBudget checks that a budgeted session keeps to its target
// rate, fast start included.
func TestSessionBudget(t *testing.T) {
	// Content of 1 Mbit/s (125 kB/s), budget 4 Mbit/s: alone, the session
	// may use all of it, 500 kB/s, even in its (long) burst.
	f := linear(0, 125_000, 60)
	c, _ := New(Config{Burst: 30 * time.Second, Factor: 1, MaxEgress: 4_000_000})
	s, err := c.Start(f, Params{Kind: Progressive, Pace: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	var off int64
	for off < 400_000 {
		k, err := s.Next(context.Background(), off, f.Size-off)
		if err != nil {
			t.Fatal(err)
		}
		if k > 125_000 {
			t.Fatalf("chunk of %d bytes: more than 250 ms at the target", k)
		}
		off += k
	}
	// The last chunk went at most 250 ms before its end.
	el := time.Since(start).Seconds()
	if want := float64(off)/500_000 - 0.25; el < want-0.02 || el > want+0.3 {
		t.Errorf("%d bytes in %.3f s at 500 kB/s, want about %.3f s", off, el, want)
	}
}

// BenchmarkSessionNext measures the cost of pacing one chunk when it is
// due at once: a paced, budgeted session (a fast content so that no chunk
// waits).
func BenchmarkSessionNext(b *testing.B) {
	// An hour at 1 MB per media second, described by 2,048 points; the
	// file's pieces are never read.
	const size = 3600 * 1_000_000
	tl := make(vfile.Timeline, 0, 2049)
	for i := range 2049 {
		tl = append(tl, vfile.TimePoint{Off: int64(i) * size / 2048, Time: float64(i) * 3600 / 2048})
	}
	f := vfile.New("f.mp4", "video/mp4", time.Time{}, `"x"`, []vfile.Piece{vfile.Stored("x", 0, size)})
	f.Timeline = tl
	c, _ := New(Config{Burst: 0, Factor: 1e9, MaxEgress: 1 << 62})
	s, err := c.Start(f, Params{Kind: Progressive, Pace: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	var off int64
	b.ReportAllocs()
	for b.Loop() {
		k, err := s.Next(ctx, off, 1<<30)
		if err != nil {
			b.Fatal(err)
		}
		off += k
		if off >= size {
			off = 0
			s.started = false
		}
	}
	b.ReportMetric(float64(s.waits), "sleeps")
}

// TestSpeed checks a session for media played faster than real time: the
// fast start, the pace and the minimum scale with the speed.
func TestSpeed(t *testing.T) {
	f := linear(0, 100_000, 100) // 800 kbit/s
	c, _ := New(Config{Burst: time.Second, Factor: 1, MaxEgress: 10_000_000})
	s, err := c.Start(f, Params{Kind: Progressive, Pace: true, Speed: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.min != 3_200_000 {
		t.Errorf("minimum %d, want 4 × 800 kbit/s", s.min)
	}
	// The fast start is 4 s of media, sent in chunks of 256 KiB (at the
	// budget's 10 Mbit/s, 250 ms would be more).
	k, err := s.Next(context.Background(), 0, f.Size)
	if err != nil || k != maxChunk {
		t.Fatalf("first chunk %d, %v", k, err)
	}
	if s.burstEnd != 400_000 {
		t.Errorf("fast start ends at %d, want 400000 (4 s of media)", s.burstEnd)
	}
	if d := s.due(f.Timeline.Time(800_000)); d < 990*time.Millisecond || d > 1010*time.Millisecond {
		t.Errorf("8 s of media due after %v, want 1 s ((8-4)/4)", d)
	}
}
