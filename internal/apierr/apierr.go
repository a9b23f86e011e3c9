// Package apierr maps the errors a user can cause when adding media to HTTP
// statuses and messages, in one place for every way in (the upload API,
// WebDAV PUT, tus uploads).
package apierr

import (
	"errors"
	"net/http"

	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/media"
)

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
