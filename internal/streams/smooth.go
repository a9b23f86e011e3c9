package streams

import (
	"errors"
	"fmt"
	"time"

	"github.com/jitstream/jitstream/internal/build/smooth"
	"github.com/jitstream/jitstream/internal/vfile"
)

// smooth serves the Smooth Streaming manifest and fragments.
func (h *Handler) smooth(a *asset, path string) (*vfile.File, error) {
	if path == "Manifest" {
		b, err := smooth.Manifest(a.ix, a.segs, smooth.ManifestOptions{Repeat: true})
		if err != nil {
			return nil, smoothErr(err)
		}
		return textFile("Manifest", smooth.ManifestContentType, b), nil
	}
	bitrate, typ, start, err := smooth.ParseFragmentPath(path)
	if err != nil {
		return nil, smoothErr(err)
	}
	t, ok, err := smooth.Lookup(a.ix, typ, bitrate)
	if err != nil {
		return nil, smoothErr(err)
	}
	if !ok {
		return nil, notFound("no %s quality level with bit rate %d", typ, bitrate)
	}
	n, ok := smooth.FragmentIndex(a.ix, t, a.segs, start)
	if !ok {
		return nil, notFound("no %s fragment starts at time %d", typ, start)
	}
	var b vfile.Builder
	if err := smooth.Fragment(&b, a.ix, t, a.segs, n); err != nil {
		return nil, smoothErr(err)
	}
	f := b.File(path, smooth.ContentType(t), time.Time{}, "")
	segmentTimeline(a, n, f)
	return f, nil
}

func smoothErr(err error) error {
	switch {
	case errors.Is(err, smooth.ErrUnsupported):
		return fmt.Errorf("%w: %w", ErrUnsupportedFormat, err)
	case errors.Is(err, smooth.ErrNoFragment):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}
