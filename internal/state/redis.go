package state

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions tunes NewRedis. The zero value is valid.
type RedisOptions struct {
	// Prefix starts every Redis key of the state, so that several
	// deployments (or tests) can share one server and database; for
	// example "jitstream:". Values are stored under Prefix+"k:"+key and
	// locks under Prefix+"l:"+name. A "prefix" query parameter of the URL
	// sets it too; giving both is an error unless they are equal.
	Prefix string
	// DialTimeout bounds connecting to Redis. 0: the URL's dial_timeout
	// parameter, else go-redis' default (5s).
	DialTimeout time.Duration
	// ReadTimeout and WriteTimeout bound reading a reply and writing a
	// command. 0: the URL's read_timeout and write_timeout parameters, else
	// go-redis' defaults (3s). A deadline of ctx also bounds every call.
	ReadTimeout, WriteTimeout time.Duration
}

// Redis is the State shared by the nodes of a deployment through a Redis
// server. It is safe for concurrent use.
//
// Lock polls SET NX with a jittered backoff (1ms doubling up to 32ms) while
// the lock is held; Unlock and Extend run Lua scripts that compare the
// owner's token before deleting or extending. IncrBy runs SETNX (with the
// ttl) and INCRBY in one MULTI transaction, so that the ttl is set exactly
// when the key is created.
type Redis struct {
	client *redis.Client
	prefix string
	unlockScript,
	extendScript *redis.Script

	closeOnce sync.Once
	closeErr  error
}

var _ State = (*Redis)(nil)

// unlockLua deletes KEYS[1] if it holds the token ARGV[1].
const unlockLua = `if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0`

// extendLua sets the ttl of KEYS[1] to ARGV[2] milliseconds if it holds the
// token ARGV[1].
const extendLua = `if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`

// NewRedis connects to the Redis server at rawURL (as accepted by
// redis.ParseURL, for example redis://127.0.0.1:6379/0, plus an optional
// "prefix" query parameter) and pings it. An unreachable server gives an
// error wrapping ErrUnavailable.
func NewRedis(ctx context.Context, rawURL string, opts RedisOptions) (*Redis, error) {
	shown := redact(rawURL)
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("state: invalid redis URL %s", shown)
	}
	if q := u.Query(); q.Has("prefix") {
		p := q.Get("prefix")
		if opts.Prefix != "" && opts.Prefix != p {
			return nil, fmt.Errorf("state: redis URL %s: prefix %q differs from RedisOptions.Prefix %q", shown, p, opts.Prefix)
		}
		opts.Prefix = p
		q.Del("prefix")
		u.RawQuery = q.Encode()
		rawURL = u.String()
	}
	o, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("state: redis URL %s: %w", shown, err)
	}
	if opts.DialTimeout > 0 {
		o.DialTimeout = opts.DialTimeout
	}
	if opts.ReadTimeout > 0 {
		o.ReadTimeout = opts.ReadTimeout
	}
	if opts.WriteTimeout > 0 {
		o.WriteTimeout = opts.WriteTimeout
	}
	o.ContextTimeoutEnabled = true
	// CLIENT SETINFO, sent on every new connection, needs Redis 7.2.
	o.DisableIdentity = true

	r := &Redis{
		client:       redis.NewClient(o),
		prefix:       opts.Prefix,
		unlockScript: redis.NewScript(unlockLua),
		extendScript: redis.NewScript(extendLua),
	}
	if err := r.client.Ping(ctx).Err(); err != nil {
		r.client.Close()
		return nil, fmt.Errorf("state: connecting to redis at %s: %w", shown, classify(ctx, err))
	}
	return r, nil
}

func (r *Redis) key(key string) string      { return r.prefix + "k:" + key }
func (r *Redis) lockKey(name string) string { return r.prefix + "l:" + name }

// Get implements State.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := r.client.Get(ctx, r.key(key)).Bytes()
	if err != nil {
		return nil, fmt.Errorf("state: redis get %q: %w", key, classify(ctx, err))
	}
	return v, nil
}

// Set implements State.
func (r *Redis) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ttl, err := checkTTL(ttl)
	if err != nil {
		return fmt.Errorf("state: redis set %q: %w", key, err)
	}
	if err := r.client.Set(ctx, r.key(key), value, ttl).Err(); err != nil {
		return fmt.Errorf("state: redis set %q: %w", key, classify(ctx, err))
	}
	return nil
}

// SetNX implements State.
func (r *Redis) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	ttl, err := checkTTL(ttl)
	if err != nil {
		return false, fmt.Errorf("state: redis setnx %q: %w", key, err)
	}
	ok, err := r.client.SetNX(ctx, r.key(key), value, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("state: redis setnx %q: %w", key, classify(ctx, err))
	}
	return ok, nil
}

// Delete implements State.
func (r *Redis) Delete(ctx context.Context, key string) error {
	if err := r.client.Del(ctx, r.key(key)).Err(); err != nil {
		return fmt.Errorf("state: redis delete %q: %w", key, classify(ctx, err))
	}
	return nil
}

// IncrBy implements State.
func (r *Redis) IncrBy(ctx context.Context, key string, n int64, ttl time.Duration) (int64, error) {
	ttl, err := checkTTL(ttl)
	if err != nil {
		return 0, fmt.Errorf("state: redis incrby %q: %w", key, err)
	}
	k := r.key(key)
	var incr *redis.IntCmd
	_, err = r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SetNX(ctx, k, "0", ttl) // creates the key with its ttl, if absent
		incr = p.IncrBy(ctx, k, n)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("state: redis incrby %q: %w", key, classify(ctx, err))
	}
	return incr.Val(), nil
}

// Lock implements State.
func (r *Redis) Lock(ctx context.Context, name string, ttl time.Duration) (*Lock, error) {
	return lockWait(ctx, r, name, ttl)
}

// TryLock implements State.
func (r *Redis) TryLock(ctx context.Context, name string, ttl time.Duration) (*Lock, error) {
	l, _, err := tryLock(ctx, r, name, ttl)
	return l, err
}

func (r *Redis) tryLock(ctx context.Context, name, token string, ttl time.Duration) (bool, <-chan struct{}, error) {
	ok, err := r.client.SetNX(ctx, r.lockKey(name), token, ttl).Result()
	if err != nil {
		return false, nil, fmt.Errorf("redis: %w", classify(ctx, err))
	}
	return ok, nil, nil
}

func (r *Redis) unlock(ctx context.Context, name, token string) (bool, error) {
	n, err := r.unlockScript.Run(ctx, r.client, []string{r.lockKey(name)}, token).Int64()
	if err != nil {
		return false, fmt.Errorf("redis: %w", classify(ctx, err))
	}
	return n == 1, nil
}

func (r *Redis) extend(ctx context.Context, name, token string, ttl time.Duration) (bool, error) {
	ms := strconv.FormatInt(ttl.Milliseconds(), 10)
	n, err := r.extendScript.Run(ctx, r.client, []string{r.lockKey(name)}, token, ms).Int64()
	if err != nil {
		return false, fmt.Errorf("redis: %w", classify(ctx, err))
	}
	return n == 1, nil
}

// Close implements State: it closes the connections to Redis.
func (r *Redis) Close() error {
	r.closeOnce.Do(func() {
		if err := r.client.Close(); err != nil {
			r.closeErr = fmt.Errorf("state: closing redis client: %w", err)
		}
	})
	return r.closeErr
}

// classify maps an error of go-redis to the package's errors: ErrNotFound,
// ErrClosed, ctx's error, ErrNotInteger, ErrOverflow, ErrUnavailable, or
// err itself for other error replies of the server.
func classify(ctx context.Context, err error) error {
	if errors.Is(err, redis.Nil) {
		return ErrNotFound
	}
	if errors.Is(err, redis.ErrClosed) {
		return ErrClosed
	}
	if cerr := ctxDone(ctx); cerr != nil {
		if errors.Is(err, cerr) {
			return err
		}
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	var reply redis.Error
	if !errors.As(err, &reply) {
		// Not an error reply of the server: dialing, network, timeout,
		// pool or protocol errors.
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	msg := reply.Error()
	switch {
	case strings.Contains(msg, "not an integer"):
		return fmt.Errorf("%w (%v)", ErrNotInteger, err)
	case strings.Contains(msg, "would overflow"):
		return fmt.Errorf("%w (%v)", ErrOverflow, err)
	}
	for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY", "ERR max number of clients"} {
		if strings.HasPrefix(msg, p) {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	return err
}

// ctxDone returns ctx's error, also when its deadline has passed but its
// timer has not fired yet (the network deadline of the call can fire
// first).
func ctxDone(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}
