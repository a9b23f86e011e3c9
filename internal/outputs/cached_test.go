package outputs

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/vfile"
)

// TestCachedSharesBuilds checks that concurrent requests for a file not yet
// cached wait for one build and get the same file, rather than each
// building (and holding) a copy.
func TestCachedSharesBuilds(t *testing.T) {
	o := New(nil, 0)
	var builds atomic.Int32
	release := make(chan struct{})
	build := func() (*vfile.File, error) {
		builds.Add(1)
		<-release
		return &vfile.File{Name: "x"}, nil
	}
	const n = 50
	got := make([]*vfile.File, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := o.cached(context.Background(), "k", build)
			if err != nil {
				t.Error(err)
			}
			got[i] = f
		}()
	}
	time.Sleep(20 * time.Millisecond) // let them all arrive
	close(release)
	wg.Wait()
	if b := builds.Load(); b != 1 {
		t.Errorf("%d builds for %d concurrent requests, want 1", b, n)
	}
	for i, f := range got {
		if f == nil || f != got[0] {
			t.Fatalf("request %d got %p, request 0 %p: want the same file", i, f, got[0])
		}
	}
	if f, _ := o.cached(context.Background(), "k", func() (*vfile.File, error) { t.Fatal("built again"); return nil, nil }); f != got[0] {
		t.Errorf("after the build: got %p, want the cached %p", f, got[0])
	}
}

// TestCachedBuilderCanceled checks that a request waiting for another's
// build builds itself when the builder's request went away.
func TestCachedBuilderCanceled(t *testing.T) {
	o := New(nil, 0)
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	done := make(chan error)
	go func() {
		_, err := o.cached(ctx, "k", func() (*vfile.File, error) {
			close(started)
			<-ctx.Done()
			return nil, ctx.Err()
		})
		done <- err
	}()
	<-started
	res := make(chan *vfile.File)
	go func() {
		f, err := o.cached(context.Background(), "k", func() (*vfile.File, error) { return &vfile.File{Name: "y"}, nil })
		if err != nil {
			t.Error(err)
		}
		res <- f
	}()
	time.Sleep(10 * time.Millisecond)
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("builder: %v, want context.Canceled", err)
	}
	if f := <-res; f == nil || f.Name != "y" {
		t.Errorf("waiter got %v, want its own build", f)
	}
}
