package streams

import (
	"context"

	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/store"
)

// ClipIndex returns the media index of the asset or clip name ("ID" or
// "ID,START-END") of user, the one its stream URLs are built from (for a
// clip, what media.Clip returns), for those that stitch several into one
// output. It is cached and shared: callers must not modify it.
func (h *Handler) ClipIndex(ctx context.Context, user, name string) (*media.Index, error) {
	a, err := h.load(ctx, user, name)
	if err != nil {
		return nil, err
	}
	return a.ix, nil
}

// Store is the store that holds the media of the handler's assets, from
// which the stored pieces of outputs built from ClipIndex are read.
func (h *Handler) Store() store.Store { return h.lib.Store() }
