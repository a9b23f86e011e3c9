package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jitstream/jitstream/internal/media"
)

// Delivery control: many paced progressive downloads at once. A server
// with a short fast start and a pace factor that puts the fixture at about
// 1 Mbit/s serves n downloads of the consolidated file to clients that read
// as fast as it sends; over a window after every download is past its fast
// start the bench records the server's RSS and CPU and each download's
// delivered rate, compared with its target: the media time the download
// advanced over the window (from the file's own sample tables) divided by
// the pace factor is the time the server should have taken to send it.

// paceConfig says what to run.
type paceConfig struct {
	Sessions   int
	Burst      time.Duration
	Window     time.Duration
	TargetBps  float64 // the rate the pace factor is chosen for
	Tolerance  float64 // a session is on target within this relative error
	ReadBuffer int     // client read buffer per session
}

// paceResult is what it measured.
type paceResult struct {
	Sessions        int     `json:"sessions"`
	Burst           float64 `json:"burst_seconds"`
	FileBps         float64 `json:"file_bits_per_second"` // consolidated file size × 8 / duration
	Factor          float64 `json:"pace_factor"`
	Window          float64 `json:"window_seconds"`
	OpenSeconds     float64 `json:"open_seconds"`       // until every session had its response headers
	PastBurstSecs   float64 `json:"past_burst_seconds"` // until every session was past its fast start
	ReadySeconds    float64 `json:"ready_seconds"`      // until every session was on its pacing schedule
	BehindAtStart   int     `json:"behind_schedule_at_window_start"`
	MaxLagAtStart   float64 `json:"max_lag_at_window_start_media_seconds"`
	RSSMaxMB        float64 `json:"server_rss_max_mb"`
	RSSSamples      int     `json:"server_rss_samples"`
	RSSPeakMB       float64 `json:"server_rss_peak_since_start_mb"` // VmHWM after the window
	ServerCPU       float64 `json:"server_cpu_percent"`             // of one core, over the window
	ClientCPU       float64 `json:"bench_cpu_percent"`              // the bench process itself
	MetricPacedBps  float64 `json:"metric_paced_bits_per_second"`
	Within          int     `json:"sessions_within_tolerance"`
	Share           float64 `json:"share_within_tolerance"`
	RatioMin        float64 `json:"rate_over_target_min"`
	RatioMedian     float64 `json:"rate_over_target_median"`
	RatioMax        float64 `json:"rate_over_target_max"`
	TargetMedianBps float64 `json:"target_median_bits_per_second"`
	RateMinBps      float64 `json:"rate_min_bits_per_second"`
	RateMedianBps   float64 `json:"rate_median_bits_per_second"`
	RateMaxBps      float64 `json:"rate_max_bits_per_second"`
	TotalBps        float64 `json:"total_bits_per_second"`
	// Plain bytes received in the window / window, against factor × the
	// file's average rate (quantised by the server's ~250 ms chunks).
	PlainWithin   int     `json:"plain_sessions_within_tolerance"`
	PlainShare    float64 `json:"plain_share_within_tolerance"`
	PlainMinBps   float64 `json:"plain_rate_min_bits_per_second"`
	PlainMaxBps   float64 `json:"plain_rate_max_bits_per_second"`
	Failed        int     `json:"sessions_failed"`
	FirstError    string  `json:"first_error,omitempty"`
	ReadsPerSec   float64 `json:"client_reads_per_second"`
	ServerThreads int     `json:"server_threads"`
}

// timeMap maps byte offsets of an MP4 file to media times, from its sample
// tables: the samples of all tracks sorted by offset, a byte's time being
// the latest decode time reached at or before it (interleaved tracks give
// one clock), linear within a sample.
type timeMap struct {
	off  []int64
	time []float64 // non-decreasing
	dur  float64
}

func newTimeMap(ctx context.Context, file string) (*timeMap, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	ix, err := media.Parse(ctx, []media.Source{{Name: file, R: f, Size: fi.Size()}})
	if err != nil {
		return nil, fmt.Errorf("indexing %s: %w", file, err)
	}
	type pt struct {
		off int64
		t   float64
	}
	var pts []pt
	for _, tr := range ix.Tracks {
		s := &tr.Samples
		for i := range s.Len() {
			pts = append(pts, pt{s.Offset[i], tr.Seconds(s.DTS[i] - tr.MediaTime)})
		}
	}
	slices.SortFunc(pts, func(a, b pt) int { return int(a.off - b.off) })
	m := &timeMap{dur: ix.Duration().Seconds()}
	t := 0.0
	for _, p := range pts {
		t = max(t, p.t)
		if n := len(m.off); n > 0 && m.off[n-1] == p.off {
			m.time[n-1] = t
			continue
		}
		m.off = append(m.off, p.off)
		m.time = append(m.time, t)
	}
	m.off = append(m.off, fi.Size())
	m.time = append(m.time, max(t, m.dur))
	return m, nil
}

// at returns the media time of the byte at off.
func (m *timeMap) at(off int64) float64 {
	if len(m.off) == 0 || off <= m.off[0] {
		return 0
	}
	i := sort.Search(len(m.off), func(i int) bool { return m.off[i] > off }) - 1
	if i >= len(m.off)-1 {
		return m.time[len(m.time)-1]
	}
	return m.time[i] + (m.time[i+1]-m.time[i])*float64(off-m.off[i])/float64(m.off[i+1]-m.off[i])
}

// pacedSession is one client download.
type pacedSession struct {
	conn    net.Conn
	headers atomic.Bool
	start   atomic.Int64 // when the head was in (ns since clock0)
	total   atomic.Int64 // body bytes received
	// The first and last reads within the window: their time (ns since
	// the bench's clock origin) and the body bytes received by then.
	firstT, firstB, lastT, lastB atomic.Int64
	reads                        atomic.Int64
	err                          atomic.Pointer[error]
}

// monotonic clock for the sessions.
var clock0 = time.Now()

func nanotime() int64 { return int64(time.Since(clock0)) }

func (s *pacedSession) fail(err error) {
	s.err.CompareAndSwap(nil, &err)
}

// run sends GET path on a new connection to addr and reads the body into
// buf until the connection is closed, recording the window's reads. It
// holds a slot of dials from before connecting until the response head is
// in, and publishes the connection under mu (for closing).
func (s *pacedSession) run(ctx context.Context, addr, path string, buf []byte, winStart, winEnd *atomic.Int64, dials chan struct{}, mu *sync.Mutex) {
	select {
	case dials <- struct{}{}:
	case <-ctx.Done():
		return
	}
	held := true
	release := func() {
		if held {
			held = false
			<-dials
		}
	}
	defer release()
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() == nil {
			s.fail(err)
		}
		return
	}
	mu.Lock()
	s.conn = conn
	mu.Unlock()
	if ctx.Err() != nil { // closeAll may have missed it
		conn.Close()
		return
	}
	if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: "+addr+"\r\nUser-Agent: jitbench\r\n\r\n"); err != nil {
		s.fail(err)
		return
	}
	// The head, read into buf: what follows it is body.
	var n int
	var body int
	for {
		m, err := conn.Read(buf[n:])
		n += m
		if i := bytes.Index(buf[:n], []byte("\r\n\r\n")); i >= 0 {
			body = i + 4
			break
		}
		if err != nil {
			if ctx.Err() == nil {
				s.fail(fmt.Errorf("reading the response head: %w", err))
			}
			return
		}
		if n == len(buf) {
			s.fail(errors.New("response head too long"))
			return
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(buf[:body])), nil)
	if err != nil {
		s.fail(err)
		return
	}
	if resp.StatusCode != http.StatusOK {
		s.fail(fmt.Errorf("GET %s: %s", path, resp.Status))
		return
	}
	release()
	s.start.Store(nanotime())
	s.headers.Store(true)
	got := int64(n - body)
	s.total.Store(got)
	for {
		m, err := conn.Read(buf)
		if m > 0 {
			got += int64(m)
			s.total.Store(got)
			s.reads.Add(1)
			now := nanotime()
			if ws := winStart.Load(); ws > 0 && now >= ws && now <= winEnd.Load() {
				if s.firstT.Load() == 0 {
					s.firstT.Store(now)
					s.firstB.Store(got)
				}
				s.lastT.Store(now)
				s.lastB.Store(got)
			}
		}
		if err != nil {
			if ctx.Err() == nil {
				if err == io.EOF {
					err = errors.New("the server ended the download early")
				}
				s.fail(err)
			}
			return
		}
	}
}

// procStat returns the CPU time (user + system) of process pid ("self" for
// the bench) from /proc/PID/stat.
func procStat(pid string) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%s/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// After the command: state is field 3, utime 14, stime 15 (1-based).
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%s/stat: unexpected format", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%s/stat: unexpected format", pid)
	}
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz, nil
}

// procStatus returns a field of /proc/PID/status in kB ("VmRSS", "Threads").
func procStatus(pid, field string) (int64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%s/status has no %s", pid, field)
}

// metricValue returns the value of an unlabelled metric from /metrics.
func metricValue(ctx context.Context, base, name string) (float64, error) {
	c := newClient()
	defer closeIdle(c)
	b, err := getBody(ctx, c, base+"/metrics")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("/metrics has no %s", name)
}

// pacedDownloads runs the delivery-control measurement against a new
// server started by js, downloading path (the consolidated file, whose
// copy is static).
func pacedDownloads(ctx context.Context, js *jitstream, static, path string, pc paceConfig) (*paceResult, error) {
	tm, err := newTimeMap(ctx, static)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(static)
	if err != nil {
		return nil, err
	}
	if cur, max, ok := fileLimit(); ok && cur < uint64(pc.Sessions)+256 {
		return nil, fmt.Errorf("RLIMIT_NOFILE is %d (hard %d): %d downloads need more", cur, max, pc.Sessions)
	}
	res := &paceResult{Sessions: pc.Sessions, Burst: pc.Burst.Seconds(), Window: pc.Window.Seconds()}
	res.FileBps = float64(fi.Size()) * 8 / tm.dur
	res.Factor = pc.TargetBps / res.FileBps

	srv, err := js.start(ctx, newClient(), "--debug", "--burst", pc.Burst.String(), "--pace-factor", strconv.FormatFloat(res.Factor, 'f', 4, 64))
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	pid := strconv.Itoa(srv.pid)
	addr := strings.TrimPrefix(srv.base, "http://")

	ctx, cancel := context.WithCancel(ctx)
	var winStart, winEnd atomic.Int64
	sessions := make([]*pacedSession, pc.Sessions)
	var wg sync.WaitGroup
	var mu sync.Mutex // guards the conns as the sessions set them, for closing
	closeAll := func() {
		cancel()
		mu.Lock()
		for _, s := range sessions {
			if s != nil && s.conn != nil {
				s.conn.Close()
			}
		}
		mu.Unlock()
		wg.Wait()
	}
	defer closeAll()

	// Open the downloads, at most 64 connects at a time.
	t0 := time.Now()
	dials := make(chan struct{}, 64)
	for i := range sessions {
		s := &pacedSession{}
		sessions[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(ctx, addr, path, make([]byte, pc.ReadBuffer), &winStart, &winEnd, dials, &mu)
		}()
	}

	// Wait until every download has its head, is past its fast start (its
	// bytes reach the media time burst + 0.5 s) and is on its pacing
	// schedule: a download that fell behind (the server or the machine
	// was busy with the fast starts, each of which includes the whole
	// moov) is sent its late chunks at once, faster than its pace, until
	// it has caught up. On schedule, a download has the media up to burst
	// + factor × the time since its head, less what one chunk of about
	// 250 ms holds: lag is how far behind that it is, in media seconds.
	const maxLag = 0.6
	lagOf := func(s *pacedSession, now int64) float64 {
		return pc.Burst.Seconds() + res.Factor*float64(now-s.start.Load())/1e9 - tm.at(s.total.Load())
	}
	opened, pastBurst := false, false
	deadline := time.Now().Add(90 * time.Second)
	var onTime time.Time // deadline to get on schedule, once all are past the fast start
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		heads, past, ready := 0, 0, 0
		now := nanotime()
		for _, s := range sessions {
			if e := s.err.Load(); e != nil {
				return nil, fmt.Errorf("paced download: %w", *e)
			}
			if s.headers.Load() {
				heads++
				if tm.at(s.total.Load()) >= pc.Burst.Seconds()+0.5 {
					past++
					if lagOf(s, now) <= maxLag {
						ready++
					}
				}
			}
		}
		if heads == len(sessions) && !opened {
			opened = true
			res.OpenSeconds = time.Since(t0).Seconds()
		}
		if past == len(sessions) && !pastBurst {
			pastBurst = true
			res.PastBurstSecs = time.Since(t0).Seconds()
			onTime = time.Now().Add(30 * time.Second)
		}
		if ready == len(sessions) || (pastBurst && time.Now().After(onTime)) {
			break // (those still behind are counted below)
		}
		if !pastBurst && time.Now().After(deadline) {
			return nil, fmt.Errorf("after 90 s, %d of %d downloads had their response head and %d were past their fast start", heads, len(sessions), past)
		}
		time.Sleep(50 * time.Millisecond)
	}
	res.ReadySeconds = time.Since(t0).Seconds()
	// A moment for the scheduler to settle after the burst of connects.
	time.Sleep(500 * time.Millisecond)

	// The window.
	plain0 := make([]int64, len(sessions))
	start := nanotime()
	winEnd.Store(start + int64(pc.Window))
	winStart.Store(start)
	for i, s := range sessions {
		plain0[i] = s.total.Load()
		lag := lagOf(s, start)
		res.MaxLagAtStart = max(res.MaxLagAtStart, lag)
		if lag > maxLag {
			res.BehindAtStart++
		}
	}
	reads0 := int64(0)
	for _, s := range sessions {
		reads0 += s.reads.Load()
	}
	srvCPU0, err := procStat(pid)
	if err != nil {
		return nil, err
	}
	selfCPU0, _ := procStat("self")
	wall0 := time.Now()
	sample := func() {
		if kb, err := procStatus(pid, "VmRSS"); err == nil {
			res.RSSMaxMB = max(res.RSSMaxMB, float64(kb)/1024)
			res.RSSSamples++
		}
	}
	sample()
	tick := time.NewTicker(200 * time.Millisecond)
	end := time.After(pc.Window)
	metricAt := time.After(pc.Window / 2)
loop:
	for {
		select {
		case <-ctx.Done():
			tick.Stop()
			return nil, ctx.Err()
		case <-tick.C:
			sample()
		case <-metricAt:
			if v, err := metricValue(ctx, srv.base, "jitstream_delivery_paced_bits_per_second"); err == nil {
				res.MetricPacedBps = v
			}
			if n, err := procStatus(pid, "Threads"); err == nil {
				res.ServerThreads = int(n)
			}
		case <-end:
			break loop
		}
	}
	tick.Stop()
	srvCPU1, err := procStat(pid)
	if err != nil {
		return nil, err
	}
	selfCPU1, _ := procStat("self")
	wall := time.Since(wall0)
	sample()
	if kb, err := procStatus(pid, "VmHWM"); err == nil {
		res.RSSPeakMB = float64(kb) / 1024
	}
	plain1 := make([]int64, len(sessions))
	for i, s := range sessions {
		plain1[i] = s.total.Load()
	}
	reads1 := int64(0)
	for _, s := range sessions {
		reads1 += s.reads.Load()
	}
	// Let reads that were in progress at the end record (they are
	// filtered by time).
	time.Sleep(50 * time.Millisecond)
	res.ServerCPU = 100 * float64(srvCPU1-srvCPU0) / float64(wall)
	res.ClientCPU = 100 * float64(selfCPU1-selfCPU0) / float64(wall)
	res.ReadsPerSec = float64(reads1-reads0) / wall.Seconds()

	// Each session: its rate between its first and last reads in the
	// window, and its target, the rate at which the media time its bytes
	// advanced over that span would be delivered at the pace factor.
	var rates, targets, ratios, plain []float64
	for i, s := range sessions {
		if e := s.err.Load(); e != nil {
			res.Failed++
			if res.FirstError == "" {
				res.FirstError = (*e).Error()
			}
			continue
		}
		t1, b1, t2, b2 := s.firstT.Load(), s.firstB.Load(), s.lastT.Load(), s.lastB.Load()
		if t1 == 0 || t2 <= t1 || b2 <= b1 {
			res.Failed++
			if res.FirstError == "" {
				res.FirstError = fmt.Sprintf("download %d received too little in the window to measure", i)
			}
			continue
		}
		dt := float64(t2-t1) / 1e9
		rate := float64(b2-b1) * 8 / dt
		media := tm.at(b2) - tm.at(b1)
		target := float64(b2-b1) * 8 / (media / res.Factor)
		rates = append(rates, rate)
		targets = append(targets, target)
		ratios = append(ratios, rate/target)
		if math.Abs(rate/target-1) <= pc.Tolerance {
			res.Within++
		}
		p := float64(plain1[i]-plain0[i]) * 8 / wall.Seconds()
		plain = append(plain, p)
		if math.Abs(p/(res.FileBps*res.Factor)-1) <= pc.Tolerance {
			res.PlainWithin++
		}
	}
	res.Share = float64(res.Within) / float64(len(sessions))
	res.PlainShare = float64(res.PlainWithin) / float64(len(sessions))
	if len(rates) > 0 {
		res.RateMinBps, res.RateMedianBps, res.RateMaxBps = slices.Min(rates), medianF(rates), slices.Max(rates)
		res.RatioMin, res.RatioMedian, res.RatioMax = slices.Min(ratios), medianF(ratios), slices.Max(ratios)
		res.TargetMedianBps = medianF(targets)
		res.PlainMinBps, res.PlainMaxBps = slices.Min(plain), slices.Max(plain)
		for _, p := range plain {
			res.TotalBps += p
		}
	}
	return res, nil
}
