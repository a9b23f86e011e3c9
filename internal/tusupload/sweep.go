package tusupload

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"time"

	"github.com/jitstream/jitstream/internal/library"
)

// lockTimeout bounds how long the sweep waits for tusd's lock on an
// upload it is about to delete.
const lockTimeout = 5 * time.Second

// SweepStats counts what one sweep did.
type SweepStats struct {
	Expired   int // unfinished uploads (or leftovers of them) deleted
	Forgotten int // records of finished uploads deleted
	Ingested  int // complete uploads ingested again (after a stop or a store failure), whatever the outcome
}

// Run sweeps at once, then every Options.SweepInterval, until ctx is done.
// It returns when ctx is done and its last sweep has stopped.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.opt.SweepInterval)
	defer t.Stop()
	for {
		st, err := s.Sweep(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("upload sweep", "err", err)
		case st != SweepStats{}:
			s.log.Info("upload sweep", "expired", st.Expired, "forgotten", st.Forgotten, "ingested", st.Ingested)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep does one pass over the uploads: it deletes the unfinished uploads
// that received no byte for Options.Expiry (a group's chapters together),
// forgets the records of uploads finished longer ago than that, removes
// data left behind by a crash, and ingests the complete uploads that have
// no final result (the server stopped during their ingest, or the store
// failed). It stops early when ctx is done.
func (s *Service) Sweep(ctx context.Context) (SweepStats, error) {
	var st SweepStats
	users, err := os.ReadDir(s.opt.Dir)
	if err != nil {
		return st, fmt.Errorf("tusupload: sweep: %w", err)
	}
	for _, e := range users {
		user := e.Name()
		if !e.IsDir() || library.CheckUser(user) != nil {
			continue
		}
		ups, err := s.scan(user)
		if err != nil {
			return st, fmt.Errorf("tusupload: sweep: %w", err)
		}
		// A group is active while any of its unfinished chapters is.
		groupActivity := map[string]time.Time{}
		for _, u := range ups {
			if g := u.meta.group; u.info != nil && g != "" && u.activity.After(groupActivity[g]) {
				groupActivity[g] = u.activity
			}
		}
		now := time.Now()
		for _, u := range ups {
			if err := ctx.Err(); err != nil {
				return st, err
			}
			activity := u.activity
			if g := u.meta.group; u.info != nil && g != "" {
				activity = groupActivity[g]
			}
			expired := now.Sub(activity) > s.opt.Expiry
			switch {
			case u.info == nil && u.rec == nil:
				if expired && s.expire(ctx, user, u) {
					st.Expired++
				}
			case u.info == nil:
				if expired {
					if err := os.Remove(s.recordPath(u.tid)); err != nil && !errors.Is(err, fs.ErrNotExist) {
						s.log.Warn("upload result not removed", "upload", u.tid, "err", err)
					} else {
						st.Forgotten++
					}
				}
			case u.rec.settled():
				s.removeData(u.tid) // ingested; a crash left the data
			case expired:
				if s.expire(ctx, user, u) {
					st.Expired++
				}
			case u.info.Offset == u.info.Size && !s.claimed(claimKey(user, u.meta, u.tid)):
				if o := s.finish(ctx, u.tid); o.Status != http.StatusAccepted && ctx.Err() == nil {
					st.Ingested++
				}
			}
		}
	}
	return st, nil
}

// expire deletes the expired upload u, unless it received bytes since the
// scan or is being ingested; it reports whether it did.
func (s *Service) expire(ctx context.Context, user string, u *upload) bool {
	// tusd's lock first (as a PATCH takes it before its ingest claim), so
	// that no request writes to the upload while it goes.
	lock, err := s.locker.NewLock(u.tid)
	if err != nil {
		s.log.Warn("upload not expired", "upload", u.tid, "err", err)
		return false
	}
	lctx, cancel := context.WithTimeout(ctx, lockTimeout)
	defer cancel()
	if err := lock.Lock(lctx, func() {}); err != nil {
		s.log.Warn("upload not expired: busy", "upload", u.tid, "err", err)
		return false
	}
	defer lock.Unlock()
	release, _ := s.claim(claimKey(user, u.meta, u.tid))
	if release == nil {
		return false // being ingested
	}
	defer release()
	if fi, err := os.Stat(s.binPath(u.tid)); err == nil && fi.ModTime().After(u.activity) {
		return false // received bytes since the scan
	}
	for _, p := range []string{s.binPath(u.tid), s.infoPath(u.tid), s.recordPath(u.tid)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("expired upload not removed", "path", p, "err", err)
			return false
		}
	}
	attrs := []any{"user", user, "upload", u.id, "idle", time.Since(u.activity).Round(time.Second)}
	if u.info != nil {
		attrs = append(attrs, "received", u.info.Offset, "size", u.info.Size)
	}
	s.log.Info("upload expired", attrs...)
	return true
}
