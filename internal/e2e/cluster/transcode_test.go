package cluster

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	harness "github.com/jitstream/jitstream/internal/testutil/cluster"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
)

// metric reads the value of the metric name (without labels) from node's
// /metrics.
func metric(t *testing.T, node *harness.Node, name string) float64 {
	t.Helper()
	r := get(t, node.URL()+"/metrics", "")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", r.StatusCode, r.body)
	}
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", sc.Text(), err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// TestTranscodeOnceAcrossNodes: two nodes asked at once for the same
// segment of a rendition that was never made answer the same bytes, and
// between them run ffmpeg once per segment (the one asked for, segment 0
// for the init segment, and the prefetched next one), taking turns through
// the cluster lock in Redis and the cache in the shared store.
func TestTranscodeOnceAcrossNodes(t *testing.T) {
	t.Parallel()
	e := start(t, harness.Options{})
	a := e.upload(t, e.Nodes[0], alice, fixtures.HD(t, 720))
	path := fmt.Sprintf("/streams/%s/%s/hls/480p/1.m4s", alice, a.ID)

	bodies := make([][]byte, len(e.Nodes))
	var wg sync.WaitGroup
	for i, n := range e.Nodes {
		wg.Go(func() {
			r, err := request(t.Context(), http.MethodGet, n.URL()+path, e.tokens[alice], nil, nil)
			if err != nil {
				t.Error(err)
				return
			}
			if r.StatusCode != http.StatusOK || r.err != nil {
				t.Errorf("node %d: GET %s: %d %v %.200s", i, path, r.StatusCode, r.err, r.body)
				return
			}
			bodies[i] = r.body
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if !bytes.Equal(bodies[0], bodies[1]) || len(bodies[0]) == 0 {
		t.Fatalf("the nodes answered different segments (%d and %d bytes)", len(bodies[0]), len(bodies[1]))
	}
	// Segments 0 (for the init segment), 1 and 2 (prefetched): three runs
	// in all, once the prefetch is done.
	runs := func() float64 {
		var sum float64
		for _, n := range e.Nodes {
			sum += metric(t, n, "jitstream_transcode_runs_total")
		}
		return sum
	}
	deadline := time.Now().Add(time.Minute)
	cached := e.Objects(t, "cache/transcode/")
	for (runs() < 3 || len(cached) < 4) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond) // polling interval, with a deadline
		cached = e.Objects(t, "cache/transcode/")
	}
	if got := runs(); got != 3 || len(cached) != 4 {
		var keys []string
		for _, o := range cached {
			keys = append(keys, o.Key)
		}
		t.Errorf("%g ffmpeg runs on the two nodes, want 3; cached %q, want segments 0, 1, 2 and the init segment", got, keys)
	}
}
