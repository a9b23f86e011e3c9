package httpserve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/jitstream/jitstream/internal/store"
)

// downStore is a store that cannot be reached.
type downStore struct{ store.Store }

func (downStore) Get(context.Context, string, int64, int64) (io.ReadCloser, error) {
	return nil, fmt.Errorf("dial: %w", store.ErrUnavailable)
}

func (downStore) Stat(context.Context, string) (store.Info, error) {
	return store.Info{}, fmt.Errorf("dial: %w", store.ErrUnavailable)
}

// downOpener is a local store whose files cannot be opened (a disk gone).
type downOpener struct{ *store.FS }

func (downOpener) OpenFile(context.Context, string) (*os.File, error) {
	return nil, fmt.Errorf("open: %w", store.ErrUnavailable)
}

// TestStoreUnavailable: a store that cannot be reached gives 503 with
// Retry-After, Cache-Control: no-store, no validators and a JSON body,
// for GET and HEAD, never a 200 or a 500.
func TestStoreUnavailable(t *testing.T) {
	fx := newFixture(t)
	for _, tc := range []struct {
		name string
		st   store.Store
	}{
		{"get", downStore{fx.fs}},
		{"fileopener", downOpener{fx.fs}},
	} {
		for _, method := range []string{"GET", "HEAD"} {
			t.Run(tc.name+" "+method, func(t *testing.T) {
				res := do(t, newServer(t, tc.st, fx.file, Options{CacheControl: "public, max-age=60"}), method)
				res.check(t, 503)
				h := res.resp.Header
				if h.Get("Retry-After") != RetryAfter || h.Get("Cache-Control") != "no-store" || h.Get("ETag") != "" || h.Get("Last-Modified") != "" {
					t.Errorf("headers %v: want Retry-After %s, Cache-Control no-store, no ETag nor Last-Modified", h, RetryAfter)
				}
				if method == "GET" {
					var body struct{ Error, Detail string }
					if err := json.Unmarshal(res.body, &body); err != nil || body.Error != "storage unavailable" {
						t.Errorf("body %s (%v)", res.body, err)
					}
				}
			})
		}
	}
}
