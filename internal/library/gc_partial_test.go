package library_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/store"
)

// partialStore is a local store that also keeps writes in progress
// (store.PartialWriter), as S3 keeps the multipart uploads of a node that
// died.
type partialStore struct {
	*store.FS
	mu      sync.Mutex
	writes  []store.PartialWrite
	aborted []string
}

func (p *partialStore) PartialWrites(_ context.Context, prefix string) ([]store.PartialWrite, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []store.PartialWrite
	for _, w := range p.writes {
		if len(w.Key) >= len(prefix) && w.Key[:len(prefix)] == prefix {
			out = append(out, w)
		}
	}
	return out, nil
}

func (p *partialStore) AbortPartialWrite(_ context.Context, w store.PartialWrite) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.writes = slices.DeleteFunc(p.writes, func(x store.PartialWrite) bool { return x.ID == w.ID })
	p.aborted = append(p.aborted, w.Key)
	return nil
}

// TestGCPartialWrites: gc aborts the writes in progress that are older
// than the grace period (a dry run only lists them), and leaves the young
// ones, which an ingest may still be making.
func TestGCPartialWrites(t *testing.T) {
	fs, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	st := &partialStore{FS: fs, writes: []store.PartialWrite{
		{Key: "users/u/assets/dead/src/02-r", ID: "1", Started: now.Add(-2 * time.Hour)},
		{Key: "users/u/assets/live/src/01-r", ID: "2", Started: now},
	}}
	lib := library.New(st, library.Options{})
	if err := lib.AddUser(t.Context(), "u"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		dry         bool
		wantAborted []string
	}{
		{"dry run", true, nil},
		{"run", false, []string{"users/u/assets/dead/src/02-r"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := lib.GC(t.Context(), time.Hour, tc.dry)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(rep.Uploads, []string{"users/u/assets/dead/src/02-r"}) || rep.Young != 1 {
				t.Errorf("report: uploads %q, young %d; want the old write, and one young", rep.Uploads, rep.Young)
			}
			if !slices.Equal(st.aborted, tc.wantAborted) {
				t.Errorf("aborted %q, want %q", st.aborted, tc.wantAborted)
			}
		})
	}
	if ws, _ := st.PartialWrites(t.Context(), ""); len(ws) != 1 || ws[0].ID != "2" {
		t.Errorf("writes left %+v, want the young one", ws)
	}
}
