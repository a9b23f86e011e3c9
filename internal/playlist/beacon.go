package playlist

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"
)

// Bounds of webhook delivery.
const (
	webhookQueue    = 1000            // pending batches (of one Delivered call each)
	webhookWorkers  = 4               // concurrent POSTs
	webhookAttempts = 3               // per beacon
	webhookTimeout  = 5 * time.Second // per attempt
	webhookBackoff  = 500 * time.Millisecond
)

// BeaconOptions configures NewBeacons.
type BeaconOptions struct {
	// File, if set, receives each beacon as a line of JSON, appended. The
	// file is opened with O_APPEND and each line is written by one write,
	// so that the lines of several processes sharing the file never
	// interleave.
	File string
	// Webhook, if set, is a http or https URL to which each beacon is also
	// POSTed as a JSON object, asynchronously: a bounded queue (1000
	// batches, a batch being the beacons of one delivery) feeds 4
	// senders, each beacon is tried 3 times with backoff and a 5 s timeout
	// each, and failures (or a full queue) are logged, never blocking a
	// request. The beacons of one delivery are posted in order; those of
	// different deliveries may arrive in any order (see Beacon.Time).
	Webhook string
	// Logger receives the failures; nil discards them.
	Logger *slog.Logger
}

// Beacon is one ad event of a session, sent by the server from what it
// actually delivered.
type Beacon struct {
	Time time.Time `json:"time"`
	// Event is EventImpression, EventFirstQuartile, EventMidpoint,
	// EventThirdQuartile or EventComplete.
	Event    string `json:"event"`
	Session  string `json:"session"`
	User     string `json:"user"`
	Playlist string `json:"playlist"`
	// Item is the index of the ad in the session's timeline (from 0).
	Item   int    `json:"item"`
	Slot   string `json:"slot"`
	Asset  string `json:"asset"`
	Viewer Viewer `json:"viewer"`
}

// Beacons sends ad beacons to a file and a webhook. It is safe for
// concurrent use. Close it to flush the webhook queue.
type Beacons struct {
	log     *slog.Logger
	file    *os.File // nil: none
	webhook string   // "": none
	client  *http.Client
	backoff time.Duration // before the second attempt, doubling

	// mu guards closed and sending on queue against Close.
	mu     sync.RWMutex
	closed bool
	queue  chan []Beacon

	// ctx is cancelled by Close when its own context is done, to abort
	// the senders.
	ctx     context.Context
	cancel  context.CancelFunc
	workers sync.WaitGroup
}

// NewBeacons opens the beacons' file, if any, and starts the webhook's
// senders, if any.
func NewBeacons(opt BeaconOptions) (*Beacons, error) {
	b := &Beacons{log: opt.Logger, webhook: opt.Webhook, backoff: webhookBackoff}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if opt.Webhook != "" {
		u, err := url.Parse(opt.Webhook)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("playlist: beacon webhook %q: not a http or https URL", opt.Webhook)
		}
	}
	if opt.File != "" {
		f, err := os.OpenFile(opt.File, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("playlist: opening the beacon file: %w", err)
		}
		b.file = f
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	if b.webhook != "" {
		b.client = &http.Client{
			Transport: &http.Transport{
				Proxy:               http.ProxyFromEnvironment,
				MaxIdleConnsPerHost: webhookWorkers,
				IdleConnTimeout:     90 * time.Second,
				TLSHandshakeTimeout: webhookTimeout,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		b.queue = make(chan []Beacon, webhookQueue)
		for range webhookWorkers {
			b.workers.Go(b.sender)
		}
	}
	return b, nil
}

// emit writes the beacons to the file and queues them for the webhook.
// Failures are logged.
func (b *Beacons) emit(ctx context.Context, beacons []Beacon) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		b.log.WarnContext(ctx, "ad beacons after Close dropped", "session", beacons[0].Session, "count", len(beacons))
		return
	}
	if b.file != nil {
		for _, bc := range beacons {
			line, err := json.Marshal(bc)
			if err != nil {
				b.log.ErrorContext(ctx, "encoding an ad beacon", "session", bc.Session, "event", bc.Event, "error", err)
				continue
			}
			// One write of the whole line: with O_APPEND, lines never
			// interleave with those of other writers.
			if _, err := b.file.Write(append(line, '\n')); err != nil {
				b.log.ErrorContext(ctx, "writing an ad beacon", "file", b.file.Name(), "session", bc.Session, "event", bc.Event, "error", err)
			}
		}
	}
	if b.queue != nil {
		select {
		case b.queue <- beacons:
		default:
			b.log.ErrorContext(ctx, "ad beacon webhook queue full: beacons dropped", "session", beacons[0].Session, "item", beacons[0].Item, "count", len(beacons))
		}
	}
}

// sender posts the queued batches until the queue is closed.
func (b *Beacons) sender() {
	for batch := range b.queue {
		for _, bc := range batch {
			if b.ctx.Err() != nil {
				b.log.Error("ad beacon dropped: closing", "session", bc.Session, "item", bc.Item, "event", bc.Event)
				continue
			}
			b.post(bc)
		}
	}
}

// post sends one beacon to the webhook, trying again on failure.
func (b *Beacons) post(bc Beacon) {
	body, err := json.Marshal(bc)
	if err != nil {
		b.log.Error("encoding an ad beacon", "session", bc.Session, "event", bc.Event, "error", err)
		return
	}
	delay := b.backoff
	for attempt := 1; ; attempt++ {
		retry, err := b.try(body)
		if err == nil {
			return
		}
		if !retry || attempt == webhookAttempts {
			b.log.Error("ad beacon webhook failed", "session", bc.Session, "item", bc.Item, "event", bc.Event, "attempts", attempt, "error", err)
			return
		}
		b.log.Warn("ad beacon webhook failed, trying again", "session", bc.Session, "item", bc.Item, "event", bc.Event, "attempt", attempt, "error", err)
		t := time.NewTimer(delay)
		select {
		case <-b.ctx.Done():
			t.Stop()
			b.log.Error("ad beacon dropped: closing", "session", bc.Session, "item", bc.Item, "event", bc.Event)
			return
		case <-t.C:
		}
		delay *= 2
	}
}

// try makes one POST of body, and reports whether a failure may succeed
// when tried again (network errors, 5xx, 408, 429).
func (b *Beacons) try(body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(b.ctx, webhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.webhook, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "jitstream-beacons")
	resp, err := b.client.Do(req)
	if err != nil {
		return true, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, nil
	case c >= 500, c == http.StatusRequestTimeout, c == http.StatusTooManyRequests:
		return true, fmt.Errorf("webhook answered %s", resp.Status)
	default:
		return false, fmt.Errorf("webhook answered %s", resp.Status)
	}
}

// Close stops accepting beacons, waits until the webhook queue is sent or
// ctx is done (then the rest is dropped and logged, and the error wraps
// ctx's error), and closes the file.
func (b *Beacons) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	if b.queue != nil {
		close(b.queue)
	}
	b.mu.Unlock()

	done := make(chan struct{})
	go func() {
		b.workers.Wait()
		close(done)
	}()
	var errs []error
	select {
	case <-done:
	case <-ctx.Done():
		b.cancel() // the senders drop the rest
		<-done
		errs = append(errs, fmt.Errorf("playlist: flushing the beacon webhook queue: %w", ctx.Err()))
	}
	b.cancel()
	if b.client != nil {
		b.client.CloseIdleConnections()
	}
	if b.file != nil {
		if err := b.file.Close(); err != nil {
			errs = append(errs, fmt.Errorf("playlist: closing the beacon file: %w", err))
		}
	}
	return errors.Join(errs...)
}
