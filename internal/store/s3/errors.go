package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	"github.com/jitstream/jitstream/internal/store"
	"github.com/minio/minio-go/v7"
)

// wrap adds the operation op ("get users/x.mp4") to err and maps it to the
// store's errors: a missing key to store.ErrNotFound; a service that cannot
// be reached, times out, answers 5xx or has lost the bucket to
// store.ErrUnavailable. The original error stays in the chain.
func wrap(op string, err error) error {
	switch {
	case isNotFound(err):
		return fmt.Errorf("s3: %s: %w: %w", op, store.ErrNotFound, err)
	case isUnavailable(err):
		return fmt.Errorf("s3: %s: %w: %w", op, store.ErrUnavailable, hideURL(err))
	}
	return fmt.Errorf("s3: %s: %w", op, err)
}

// hideURL returns err with the text of a *url.Error in it reduced to its
// cause ("connection refused"), so that the store's internal address does
// not reach clients in error details; the chain is unchanged.
func hideURL(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	return urlHidden{err: err, msg: ue.Op + ": " + ue.Err.Error()}
}

type urlHidden struct {
	err error
	msg string
}

func (u urlHidden) Error() string { return u.msg }
func (u urlHidden) Unwrap() error { return u.err }

// errorResponse returns the S3 error response in err's chain, if any.
func errorResponse(err error) (minio.ErrorResponse, bool) {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		return resp, true
	}
	var p *minio.ErrorResponse
	if errors.As(err, &p) && p != nil {
		return *p, true
	}
	return minio.ErrorResponse{}, false
}

// isNotFound reports whether err says that the object does not exist:
// NoSuchKey, or a 404 that is not about the bucket or an upload.
func isNotFound(err error) bool {
	resp, ok := errorResponse(err)
	if !ok {
		return false
	}
	switch resp.Code {
	case minio.NoSuchKey:
		return true
	case minio.NoSuchBucket, minio.NoSuchUpload:
		return false
	}
	return resp.StatusCode == http.StatusNotFound
}

// isUnavailable reports whether err says that the service cannot serve
// requests now: a network error (connection refused or reset, DNS, TLS
// handshake), a timeout, a body cut short, a 5xx answer, a throttling or timeout code, or a
// missing bucket (deleted under the store, or a configuration error). The
// caller's own cancellation is not unavailability.
func isUnavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if resp, ok := errorResponse(err); ok {
		if resp.StatusCode >= 500 {
			return true
		}
		switch resp.Code {
		case minio.NoSuchBucket, "RequestTimeout", "SlowDown", "Throttling", "ThrottlingException",
			"RequestLimitExceeded", "RequestThrottled", "InternalError", "ServiceUnavailable",
			"XMinioServerNotInitialized":
			return true
		}
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return minio.IsNetworkOrHostDown(err, false)
}
