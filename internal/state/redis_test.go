package state_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/jitstream/jitstream/internal/state"
	"github.com/jitstream/jitstream/internal/state/statetest"
	redistest "github.com/jitstream/jitstream/internal/testutil/redis"
)

// The Redis tests share one redis-server, and keep apart by key prefix.
func TestMain(m *testing.M) { redistest.Main(m) }

// uniquePrefix returns a key prefix of its own for t, also across -count
// runs of the same test binary.
func uniquePrefix(t *testing.T) string {
	return t.Name() + ":" + rand.Text() + ":"
}

func newRedis(t *testing.T, url string, opts state.RedisOptions) *state.Redis {
	t.Helper()
	r, err := state.NewRedis(t.Context(), url, opts)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// rawClient returns a plain go-redis client of the server at url, to look
// at the keys the state writes.
func rawClient(t *testing.T, url string) *goredis.Client {
	t.Helper()
	o, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	o.DisableIdentity = true
	c := goredis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRedis(t *testing.T) {
	srv := redistest.Shared(t)
	statetest.Run(t, func(t *testing.T) state.State {
		return newRedis(t, srv.URL(), state.RedisOptions{Prefix: uniquePrefix(t)})
	})
}

// TestRedisPrefix checks where the keys go, and that prefixes keep states
// apart on one server.
func TestRedisPrefix(t *testing.T) {
	srv := redistest.Shared(t)
	ctx := t.Context()
	pa, pb := uniquePrefix(t)+"a:", uniquePrefix(t)+"b:"
	a := newRedis(t, srv.URL(), state.RedisOptions{Prefix: pa})
	b := newRedis(t, srv.URL()+"?prefix="+pb, state.RedisOptions{}) // from the URL
	raw := rawClient(t, srv.URL())

	if err := a.Set(ctx, "k", []byte("in a"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "k"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("b sees a's key: %v", err)
	}
	if err := b.Set(ctx, "k", []byte("in b"), 0); err != nil {
		t.Fatal(err)
	}
	la, err := a.TryLock(ctx, "l", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := b.TryLock(ctx, "l", time.Hour)
	if err != nil {
		t.Fatalf("b's lock is taken by a's: %v", err)
	}

	for key, want := range map[string]string{pa + "k:k": "in a", pb + "k:k": "in b"} {
		if got, err := raw.Get(ctx, key).Result(); err != nil || got != want {
			t.Errorf("raw GET %q = %q, %v; want %q", key, got, err, want)
		}
	}
	for _, key := range []string{pa + "l:l", pb + "l:l"} {
		ttl, err := raw.PTTL(ctx, key).Result()
		if err != nil || ttl <= 0 || ttl > time.Hour {
			t.Errorf("raw PTTL %q = %v, %v; want a lock key with a ttl of at most 1h", key, ttl, err)
		}
	}
	if err := la.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := lb.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := raw.Exists(ctx, pa+"l:l", pb+"l:l").Result(); err != nil || n != 0 {
		t.Errorf("lock keys left after Unlock: %d, %v", n, err)
	}
}

// TestRedisIncrByCreatesWithTTL checks the ttl that IncrBy gives the key
// it creates in Redis, and keeps on the next IncrBy.
func TestRedisIncrByCreatesWithTTL(t *testing.T) {
	srv := redistest.Shared(t)
	ctx := t.Context()
	p := uniquePrefix(t)
	r := newRedis(t, srv.URL(), state.RedisOptions{Prefix: p})
	raw := rawClient(t, srv.URL())
	if _, err := r.IncrBy(ctx, "n", 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	if ttl, err := raw.PTTL(ctx, p+"k:n").Result(); err != nil || ttl <= 0 || ttl > time.Hour {
		t.Fatalf("PTTL = %v, %v; want at most 1h", ttl, err)
	}
	if _, err := r.IncrBy(ctx, "n", 1, 0); err != nil {
		t.Fatal(err)
	}
	if ttl, err := raw.PTTL(ctx, p+"k:n").Result(); err != nil || ttl <= 0 {
		t.Fatalf("PTTL after a second IncrBy = %v, %v; want the first ttl kept", ttl, err)
	}
}

// closedPortURL returns the URL of a local port nobody listens on.
func closedPortURL(t *testing.T, userinfo string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return "redis://" + userinfo + "127.0.0.1:" + strconv.Itoa(port) + "/0"
}

// silentURL returns the URL of a local server that accepts connections and
// never answers.
func silentURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 100)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns <- c
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for {
			select {
			case c := <-conns:
				c.Close()
			default:
				return
			}
		}
	})
	return "redis://" + l.Addr().String() + "/0"
}

func TestNewRedisErrors(t *testing.T) {
	srv := redistest.Shared(t)
	short := state.RedisOptions{DialTimeout: time.Second, ReadTimeout: 100 * time.Millisecond, WriteTimeout: 100 * time.Millisecond}
	tests := []struct {
		name            string
		url             string
		opts            state.RedisOptions
		wantUnavailable bool
	}{
		{"not redis", "http://127.0.0.1:6379/0", state.RedisOptions{}, false},
		{"unknown option", srv.URL() + "?bogus=1", state.RedisOptions{}, false},
		{"bad database", srv.URL() + "x", state.RedisOptions{}, false},
		{"two prefixes", srv.URL() + "?prefix=a:", state.RedisOptions{Prefix: "b:"}, false},
		{"unreachable", closedPortURL(t, ""), state.RedisOptions{DialTimeout: time.Second}, true},
		{"unreachable with password", closedPortURL(t, ":s3cret@"), state.RedisOptions{DialTimeout: time.Second}, true},
		{"silent", silentURL(t), short, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := state.NewRedis(t.Context(), tt.url, tt.opts)
			if err == nil {
				r.Close()
				t.Fatal("no error")
			}
			if got := errors.Is(err, state.ErrUnavailable); got != tt.wantUnavailable {
				t.Errorf("error %q: ErrUnavailable %v, want %v", err, got, tt.wantUnavailable)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q shows the password", err)
			}
			t.Logf("%v", err)
		})
	}
}

func TestOpen(t *testing.T) {
	srv := redistest.Shared(t)
	prefix := uniquePrefix(t)
	tests := []struct {
		spec    string
		want    string // type of the state, "" for an error
		wantErr error
	}{
		{"", "*state.Memory", nil},
		{"memory", "*state.Memory", nil},
		{srv.URL(), "*state.Redis", nil},
		{srv.URL() + "?prefix=" + prefix, "*state.Redis", nil},
		{closedPortURL(t, ""), "", state.ErrUnavailable},
		{"mem", "", nil},
		{"redis:/127.0.0.1", "", nil},
		{"http://u:s3cret@127.0.0.1/", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			s, err := state.Open(t.Context(), tt.spec)
			if tt.want == "" {
				if err == nil {
					s.Close()
					t.Fatal("no error")
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := typeName(s); got != tt.want {
				t.Fatalf("Open gave %s, want %s", got, tt.want)
			}
			// It works.
			ctx := t.Context()
			if err := s.Set(ctx, prefix+"k", []byte("v"), time.Minute); err != nil {
				t.Fatal(err)
			}
			if v, err := s.Get(ctx, prefix+"k"); err != nil || string(v) != "v" {
				t.Fatalf("Get = %q, %v", v, err)
			}
		})
	}
}

func typeName(s state.State) string {
	switch s.(type) {
	case *state.Memory:
		return "*state.Memory"
	case *state.Redis:
		return "*state.Redis"
	}
	return "other"
}

// TestRedisContextDeadline checks that a deadline of ctx that passes during
// a call gives context.DeadlineExceeded, not ErrUnavailable.
func TestRedisContextDeadline(t *testing.T) {
	srv := redistest.Shared(t)
	r := newRedis(t, srv.URL(), state.RedisOptions{Prefix: uniquePrefix(t)})
	ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	_, err := r.Get(ctx, "k")
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("Get: %v, want context.DeadlineExceeded alone", err)
	}
}
