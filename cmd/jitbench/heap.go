package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// heapStats is what jitstream's GET /debug/heap reports (after a GC).
type heapStats struct {
	HeapAlloc  int64 `json:"heap_alloc"`
	HeapInuse  int64 `json:"heap_inuse"`
	Goroutines int   `json:"goroutines"`
}

func readHeap(ctx context.Context, base string) (heapStats, error) {
	var h heapStats
	c := newClient()
	defer closeIdle(c)
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/debug/heap", nil)
	resp, err := c.Do(req)
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return h, fmt.Errorf("GET /debug/heap: %s (is the server running with --debug?)", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return h, fmt.Errorf("GET /debug/heap: %w", err)
	}
	if h.HeapAlloc <= 0 {
		return h, fmt.Errorf("GET /debug/heap: no heap_alloc in the answer")
	}
	return h, nil
}

// readHeapSettled reads /debug/heap twice: the first GC only moves
// sync.Pool contents to the pools' victim caches, the second frees them.
func readHeapSettled(ctx context.Context, base string) (heapStats, error) {
	if _, err := readHeap(ctx, base); err != nil {
		return heapStats{}, err
	}
	return readHeap(ctx, base)
}

type heapResult struct {
	Downloads   int       `json:"downloads"`
	ReadBytes   int       `json:"read_bytes_each"`
	Baseline    heapStats `json:"baseline"`
	During      heapStats `json:"during"`
	After       heapStats `json:"after_release"`
	PerDownload float64   `json:"growth_per_download_bytes"`
	Ready       float64   `json:"ready_seconds"` // until all had their first bytes
}

// heapPerDownload measures how much live heap one download that the client
// stopped reading (a slow or paused player) holds on the server: n
// downloads each read the headers and readBytes of the body, then hold the
// connection open while /debug/heap is read.
func heapPerDownload(ctx context.Context, base, url string, n, readBytes int) (*heapResult, error) {
	// Warm-up: the first MiB of a download (the whole file would take an
	// hour from a pacing server), so that per-asset caches are in the
	// baseline.
	c := newClient()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	_, err = io.ReadFull(resp.Body, make([]byte, 1<<20))
	resp.Body.Close()
	closeIdle(c)
	if err != nil {
		return nil, fmt.Errorf("warm-up download: %w", err)
	}
	res := &heapResult{Downloads: n, ReadBytes: readBytes}
	if res.Baseline, err = readHeapSettled(ctx, base); err != nil {
		return nil, err
	}

	// A small receive buffer keeps what the kernel holds per connection
	// (and so what the server could push before blocking) modest.
	tr := newTransport(128 << 10)
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	hold, release := context.WithCancel(ctx)
	defer release()
	ready := make(chan error, n)
	var wg sync.WaitGroup
	t0 := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(hold, "GET", url, nil)
			resp, err := hc.Do(req)
			if err != nil {
				ready <- err
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				ready <- fmt.Errorf("GET %s: %s", url, resp.Status)
				return
			}
			if _, err := io.ReadFull(resp.Body, make([]byte, readBytes)); err != nil {
				ready <- err
				return
			}
			ready <- nil
			<-hold.Done()
		}()
	}
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	for got := 0; got < n; got++ {
		select {
		case err := <-ready:
			if err != nil {
				release()
				wg.Wait()
				return nil, fmt.Errorf("held download %d/%d: %w", got+1, n, err)
			}
		case <-deadline.C:
			release()
			wg.Wait()
			return nil, fmt.Errorf("only %d of %d downloads had their first %d bytes after 60 s", got, n, readBytes)
		case <-ctx.Done():
			release()
			wg.Wait()
			return nil, ctx.Err()
		}
	}
	res.Ready = time.Since(t0).Seconds()
	during, err := readHeap(ctx, base)
	release()
	wg.Wait()
	if err != nil {
		return nil, err
	}
	res.During = during
	res.PerDownload = float64(during.HeapAlloc-res.Baseline.HeapAlloc) / float64(n)

	// After the clients went away, the server should be back to the
	// baseline: report where it got within a few seconds.
	stop := time.Now().Add(10 * time.Second)
	for {
		h, err := readHeapSettled(ctx, base)
		if err != nil {
			return nil, err
		}
		res.After = h
		if h.Goroutines <= res.Baseline.Goroutines+2 || time.Now().After(stop) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return res, nil
}
