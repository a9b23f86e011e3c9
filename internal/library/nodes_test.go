package library_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/state"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/redis"
	"github.com/jitstream/jitstream/internal/testutil/teststore"
)

// ingestFile ingests one file as an asset named after name.
func ingestFile(ctx context.Context, lib *library.Library, user, name, path string) (*library.Asset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	done := false
	return lib.Ingest(ctx, user, "", func() (*library.Upload, error) {
		if done {
			return nil, nil
		}
		done = true
		return &library.Upload{Name: name, R: f}, nil
	})
}

// TestNodesShareReservations: several nodes (libraries over one store and
// one shared state) ingesting files of the same name at once get distinct
// ids, each committed whole; a deleted asset's id is never given again.
func TestNodesShareReservations(t *testing.T) {
	clip := fixtures.H264AAC(t)
	for _, tc := range []struct {
		name  string
		state func(t *testing.T) state.State
	}{
		{"memory", func(*testing.T) state.State { return state.NewMemory() }},
		{"redis", func(t *testing.T) state.State {
			srv := redis.Start(t)
			st, err := state.NewRedis(context.Background(), srv.URL(), state.RedisOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st := teststore.New(t).Store
			shared := tc.state(t)
			const nodes = 4
			libs := make([]*library.Library, nodes)
			for i := range libs {
				libs[i] = library.New(st, library.Options{State: shared})
			}
			if err := libs[0].AddUser(ctx, "u"); err != nil {
				t.Fatal(err)
			}
			ids := make([]string, nodes)
			var wg sync.WaitGroup
			for i, lib := range libs {
				wg.Go(func() {
					a, err := ingestFile(ctx, lib, "u", "GOPR0001.MP4", clip)
					if err != nil {
						t.Error(err)
						return
					}
					ids[i] = a.ID
				})
			}
			wg.Wait()
			seen := map[string]bool{}
			for _, id := range ids {
				if seen[id] {
					t.Fatalf("two nodes committed the same id %q: %v", id, ids)
				}
				seen[id] = true
				a, err := libs[0].Asset(ctx, "u", id)
				if err != nil {
					t.Fatal(err)
				}
				if len(a.Chapters) != 1 {
					t.Fatalf("asset %s has %d chapters", id, len(a.Chapters))
				}
				if _, err := libs[1].Index(ctx, a); err != nil {
					t.Fatalf("asset %s: %v", id, err)
				}
			}
			// Delete one on a node, ingest the same name on another: a new id.
			if err := libs[2].Delete(ctx, "u", ids[0]); err != nil {
				t.Fatal(err)
			}
			if _, err := libs[3].Asset(ctx, "u", ids[0]); !errors.Is(err, library.ErrUnknownAsset) {
				t.Fatalf("deleted asset: %v", err)
			}
			a, err := ingestFile(ctx, libs[3], "u", "GOPR0001.MP4", clip)
			if err != nil {
				t.Fatal(err)
			}
			if seen[a.ID] {
				t.Fatalf("a new ingest got the id %q again", a.ID)
			}
		})
	}
}
