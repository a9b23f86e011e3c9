// Command jitbench measures jitstream against nginx serving the same bytes
// as a static file, on a 60-minute recording with a realistic sample count.
//
// Usage:
//
//	go run ./cmd/jitbench [-quick] [-minutes 60] [-out results.json] [-client go|wrk]
//
// It generates the fixture once (ffmpeg; cached in .cache/bench/), builds
// and starts jitstream on a fresh temporary store, ingests the fixture, and
// measures: time to first byte of the consolidated MP4 from a freshly
// started server (cold) and from a running one (warm), whole-file download
// throughput, random 1 MiB range requests, and the server's live heap per
// download held open by a client that stopped reading. The same file,
// downloaded from jitstream once, is served by nginx (sendfile on) for the
// comparison figures. jitstream's first-byte and heap figures are taken
// with its default delivery settings (fast start, then pacing); downloads
// and ranges from a second server started with --pace-factor 0, since
// nginx does not pace.
//
// The load runs alternate the two servers in 1-second rounds; the ratio
// is the median of the rounds' ratios, so that a burst of other work on
// the machine does not decide it. The default load generator is in-process
// Go (keep-alive, no compression, 1 MiB reads, every response checked);
// -client wrk uses wrk, which reads 8 KiB per syscall (its RECVBUF) and so
// on a 2-core machine measures itself more than the servers.
//
// Adaptive streaming: a few fMP4 and MPEG-TS segments of the video variant
// (spread over the recording) and its 60-minute media playlist, each
// downloaded from jitstream once and saved for nginx. Requests per second
// with 16 clients, in rounds as above, after warm-up requests (jitstream
// keeps what it built, segments spooled to local files: this is the warm
// steady state), against the server with the default settings (segments
// are not paced by default); the first request of each, from a new server
// process and on the running server, is shown too. For reference, the
// same request-rate runs against Go's own http.FileServer serving nginx's
// files (see gostatic.go): what the Go standard library reaches here.
//
// Delivery control: a server of its own with a 1 s fast start and a pace
// factor that puts the file at 1 Mbit/s serves 2,000 downloads of the
// consolidated file at once to clients that read as fast as it sends
// (64 KiB reads). Once every download is past its fast start, over a 10 s
// window (5 s with -quick): the server's RSS (max of samples of
// /proc/PID/status), its CPU (/proc/PID/stat) and the bench's own, and
// each download's rate against its target (see pacing.go).
//
// Just-in-time transcoding (see transcode.go): a 1080p recording on a node
// of its own; the time to the first byte of a never-seen 4 s 720p segment,
// and the transcoding speed in multiples of real time, per core.
//
// A missed target prints FAIL but exits 0: the bench reports, it does not
// gate. It exits 1 only when a measurement could not be made.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jitstream/jitstream/internal/testutil/nginx"
	"github.com/jitstream/jitstream/internal/testutil/proc"
)

type config struct {
	quick   bool
	minutes int
	out     string
	client  string
	keep    bool
	seed    uint64
	bin     string
	only    string
}

func main() {
	var cfg config
	flag.BoolVar(&cfg.quick, "quick", false, "short run (well under a minute once the fixture is cached)")
	flag.IntVar(&cfg.minutes, "minutes", 60, "length of the fixture recording in minutes")
	flag.StringVar(&cfg.out, "out", "", "also write the results as JSON to this file")
	flag.StringVar(&cfg.client, "client", "go", "load generator for the throughput and range runs: go or wrk")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary work directory (store, nginx root, logs)")
	flag.Uint64Var(&cfg.seed, "seed", 1, "seed of the random range offsets (the same for both servers)")
	flag.StringVar(&cfg.bin, "bin", "", "jitstream binary to measure (default: go build ./cmd/jitstream)")
	flag.StringVar(&cfg.only, "only", "", `run one section only: "transcoding"`)
	goStatic := flag.String("go-static", "", "(internal) serve this directory with Go's http.FileServer at -addr, the Go reference")
	addr := flag.String("addr", "", "(internal) the address of -go-static")
	flag.Parse()
	if *goStatic != "" {
		if err := serveGoStatic(*goStatic, *addr); err != nil {
			fmt.Fprintln(os.Stderr, "jitbench -go-static:", err)
			os.Exit(1)
		}
		return
	}
	if cfg.minutes < 1 || (cfg.client != "go" && cfg.client != "wrk") || (cfg.only != "" && cfg.only != "transcoding") || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg)
	interrupted := ctx.Err() != nil // before stop, which cancels ctx
	stop()
	stopAll()
	if err != nil {
		if interrupted {
			fmt.Fprintln(os.Stderr, "jitbench: interrupted")
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "jitbench: measurement failed:", err)
		os.Exit(1)
	}
}

// row is one line of the results table.
type row struct {
	Section string   `json:"section"`
	Name    string   `json:"name"`
	Unit    string   `json:"unit"`
	Ours    float64  `json:"jitstream"`
	Nginx   *float64 `json:"nginx,omitempty"`
	Ratio   *float64 `json:"ratio,omitempty"` // jitstream / nginx
	Target  string   `json:"target,omitempty"`
	Pass    *bool    `json:"pass,omitempty"`
	Err     string   `json:"error,omitempty"`
	// RoundRatios are the ratios of the load runs' rounds, each against
	// the other server's adjacent round: their spread shows the noise.
	RoundRatios []float64 `json:"round_ratios,omitempty"`
}

type results struct {
	Started      time.Time     `json:"started"`
	Quick        bool          `json:"quick"`
	Client       string        `json:"client"`
	Fixture      *fixtureInfo  `json:"fixture"`
	IngestSec    float64       `json:"ingest_seconds"`
	Consolidated int64         `json:"consolidated_bytes"`
	StartupMs    float64       `json:"jitstream_startup_ms"` // exec to /healthz answering, median
	ColdMs       []float64     `json:"cold_first_byte_ms"`
	ColdNginxMs  []float64     `json:"nginx_cold_first_byte_ms"`
	ColdCPUMs    []float64     `json:"cold_first_byte_server_cpu_ms"`
	Heap         *heapResult   `json:"heap,omitempty"`
	HeapUnpaced  *heapResult   `json:"heap_unpaced,omitempty"`
	Streams      []*streamRes  `json:"adaptive_streaming,omitempty"`
	ObjStore     *objStoreRes  `json:"object_storage,omitempty"`
	Pacing       *paceResult   `json:"delivery_control,omitempty"`
	Transcode    *transcodeRes `json:"transcoding,omitempty"`
	LoadAvg      [2]string     `json:"loadavg_start_end"` // /proc/loadavg: the machine's other work
	Rows         []row         `json:"rows"`
	Problems     []string      `json:"problems,omitempty"`

	section string // of the rows being added
}

// add appends a row to the current section.
func (r *results) add(x row) {
	x.Section = r.section
	r.Rows = append(r.Rows, x)
}

func ptr[T any](v T) *T { return &v }

func (r *results) compare(name, unit string, ours, theirs float64, target string, pass bool) {
	r.add(row{Name: name, Unit: unit, Ours: ours, Nginx: ptr(theirs), Ratio: ptr(ours / theirs), Target: target, Pass: ptr(pass)})
}

func (r *results) failed(name, unit string, err error) {
	r.add(row{Name: name, Unit: unit, Err: err.Error()})
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the current directory: run from the repository")
		}
		dir = parent
	}
}

func run(ctx context.Context, cfg config) error {
	raiseFileLimit()
	res := &results{Started: time.Now().UTC(), Quick: cfg.quick, Client: cfg.client, section: "progressive download"}
	res.LoadAvg[0] = loadAvg()
	const (
		user       = "bench"
		coldRuns   = 3
		warmGets   = 200
		warmRead   = 4 << 10
		fullConns  = 4
		rangeConns = 16
		heapConns  = 200
		heapRead   = 64 << 10
		// Adaptive streaming: concurrent clients of the request-rate runs.
		streamConns = 16
	)
	rounds, roundDur := 10, time.Second // per server, alternating
	pc := paceConfig{Sessions: 2000, Burst: time.Second, Window: 10 * time.Second, TargetBps: 1e6, Tolerance: 0.05, ReadBuffer: 64 << 10}
	if cfg.quick {
		rounds = 3
		pc.Window = 5 * time.Second
	}

	repo, err := repoRoot()
	if err != nil {
		return err
	}
	if cfg.client == "wrk" {
		if _, err := exec.LookPath("wrk"); err != nil {
			return err
		}
	}
	if _, err := nginx.Binary(); err != nil {
		return err
	}

	// 1. Fixture.
	fx, err := ensureFixture(ctx, filepath.Join(repo, ".cache", "bench"), cfg.minutes)
	if err != nil {
		return fmt.Errorf("fixture: %w", err)
	}
	res.Fixture = fx
	how := "generated now"
	if fx.Cached {
		how = "cached; generated " + fx.Generated.Local().Format("2006-01-02 15:04")
	}
	fmt.Printf("fixture      %s\n             %d min, %.1f MB, %d video + %d audio samples\n             generation took %.1f s (%s)\n",
		rel(repo, fx.Path), fx.Minutes, float64(fx.Size)/1e6, fx.VideoSamples, fx.AudioSamples, fx.GenSeconds, how)

	work, err := os.MkdirTemp("", "jitbench-")
	if err != nil {
		return err
	}
	if cfg.keep {
		fmt.Printf("work dir     %s (kept)\n", work)
	} else {
		defer os.RemoveAll(work)
	}
	logs := filepath.Join(work, "logs")
	os.MkdirAll(logs, 0o755)

	t0 := time.Now()
	bin := cfg.bin
	if bin == "" {
		if bin, err = buildJitstream(ctx, repo, work); err != nil {
			return err
		}
		fmt.Printf("build        go build ./cmd/jitstream: %.1f s\n", time.Since(t0).Seconds())
	}

	// 2. Ingest on a fresh store, with a server running as in production.
	js := &jitstream{bin: bin, store: filepath.Join(work, "store"), logs: logs}
	if js.hasServeFlag(ctx, "auth") {
		// Access control is not what is measured (nginx serves the same
		// bytes to anyone).
		js.flags = []string{"--auth=false"}
		fmt.Println("servers      --auth=false: no tokens")
	}
	if cfg.only == "transcoding" {
		res.section = "just-in-time transcoding: 1080p H.264 to the 720p rendition"
		if err := transcodeBench(ctx, res, js, repo, work, user); err != nil {
			res.failed("transcoding", "-", err)
		}
		fmt.Println()
		printTable(res)
		return nil
	}
	c := newClient()
	srv, err := js.start(ctx, c)
	if err != nil {
		return err
	}
	t0 = time.Now()
	id, err := js.ingest(ctx, user, fx.Path)
	ingest := time.Since(t0)
	srv.stop()
	closeIdle(c)
	if err != nil {
		return err
	}
	res.IngestSec = ingest.Seconds()
	fmt.Printf("ingest       %.2f s (%.0f MB/s): asset %s\n", ingest.Seconds(), float64(fx.Size)/1e6/ingest.Seconds(), id)
	path := "/files/" + user + "/" + id + ".mp4"

	// 3. Cold first byte: a new server process each time.
	var coldOurs, startups, coldCPU []time.Duration
	for range coldRuns {
		c := newClient()
		s, err := js.start(ctx, c)
		if err != nil {
			return err
		}
		cpu0, _ := cpuTime(s.pid)
		_, body, err := ttfb(ctx, c, s.base+path, 1)
		cpu1, ok := cpuTime(s.pid)
		s.stop()
		closeIdle(c)
		if err != nil {
			return fmt.Errorf("cold first byte: %w", err)
		}
		coldOurs = append(coldOurs, body)
		if ok {
			coldCPU = append(coldCPU, cpu1-cpu0)
		}
		startups = append(startups, s.startup)
	}
	res.StartupMs = ms(median(startups))
	fmt.Printf("cold         first byte %s ms; server start to /healthz %s ms\n", fmtDurs(coldOurs), fmtDurs(startups))
	if len(coldCPU) > 0 {
		// CPU time does not grow when other work on the machine delays the
		// server, unlike the wall-clock figure.
		fmt.Printf("             server CPU time until the first byte %s ms\n", fmtDurs(coldCPU))
		for _, d := range coldCPU {
			res.ColdCPUMs = append(res.ColdCPUMs, ms(d))
		}
	}

	// Adaptive streams: the resources measured, picked on a server that is
	// not measured afterwards, then the first request of each from a new
	// server process (asset metadata and index not loaded, nothing built).
	streamSet, err := func() ([]*streamRes, error) {
		c := newClient()
		defer closeIdle(c)
		s, err := js.start(ctx, c)
		if err != nil {
			return nil, err
		}
		defer s.stop()
		return discoverStreams(ctx, c, s.base, user, id)
	}()
	if err != nil {
		return fmt.Errorf("adaptive streams: %w", err)
	}
	for _, sr := range streamSet {
		for range coldRuns {
			c := newClient()
			s, err := js.start(ctx, c)
			if err != nil {
				return err
			}
			d, _, err := fetchTime(ctx, c, s.base+sr.Paths[0])
			s.stop()
			closeIdle(c)
			if err != nil {
				return fmt.Errorf("cold %s: %w", sr.Label, err)
			}
			sr.coldOurs = append(sr.coldOurs, d)
		}
	}
	res.Streams = streamSet

	// The servers the rest runs against: one as configured by default
	// (production: fast start, then paced at the content's bit rate) for
	// the first-byte and heap figures, and one that sends as fast as it
	// can, like nginx, for the downloads and the ranges.
	ours, err := js.start(ctx, newClient(), "--debug")
	if err != nil {
		return err
	}
	defer ours.stop()
	raw := ours
	paced := js.hasServeFlag(ctx, "pace-factor")
	if paced {
		if raw, err = js.start(ctx, newClient(), "--debug", "--pace-factor", "0"); err != nil {
			return err
		}
		defer raw.stop()
		fmt.Println("servers      default delivery settings (paced after the fast start) for first byte and heap;")
		fmt.Println("             --pace-factor 0 (unpaced, as nginx) for materialising, downloads and ranges")
	}
	url := raw.base + path

	// 4. Warm first byte.
	warm := func(base string) ([]time.Duration, error) {
		c := newClient()
		defer closeIdle(c)
		if _, _, err := ttfb(ctx, c, base+path, warmRead); err != nil { // warm-up
			return nil, err
		}
		var ds []time.Duration
		for range warmGets {
			_, d, err := ttfb(ctx, c, base+path, warmRead)
			if err != nil {
				return nil, err
			}
			ds = append(ds, d)
		}
		return ds, nil
	}
	warmOurs, err := warm(ours.base)
	if err != nil {
		return fmt.Errorf("warm first byte: %w", err)
	}

	// 5. Materialise the consolidated file for nginx.
	ngRoot := filepath.Join(work, "nginx-root")
	if err := os.MkdirAll(filepath.Join(ngRoot, "files", user), 0o755); err != nil {
		return err
	}
	// nginx's /healthz, probed like jitstream's before its cold request.
	if err := os.WriteFile(filepath.Join(ngRoot, "healthz"), []byte("ok\n"), 0o644); err != nil {
		return err
	}
	size, err := contentLength(ctx, c, url)
	if err != nil {
		return err
	}
	static := filepath.Join(ngRoot, filepath.FromSlash(path))
	dctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	n, _, err := download(dctx, c, url, static)
	cancel()
	if err != nil {
		if ctx.Err() == nil && dctx.Err() != nil {
			err = fmt.Errorf("%w (the download took more than 3 minutes: is the server pacing it?)", err)
		}
		return fmt.Errorf("materialising: %w", err)
	}
	fi, err := os.Stat(static)
	if err != nil {
		return err
	}
	if n != size || fi.Size() != size {
		return fmt.Errorf("materialising: HEAD says %d bytes, GET gave %d, file has %d", size, n, fi.Size())
	}
	res.Consolidated = size
	fmt.Printf("consolidated %s: %d bytes (%+d vs. the original), saved for nginx, sizes match\n", path, size, size-fx.Size)

	// The stream resources: the first request of each on the running
	// server (the asset is loaded, nothing of the streams built yet),
	// saved for nginx; the other server builds them again and must give
	// the same bytes.
	for _, sr := range streamSet {
		sr.Sizes = map[string]int64{}
		var total int64
		for _, p := range sr.Paths {
			d, body, err := fetchTime(ctx, c, ours.base+p)
			if err != nil {
				return fmt.Errorf("adaptive streams: %w", err)
			}
			sr.firstOurs = append(sr.firstOurs, d)
			sr.Sizes[p] = int64(len(body))
			total += int64(len(body))
			if err := saveStatic(ngRoot, p, body); err != nil {
				return err
			}
			again, err := getBody(ctx, c, raw.base+p)
			if err != nil {
				return fmt.Errorf("adaptive streams: %w", err)
			}
			if !bytes.Equal(again, body) {
				p := fmt.Sprintf("%s: two servers built different bytes (%d and %d bytes)", p, len(body), len(again))
				res.Problems = append(res.Problems, p)
				fmt.Println("PROBLEM     ", p)
			}
		}
		fmt.Printf("%-12s %d × %s, %.0f KB each on average, saved for nginx\n", sr.Key, len(sr.Paths), rel("/streams/"+user+"/"+id, sr.Paths[0]), float64(total)/float64(len(sr.Paths))/1e3)
	}

	// nginx, cold then running.
	var coldNginx []time.Duration
	for range coldRuns {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var body time.Duration
		err := coldNginx1(ctx, ngRoot, func(c *http.Client, base string) (err error) {
			_, body, err = ttfb(ctx, c, base+path, 1)
			return err
		})
		if err != nil {
			return fmt.Errorf("nginx cold first byte: %w", err)
		}
		coldNginx = append(coldNginx, body)
	}
	for _, sr := range streamSet {
		for range coldRuns {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var d time.Duration
			var body []byte
			err := coldNginx1(ctx, ngRoot, func(c *http.Client, base string) (err error) {
				d, body, err = fetchTime(ctx, c, base+sr.Paths[0])
				return err
			})
			if err == nil && int64(len(body)) != sr.Sizes[sr.Paths[0]] {
				err = fmt.Errorf("%d bytes, want %d", len(body), sr.Sizes[sr.Paths[0]])
			}
			if err != nil {
				return fmt.Errorf("nginx cold %s: %w", sr.Label, err)
			}
			sr.coldNginx = append(sr.coldNginx, d)
		}
	}
	theirs, err := startNginx(ngRoot)
	if err != nil {
		return err
	}
	defer theirs.stop()
	for _, sr := range streamSet {
		for _, p := range sr.Paths {
			d, body, err := fetchTime(ctx, c, theirs.base+p)
			if err == nil && int64(len(body)) != sr.Sizes[p] {
				err = fmt.Errorf("%d bytes, want %d", len(body), sr.Sizes[p])
			}
			if err != nil {
				return fmt.Errorf("nginx %s: %w", p, err)
			}
			sr.firstNginx = append(sr.firstNginx, d)
		}
		sr.fill()
	}
	if n, err := contentLength(ctx, c, theirs.base+path); err != nil || n != size {
		return fmt.Errorf("nginx serves %d bytes (%v), want %d", n, err, size)
	}
	if err := spotCheck(ctx, c, url, theirs.base+path, size, cfg.seed); err != nil {
		res.Problems = append(res.Problems, err.Error())
		fmt.Println("PROBLEM     ", err)
	}
	warmNginx, err := warm(theirs.base)
	if err != nil {
		return fmt.Errorf("nginx warm first byte: %w", err)
	}
	closeIdle(c)

	for _, d := range coldOurs {
		res.ColdMs = append(res.ColdMs, ms(d))
	}
	for _, d := range coldNginx {
		res.ColdNginxMs = append(res.ColdNginxMs, ms(d))
	}
	res.compare("cold first byte, median of 3", "ms", ms(median(coldOurs)), ms(median(coldNginx)), "<= 50 ms", median(coldOurs) <= 50*time.Millisecond)
	res.compare(fmt.Sprintf("warm first byte, median of %d", warmGets), "ms", ms(median(warmOurs)), ms(median(warmNginx)), "<= 2 ms", median(warmOurs) <= 2*time.Millisecond)
	res.add(row{Name: "warm first byte, p95", Unit: "ms", Ours: ms(quantile(warmOurs, 0.95)),
		Nginx: ptr(ms(quantile(warmNginx, 0.95))), Ratio: ptr(float64(quantile(warmOurs, 0.95)) / float64(quantile(warmNginx, 0.95)))})

	// 6 and 7. Load runs in short rounds, alternating the servers (ABBA...),
	// so that a burst of other activity on the machine hits both alike. A
	// targetRatio of 0 is a row without a target.
	loadVs := func(us, theirs *server, name, unit string, targetRatio float64, fn func(base string, round int) (loadResult, error), figure func(loadResult) float64) {
		var o, t loadResult
		var pairs []float64
		for r := range rounds {
			order := []*server{us, theirs}
			if r%2 == 1 {
				order = []*server{theirs, us}
			}
			var fig [2]float64
			for _, s := range order {
				lr, err := fn(s.base, r)
				if err != nil {
					res.failed(name, unit, fmt.Errorf("%s: %w", s.name, err))
					return
				}
				if s == us {
					o.add(lr)
					fig[0] = figure(lr)
				} else {
					t.add(lr)
					fig[1] = figure(lr)
				}
			}
			if fig[1] > 0 { // (a stalled reference round gives no ratio; a stalled jitstream round gives 0)
				pairs = append(pairs, fig[0]/fig[1])
			}
		}
		// The figures are totals over the rounds; the ratio is the median
		// of the rounds' ratios, which a stall of one round does not sway.
		if figure(t) == 0 {
			res.failed(name, unit, fmt.Errorf("%s did not complete a request", theirs.name))
			return
		}
		ratio := figure(o) / figure(t)
		if len(pairs) > 0 {
			ratio = medianF(pairs)
		}
		r := row{Name: name, Unit: unit, Ours: figure(o), Nginx: ptr(figure(t)), Ratio: ptr(ratio), RoundRatios: pairs}
		if targetRatio > 0 {
			r.Target, r.Pass = fmt.Sprintf("ratio >= %.2g", targetRatio), ptr(ratio >= targetRatio)
		}
		res.add(r)
	}
	load := func(us *server, name, unit string, targetRatio float64, fn func(base string, round int) (loadResult, error), figure func(loadResult) float64) {
		loadVs(us, theirs, name, unit, targetRatio, fn, figure)
	}
	d := roundDur
	full := fmt.Sprintf("full download, %d clients", fullConns)
	ranges := fmt.Sprintf("random 1 MiB ranges, %d clients", rangeConns)
	if cfg.client == "wrk" {
		load(raw, full, "MB/s", 0.9, func(b string, _ int) (loadResult, error) {
			return wrkFullDownloads(ctx, work, b+path, fullConns, d)
		}, loadResult.mbps)
		load(raw, ranges, "req/s", 0.8, func(b string, r int) (loadResult, error) {
			return wrkRandomRanges(ctx, work, b+path, size, rangeConns, d, cfg.seed+uint64(r))
		}, loadResult.rps)
	} else {
		load(raw, full, "MB/s", 0.9, func(b string, _ int) (loadResult, error) {
			return goFullDownloads(ctx, b+path, size, fullConns, d)
		}, loadResult.mbps)
		load(raw, ranges, "req/s", 0.8, func(b string, r int) (loadResult, error) {
			return goRandomRanges(ctx, b+path, size, rangeConns, d, cfg.seed+uint64(r))
		}, loadResult.rps)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}

	// 8. Heap held per paused download: with the default settings (the
	// target), and unpaced.
	heapRow := func(label string, srv *server, target bool) *heapResult {
		name := fmt.Sprintf("heap per paused download%s", label)
		h, err := heapPerDownload(ctx, srv.base, srv.base+path, heapConns, heapRead)
		if err != nil {
			if ctx.Err() == nil {
				res.failed(name, "KiB", err)
			}
			return nil
		}
		per := h.PerDownload / 1024
		r := row{Name: name, Unit: "KiB", Ours: per}
		if target {
			r.Target, r.Pass = "<= 64 KiB", ptr(per <= 64)
		}
		res.add(r)
		return h
	}
	var h, hRaw *heapResult
	if paced {
		h = heapRow(", default", ours, true)
		hRaw = heapRow(", unpaced", raw, false)
	} else {
		h = heapRow("", ours, true)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	res.Heap, res.HeapUnpaced = h, hRaw

	// 9. Adaptive streaming: playlists and segments from the server with
	// the default settings (segments are not paced by default), against
	// nginx serving the same bytes. The first requests were measured above;
	// the request-rate runs start warm (two passes over every path on each
	// server), as the server keeps what it built in memory.
	res.section = "adaptive streaming"
	goRef, err := startGoStatic(ctx, c, ngRoot, logs)
	if err != nil {
		return err
	}
	defer goRef.stop()
	for _, s := range []*server{ours, theirs, goRef} {
		for range 2 {
			for _, sr := range streamSet {
				for _, p := range sr.Paths {
					if _, err := getBody(ctx, c, s.base+p); err != nil {
						return fmt.Errorf("warm-up: %s: %w", s.name, err)
					}
				}
			}
		}
	}
	for _, sr := range streamSet {
		load(ours, fmt.Sprintf("%s, %d clients", sr.Label, streamConns), "req/s", sr.target, func(b string, r int) (loadResult, error) {
			return goStreamRequests(ctx, b, sr, streamConns, d, cfg.seed+uint64(r))
		}, loadResult.rps)
	}
	// The Go reference on the same files as nginx: the "jitstream" column
	// of these rows is Go's http.FileServer.
	for _, sr := range streamSet {
		load(goRef, fmt.Sprintf("%s: Go http.FileServer (reference)", sr.Label), "req/s", 0, func(b string, r int) (loadResult, error) {
			return goStreamRequests(ctx, b, sr, streamConns, d, cfg.seed+uint64(r))
		}, loadResult.rps)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	closeIdle(c)
	for _, sr := range streamSet {
		res.add(row{Name: sr.Label + ": cold, new server, median of 3", Unit: "ms", Ours: ms(median(sr.coldOurs)),
			Nginx: ptr(ms(median(sr.coldNginx))), Ratio: ptr(float64(median(sr.coldOurs)) / float64(median(sr.coldNginx)))})
		name := sr.Label + ": first request, running"
		if len(sr.Paths) > 1 {
			name += fmt.Sprintf(", median of %d", len(sr.Paths))
		}
		res.add(row{Name: name, Unit: "ms", Ours: ms(median(sr.firstOurs)),
			Nginx: ptr(ms(median(sr.firstNginx))), Ratio: ptr(float64(median(sr.firstOurs)) / float64(median(sr.firstNginx)))})
	}

	// 10. Delivery control: many paced downloads on a server of their own.
	res.section = fmt.Sprintf("delivery control: %d paced downloads at ~%.0f kbit/s, %v burst, %v window",
		pc.Sessions, pc.TargetBps/1e3, pc.Burst, pc.Window)
	pr, err := pacedDownloads(ctx, js, static, path, pc)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		res.failed("paced downloads", "-", err)
	} else {
		res.Pacing = pr
		res.add(row{Name: "server RSS, max over the window", Unit: "MB", Ours: pr.RSSMaxMB, Target: "<= 300 MB", Pass: ptr(pr.RSSMaxMB <= 300)})
		res.add(row{Name: "server CPU, over the window", Unit: "% of a core", Ours: pr.ServerCPU, Target: "<= 50%", Pass: ptr(pr.ServerCPU <= 50)})
		res.add(row{Name: fmt.Sprintf("downloads within %.0f%% of their target rate", 100*pc.Tolerance), Unit: "%", Ours: 100 * pr.Share,
			Target: "100% (all)", Pass: ptr(pr.Within == pr.Sessions)})
		res.add(row{Name: "download rate, min", Unit: "kbit/s", Ours: pr.RateMinBps / 1e3})
		res.add(row{Name: "download rate, median", Unit: "kbit/s", Ours: pr.RateMedianBps / 1e3})
		res.add(row{Name: "download rate, max", Unit: "kbit/s", Ours: pr.RateMaxBps / 1e3})
		res.add(row{Name: "all downloads together", Unit: "Mbit/s", Ours: pr.TotalBps / 1e6})
		res.add(row{Name: "bench process (the clients) CPU", Unit: "% of a core", Ours: pr.ClientCPU})
	}

	// 11. Object storage (see objstore.go).
	res.section = "object storage: S3 (MinIO) behind the node's read cache"
	for _, sr := range streamSet {
		if sr.Key != "fmp4" {
			continue
		}
		if err := objStore(ctx, res, js, fx.Path, user, id, sr, loadVs, ours, streamConns, d, cfg.seed); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			res.failed("object storage", "-", err)
		}
	}

	// 12. Just-in-time transcoding (see transcode.go).
	res.section = "just-in-time transcoding: 1080p H.264 to the 720p rendition"
	if err := transcodeBench(ctx, res, js, repo, work, user); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		res.failed("transcoding", "-", err)
	}

	res.LoadAvg[1] = loadAvg()
	fmt.Println()
	printTable(res)
	fmt.Println()
	for _, x := range []struct {
		label string
		h     *heapResult
	}{{"heap", h}, {"unpaced", hRaw}} {
		if h := x.h; h != nil {
			fmt.Printf("%-8s baseline %.1f MiB / %d goroutines; %d paused downloads %.1f MiB / %d goroutines (all had %d KiB after %.2f s); closed %.1f MiB / %d goroutines\n",
				x.label+":", mib(h.Baseline.HeapAlloc), h.Baseline.Goroutines, h.Downloads, mib(h.During.HeapAlloc), h.During.Goroutines,
				h.ReadBytes>>10, h.Ready, mib(h.After.HeapAlloc), h.After.Goroutines)
		}
	}
	fmt.Printf("load generator: %s; %d rounds of %v per server, alternating\n", cfg.client, rounds, roundDur)
	for _, r := range res.Rows {
		if len(r.RoundRatios) > 0 {
			lo, hi := slices.Min(r.RoundRatios), slices.Max(r.RoundRatios)
			fmt.Printf("  %s: ratio per round %.2f .. %.2f, median %.2f (the ratio shown)\n", r.Name, lo, hi, medianF(r.RoundRatios))
		}
	}

	if len(streamSet) > 0 {
		fmt.Printf("adaptive streaming: server with the default settings (segments unpaced), %d clients; times to the last byte\n", streamConns)
		for _, sr := range streamSet {
			var names []string
			for _, p := range sr.Paths {
				names = append(names, rel("/streams/"+user+"/"+id, p))
			}
			fmt.Printf("  %s: %s\n", sr.Label, strings.Join(names, " "))
		}
	}
	if pr := res.Pacing; pr != nil {
		fmt.Printf("delivery control: --burst %v --pace-factor %.4f (file %.1f kbit/s × factor = %.0f kbit/s); %d downloads of %s,\n",
			pc.Burst, pr.Factor, pr.FileBps/1e3, pr.FileBps*pr.Factor/1e3, pr.Sessions, path)
		fmt.Printf("  all heads in %.2f s, all past their fast start after %.2f s, on their pacing schedule after %.2f s; %d KiB client read buffer each; %.0f reads/s\n",
			pr.OpenSeconds, pr.PastBurstSecs, pr.ReadySeconds, pc.ReadBuffer>>10, pr.ReadsPerSec)
		if pr.BehindAtStart > 0 {
			fmt.Printf("  %d downloads were still behind their schedule when the window began (up to %.1f s of media): they catch up in it, faster than their pace\n",
				pr.BehindAtStart, pr.MaxLagAtStart)
		}
		fmt.Printf("  rate: between a download's first and last reads in the window; target: the media time those bytes span\n")
		fmt.Printf("  (from the file's sample tables) / pace factor; rate/target min %.4f median %.4f max %.4f (target median %.1f kbit/s)\n",
			pr.RatioMin, pr.RatioMedian, pr.RatioMax, pr.TargetMedianBps/1e3)
		fmt.Printf("  plain bytes in the window / window against factor × file average: %.1f%% within %.0f%%, %.1f .. %.1f kbit/s\n",
			100*pr.PlainShare, 100*pc.Tolerance, pr.PlainMinBps/1e3, pr.PlainMaxBps/1e3)
		fmt.Printf("  server: jitstream_delivery_paced_bits_per_second %.1f Mbit/s (%.1f kbit/s per download); %d threads;\n",
			pr.MetricPacedBps/1e6, pr.MetricPacedBps/1e3/float64(pr.Sessions), pr.ServerThreads)
		fmt.Printf("  RSS sampled %d times in the window; peak since the server started (VmHWM, fast starts included) %.0f MB\n", pr.RSSSamples, pr.RSSPeakMB)
		if pr.Failed > 0 {
			fmt.Printf("  %d downloads failed or could not be measured; first: %s\n", pr.Failed, pr.FirstError)
		}
	}

	fmt.Printf("machine load average (1, 5, 15 min): %s at the start, %s at the end\n", res.LoadAvg[0], res.LoadAvg[1])
	for _, p := range res.Problems {
		fmt.Println("PROBLEM:", p)
	}

	if cfg.out != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return fmt.Errorf("results as JSON: %w", err)
		}
		if err := os.WriteFile(cfg.out, append(b, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Println("results written to", cfg.out)
	}
	for _, r := range res.Rows {
		if r.Err != "" {
			return fmt.Errorf("%s: %s", r.Name, r.Err)
		}
	}
	return nil
}

// loadAvg returns the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func medianF(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func rel(base, p string) string {
	if r, err := filepath.Rel(base, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

func fmtDurs(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = fmt.Sprintf("%.1f", ms(d))
	}
	return strings.Join(s, ", ")
}

// spotCheck compares a few ranges of the two servers' copies byte for byte:
// both must answer ranges of the same file identically.
func spotCheck(ctx context.Context, c *http.Client, a, b string, size int64, seed uint64) error {
	rnd := rand.New(rand.NewPCG(seed, 99))
	const n = 64 << 10
	offs := []int64{0, size - n}
	for range 6 {
		offs = append(offs, rnd.Int64N(size-n))
	}
	for _, off := range offs {
		x, err := getRange(ctx, c, a, off, n)
		if err != nil {
			return fmt.Errorf("jitstream range: %w", err)
		}
		y, err := getRange(ctx, c, b, off, n)
		if err != nil {
			return fmt.Errorf("nginx range: %w", err)
		}
		if string(x) != string(y) {
			return fmt.Errorf("bytes %d-%d of %s: jitstream's answer to the range differs from the same bytes of its whole-file answer (served by nginx)", off, off+n-1, a)
		}
	}
	return nil
}

func printTable(res *results) {
	const line = "%-60s %11s %11s %8s  %-14s %s\n"
	fmt.Printf(line, "", "jitstream", "nginx", "ratio", "target", "")
	section := ""
	for _, r := range res.Rows {
		if r.Section != section {
			section = r.Section
			fmt.Println(section)
		}
		name := "  " + r.Name + " (" + r.Unit + ")"
		if r.Err != "" {
			fmt.Printf(line, name, "-", "-", "-", r.Target, "ERROR: "+r.Err)
			continue
		}
		ng, ratio, verdict := "-", "-", ""
		if r.Nginx != nil {
			ng = fmtFig(*r.Nginx)
		}
		if r.Ratio != nil {
			ratio = fmt.Sprintf("%.2f", *r.Ratio)
		}
		if r.Pass != nil {
			verdict = "PASS"
			if !*r.Pass {
				verdict = "FAIL  <<<"
			}
		}
		target := r.Target
		if target == "" {
			target = "-"
		}
		fmt.Printf(line, name, fmtFig(r.Ours), ng, ratio, target, verdict)
	}
}

func fmtFig(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// coldNginx1 starts a new nginx on root, has a new client get /healthz
// (so that, as for jitstream, the measured request follows an answer on the
// same connection), runs measure, and stops nginx.
func coldNginx1(ctx context.Context, root string, measure func(c *http.Client, base string) error) error {
	c := newClient()
	defer closeIdle(c)
	s, err := startNginx(root)
	if err != nil {
		return err
	}
	defer s.stop()
	if err := proc.GetOK(ctx, c, s.base+"/healthz"); err != nil {
		return err
	}
	return measure(c, s.base)
}
