package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// newTransport is an efficient client for loopback benchmarks: keep-alive,
// no gzip, big buffers, no limit on connections per host.
func newTransport(rcvbuf int) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if rcvbuf > 0 {
		d.Control = func(network, address string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = setRcvbuf(fd, rcvbuf)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	return &http.Transport{
		DialContext:         d.DialContext,
		DisableCompression:  true,
		MaxIdleConns:        1000,
		MaxIdleConnsPerHost: 1000,
		IdleConnTimeout:     90 * time.Second,
		ReadBufferSize:      64 << 10,
		WriteBufferSize:     4 << 10,
		ForceAttemptHTTP2:   false,
	}
}

func newClient() *http.Client { return &http.Client{Transport: newTransport(0)} }

func closeIdle(c *http.Client) { c.Transport.(*http.Transport).CloseIdleConnections() }

// ttfb sends GET url and returns the time from sending the request to the
// first response byte (headers) and to the first body byte; it reads
// bodyBytes of the body (at least 1) and closes.
func ttfb(ctx context.Context, c *http.Client, url string, bodyBytes int) (head, body time.Duration, err error) {
	var t0, tHead time.Time
	trace := &httptrace.ClientTrace{GotFirstResponseByte: func() { tHead = time.Now() }}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), "GET", url, nil)
	t0 = time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	buf := make([]byte, max(bodyBytes, 1))
	if _, err := io.ReadFull(resp.Body, buf[:1]); err != nil {
		return 0, 0, fmt.Errorf("GET %s: reading the first byte: %w", url, err)
	}
	body = time.Since(t0)
	if _, err := io.ReadFull(resp.Body, buf[1:]); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return 0, 0, fmt.Errorf("GET %s: %w", url, err)
	}
	return tHead.Sub(t0), body, nil
}

// head returns the Content-Length of a HEAD url.
func contentLength(ctx context.Context, c *http.Client, url string) (int64, error) {
	req, _ := http.NewRequestWithContext(ctx, "HEAD", url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HEAD %s: %s", url, resp.Status)
	}
	if resp.ContentLength < 0 {
		return 0, fmt.Errorf("HEAD %s: no Content-Length", url)
	}
	return resp.ContentLength, nil
}

// download saves url to path and returns its size and SHA-256.
func download(ctx context.Context, c *http.Client, url, path string) (int64, [32]byte, error) {
	var sum [32]byte
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return 0, sum, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, sum, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, sum, err
	}
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(f, h), resp.Body, make([]byte, 1<<20))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, sum, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, sum, fmt.Errorf("GET %s: got %d bytes, Content-Length %d", url, n, resp.ContentLength)
	}
	copy(sum[:], h.Sum(nil))
	return n, sum, nil
}

// getRange returns bytes [off, off+n) of url.
func getRange(ctx context.Context, c *http.Client, url string, off, n int64) ([]byte, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		return nil, fmt.Errorf("GET %s Range %d+%d: %s", url, off, n, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err == nil && int64(len(b)) != n {
		err = fmt.Errorf("GET %s Range %d+%d: got %d bytes", url, off, n, len(b))
	}
	return b, err
}

// loadResult is what a fixed-time load run measured.
type loadResult struct {
	Bytes    int64         `json:"bytes"`
	Requests int64         `json:"requests"` // completed
	Errors   int64         `json:"errors"`
	Elapsed  time.Duration `json:"elapsed_ns"`
}

func (r loadResult) mbps() float64 { return float64(r.Bytes) / 1e6 / r.Elapsed.Seconds() }
func (r loadResult) rps() float64  { return float64(r.Requests) / r.Elapsed.Seconds() }
func (r *loadResult) add(o loadResult) {
	r.Bytes += o.Bytes
	r.Requests += o.Requests
	r.Errors += o.Errors
	r.Elapsed += o.Elapsed
}

// goLoad runs conns clients for d against url. Each client sends the
// request made by next (with its own random source) and reads the body to
// the end into a 1 MiB buffer; want checks the status and length. Bytes are
// counted as they arrive, so a download cut by the deadline still counts.
func goLoad(ctx context.Context, url string, conns int, d time.Duration, seed uint64,
	setup func(req *http.Request, rnd *rand.Rand), want func(resp *http.Response, n int64) error) (loadResult, error) {
	tr := newTransport(0)
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var bytes, reqs, errs atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(seed, uint64(i)))
			buf := make([]byte, 1<<20)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
				setup(req, rnd)
				resp, err := c.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
						once.Do(func() { firstErr = err })
					}
					continue
				}
				var n int64
				for {
					m, err := resp.Body.Read(buf)
					n += int64(m)
					bytes.Add(int64(m))
					if err != nil {
						if err == io.EOF {
							if werr := want(resp, n); werr != nil {
								errs.Add(1)
								once.Do(func() { firstErr = werr })
							} else {
								reqs.Add(1)
							}
						} else if ctx.Err() == nil {
							errs.Add(1)
							once.Do(func() { firstErr = err })
						}
						break
					}
				}
				resp.Body.Close()
			}
		}()
	}
	// Cut the downloads in progress at the deadline.
	timer := time.AfterFunc(d, cancel)
	wg.Wait()
	timer.Stop()
	el := min(time.Since(start), d)
	if parent.Err() != nil { // interrupted
		return loadResult{}, parent.Err()
	}
	r := loadResult{Bytes: bytes.Load(), Requests: reqs.Load(), Errors: errs.Load(), Elapsed: el}
	if r.Errors > 0 {
		return r, fmt.Errorf("%d errors, first: %v", r.Errors, firstErr)
	}
	return r, nil
}

func goFullDownloads(ctx context.Context, url string, size int64, conns int, d time.Duration) (loadResult, error) {
	return goLoad(ctx, url, conns, d, 0, func(*http.Request, *rand.Rand) {}, func(resp *http.Response, n int64) error {
		if resp.StatusCode != http.StatusOK || n != size {
			return fmt.Errorf("GET %s: %s, %d bytes, want 200 and %d", url, resp.Status, n, size)
		}
		return nil
	})
}

const rangeLen = 1 << 20

func goRandomRanges(ctx context.Context, url string, size int64, conns int, d time.Duration, seed uint64) (loadResult, error) {
	return goLoad(ctx, url, conns, d, seed, func(req *http.Request, rnd *rand.Rand) {
		x := rnd.Int64N(size - rangeLen + 1)
		req.Header.Set("Range", "bytes="+strconv.FormatInt(x, 10)+"-"+strconv.FormatInt(x+rangeLen-1, 10))
	}, func(resp *http.Response, n int64) error {
		if resp.StatusCode != http.StatusPartialContent || n != rangeLen {
			return fmt.Errorf("GET %s %s: %s, %d bytes, want 206 and %d", url, resp.Request.Header.Get("Range"), resp.Status, n, rangeLen)
		}
		return nil
	})
}

func median(ds []time.Duration) time.Duration { return quantile(ds, 0.5) }

// quantile by the nearest-rank method.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if q == 0.5 && len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	i := int(float64(len(s))*q+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}
