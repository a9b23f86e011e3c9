package playlist

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// allAdEvents are the events of an ad played through, in order.
var allAdEvents = []string{EventImpression, EventFirstQuartile, EventMidpoint, EventThirdQuartile, EventComplete}

// readBeacons parses the JSON lines of a beacon file, failing on any line
// that is not a whole beacon.
func readBeacons(t *testing.T, file string) []Beacon {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var bs []Beacon
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		var b Beacon
		if err := dec.Decode(&b); err != nil {
			t.Fatalf("beacon line %q: %v", sc.Text(), err)
		}
		bs = append(bs, b)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return bs
}

// beaconEvents returns the events of the beacons of session id and item, in
// order.
func beaconEvents(bs []Beacon, id string, item int) []string {
	var evs []string
	for _, b := range bs {
		if b.Session == id && b.Item == item {
			evs = append(evs, b.Event)
		}
	}
	return evs
}

// TestBeaconFile plays the ads of a session with re-requests, overlaps and
// audio, and checks that the file has each quartile of each ad once, in
// order, at the delivery that reached it.
func TestBeaconFile(t *testing.T) {
	t.Parallel()
	srv := sessionRedis(t)
	forEachState(t, srv, func(t *testing.T, env *stateEnv) {
		file := filepath.Join(t.TempDir(), "beacons.jsonl")
		b, err := NewBeacons(BeaconOptions{File: file})
		if err != nil {
			t.Fatal(err)
		}
		s := env.sessions(t, SessionOptions{Beacons: b})
		sess := createSession(t, s, adTimeline())
		ad := 1 // 15 s
		steps := []struct {
			at   float64
			r    Request
			want []string // events this delivery sends
		}{
			{1, Request{Item: ad, Start: 0, End: 2}, []string{EventImpression}}, // audio
			{2, Request{Item: ad, Start: 0, End: 2, Primary: true}, nil},
			{3, Request{Item: ad, Start: 0, End: 2, Primary: true}, nil}, // re-request
			{4, Request{Item: ad, Start: 2, End: 4, Primary: true}, []string{EventFirstQuartile}},
			{5, Request{Item: ad, Start: 2, End: 4, Primary: true}, nil},
			{6, Request{Item: ad, Start: 4, End: 12, Primary: true}, []string{EventMidpoint, EventThirdQuartile}},
			{7, Request{Item: ad, Start: 10, End: 14.9, Primary: true}, nil}, // 14.9 < 14.95
			{8, Request{Item: ad, Start: 0, End: 15}, nil},                   // audio
			{9, Request{Item: ad, Start: 12, End: 14.96, Primary: true}, []string{EventComplete}},
			{10, Request{Item: ad, Start: 0, End: 15, Primary: true}, nil},
			{11, Request{Item: 2, Start: 0, End: 60, Primary: true}, nil}, // content: none
			{12, Request{Item: 3, Start: 0, End: 10, Primary: true}, allAdEvents},
			{13, Request{Item: 3, Start: 0, End: 10, Primary: true}, nil},
		}
		var want []Beacon
		for _, st := range steps {
			env.clock.At(st.at)
			deliverAll(t, s, sess.ID, st.r)
			it := adTimeline().Items[st.r.Item]
			for _, ev := range st.want {
				want = append(want, Beacon{
					Time: sessT0.Add(durationOf(st.at)), Event: ev, Session: sess.ID, User: "alice", Playlist: "pl1",
					Item: st.r.Item, Slot: it.Slot, Asset: it.Asset, Viewer: sessViewer,
				})
			}
			if err := b.file.Sync(); err != nil {
				t.Fatal(err)
			}
			if got := readBeacons(t, file); len(got) != len(want) {
				t.Fatalf("after delivering %+v at %v: %d beacons, want %d", st.r, st.at, len(got), len(want))
			}
		}
		if err := b.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		got := readBeacons(t, file)
		if len(got) != len(want) {
			t.Fatalf("%d beacons, want %d", len(got), len(want))
		}
		for i := range got {
			g, w := got[i], want[i]
			if !g.Time.Equal(w.Time) || !g.Viewer.Time.Equal(w.Viewer.Time) {
				t.Errorf("beacon %d: time %v, viewer time %v; want %v, %v", i, g.Time, g.Viewer.Time, w.Time, w.Viewer.Time)
			}
			g.Time, w.Time, g.Viewer.Time, w.Viewer.Time = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("beacon %d = %+v, want %+v", i, g, w)
			}
		}
		p := getSession(t, s, sess.ID).Progress
		if !reflect.DeepEqual(p[1].Beacons, allAdEvents) || !reflect.DeepEqual(p[3].Beacons, allAdEvents) || p[2].Beacons != nil {
			t.Errorf("recorded beacons %v, %v, %v", p[1].Beacons, p[2].Beacons, p[3].Beacons)
		}
	})
}

// TestBeaconNone checks that Sessions without Beacons neither send nor
// record any.
func TestBeaconNone(t *testing.T) {
	t.Parallel()
	srv := sessionRedis(t)
	forEachState(t, srv, func(t *testing.T, env *stateEnv) {
		s := env.sessions(t, SessionOptions{})
		sess := createSession(t, s, adTimeline())
		deliverAll(t, s, sess.ID, segments(1, 0, 15, 5)...)
		if p := getSession(t, s, sess.ID).Progress[1]; p.Beacons != nil || !reflect.DeepEqual(p.Delivered, [][2]float64{{0, 15}}) {
			t.Errorf("progress %+v", p)
		}
	})
}

// beaconSink is a test receiver of beacons that answers fail (a status) to
// the requests whose number (from 1) is in it.
type beaconSink struct {
	mu   sync.Mutex
	n    int
	fail map[int]int
	got  []Beacon // accepted
	bad  []string // malformed requests
}

func (w *beaconSink) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n++
	if st, ok := w.fail[w.n]; ok {
		rw.WriteHeader(st)
		return
	}
	var b Beacon
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &b) != nil {
		w.bad = append(w.bad, r.Method+" "+r.Header.Get("Content-Type")+" "+string(body))
		rw.WriteHeader(http.StatusBadRequest)
		return
	}
	w.got = append(w.got, b)
}

// TestBeaconWebhook checks that the webhook receives each beacon once,
// after a retry of a 500 and of a 503.
func TestBeaconWebhook(t *testing.T) {
	t.Parallel()
	srv := sessionRedis(t)
	forEachState(t, srv, func(t *testing.T, env *stateEnv) {
		wh := &beaconSink{fail: map[int]int{1: http.StatusInternalServerError, 4: http.StatusServiceUnavailable}}
		srv := httptest.NewServer(wh)
		defer srv.Close()
		if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
			t.Fatalf("test server at %s, want 127.0.0.1", srv.URL)
		}
		b, err := NewBeacons(BeaconOptions{Webhook: srv.URL + "/beacons"})
		if err != nil {
			t.Fatal(err)
		}
		b.backoff = time.Millisecond
		s := env.sessions(t, SessionOptions{Beacons: b})
		sess := createSession(t, s, adTimeline())
		deliverAll(t, s, sess.ID, segments(1, 0, 15, 3)...)
		deliverAll(t, s, sess.ID, segments(1, 0, 15, 3)...)
		if err := b.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(t.Context()); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		wh.mu.Lock()
		defer wh.mu.Unlock()
		if len(wh.bad) > 0 {
			t.Errorf("malformed webhook requests: %q", wh.bad)
		}
		if wh.n != len(allAdEvents)+2 {
			t.Errorf("%d webhook requests, want %d (two retries)", wh.n, len(allAdEvents)+2)
		}
		got := make(map[string]int)
		for _, bc := range wh.got {
			got[bc.Event]++
			if bc.Session != sess.ID || bc.Item != 1 || bc.Slot != PreRoll || bc.Asset != "ad-pre" || bc.User != "alice" || bc.Viewer.Country != "DE" {
				t.Errorf("beacon %+v", bc)
			}
		}
		for _, ev := range allAdEvents {
			if got[ev] != 1 {
				t.Errorf("webhook received %s %d times, want once (all: %v)", ev, got[ev], got)
			}
		}
	})
}

// TestBeaconWebhookGivesUp checks that a beacon is tried 3 times, that a
// 4xx is not retried, and that a hanging webhook neither blocks deliveries
// nor keeps Close past its context.
func TestBeaconWebhookGivesUp(t *testing.T) {
	t.Parallel()
	t.Run("failures", func(t *testing.T) {
		t.Parallel()
		var mu sync.Mutex
		status := map[string]int{}
		n := map[string]int{}
		srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			var b Beacon
			json.NewDecoder(r.Body).Decode(&b)
			mu.Lock()
			defer mu.Unlock()
			n[b.Event]++
			rw.WriteHeader(status[b.Event])
		}))
		defer srv.Close()
		status[EventImpression] = http.StatusBadGateway
		status[EventComplete] = http.StatusBadRequest
		b, err := NewBeacons(BeaconOptions{Webhook: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		b.backoff = time.Millisecond
		b.emit(t.Context(), []Beacon{{Event: EventImpression}, {Event: EventComplete}})
		if err := b.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if n[EventImpression] != 3 || n[EventComplete] != 1 {
			t.Errorf("attempts %v, want 3 for a 502 and 1 for a 400", n)
		}
	})
	t.Run("hanging", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(release)
		b, err := NewBeacons(BeaconOptions{Webhook: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		// Many more than the queue holds: emit never blocks.
		start := time.Now()
		for range 3 * webhookQueue {
			b.emit(t.Context(), []Beacon{{Event: EventImpression}})
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("emitting to a hanging webhook took %v", d)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		start = time.Now()
		if err := b.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close = %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Close took %v with a context of 100ms", d)
		}
	})
}

func TestNewBeaconsErrors(t *testing.T) {
	t.Parallel()
	for _, opt := range []BeaconOptions{
		{Webhook: "ftp://example.com/x"},
		{Webhook: "http://"},
		{Webhook: "::"},
		{File: filepath.Join(t.TempDir(), "missing", "beacons.jsonl")},
	} {
		if b, err := NewBeacons(opt); err == nil {
			b.Close(t.Context())
			t.Errorf("NewBeacons(%+v) succeeded", opt)
		}
	}
	b, err := NewBeacons(BeaconOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b.emit(t.Context(), []Beacon{{Event: EventImpression}}) // nowhere: fine
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	b.emit(t.Context(), []Beacon{{Event: EventImpression}}) // after Close: dropped
}
