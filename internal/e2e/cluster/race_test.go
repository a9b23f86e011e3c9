package cluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	harness "github.com/jitstream/jitstream/internal/testutil/cluster"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/probe"
)

// raceRounds is the number of ingests that race deletes.
const raceRounds = 12

// raceLog is what the racing goroutines saw.
type raceLog struct {
	mu      sync.Mutex
	created []string
	deleted map[string]bool // deletes answered 204
	errs    []error
}

func (l *raceLog) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

// gone returns the ids whose delete has been answered.
func (l *raceLog) gone() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]bool, len(l.deleted))
	for id := range l.deleted {
		out[id] = true
	}
	return out
}

// TestIngestDeleteRace: node 0 ingests the same file again and again
// while node 1 deletes the newest asset as soon as it is listed (every
// second one), and both nodes keep listing. No deleted id is ever listed again nor given to a
// new asset, and at the end every listed asset is whole (metadata, index,
// chapters) and plays, every deleted one left only its tombstone, and gc
// finds no orphan of a listed asset.
func TestIngestDeleteRace(t *testing.T) {
	t.Parallel()
	e := start(t, harness.Options{})
	src := filepath.Join(t.TempDir(), "race.mp4")
	copyFile(t, fixtures.H264AAC(t), src)
	ingester, deleter := e.Nodes[0], e.Nodes[1]
	log := &raceLog{deleted: map[string]bool{}}
	// The watchers stop between requests (a request cut short would
	// leave in doubt whether a delete was done).
	ctx := t.Context()
	var stopped atomic.Bool

	// watch lists on node until stopped, checking that no id deleted
	// before the listing began is in it; each of its listings is given to
	// then.
	watch := func(node *harness.Node, then func([]string)) {
		for !stopped.Load() && ctx.Err() == nil {
			gone := log.gone()
			ids, err := e.listIDs(ctx, node, alice)
			if err != nil {
				if ctx.Err() == nil {
					log.fail(err)
				}
				return
			}
			for _, id := range ids {
				if gone[id] {
					log.fail(fmt.Errorf("node %d lists %s after its delete was answered", node.Index, id))
				}
			}
			if then != nil {
				then(ids)
			}
		}
	}
	var wg sync.WaitGroup
	defer func() { stopped.Store(true); wg.Wait() }() // also when the test fails early
	wg.Go(func() { watch(ingester, nil) })
	seen := map[string]bool{}
	wg.Go(func() {
		watch(deleter, func(ids []string) {
			// The newest asset (the API lists oldest first), as soon as
			// it is listed, every second one: the others stay, to be
			// checked at the end.
			if len(ids) == 0 || seen[ids[len(ids)-1]] {
				return
			}
			id := ids[len(ids)-1]
			seen[id] = true
			if len(seen)%2 == 0 {
				return
			}
			r, err := request(ctx, http.MethodDelete, deleter.URL()+"/api/v1/users/alice/assets/"+id, e.tokens[alice], nil, nil)
			switch {
			case err != nil:
				if ctx.Err() == nil {
					log.fail(err)
				}
			case r.StatusCode != http.StatusNoContent:
				log.fail(fmt.Errorf("delete of %s on node %d: %s %s", id, deleter.Index, r.Status, r.body))
			default:
				log.mu.Lock()
				log.deleted[id] = true
				log.mu.Unlock()
			}
		})
	})
	for range raceRounds {
		f, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		r, err := request(ctx, http.MethodPost, uploadURL(ingester, alice, "race.mp4"), e.tokens[alice], f, http.Header{"Content-Type": {"video/mp4"}})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if r.StatusCode != http.StatusCreated {
			t.Fatalf("upload: %s %s", r.Status, r.body)
		}
		var a asset
		if err := json.Unmarshal(r.body, &a); err != nil {
			t.Fatalf("upload: %s: %v", r.body, err)
		}
		log.mu.Lock()
		if slices.Contains(log.created, a.ID) || log.deleted[a.ID] {
			t.Errorf("upload got id %s, given before", a.ID)
		}
		log.created = append(log.created, a.ID)
		log.mu.Unlock()
	}
	stopped.Store(true)
	wg.Wait()
	for _, err := range log.errs {
		t.Error(err)
	}
	if len(log.deleted) == 0 {
		t.Fatal("no delete raced the ingests")
	}

	var want []string
	for _, id := range log.created {
		if !log.deleted[id] {
			want = append(want, id)
		}
	}
	t.Logf("%d ingests, %d deleted as soon as listed, %d left", len(log.created), len(log.deleted), len(want))
	slices.Sort(want)
	for _, n := range e.Nodes {
		ids := e.list(t, n, alice)
		slices.Sort(ids)
		if !slices.Equal(ids, want) {
			t.Errorf("node %d lists %q, want the %d not deleted: %q", n.Index, ids, len(want), want)
		}
	}

	// Every listed asset is whole and plays.
	wantPackets := probe.PacketMD5s(t, src)
	for _, id := range want {
		r := get(t, e.Nodes[1].URL()+"/api/v1/users/alice/assets/"+id, e.tokens[alice])
		if r.StatusCode != http.StatusOK {
			t.Errorf("asset %s: %s %s", id, r.Status, r.body)
			continue
		}
		var a asset
		if err := json.Unmarshal(r.body, &a); err != nil {
			t.Fatal(err)
		}
		prefix := "users/alice/assets/" + id + "/"
		wantKeys := []string{prefix + "meta.json", a.Index}
		for _, c := range a.Chapters {
			wantKeys = append(wantKeys, c.Object)
		}
		slices.Sort(wantKeys)
		if got := keysOf(e.Objects(t, prefix)); !slices.Equal(got, wantKeys) {
			t.Errorf("asset %s: objects %q, want its metadata, index and chapters %q", id, got, wantKeys)
		}
		l := e.makeLink(t, alice, id, "24h", e.Nodes[0].URL())
		probe.MatchStreams(t, probe.PacketMD5s(t, l.hls()), wantPackets)
	}
	// Every deleted one left its tombstone only.
	for id := range log.deleted {
		prefix := "users/alice/assets/" + id + "/"
		if got := keysOf(e.Objects(t, prefix)); !slices.Equal(got, []string{prefix + "deleted"}) {
			t.Errorf("deleted asset %s: objects %q, want its tombstone only", id, got)
		}
	}
	rep := e.gc(t, true)
	for _, k := range rep.Orphans {
		for _, id := range want {
			if strings.HasPrefix(k, "users/alice/assets/"+id+"/") {
				t.Errorf("gc would remove %s, of the listed asset %s", k, id)
			}
		}
	}
	if len(rep.Orphans)+len(rep.Uploads) != 0 {
		t.Errorf("gc finds orphans %q and uploads %q", rep.Orphans, rep.Uploads)
	}
}

// keysOf returns the keys of objs, sorted.
func keysOf(objs []harness.Object) []string {
	keys := []string{}
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	slices.Sort(keys)
	return keys
}
