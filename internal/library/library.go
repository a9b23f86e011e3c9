// Package library is the catalogue of users and their assets on top of a
// store: ingest (store originals, index, commit), listing, loading indexes
// through a bounded cache, and deletion.
//
// Store layout:
//
//	users/{user}/user.json                         the user (exists = known), with
//	                                               its quota
//	users/{user}/tokens/{id}.json                  API tokens (internal/auth)
//	users/{user}/assets/{id}/src/{nn}-{rev}        original chapter bytes
//	users/{user}/assets/{id}/index-{rev}.jsix      media index
//	users/{user}/assets/{id}/meta.json             asset metadata; written last,
//	                                               its presence commits the asset
package library

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/jitstream/jitstream/internal/lru"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/state"
	"github.com/jitstream/jitstream/internal/store"
)

// Errors callers map to user-facing statuses.
var (
	ErrUnknownUser  = errors.New("unknown user")
	ErrUnknownAsset = errors.New("unknown asset")
	ErrBadName      = errors.New("invalid name")
	ErrEmpty        = errors.New("empty upload")
)

// Asset is an asset's metadata, as stored in meta.json.
type Asset struct {
	ID       string    `json:"id"`
	User     string    `json:"user"`
	Title    string    `json:"title"`
	Created  time.Time `json:"created"`  // recording time, else ingest time
	Ingested time.Time `json:"ingested"` // when the asset was committed
	Rev      string    `json:"rev"`      // revision: distinguishes re-ingests of one id
	Index    string    `json:"index"`    // store key of the media index
	// IndexSize is the index's size in bytes (0 in metadata written
	// before it was recorded).
	IndexSize int64     `json:"index_size,omitempty"`
	Chapters  []Chapter `json:"chapters"`
}

// Chapter is one original file of an asset.
type Chapter struct {
	Name   string `json:"name"`
	Object string `json:"object"`
	Size   int64  `json:"size"`
}

// Upload is one file to ingest.
type Upload struct {
	Name string    // original file name
	R    io.Reader // its bytes, streamed to the store
}

// Library is the catalogue.
type Library struct {
	st      store.Store
	log     *slog.Logger
	indexes *lru.Cache[string, *media.Index]
	metas   *lru.Cache[string, cachedAsset]

	// state holds what every node must agree on: the ids being ingested
	// (reservations) and the quota commit locks.
	state state.State
}

// Options configures a Library.
type Options struct {
	// IndexCacheBytes bounds the memory of cached indexes (approximate).
	IndexCacheBytes int64
	Logger          *slog.Logger
	// State is shared by every node serving the store (Redis): the
	// reservations of asset ids being ingested and the locks that
	// serialize quota commits live there. Nil is an in-memory state: one
	// node only.
	State state.State
}

// Shared-state timing.
const (
	// reservationTTL bounds how long an id stays reserved by an ingest
	// whose node died before committing or releasing it.
	reservationTTL = 24 * time.Hour
	// quotaLockTTL bounds a quota commit (a Usage listing and one Put).
	quotaLockTTL = time.Minute
)

// New returns a library on st.
func New(st store.Store, o Options) *Library {
	if o.IndexCacheBytes <= 0 {
		o.IndexCacheBytes = 256 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.State == nil {
		o.State = state.NewMemory()
	}
	return &Library{st: st, log: o.Logger, indexes: lru.New[string, *media.Index](o.IndexCacheBytes),
		metas: lru.New[string, cachedAsset](4096), state: o.State}
}

// Store is the library's store.
func (l *Library) Store() store.Store { return l.st }

// validName reports whether s is a valid user name or asset id: 1 to 64
// of letters, digits, '_' and '-', not starting with '_' or '-' (checked
// on every request, hence no regexp).
func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 || s[0] == '_' || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// ValidName reports whether s is a valid user name or asset id (the rule
// other names, like those of playlists, follow too).
func ValidName(s string) bool { return validName(s) }

// CheckUser validates a user name.
func CheckUser(user string) error {
	if !validName(user) {
		return fmt.Errorf("%w: user %q (use letters, digits, '_' and '-', at most 64)", ErrBadName, user)
	}
	return nil
}

// ImmutableKey reports whether the bytes stored under key never change:
// the originals and indexes of assets, whose keys carry the revision they
// were written by. A read cache may keep them (internal/store/readcache);
// everything else (users, tokens, metadata) can change.
func ImmutableKey(key string) bool {
	rest, ok := strings.CutPrefix(key, "users/")
	if !ok {
		return false
	}
	parts := strings.Split(rest, "/")
	if len(parts) < 4 || parts[1] != "assets" {
		return false
	}
	switch tail := parts[3:]; {
	case len(tail) == 2 && tail[0] == "src":
		return true
	case len(tail) == 1 && strings.HasPrefix(tail[0], "index-") && strings.HasSuffix(tail[0], ".jsix"):
		return true
	}
	return false
}

func userKey(user string) string         { return "users/" + user + "/user.json" }
func assetPrefix(user, id string) string { return "users/" + user + "/assets/" + id + "/" }
func metaKey(user, id string) string     { return assetPrefix(user, id) + "meta.json" }
func assetsPrefix(user string) string    { return "users/" + user + "/assets/" }
func indexCacheKey(a *Asset) string      { return a.User + "/" + a.ID + "/" + a.Rev }
func newRev() string {
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(randBytes(5)))
}
func randBytes(n int) []byte { b := make([]byte, n); _, _ = rand.Read(b); return b }

// User is a user record.
type User struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	// Quota is the bytes of originals the user may store; 0: no limit.
	Quota int64 `json:"quota,omitempty"`
}

// AddUser creates the user if it does not exist.
func (l *Library) AddUser(ctx context.Context, user string) error {
	if err := CheckUser(user); err != nil {
		return err
	}
	if _, err := l.st.Stat(ctx, userKey(user)); err == nil {
		return nil
	}
	b, _ := json.Marshal(User{Name: user, Created: time.Now().UTC()})
	if _, err := l.st.Put(ctx, userKey(user), strings.NewReader(string(b))); err != nil {
		return fmt.Errorf("library: add user %s: %w", user, err)
	}
	return nil
}

// HasUser reports whether the user exists; a malformed name is an error.
func (l *Library) HasUser(ctx context.Context, user string) error {
	if err := CheckUser(user); err != nil {
		return fmt.Errorf("%w: %q", ErrUnknownUser, user)
	}
	if _, err := l.st.Stat(ctx, userKey(user)); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: %q", ErrUnknownUser, user)
		}
		return err
	}
	return nil
}

// Users lists the users.
func (l *Library) Users(ctx context.Context) ([]string, error) {
	infos, err := l.st.List(ctx, "users/")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, in := range infos {
		if u, ok := strings.CutSuffix(strings.TrimPrefix(in.Key, "users/"), "/user.json"); ok && !strings.Contains(u, "/") {
			out = append(out, u)
		}
	}
	return out, nil
}

// assetID derives a camera-like id from a file name: its stem, cleaned.
func assetID(name string) string {
	stem := strings.TrimSuffix(path.Base(strings.ReplaceAll(name, `\`, "/")), path.Ext(name))
	var b strings.Builder
	for _, c := range stem {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
			b.WriteRune(c)
		case c == ' ' || c == '.':
			b.WriteByte('_')
		}
	}
	id := strings.TrimLeft(b.String(), "_-")
	if len(id) > 48 {
		id = id[:48]
	}
	if id == "" {
		id = "asset"
	}
	return id
}

// reserve picks a free id for user starting from base and marks it in use.
func (l *Library) reserve(ctx context.Context, user, base, rev string) (string, error) {
	for n := 1; n < 10000; n++ {
		id := base
		if n > 1 {
			id = fmt.Sprintf("%s-%d", base, n)
		}
		// The reservation first (every node sees it), then the store: an
		// id with any object (a committed asset, a tombstone, another
		// ingest's originals) is taken.
		ok, err := l.state.SetNX(ctx, reservationKey(user, id), []byte(rev), reservationTTL)
		if err != nil {
			return "", fmt.Errorf("library: reserve an asset id: %w", err)
		}
		if !ok {
			continue
		}
		objs, err := l.st.List(ctx, assetPrefix(user, id))
		if err != nil {
			l.release(user, id)
			return "", err
		}
		if len(objs) == 0 {
			return id, nil
		}
		l.release(user, id)
	}
	return "", fmt.Errorf("library: no free id for %q", base)
}

// release drops the reservation of user/id (its objects keep the id taken
// from then on, or it is free again after a failed ingest).
func (l *Library) release(user, id string) {
	// Not the request's context: the reservation must go even when the
	// client went away.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.state.Delete(ctx, reservationKey(user, id)); err != nil {
		l.log.Warn("library: cannot release an asset id; it expires by itself", "user", user, "asset", id, "err", err)
	}
}

func reservationKey(user, id string) string { return "reserve/" + user + "/" + id }

// Ingest stores the uploads as the chapters of one new asset, indexes them
// and commits the asset. On any failure everything it stored is removed.
// Each upload is streamed to the store, never held in memory whole.
//
// For a user with a quota, an upload is stopped (and nothing of it kept)
// as soon as it goes past what the user has left, and the quota is checked
// again when the asset is committed: the error is a *QuotaError
// (ErrOverQuota).
func (l *Library) Ingest(ctx context.Context, user, title string, next func() (*Upload, error)) (*Asset, error) {
	u, err := l.UserInfo(ctx, user)
	if err != nil {
		return nil, err
	}
	var left int64 // bytes the user has left, when u.Quota > 0
	var used int64
	if u.Quota > 0 {
		if used, err = l.Usage(ctx, user); err != nil {
			return nil, err
		}
		left = u.Quota - used
		if left <= 0 {
			return nil, &QuotaError{User: user, Quota: u.Quota, Used: used, Want: -1}
		}
	}
	rev := newRev()
	var (
		id      string
		stored  []string
		chaps   []Chapter
		srcs    []media.Source
		success bool
	)
	defer func() {
		if id != "" {
			l.release(user, id)
		}
		if !success {
			l.removeAll(ctx, stored) // even when the request was cancelled
		}
	}()
	for n := 1; ; n++ {
		up, err := next()
		if err != nil {
			return nil, err
		}
		if up == nil {
			break
		}
		if n > MaxChapters {
			return nil, fmt.Errorf("%w: more than %d files in one asset", ErrTooManyChapters, MaxChapters)
		}
		if id == "" {
			if id, err = l.reserve(ctx, user, assetID(up.Name), rev); err != nil {
				return nil, err
			}
		}
		key := fmt.Sprintf("%ssrc/%02d-%s", assetPrefix(user, id), n, rev)
		stored = append(stored, key)
		r := up.R
		if u.Quota > 0 {
			r = quotaReader{r: r, left: &left, err: func() error {
				return &QuotaError{User: user, Quota: u.Quota, Used: used, Want: -1}
			}}
		}
		info, err := l.st.Put(ctx, key, r)
		if err != nil {
			return nil, fmt.Errorf("library: store %s: %w", up.Name, err)
		}
		if info.Size == 0 {
			return nil, fmt.Errorf("%w: %s has no bytes", ErrEmpty, up.Name)
		}
		name := path.Base(strings.ReplaceAll(up.Name, `\`, "/"))
		chaps = append(chaps, Chapter{Name: name, Object: key, Size: info.Size})
		srcs = append(srcs, media.Source{Object: key, Name: name, Size: info.Size, R: store.NewReaderAt(ctx, l.st, key, info.Size)})
	}
	if len(chaps) == 0 {
		return nil, fmt.Errorf("%w: no files", ErrEmpty)
	}
	ix, err := media.Parse(ctx, srcs)
	if err != nil {
		return nil, err
	}
	a, written, err := l.commit(ctx, user, u.Quota, id, rev, title, ix, chaps)
	stored = append(stored, written...)
	if err != nil {
		return nil, err
	}
	success = true
	return a, nil
}

// Assets lists a user's committed assets, oldest first.
func (l *Library) Assets(ctx context.Context, user string) ([]*Asset, error) {
	if err := l.HasUser(ctx, user); err != nil {
		return nil, err
	}
	infos, err := l.st.List(ctx, assetsPrefix(user))
	if err != nil {
		return nil, err
	}
	var out []*Asset
	for _, in := range infos {
		rest := strings.TrimPrefix(in.Key, assetsPrefix(user))
		id, ok := strings.CutSuffix(rest, "/meta.json")
		if !ok || strings.Contains(id, "/") {
			continue
		}
		a, err := l.Asset(ctx, user, id)
		if err != nil {
			if errors.Is(err, ErrUnknownAsset) {
				continue // deleted meanwhile
			}
			return nil, err
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Ingested.Equal(out[j].Ingested) {
			return out[i].Ingested.Before(out[j].Ingested)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// metaTTL bounds how long a node trusts its cached copy of an asset's
// metadata; another node sharing the store may delete the asset meanwhile.
const metaTTL = 5 * time.Second

type cachedAsset struct {
	a      *Asset
	loaded time.Time
}

// Asset loads one asset's metadata (cached briefly: it is read on every
// request).
func (l *Library) Asset(ctx context.Context, user, id string) (*Asset, error) {
	if err := CheckUser(user); err != nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownUser, user)
	}
	if !validName(id) {
		return nil, fmt.Errorf("%w: %q", ErrUnknownAsset, id)
	}
	key := user + "/" + id
	if c, ok := l.metas.Get(key); ok && time.Since(c.loaded) < metaTTL {
		return c.a, nil
	}
	a, err := l.loadAsset(ctx, user, id)
	if err != nil {
		return nil, err
	}
	l.metas.Add(key, cachedAsset{a, time.Now()}, 1)
	return a, nil
}

func (l *Library) loadAsset(ctx context.Context, user, id string) (*Asset, error) {
	rc, err := l.st.Get(ctx, metaKey(user, id), 0, -1)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			if uerr := l.HasUser(ctx, user); uerr != nil {
				return nil, uerr
			}
			return nil, fmt.Errorf("%w: %q", ErrUnknownAsset, id)
		}
		return nil, err
	}
	defer rc.Close()
	var a Asset
	if err := json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(&a); err != nil {
		return nil, fmt.Errorf("library: asset %s/%s: bad metadata: %w", user, id, err)
	}
	// The sizes of the asset's immutable objects are known: a read cache
	// need not ask the store for them.
	for _, c := range a.Chapters {
		store.HintSize(l.st, c.Object, c.Size)
	}
	if a.IndexSize > 0 {
		store.HintSize(l.st, a.Index, a.IndexSize)
	}
	return &a, nil
}

// Index loads an asset's media index, through the cache.
func (l *Library) Index(ctx context.Context, a *Asset) (*media.Index, error) {
	if ix, ok := l.indexes.Get(indexCacheKey(a)); ok {
		return ix, nil
	}
	rc, err := l.st.Get(ctx, a.Index, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("library: load index of %s/%s: %w", a.User, a.ID, err)
	}
	defer rc.Close()
	b, err := readIndex(rc, a.IndexSize)
	if err != nil {
		return nil, fmt.Errorf("library: load index of %s/%s: %w", a.User, a.ID, err)
	}
	ix, err := media.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("library: decode index of %s/%s: %w", a.User, a.ID, err)
	}
	l.indexes.Add(indexCacheKey(a), ix, indexCost(ix))
	return ix, nil
}

// readIndex reads an index of the given size (0 if unknown) whole, into
// one buffer of that size when it is known.
func readIndex(r io.Reader, size int64) ([]byte, error) {
	if size <= 0 || size > maxIndexBytes {
		return io.ReadAll(r)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	// The object must end there: one byte more means the size was wrong.
	if n, _ := r.Read(make([]byte, 1)); n != 0 {
		return nil, fmt.Errorf("index larger than its recorded %d bytes", size)
	}
	return b, nil
}

// maxIndexBytes bounds the preallocation of readIndex (a size read from
// metadata); larger indexes are read as they come.
const maxIndexBytes = 1 << 30

// indexCost estimates an index's memory: ~37 bytes per sample plus entries.
func indexCost(ix *media.Index) int64 {
	var n int64 = 1024
	for _, t := range ix.Tracks {
		n += int64(t.Samples.Len())*37 + 512
		for _, e := range t.SampleEntries {
			n += int64(len(e))
		}
	}
	return n
}

// Delete removes an asset: first its commit marker (so it disappears at
// once), then its index and originals. A tombstone stays behind so that the
// id is never given to another asset: a URL always names the same bytes,
// which lets HTTP caches keep responses as immutable.
func (l *Library) Delete(ctx context.Context, user, id string) error {
	a, err := l.Asset(ctx, user, id)
	if err != nil {
		return err
	}
	// The tombstone first: the id's prefix is never empty, so no ingest
	// on any node can take the id again while (or after) the rest goes,
	// and URLs of the old asset, cached immutable, never name new bytes.
	if _, err := l.st.Put(ctx, tombKey(user, id), strings.NewReader(time.Now().UTC().Format(time.RFC3339))); err != nil {
		return err
	}
	if err := l.st.Delete(ctx, metaKey(user, id)); err != nil {
		return err
	}
	l.metas.Remove(user + "/" + id)
	l.indexes.Remove(indexCacheKey(a))
	objs, err := l.st.List(ctx, assetPrefix(user, id))
	if err != nil {
		return err
	}
	for _, o := range objs {
		if o.Key == tombKey(user, id) {
			continue
		}
		if err := l.st.Delete(ctx, o.Key); err != nil {
			return err // what is left is an orphan for jitstream gc
		}
	}
	return nil
}

func tombKey(user, id string) string { return assetPrefix(user, id) + "deleted" }
