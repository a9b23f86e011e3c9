package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	harness "github.com/jitstream/jitstream/internal/testutil/cluster"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/nginx"
	"github.com/jitstream/jitstream/internal/testutil/probe"
)

// recoverTimeout bounds how long a node may take to serve again once the
// store or the state is back.
const recoverTimeout = time.Minute

// getAll gets every URL concurrently (a store that is down may take
// seconds to fail each request) and returns the responses in order.
func getAll(t *testing.T, urls []string, token string) []*response {
	t.Helper()
	out := make([]*response, len(urls))
	errs := make([]error, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Go(func() { out[i], errs[i] = request(t.Context(), http.MethodGet, u, token, nil, nil) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStoreOutage stops MinIO under two nodes behind the caching proxy:
// what a node must read from the store (a segment never requested, the
// metadata of an asset no node has loaded) is answered 503 with
// Retry-After and a JSON error, never a 200 cut short; the proxy keeps
// none of it; once MinIO is back the nodes serve again by themselves, and
// the proxy serves the same URLs with the right bytes.
func TestStoreOutage(t *testing.T) {
	t.Parallel()
	e := start(t, harness.Options{})
	proxy := nginx.StartProxy(t, e.Addrs())

	longPath := fixtures.Long(t, 1)
	long := e.upload(t, e.Nodes[0], alice, longPath)
	// Ingested by the command line: no node has loaded its metadata.
	coldID := strings.TrimSpace(e.MustCLI(t, "ingest", "--user", alice, fixtures.H264AAC(t)))
	otherPath := filepath.Join(t.TempDir(), "other.mp4")
	copyFile(t, longPath, otherPath)
	other := e.upload(t, e.Nodes[0], alice, otherPath)
	ll := e.makeLink(t, alice, long.ID, "24h", proxy.URL)
	lo := e.makeLink(t, alice, other.ID, "24h", proxy.URL)
	lc := e.makeLink(t, alice, coldID, "24h", proxy.URL)

	// Warm: the master and the first segments, through the proxy (so
	// through both nodes).
	stream := func(l link, id, path string) string { return l.Path + "/streams/alice/" + id + "/" + path }
	warm := []string{
		stream(ll, long.ID, "hls/master.m3u8"), stream(ll, long.ID, "hls/v1/index.m3u8"),
		stream(ll, long.ID, "hls/v1/init.mp4"), stream(ll, long.ID, "hls/v1/0.m4s"), stream(ll, long.ID, "hls/a2/0.m4s"),
	}
	for _, p := range warm {
		for range 2 { // a miss, then a hit
			if r := get(t, proxy.URL+p, ""); r.StatusCode != http.StatusOK || r.err != nil {
				t.Fatalf("warming %s: %s %v", p, r.Status, r.err)
			}
		}
	}
	// Never requested: segments of the long asset, and everything of the
	// cold asset. The segments that follow the warmed ones start in
	// blocks of the original that a node read for those (its read cache
	// keeps them), and may end in blocks it did not read: a node may
	// serve them whole, or must refuse them, but never send part of one.
	last := long.Segments - 1
	coldMaster := stream(lc, coldID, "hls/master.m3u8")
	adjacent := []string{stream(ll, long.ID, "hls/v1/1.m4s"), stream(ll, long.ID, "hls/a2/1.m4s")}
	cold := []string{
		stream(ll, long.ID, fmt.Sprintf("hls/v1/%d.m4s", last/2)), stream(ll, long.ID, fmt.Sprintf("hls/v1/%d.m4s", last)),
		stream(ll, long.ID, "hls/ts/3.ts"),
		coldMaster, stream(lc, coldID, "hls/v1/init.mp4"),
		lc.Path + "/files/alice/" + coldID + ".mp4",
		ll.Path + "/files/alice/" + long.ID + ".mp4?start=30&end=40&pace=0",
	}

	// Downloads in progress: the original of another long asset (the
	// nodes keep what they read of it in their caches), at full speed,
	// from a node and through the proxy; the client reads a little, then
	// nothing until MinIO is stopped.
	orig := lo.Path + "/files/alice/" + other.ID + "/" + other.Chapters[0].Name + "?pace=0"
	var inflight []*partial
	for _, u := range []string{e.Nodes[1].URL() + orig, proxy.URL + orig} {
		inflight = append(inflight, startPartial(t, u, 64<<10))
	}

	e.MinIO.Stop()
	// The downloads go on (concurrently with the requests below: each
	// failing read of the store takes the client's retries).
	finished := make(chan struct{})
	var inflightErrs []error
	go func() {
		defer close(finished)
		for _, p := range inflight {
			inflightErrs = append(inflightErrs, p.readRest())
		}
	}()
	var urls []string
	for _, p := range append(cold, adjacent...) {
		for _, n := range e.Nodes {
			urls = append(urls, n.URL()+p)
		}
		urls = append(urls, proxy.URL+p)
	}
	began := time.Now()
	servedWhole := map[string][]byte{} // URL -> body of a 200
	for i, r := range getAll(t, urls, "") {
		if i >= len(cold)*(len(e.Nodes)+1) && r.StatusCode == http.StatusOK && r.err == nil {
			servedWhole[urls[i]] = r.body // checked once MinIO is back
			continue
		}
		checkUnavailable(t, urls[i], r)
	}
	t.Logf("with MinIO stopped: %d requests answered in %v, %d of the %d that may be cached were served",
		len(urls), time.Since(began).Round(time.Millisecond), len(servedWhole), len(adjacent)*(len(e.Nodes)+1))
	wantOrig, err := os.ReadFile(otherPath)
	if err != nil {
		t.Fatal(err)
	}
	<-finished
	for i, p := range inflight {
		p.check(t, inflightErrs[i], wantOrig)
		t.Logf("download in progress when MinIO stopped (%s): %v", redact(p.url), inflightErrs[i])
	}
	for i, r := range getAll(t, []string{e.Nodes[0].URL() + "/healthz", e.Nodes[1].URL() + "/healthz"}, "") {
		if r.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("node %d: /healthz with MinIO stopped: %s, want 503", i, r.Status)
		}
	}
	// What the proxy holds is still served.
	for _, p := range warm {
		if r := get(t, proxy.URL+p, ""); r.StatusCode != http.StatusOK || r.Header.Get("X-Cache-Status") != "HIT" {
			t.Errorf("cached %s: %s, cache status %s", p, r.Status, r.Header.Get("X-Cache-Status"))
		}
	}

	began = time.Now()
	e.MinIO.Restart(t)
	restarted := time.Now()
	t.Logf("MinIO restarted and ready in %v", restarted.Sub(began).Round(time.Millisecond))
	for _, n := range e.Nodes {
		took := waitFor(t, recoverTimeout, fmt.Sprintf("node %d serving again", n.Index), func() error {
			r := get(t, n.URL()+coldMaster, "")
			if r.StatusCode != http.StatusOK || r.err != nil {
				return fmt.Errorf("%s %s %v", r.Status, r.body, r.err)
			}
			return nil
		})
		t.Logf("node %d serves again %v after MinIO's restart", n.Index, took.Round(time.Millisecond))
		if !n.Running() {
			t.Errorf("node %d does not run", n.Index)
		}
	}
	t.Logf("both nodes serve again %v after MinIO's restart", time.Since(restarted).Round(time.Millisecond))

	for _, p := range append(append(cold, adjacent...), orig) {
		direct := get(t, e.Nodes[1].URL()+p, "")
		if direct.StatusCode != http.StatusOK || direct.err != nil {
			t.Errorf("%s from node 1: %s %v", p, direct.Status, direct.err)
			continue
		}
		for _, base := range append(e.Addrs(), strings.TrimPrefix(proxy.URL, "http://")) {
			if b, ok := servedWhole["http://"+base+p]; ok {
				if d := sameBytes(b, direct.body); d != "" {
					t.Errorf("%s served by %s with MinIO stopped: %s", p, base, d)
				}
			}
		}
		r := get(t, proxy.URL+p, "")
		if r.StatusCode != http.StatusOK || r.err != nil {
			t.Errorf("%s through the proxy: %s %v (cache status %s)", p, r.Status, r.err, r.Header.Get("X-Cache-Status"))
			continue
		}
		if d := sameBytes(r.body, direct.body); d != "" {
			t.Errorf("%s through the proxy: %s", p, d)
		}
	}
	for _, en := range proxy.Log(t) {
		if en.Status == http.StatusServiceUnavailable && en.CacheStatus == "HIT" {
			t.Errorf("the proxy served a 503 from its cache: %+v", en)
		}
	}
}

// partial is a GET whose body has been read in part.
type partial struct {
	url  string
	resp *http.Response
	got  []byte
}

// startPartial sends a GET of u and reads n bytes of its body.
func startPartial(t *testing.T, u string, n int) *partial {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", redact(u), err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", redact(u), resp.Status)
	}
	p := &partial{url: u, resp: resp, got: make([]byte, n)}
	if _, err := io.ReadFull(resp.Body, p.got); err != nil {
		t.Fatalf("GET %s: reading %d bytes: %v", redact(u), n, err)
	}
	return p
}

// readRest reads the rest of the body and returns the read's error; safe
// from any goroutine.
func (p *partial) readRest() error {
	rest, err := io.ReadAll(p.resp.Body)
	p.got = append(p.got, rest...)
	return err
}

// check checks the body read (readRest's error err) against want, the
// whole file: a body read without an error must be want, one cut short
// (an error: the server aborted it) must be a prefix of it, and the
// declared length must be want's.
func (p *partial) check(t *testing.T, err error, want []byte) {
	t.Helper()
	if p.resp.ContentLength != int64(len(want)) {
		t.Errorf("GET %s: Content-Length %d, want %d", redact(p.url), p.resp.ContentLength, len(want))
	}
	switch {
	case err == nil && !bytes.Equal(p.got, want):
		t.Errorf("GET %s: a 200 ended cleanly with %d bytes, not the %d of the file", redact(p.url), len(p.got), len(want))
	case err != nil && !bytes.HasPrefix(want, p.got):
		t.Errorf("GET %s: the %d bytes before the error (%v) are not the start of the file", redact(p.url), len(p.got), err)
	}
}

// assetKeys returns the keys of the store's objects under the assets of
// user.
func (e *env) assetKeys(t *testing.T, user string) []string {
	t.Helper()
	var keys []string
	for _, o := range e.Objects(t, "users/"+user+"/assets/") {
		keys = append(keys, o.Key)
	}
	return keys
}

// TestStateOutage stops Redis under two nodes: an ingest, which reserves
// its asset id there, is answered 503 with Retry-After and stores
// nothing; the playback of committed assets, which needs only the store,
// goes on; once Redis is back (empty: it keeps nothing on disk), ingests
// work again without restarting the nodes.
func TestStateOutage(t *testing.T) {
	t.Parallel()
	e := start(t, harness.Options{})
	src := fixtures.H264AAC(t)
	a := e.upload(t, e.Nodes[0], alice, src)
	l := e.makeLink(t, alice, a.ID, "24h", e.Nodes[1].URL())
	want := probe.PacketMD5s(t, src)
	keys := e.assetKeys(t, alice)

	e.Redis.Stop()
	for _, n := range e.Nodes {
		r := e.tryUpload(t, n, alice, fixtures.H265AAC(t))
		checkUnavailable(t, fmt.Sprintf("upload to node %d", n.Index), r)
	}
	if _, stderr, err := e.CLI(t.Context(), "ingest", "--user", alice, src); err == nil {
		t.Error("jitstream ingest with Redis stopped succeeded")
	} else if !strings.Contains(stderr, "redis") {
		t.Errorf("jitstream ingest with Redis stopped: %v, stderr %q: want it to name redis", err, stderr)
	}
	if got := e.assetKeys(t, alice); !slices.Equal(got, keys) {
		t.Errorf("objects after the refused uploads %q, want %q", got, keys)
	}
	// Playback (a link: no token lookup either) and the API go on.
	probe.MatchStreams(t, probe.PacketMD5s(t, l.hls()), want)
	for _, n := range e.Nodes {
		if ids := e.list(t, n, alice); !slices.Equal(ids, []string{a.ID}) {
			t.Errorf("node %d lists %q, want [%s]", n.Index, ids, a.ID)
		}
		if r := get(t, n.URL()+"/files/alice/"+a.ID+".mp4?pace=0", e.tokens[alice]); r.StatusCode != http.StatusOK || r.err != nil {
			t.Errorf("node %d: consolidated MP4 with Redis stopped: %s %v", n.Index, r.Status, r.err)
		}
	}

	began := time.Now()
	e.Redis.Restart(t)
	t.Logf("Redis restarted and ready in %v", time.Since(began).Round(time.Millisecond))
	for _, n := range e.Nodes {
		var b asset
		took := waitFor(t, recoverTimeout, fmt.Sprintf("node %d ingesting again", n.Index), func() error {
			r := e.tryUpload(t, n, alice, src)
			if r.StatusCode != http.StatusCreated {
				return fmt.Errorf("%s %s", r.Status, r.body)
			}
			b = parseAsset(t, r)
			return nil
		})
		t.Logf("node %d ingests again %v after Redis' restart", n.Index, took.Round(time.Millisecond))
		lb := e.makeLink(t, alice, b.ID, "24h", e.Nodes[1-n.Index].URL())
		probe.MatchStreams(t, probe.PacketMD5s(t, lb.hls()), want)
	}
	if ids := e.list(t, e.Nodes[0], alice); len(ids) != 3 {
		t.Errorf("assets after Redis came back: %q, want 3", ids)
	}
}
