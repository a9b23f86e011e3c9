package redis_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/state"
	"github.com/jitstream/jitstream/internal/testutil/redis"
)

func TestMain(m *testing.M) { redis.Main(m) }

// shortOptions makes calls to a stopped server fail fast.
func shortOptions() state.RedisOptions {
	return state.RedisOptions{
		Prefix:       "test:",
		DialTimeout:  time.Second,
		ReadTimeout:  time.Second,
		WriteTimeout: time.Second,
	}
}

// TestStopRestart checks that the state works over the server, that calls
// fail with ErrUnavailable (not hang) while it is stopped, and that they
// work again after Restart, which empties it.
func TestStopRestart(t *testing.T) {
	t.Parallel()
	srv := redis.Start(t)
	// A deadline far beyond the few milliseconds that the calls to the
	// stopped server take: reaching it would mean a hang.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	st, err := state.NewRedis(ctx, srv.URL(), shortOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Set(ctx, "k", []byte("before"), 0); err != nil {
		t.Fatal(err)
	}
	if v, err := st.Get(ctx, "k"); err != nil || string(v) != "before" {
		t.Fatalf("Get = %q, %v", v, err)
	}

	srv.Stop()
	calls := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := st.Get(ctx, "k"); return err }},
		{"Set", func() error { return st.Set(ctx, "k", []byte("v"), 0) }},
		{"SetNX", func() error { _, err := st.SetNX(ctx, "k", []byte("v"), 0); return err }},
		{"Delete", func() error { return st.Delete(ctx, "k") }},
		{"IncrBy", func() error { _, err := st.IncrBy(ctx, "n", 1, 0); return err }},
		{"TryLock", func() error { _, err := st.TryLock(ctx, "l", time.Minute); return err }},
		{"Lock", func() error { _, err := st.Lock(ctx, "l", time.Minute); return err }},
	}
	for _, c := range calls {
		err := c.call()
		if !errors.Is(err, state.ErrUnavailable) {
			t.Errorf("%s on a stopped server: %v, want ErrUnavailable", c.name, err)
		}
		if errors.Is(err, state.ErrNotFound) || errors.Is(err, state.ErrLocked) || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s on a stopped server: %v matches another error", c.name, err)
		}
	}
	if _, err := state.NewRedis(ctx, srv.URL(), shortOptions()); !errors.Is(err, state.ErrUnavailable) {
		t.Errorf("NewRedis of a stopped server: %v, want ErrUnavailable", err)
	}

	restarted := time.Now()
	srv.Restart(t)
	// go-redis redials in the background once dials have failed for a
	// while: poll until the client is back.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := st.Set(ctx, "after", []byte("restart"), 0)
		if err == nil {
			t.Logf("the client is back %v after Restart began", time.Since(restarted))
			break
		}
		if !errors.Is(err, state.ErrUnavailable) {
			t.Fatalf("Set after Restart: %v", err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Set after Restart: %v", err)
		case <-tick.C:
		}
	}
	if v, err := st.Get(ctx, "after"); err != nil || string(v) != "restart" {
		t.Fatalf("Get after Restart = %q, %v", v, err)
	}
	if _, err := st.Get(ctx, "k"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("Get of a key set before Restart: %v, want ErrNotFound (the data does not survive)", err)
	}
	l, err := st.TryLock(ctx, "l", time.Minute)
	if err != nil {
		t.Fatalf("TryLock after Restart: %v", err)
	}
	if err := l.Unlock(ctx); err != nil { // its script is loaded again
		t.Fatalf("Unlock after Restart: %v", err)
	}
}

// TestStop checks that Stop closes the port and may be called twice.
func TestStop(t *testing.T) {
	t.Parallel()
	srv := redis.Start(t)
	conn, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatalf("dialing the server: %v", err)
	}
	conn.Close()
	srv.Stop()
	srv.Stop()
	if conn, err := net.Dial("tcp", srv.Addr()); err == nil {
		conn.Close()
		t.Fatal("the port still accepts connections after Stop")
	}
}

// TestStartTwice checks that two servers are apart.
func TestStartTwice(t *testing.T) {
	t.Parallel()
	a, b := redis.Start(t), redis.Start(t)
	if a.URL() == b.URL() {
		t.Fatalf("both servers at %s", a.URL())
	}
	ctx := t.Context()
	sa, err := state.NewRedis(ctx, a.URL(), state.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	sb, err := state.NewRedis(ctx, b.URL(), state.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	if err := sa.Set(ctx, "k", []byte("a"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Get(ctx, "k"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("b sees a's key: %v", err)
	}
}

// TestShared checks that Shared gives one running server.
func TestShared(t *testing.T) {
	t.Parallel()
	a, b := redis.Shared(t), redis.Shared(t)
	if a != b {
		t.Fatalf("two shared servers: %s and %s", a.URL(), b.URL())
	}
	st, err := state.NewRedis(t.Context(), a.URL(), state.RedisOptions{Prefix: t.Name() + ":"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, err := st.IncrBy(t.Context(), "n", 2, time.Minute); err != nil || n < 2 {
		t.Fatalf("IncrBy = %d, %v", n, err)
	}
}

// TestSharedStopPanics checks that the shared server cannot be stopped by
// one test.
func TestSharedStopPanics(t *testing.T) {
	t.Parallel()
	srv := redis.Shared(t)
	defer func() {
		if recover() == nil {
			t.Fatal("Stop of the shared server did not panic")
		}
		conn, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatalf("the shared server stopped: %v", err)
		}
		conn.Close()
	}()
	srv.Stop()
}
