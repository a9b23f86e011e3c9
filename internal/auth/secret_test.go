package auth

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"

	"github.com/jitstream/jitstream/internal/state"
	"github.com/jitstream/jitstream/internal/store"
)

// barrierStore holds the first read of the secret by each of n callers
// until all n have made it: every caller finds no secret, as processes
// starting at once on a new store do.
type barrierStore struct {
	store.Store
	mu      sync.Mutex
	waiting int
	release chan struct{}
	n       int
	seen    map[any]bool
}

type callerKey struct{}

func (b *barrierStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	rc, err := b.Store.Get(ctx, key, off, n)
	if key != secretKey {
		return rc, err
	}
	caller := ctx.Value(callerKey{})
	b.mu.Lock()
	first := !b.seen[caller]
	b.seen[caller] = true
	if first {
		b.waiting++
		if b.waiting == b.n {
			close(b.release)
		}
	}
	b.mu.Unlock()
	if first {
		<-b.release
	}
	return rc, err
}

// TestSecretCreatedOnce: processes that start at once on a store without
// a link secret, sharing a state, end up with the one secret stored, so
// that a link made by any of them is accepted by all.
func TestSecretCreatedOnce(t *testing.T) {
	fs, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	st := &barrierStore{Store: fs, release: make(chan struct{}), n: n, seen: map[any]bool{}}
	sh := state.NewMemory()
	auths := make([]*Auth, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx := context.WithValue(t.Context(), callerKey{}, i)
			auths[i], errs[i] = New(ctx, st, Options{State: sh})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("New %d: %v", i, err)
		}
	}
	stored, err := loadSecret(t.Context(), fs, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range auths {
		if !bytes.Equal(a.secret, stored) {
			t.Errorf("process %d signs with another secret than the one stored", i)
		}
	}
}
