package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"

	"github.com/jitstream/jitstream/internal/store"
	"github.com/minio/minio-go/v7"
)

func TestWrap(t *testing.T) {
	refused := &url.Error{Op: "Get", URL: "http://127.0.0.1:1/b/k", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	dns := &url.Error{Op: "Get", URL: "http://nowhere.invalid/b/k", Err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "nowhere.invalid", IsNotFound: true}}}
	for _, tc := range []struct {
		name string
		err  error
		want error // nil: neither
	}{
		{"NoSuchKey", minio.ErrorResponse{Code: minio.NoSuchKey, StatusCode: 404}, store.ErrNotFound},
		{"404 without a code", minio.ErrorResponse{Code: "404 Not Found", StatusCode: 404}, store.ErrNotFound},
		{"NoSuchBucket", minio.ErrorResponse{Code: minio.NoSuchBucket, StatusCode: 404}, store.ErrUnavailable},
		{"NoSuchUpload", minio.ErrorResponse{Code: minio.NoSuchUpload, StatusCode: 404}, nil},
		{"500", minio.ErrorResponse{Code: "InternalError", StatusCode: 500}, store.ErrUnavailable},
		{"503 SlowDown", minio.ErrorResponse{Code: "SlowDown", StatusCode: 503}, store.ErrUnavailable},
		{"400 RequestTimeout", minio.ErrorResponse{Code: "RequestTimeout", StatusCode: 400}, store.ErrUnavailable},
		{"403", minio.ErrorResponse{Code: "AccessDenied", StatusCode: 403}, nil},
		{"416", minio.ErrorResponse{Code: minio.InvalidRange, StatusCode: 416}, nil},
		{"connection refused", refused, store.ErrUnavailable},
		{"DNS", dns, store.ErrUnavailable},
		{"reset", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, store.ErrUnavailable},
		{"body cut short", io.ErrUnexpectedEOF, store.ErrUnavailable},
		{"deadline", context.DeadlineExceeded, store.ErrUnavailable},
		{"cancelled", context.Canceled, nil},
		{"cancelled request", &url.Error{Op: "Get", URL: "http://h/b/k", Err: context.Canceled}, nil},
		{"other", errors.New("something else"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := wrap("get k", tc.err)
			if !errors.Is(got, tc.err) && !errors.Is(got, errors.Unwrap(tc.err)) {
				t.Errorf("wrap lost the original error: %v", got)
			}
			for _, sentinel := range []error{store.ErrNotFound, store.ErrUnavailable} {
				if errors.Is(got, sentinel) != (sentinel == tc.want) {
					t.Errorf("wrap(%v) = %v; want %v", tc.err, got, tc.want)
				}
			}
			// The store's address never reaches an error's text.
			if msg := got.Error(); tc.want == store.ErrUnavailable && (strings.Contains(msg, "127.0.0.1:1") || strings.Contains(msg, "nowhere.invalid/b")) {
				t.Errorf("wrap(%v) = %q: the store's URL is in the message", tc.err, msg)
			}
		})
	}
}

func TestFill(t *testing.T) {
	const limit = 200 << 10
	data := bytes.Repeat([]byte("0123456789"), 50<<10) // 500 KiB
	for _, tc := range []struct {
		name    string
		size    int
		oneByte bool
		wantLen int
		wantErr error
	}{
		{"empty", 0, false, 0, io.EOF},
		{"small", 1000, false, 1000, io.EOF},
		{"limit less one", limit - 1, false, limit - 1, io.EOF},
		{"limit", limit, false, limit, nil},
		{"more", 500 << 10, false, limit, nil},
		{"more, a byte at a time", 300, true, 300, io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r io.Reader = bytes.NewReader(data[:tc.size])
			if tc.oneByte {
				r = iotest.OneByteReader(r)
			}
			got, err := fill(r, nil, limit)
			if len(got) != tc.wantLen || err != tc.wantErr || !bytes.Equal(got, data[:tc.wantLen]) || cap(got) > limit {
				t.Errorf("fill = %d bytes (cap %d), %v; want %d bytes, %v", len(got), cap(got), err, tc.wantLen, tc.wantErr)
			}
		})
	}
	t.Run("reuses the buffer", func(t *testing.T) {
		buf := make([]byte, 10, limit)
		got, err := fill(bytes.NewReader(data), buf, limit)
		if err != nil || len(got) != limit || &got[0] != &buf[:1][0] {
			t.Errorf("fill = %d bytes, %v; want the given array filled", len(got), err)
		}
	})
	t.Run("read error", func(t *testing.T) {
		boom := errors.New("boom")
		got, err := fill(io.MultiReader(bytes.NewReader(data[:100]), iotest.ErrReader(boom)), nil, limit)
		if err != boom || len(got) != 100 {
			t.Errorf("fill = %d bytes, %v; want 100 bytes and the error", len(got), err)
		}
	})
}
