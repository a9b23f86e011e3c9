package playlist

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/jitstream/jitstream/internal/store"
)

// ErrNotFound is returned (wrapped) for a playlist that does not exist.
var ErrNotFound = errors.New("playlist not found")

// maxStored bounds the bytes read of a stored definition: Store.Put writes
// what Validate accepts, far less.
const maxStored = 16 << 20

// listConcurrency bounds the definitions List reads at a time.
const listConcurrency = 8

// Store keeps playlist definitions in a store, one object per playlist:
//
//	users/{user}/playlists/{id}.json
//
// It holds no state of its own: every node of a cluster sharing the store
// sees the same playlists.
type Store struct {
	st store.Store
}

// NewStore returns the playlists kept in st.
func NewStore(st store.Store) *Store { return &Store{st: st} }

func playlistsPrefix(user string) string { return "users/" + user + "/playlists/" }
func playlistKey(user, id string) string { return playlistsPrefix(user) + id + ".json" }

// checkNames checks user and id (if not "") before they make a key;
// errors wrap ErrInvalid.
func checkNames(user, id string) error {
	if !validName(user) {
		return invalid("user", "%q is not a user name (%s)", user, nameRule)
	}
	if id != "" && !validName(id) {
		return invalid("id", "%q is not a playlist id (%s)", id, nameRule)
	}
	return nil
}

// Put validates p, which must have its ID and User, and stores it,
// replacing the playlist of that id. The write is atomic: readers get the
// old or the new definition, never a mix.
func (s *Store) Put(ctx context.Context, p *Playlist) error {
	if p.ID == "" {
		return invalid("id", "missing")
	}
	if p.User == "" {
		return invalid("user", "missing")
	}
	if err := checkNames(p.User, p.ID); err != nil {
		return err
	}
	if err := p.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("playlist: put %s/%s: %w", p.User, p.ID, err)
	}
	if _, err := s.st.Put(ctx, playlistKey(p.User, p.ID), bytes.NewReader(b)); err != nil {
		return fmt.Errorf("playlist: put %s/%s: %w", p.User, p.ID, err)
	}
	return nil
}

// Get returns playlist id of user; a missing one is an error wrapping
// ErrNotFound, a malformed user or id one wrapping ErrInvalid.
func (s *Store) Get(ctx context.Context, user, id string) (*Playlist, error) {
	if err := checkNames(user, id); err != nil {
		return nil, err
	}
	if id == "" {
		return nil, invalid("id", "missing")
	}
	return s.get(ctx, user, id)
}

// get reads playlist id of user, checked already.
func (s *Store) get(ctx context.Context, user, id string) (*Playlist, error) {
	key := playlistKey(user, id)
	rc, err := s.st.Get(ctx, key, 0, -1)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s/%s", ErrNotFound, user, id)
	}
	if err != nil {
		return nil, fmt.Errorf("playlist: get %s/%s: %w", user, id, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxStored+1))
	if errors.Is(err, store.ErrNotFound) { // deleted while read
		return nil, fmt.Errorf("%w: %s/%s", ErrNotFound, user, id)
	}
	if err != nil {
		return nil, fmt.Errorf("playlist: get %s/%s: %w", user, id, err)
	}
	if len(b) > maxStored {
		return nil, fmt.Errorf("playlist: get %s/%s: %s is larger than %d bytes", user, id, key, maxStored)
	}
	// Not strict: a definition written by a newer release may have fields
	// this one does not know.
	var p Playlist
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("playlist: get %s/%s: %s: %w", user, id, key, err)
	}
	if p.User != user || p.ID != id {
		return nil, fmt.Errorf("playlist: get %s/%s: %s holds playlist %s/%s", user, id, key, p.User, p.ID)
	}
	return &p, nil
}

// List returns the playlists of user, sorted by ID (none for a user
// without any, or unknown).
func (s *Store) List(ctx context.Context, user string) ([]*Playlist, error) {
	if err := checkNames(user, ""); err != nil {
		return nil, err
	}
	prefix := playlistsPrefix(user)
	infos, err := s.st.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("playlist: list %s: %w", user, err)
	}
	var ids []string
	for _, in := range infos {
		id, ok := strings.CutSuffix(strings.TrimPrefix(in.Key, prefix), ".json")
		if ok && validName(id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	out := make([]*Playlist, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	sem := make(chan struct{}, listConcurrency)
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i], errs[i] = s.get(ctx, user, id)
		}()
	}
	wg.Wait()
	ps := out[:0]
	for i, p := range out {
		switch err := errs[i]; {
		case errors.Is(err, ErrNotFound): // deleted since the listing
		case err != nil:
			return nil, err
		default:
			ps = append(ps, p)
		}
	}
	return ps, nil
}

// Delete removes playlist id of user; a missing one is an error wrapping
// ErrNotFound. Playlists that nest it are left as they are (resolving them
// then fails with ErrInvalid).
func (s *Store) Delete(ctx context.Context, user, id string) error {
	if err := checkNames(user, id); err != nil {
		return err
	}
	if id == "" {
		return invalid("id", "missing")
	}
	key := playlistKey(user, id)
	if _, err := s.st.Stat(ctx, key); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: %s/%s", ErrNotFound, user, id)
		}
		return fmt.Errorf("playlist: delete %s/%s: %w", user, id, err)
	}
	if err := s.st.Delete(ctx, key); err != nil {
		return fmt.Errorf("playlist: delete %s/%s: %w", user, id, err)
	}
	return nil
}
