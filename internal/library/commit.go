package library

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jitstream/jitstream/internal/media"
)

// ErrBadCommit is returned (wrapped) by Commit for an index or chapters
// that do not make an asset: an index that does not validate, chapters
// that are not the index's, objects outside the asset.
var ErrBadCommit = errors.New("invalid commit")

// Reserve picks a new asset id for user, derived from name as Ingest
// derives it from a file name (its stem, cleaned; "-2", "-3"... appended
// while taken), and reserves it on every node (the shared state) together
// with a new revision. Ids are never reused: an id with any object in the
// store (an asset, a tombstone, another ingest's originals) is taken.
//
// The caller stores the asset's originals under
// users/{user}/assets/{id}/src/ (keys ending in the revision, or any name
// ImmutableKey accepts) and then calls Commit, which drops the
// reservation; a reservation never committed expires by itself.
func (l *Library) Reserve(ctx context.Context, user, name string) (id, rev string, err error) {
	if err := l.HasUser(ctx, user); err != nil {
		return "", "", err
	}
	rev = newRev()
	if id, err = l.reserve(ctx, user, assetID(name), rev); err != nil {
		return "", "", err
	}
	return id, rev, nil
}

// Commit makes the asset user/id of revision rev (both from Reserve)
// visible: it writes the media index ix and then, last, the asset's
// metadata, whose presence commits the asset. chapters are the stored
// originals, those of ix in the same order, all under the asset's src/.
// An empty title is the id. For a user with a quota, the quota is checked
// under its lock first (a *QuotaError).
//
// It drops the reservation of id whatever the outcome. On failure the
// metadata is not there (nothing becomes visible), the index it wrote is
// removed and the originals are left to the caller (or to GC).
func (l *Library) Commit(ctx context.Context, user, id, rev, title string, ix *media.Index, chapters []Chapter) (*Asset, error) {
	if err := CheckUser(user); err != nil {
		return nil, err
	}
	if !validName(id) || rev == "" || !validName(rev) {
		return nil, fmt.Errorf("%w: asset id %q, revision %q", ErrBadName, id, rev)
	}
	defer l.release(user, id)
	u, err := l.UserInfo(ctx, user)
	if err != nil {
		return nil, err
	}
	if err := checkCommit(user, id, ix, chapters); err != nil {
		return nil, err
	}
	a, written, err := l.commit(ctx, user, u.Quota, id, rev, title, ix, chapters)
	if err != nil {
		l.removeAll(ctx, written)
		return nil, err
	}
	return a, nil
}

// checkCommit checks that ix and chapters make asset user/id.
func checkCommit(user, id string, ix *media.Index, chapters []Chapter) error {
	if ix == nil {
		return fmt.Errorf("%w: no index", ErrBadCommit)
	}
	if err := ix.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadCommit, err)
	}
	if len(chapters) != len(ix.Chapters) {
		return fmt.Errorf("%w: %d chapters for an index of %d", ErrBadCommit, len(chapters), len(ix.Chapters))
	}
	src := assetPrefix(user, id) + "src/"
	for i, c := range chapters {
		ic := ix.Chapters[i]
		if c.Object != ic.Object || c.Size != ic.Size {
			return fmt.Errorf("%w: chapter %d is %s (%d bytes) but the index has %s (%d bytes)",
				ErrBadCommit, i+1, c.Object, c.Size, ic.Object, ic.Size)
		}
		if rest, ok := strings.CutPrefix(c.Object, src); !ok || rest == "" || strings.Contains(rest, "/") {
			return fmt.Errorf("%w: chapter %d (%s) is not stored under %s", ErrBadCommit, i+1, c.Object, src)
		}
	}
	return nil
}

// commit writes ix as the index of asset user/id of revision rev and then the
// asset's metadata, checking the user's quota (if any) under its lock in between.
// It returns the keys it wrote (or tried to), for the caller to remove on
// failure. It is the end of both Ingest and Commit.
func (l *Library) commit(ctx context.Context, user string, quota int64, id, rev, title string, ix *media.Index, chaps []Chapter) (a *Asset, written []string, err error) {
	if title == "" {
		title = id
	}
	enc, err := media.Marshal(ix)
	if err != nil {
		return nil, nil, fmt.Errorf("library: encode index: %w", err)
	}
	a = &Asset{ID: id, User: user, Title: title, Ingested: time.Now().UTC().Truncate(time.Second), Rev: rev, Chapters: chaps}
	a.Created = ix.Created
	if a.Created.IsZero() {
		a.Created = a.Ingested
	}
	a.Index = assetPrefix(user, id) + "index-" + rev + ".jsix"
	written = append(written, a.Index)
	a.IndexSize = int64(len(enc))
	if _, err := l.st.Put(ctx, a.Index, bytes.NewReader(enc)); err != nil {
		return nil, written, fmt.Errorf("library: store index: %w", err)
	}
	meta, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return nil, written, err
	}
	if quota > 0 {
		// Other uploads may have been committed meanwhile.
		lk, err := l.state.Lock(ctx, "quota/"+user, quotaLockTTL)
		if err != nil {
			return nil, written, fmt.Errorf("library: quota lock: %w", err)
		}
		defer lk.Unlock(context.WithoutCancel(ctx))
		now, err := l.Usage(ctx, user)
		if err != nil {
			return nil, written, err
		}
		var size int64
		for _, c := range chaps {
			size += c.Size
		}
		if now+size > quota {
			return nil, written, &QuotaError{User: user, Quota: quota, Used: now, Want: size}
		}
	}
	written = append(written, metaKey(user, id))
	if _, err := l.st.Put(ctx, metaKey(user, id), strings.NewReader(string(meta))); err != nil {
		return nil, written, fmt.Errorf("library: commit asset: %w", err)
	}
	l.indexes.Add(indexCacheKey(a), ix, indexCost(ix))
	l.log.Info("ingested", "user", user, "asset", id, "chapters", len(chaps), "duration", ix.Duration())
	return a, written, nil
}

// removeAll deletes keys, even when ctx is cancelled (a failed write must
// not stay because the request went away); failures are logged: what
// stays is an orphan for GC.
func (l *Library) removeAll(ctx context.Context, keys []string) {
	for _, k := range keys {
		if err := l.st.Delete(context.WithoutCancel(ctx), k); err != nil {
			l.log.Warn("ingest cleanup", "key", k, "err", err)
		}
	}
}
