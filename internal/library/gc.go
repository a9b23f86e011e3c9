package library

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jitstream/jitstream/internal/store"
)

// GCReport is what GC found (and, unless it was a dry run, removed).
type GCReport struct {
	// Orphans are the keys of stored objects no committed asset refers
	// to: what an ingest that died left (originals, an index without
	// metadata), and what a delete that died left next to its tombstone.
	Orphans []string `json:"orphans"`
	// Bytes is their total size.
	Bytes int64 `json:"bytes"`
	// Uploads are the keys of the writes in progress that were aborted
	// (store.PartialWriter: S3 multipart uploads that a node dying in
	// the middle of an ingest left, invisible but taking space).
	Uploads []string `json:"uploads"`
	// Young are orphan-looking objects (and writes in progress) left
	// alone because they are newer than the grace period: an ingest may
	// still be writing them.
	Young int `json:"young"`
}

// GC finds the objects under users/*/assets/ that no committed asset refers
// to and that are older than grace, and deletes them unless dryRun; with a
// store that keeps writes in progress apart (store.PartialWriter: S3
// multipart uploads), it also aborts those under users/ begun before
// grace.
// Committed assets (meta.json present) keep their metadata, their index and
// their chapters; other revisions' objects under the same id are orphans. A
// deleted asset keeps only its tombstone. grace protects ingests in
// progress, which write their originals and index before their metadata:
// give it more than the longest upload.
func (l *Library) GC(ctx context.Context, grace time.Duration, dryRun bool) (*GCReport, error) {
	users, err := l.Users(ctx)
	if err != nil {
		return nil, err
	}
	rep := &GCReport{Orphans: []string{}, Uploads: []string{}}
	cutoff := time.Now().Add(-grace)
	for _, user := range users {
		objs, err := l.st.List(ctx, assetsPrefix(user))
		if err != nil {
			return nil, fmt.Errorf("library: gc: %w", err)
		}
		// Group by asset id.
		byID := map[string][]store.Info{}
		var ids []string
		for _, o := range objs {
			id, _, ok := strings.Cut(strings.TrimPrefix(o.Key, assetsPrefix(user)), "/")
			if !ok {
				continue
			}
			if _, seen := byID[id]; !seen {
				ids = append(ids, id)
			}
			byID[id] = append(byID[id], o)
		}
		for _, id := range ids {
			keep, err := l.kept(ctx, user, id)
			if err != nil {
				return nil, err
			}
			for _, o := range byID[id] {
				if keep[o.Key] {
					continue
				}
				if o.ModTime.After(cutoff) {
					rep.Young++
					continue
				}
				rep.Orphans = append(rep.Orphans, o.Key)
				rep.Bytes += o.Size
				if dryRun {
					continue
				}
				if err := l.st.Delete(ctx, o.Key); err != nil {
					return rep, fmt.Errorf("library: gc: %w", err)
				}
			}
		}
	}
	if err := l.gcPartialWrites(ctx, rep, cutoff, dryRun); err != nil {
		return rep, err
	}
	return rep, nil
}

// gcPartialWrites aborts the writes in progress under users/ that began
// before cutoff, when the store keeps such writes (store.PartialWriter),
// and adds them to rep.
func (l *Library) gcPartialWrites(ctx context.Context, rep *GCReport, cutoff time.Time, dryRun bool) error {
	pw, ok := l.st.(store.PartialWriter)
	if !ok {
		return nil
	}
	ws, err := pw.PartialWrites(ctx, "users/")
	if err != nil {
		return fmt.Errorf("library: gc: %w", err)
	}
	for _, w := range ws {
		if w.Started.After(cutoff) {
			rep.Young++
			continue
		}
		rep.Uploads = append(rep.Uploads, w.Key)
		if dryRun {
			continue
		}
		if err := pw.AbortPartialWrite(ctx, w); err != nil {
			return fmt.Errorf("library: gc: %w", err)
		}
	}
	return nil
}

// kept returns the keys of asset user/id that are not orphans: its
// metadata, index and chapters if it is committed, its tombstone if it was
// deleted.
func (l *Library) kept(ctx context.Context, user, id string) (map[string]bool, error) {
	keep := map[string]bool{tombKey(user, id): true}
	a, err := l.loadAsset(ctx, user, id)
	switch {
	case errors.Is(err, ErrUnknownAsset) || errors.Is(err, store.ErrNotFound):
		return keep, nil
	case err != nil:
		return nil, fmt.Errorf("library: gc: %s/%s: %w", user, id, err)
	}
	keep[metaKey(user, id)] = true
	keep[a.Index] = true
	for _, c := range a.Chapters {
		keep[c.Object] = true
	}
	return keep, nil
}
