// Package apierr maps errors to HTTP statuses and messages in one place for
// every way in (the upload API, WebDAV, tus uploads, files and streams):
// the errors a user can cause when adding media, and the store being
// unavailable.
package apierr

import (
	"errors"
	"net/http"

	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/state"
	"github.com/jitstream/jitstream/internal/store"
)

// Store returns 503 and a message when err is the store or the shared
// state being unavailable (store.ErrUnavailable, state.ErrUnavailable:
// unreachable, timing out, failing on their side), and false otherwise. httpserve.Error adds Retry-After and Cache-Control:
// no-store to 503 answers, so that neither clients nor caches keep them.
func Store(err error) (int, string, bool) {
	switch {
	case errors.Is(err, store.ErrUnavailable):
		return http.StatusServiceUnavailable, "storage unavailable", true
	case errors.Is(err, state.ErrUnavailable):
		return http.StatusServiceUnavailable, "shared state unavailable", true
	}
	return 0, "", false
}

// Ingest returns the status and message for an ingest error, and false when
// err is none of the errors it knows.
func Ingest(err error) (int, string, bool) {
	switch {
	case errors.Is(err, library.ErrUnknownUser):
		return http.StatusNotFound, "unknown user", true
	case errors.Is(err, library.ErrEmpty):
		return http.StatusBadRequest, "empty upload", true
	case errors.Is(err, library.ErrOverQuota):
		return http.StatusRequestEntityTooLarge, "over quota", true
	case errors.Is(err, library.ErrBadName):
		return http.StatusBadRequest, "invalid name", true
	case errors.Is(err, media.ErrUnsupported):
		return http.StatusUnsupportedMediaType, "unsupported media", true
	case errors.Is(err, media.ErrInvalid):
		return http.StatusUnprocessableEntity, "invalid media", true
	}
	return 0, "", false
}
