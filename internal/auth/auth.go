// Package auth is jitstream's access control: API tokens (who is asking),
// signed playback links (what an anonymous viewer may play, and until when)
// and the redaction of both from logs.
//
// # Tokens
//
// A token belongs to one user and grants everything under that user's
// paths (files, streams, API, uploads, WebDAV) and nothing else. It is
// shown once, when created, as
//
//	jst_{user}_{id}_{secret}
//
// where id is 12 hexadecimal digits naming the token (to list and revoke
// it) and secret is 32 random bytes in lower-case base32. The user is part
// of the token so that a token presented on another user's path is known
// to be a valid token of someone else (answered 404, as a resource that
// does not exist) rather than a bad token (401). Only the SHA-256 of the
// whole token is stored, in users/{user}/tokens/{id}.json; a plain hash is
// enough for 256 random bits (a slow password hash defends guessable
// secrets, which these are not), and it is compared in constant time.
// Lookups go through a small cache whose entries live Options.CacheTTL
// (default 5 s): a token revoked by another process (jitstream tokens
// revoke) stops working within that time.
//
// # Signed links
//
// A link is a path element, /s/{exp}.{sig}/ for an asset or
// /s/{exp}.{n}.{sig}/ for a path prefix of n elements, put before the path
// it grants (see Link). The signature is an HMAC-SHA256 with the server's
// secret (config/secret in the store, created on first use, never logged)
// over the scope and the expiry.
//
// # Redaction
//
// Redact and NewRedactingHandler remove tokens, ?token= values,
// Authorization credentials and link signatures from text and logs.
package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/lru"
	"github.com/jitstream/jitstream/internal/state"
	"github.com/jitstream/jitstream/internal/store"
)

// Errors, wrapped by the functions that return them.
var (
	// ErrNoCredentials: the request carries no token.
	ErrNoCredentials = errors.New("no credentials")
	// ErrInvalidToken: a token that is malformed, unknown, revoked or
	// expired, or Basic credentials whose user is not the token's.
	ErrInvalidToken = errors.New("invalid token")
	// ErrUnknownToken: revoking a token id the user does not have.
	ErrUnknownToken = errors.New("unknown token")
)

// TokenPrefix starts every token.
const TokenPrefix = "jst_"

// secretKey is the store key of the server's link-signing secret.
const secretKey = "config/secret"

// DefaultCacheTTL is how long a token lookup is trusted (Options.CacheTTL).
const DefaultCacheTTL = 5 * time.Second

// Options configures an Auth.
type Options struct {
	// CacheTTL bounds how long a token lookup (found or not) is reused;
	// 0 means DefaultCacheTTL.
	CacheTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// State, if not nil, is the state shared by every process of the
	// deployment (Redis): New creates a missing link secret under a lock
	// there, so that processes starting at once on a new store (several
	// nodes, the command line) all sign with the one secret stored.
	State state.State
}

// secretLockTTL bounds the creation of the link secret (a read, a Put and
// a read back) under the shared lock.
const secretLockTTL = time.Minute

// Auth checks tokens and links against one store.
type Auth struct {
	st     store.Store
	secret []byte
	ttl    time.Duration
	now    func() time.Time
	cache  *lru.Cache[string, cachedToken]
}

type cachedToken struct {
	t      *Token // nil: no such token
	loaded time.Time
}

// Token is a stored token: everything but its secret.
type Token struct {
	ID      string    `json:"id"`
	User    string    `json:"user"`
	Name    string    `json:"name,omitempty"`
	Hash    string    `json:"hash"` // hex SHA-256 of the whole token
	Created time.Time `json:"created"`
	// Expires is zero for a token that does not expire.
	Expires time.Time `json:"expires,omitzero"`
}

// Expired reports whether the token has expired at now.
func (t *Token) Expired(now time.Time) bool {
	return !t.Expires.IsZero() && !now.Before(t.Expires)
}

// New returns an Auth on st, loading the link-signing secret, or creating
// it when the store has none.
func New(ctx context.Context, st store.Store, opt Options) (*Auth, error) {
	if opt.CacheTTL <= 0 {
		opt.CacheTTL = DefaultCacheTTL
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	secret, err := loadSecret(ctx, st, opt.State)
	if err != nil {
		return nil, err
	}
	return &Auth{st: st, secret: secret, ttl: opt.CacheTTL, now: opt.Now,
		cache: lru.New[string, cachedToken](4096)}, nil
}

// LoadSecret returns the deployment's secret (config/secret in the store,
// at least 32 random bytes shared by every node), creating it first if
// missing; with a shared state, under a lock there. Others that need a
// shared key derive theirs from it (never use it as is).
func LoadSecret(ctx context.Context, st store.Store, sh state.State) ([]byte, error) {
	return loadSecret(ctx, st, sh)
}

// loadSecret reads config/secret, creating it first if missing; with a
// shared state, under a lock there.
func loadSecret(ctx context.Context, st store.Store, sh state.State) ([]byte, error) {
	read := func() ([]byte, error) {
		rc, err := st.Get(ctx, secretKey, 0, -1)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		b, err := io.ReadAll(io.LimitReader(rc, 1024))
		if err != nil {
			return nil, err
		}
		s, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(s) < 32 {
			return nil, fmt.Errorf("auth: %s is not 32 or more hexadecimal bytes", secretKey)
		}
		return s, nil
	}
	s, err := read()
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("auth: read the link secret: %w", err)
	}
	if sh != nil {
		// Two processes that both found no secret would each store one
		// and keep their own (a Put replaces; the read back below is not
		// enough when one reads back before the other writes): links
		// signed by one would be refused by the other.
		lk, err := sh.Lock(ctx, "auth/secret", secretLockTTL)
		if err != nil {
			return nil, fmt.Errorf("auth: lock the creation of the link secret: %w", err)
		}
		defer lk.Unlock(context.WithoutCancel(ctx))
		// Made by another process while we waited?
		if s, err = read(); err == nil {
			return s, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("auth: read the link secret: %w", err)
		}
	}
	if _, err := st.Put(ctx, secretKey, strings.NewReader(hex.EncodeToString(randBytes(32))+"\n")); err != nil {
		return nil, fmt.Errorf("auth: create the link secret: %w", err)
	}
	// Read back: another process creating it at the same moment may have
	// won, and every process must sign with the same secret.
	if s, err = read(); err != nil {
		return nil, fmt.Errorf("auth: read the link secret: %w", err)
	}
	return s, nil
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return b
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func tokensPrefix(user string) string { return "users/" + user + "/tokens/" }
func tokenKey(user, id string) string { return tokensPrefix(user) + id + ".json" }
func hashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}
func cacheKey(user, id string) string       { return user + "/" + id }
func validTokenID(id string) bool           { return len(id) == 12 && isLowerHex(id) }
func formatToken(user, id, s string) string { return TokenPrefix + user + "_" + id + "_" + s }

func isLowerHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

var secretRE = regexp.MustCompile(`^[a-z2-7]{52}$`)

// ParseToken splits a token into its user and id; it does not check it.
func ParseToken(token string) (user, id string, err error) {
	rest, ok := strings.CutPrefix(token, TokenPrefix)
	i := strings.LastIndexByte(rest, '_')
	if !ok || i < 0 || !secretRE.MatchString(rest[i+1:]) {
		return "", "", fmt.Errorf("%w: malformed", ErrInvalidToken)
	}
	rest = rest[:i]
	j := strings.LastIndexByte(rest, '_')
	if j < 0 || !validTokenID(rest[j+1:]) || library.CheckUser(rest[:j]) != nil {
		return "", "", fmt.Errorf("%w: malformed", ErrInvalidToken)
	}
	return rest[:j], rest[j+1:], nil
}

// CreateToken makes a new token for user (who must exist: the caller
// checks), named name, valid for ttl (0: no expiry). It returns the token,
// to show once, and its stored record.
func (a *Auth) CreateToken(ctx context.Context, user, name string, ttl time.Duration) (string, *Token, error) {
	if err := library.CheckUser(user); err != nil {
		return "", nil, err
	}
	if ttl < 0 {
		return "", nil, fmt.Errorf("auth: negative token lifetime %v", ttl)
	}
	if len(name) > 200 {
		return "", nil, fmt.Errorf("auth: token name longer than 200 bytes")
	}
	var id string
	for {
		id = hex.EncodeToString(randBytes(6))
		if _, err := a.st.Stat(ctx, tokenKey(user, id)); errors.Is(err, store.ErrNotFound) {
			break
		} else if err != nil {
			return "", nil, fmt.Errorf("auth: create token: %w", err)
		}
	}
	token := formatToken(user, id, strings.ToLower(b32.EncodeToString(randBytes(32))))
	now := a.now().UTC().Truncate(time.Second)
	t := &Token{ID: id, User: user, Name: name, Hash: hashToken(token), Created: now}
	if ttl > 0 {
		t.Expires = now.Add(ttl)
	}
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return "", nil, fmt.Errorf("auth: create token: %w", err)
	}
	if _, err := a.st.Put(ctx, tokenKey(user, id), bytes.NewReader(b)); err != nil {
		return "", nil, fmt.Errorf("auth: create token: %w", err)
	}
	a.cache.Remove(cacheKey(user, id))
	return token, t, nil
}

// Tokens lists user's tokens, oldest first.
func (a *Auth) Tokens(ctx context.Context, user string) ([]*Token, error) {
	if err := library.CheckUser(user); err != nil {
		return nil, err
	}
	infos, err := a.st.List(ctx, tokensPrefix(user))
	if err != nil {
		return nil, fmt.Errorf("auth: list tokens of %s: %w", user, err)
	}
	var out []*Token
	for _, in := range infos {
		id, ok := strings.CutSuffix(strings.TrimPrefix(in.Key, tokensPrefix(user)), ".json")
		if !ok || !validTokenID(id) {
			continue
		}
		t, err := a.load(ctx, user, id)
		if err != nil {
			return nil, err
		}
		if t != nil {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// RevokeToken deletes user's token id. Other processes sharing the store
// stop accepting it within their cache TTL.
func (a *Auth) RevokeToken(ctx context.Context, user, id string) error {
	if library.CheckUser(user) != nil || !validTokenID(id) {
		return fmt.Errorf("%w: %q of user %q", ErrUnknownToken, id, user)
	}
	if _, err := a.st.Stat(ctx, tokenKey(user, id)); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: %q of user %q", ErrUnknownToken, id, user)
		}
		return fmt.Errorf("auth: revoke token: %w", err)
	}
	if err := a.st.Delete(ctx, tokenKey(user, id)); err != nil {
		return fmt.Errorf("auth: revoke token: %w", err)
	}
	a.cache.Remove(cacheKey(user, id))
	return nil
}

// RevokeAll deletes every token of user (when the user is removed).
func (a *Auth) RevokeAll(ctx context.Context, user string) error {
	ts, err := a.Tokens(ctx, user)
	if err != nil {
		return err
	}
	for _, t := range ts {
		if err := a.RevokeToken(ctx, user, t.ID); err != nil && !errors.Is(err, ErrUnknownToken) {
			return err
		}
	}
	return nil
}

// load reads a token record; nil when there is none.
func (a *Auth) load(ctx context.Context, user, id string) (*Token, error) {
	rc, err := a.st.Get(ctx, tokenKey(user, id), 0, -1)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("auth: load token: %w", err)
	}
	defer rc.Close()
	var t Token
	if err := json.NewDecoder(io.LimitReader(rc, 64<<10)).Decode(&t); err != nil {
		return nil, fmt.Errorf("auth: token %s of %s: bad record: %w", id, user, err)
	}
	if t.User != user || t.ID != id {
		return nil, fmt.Errorf("auth: token %s of %s: record names %s of %s", id, user, t.ID, t.User)
	}
	return &t, nil
}

// lookup is load through the cache.
func (a *Auth) lookup(ctx context.Context, user, id string) (*Token, error) {
	k := cacheKey(user, id)
	if c, ok := a.cache.Get(k); ok && a.now().Sub(c.loaded) < a.ttl {
		return c.t, nil
	}
	t, err := a.load(ctx, user, id)
	if err != nil {
		return nil, err
	}
	a.cache.Add(k, cachedToken{t, a.now()}, 1)
	return t, nil
}

// Verify checks a token and returns its record. Any token that does not
// grant access (malformed, unknown, revoked, expired) is ErrInvalidToken;
// other errors are the store's.
func (a *Auth) Verify(ctx context.Context, token string) (*Token, error) {
	user, id, err := ParseToken(token)
	if err != nil {
		return nil, err
	}
	t, err := a.lookup(ctx, user, id)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("%w: unknown or revoked", ErrInvalidToken)
	}
	want, err := hex.DecodeString(t.Hash)
	got := sha256.Sum256([]byte(token))
	if err != nil || subtle.ConstantTimeCompare(want, got[:]) != 1 {
		return nil, fmt.Errorf("%w: wrong secret", ErrInvalidToken)
	}
	if t.Expired(a.now()) {
		return nil, fmt.Errorf("%w: expired", ErrInvalidToken)
	}
	return t, nil
}
