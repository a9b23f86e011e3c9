package library_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
)

// hintStore records the size hints it is given.
type hintStore struct {
	store.Store
	mu    sync.Mutex
	hints map[string]int64
}

func (h *hintStore) HintSize(key string, size int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hints[key] = size
}

// TestSizeHints: loading an asset's metadata tells a store that takes
// hints the exact sizes of its originals and its index, so that a read
// cache need not ask the remote store for them.
func TestSizeHints(t *testing.T) {
	ctx := context.Background()
	fs, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	hs := &hintStore{Store: fs, hints: map[string]int64{}}
	lib := library.New(hs, library.Options{})
	if err := lib.AddUser(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	a, err := ingestFile(ctx, lib, "u", "clip.mp4", fixtures.H264AAC(t))
	if err != nil {
		t.Fatal(err)
	}
	// A library of another node: nothing cached.
	other := library.New(hs, library.Options{})
	if _, err := other.Asset(ctx, "u", a.ID); err != nil {
		t.Fatal(err)
	}
	keys := []string{a.Index}
	for _, c := range a.Chapters {
		keys = append(keys, c.Object)
	}
	for _, k := range keys {
		info, err := fs.Stat(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		hs.mu.Lock()
		got, ok := hs.hints[k]
		hs.mu.Unlock()
		if !ok || got != info.Size {
			t.Errorf("hint for %s: %d (given %v), want the stored size %d", k, got, ok, info.Size)
		}
	}
}
