package s3_test

import (
	"testing"

	"github.com/jitstream/jitstream/internal/store"
	testminio "github.com/jitstream/jitstream/internal/testutil/minio"
	miniogo "github.com/minio/minio-go/v7"
)

// TestPartialWrites: the multipart uploads that nobody completed or aborted
// (those of a process that died in the middle of a Put) are listed under
// their keys, within the store's prefix, and aborted.
func TestPartialWrites(t *testing.T) {
	srv := testminio.Shared(t)
	bucket := srv.NewBucket(t)
	s := newStore(t, srv, bucket, prefix("tenant"))
	core := miniogo.Core{Client: srv.Client(t)}
	for _, obj := range []string{"tenant/users/a/assets/x/src/01-r", "tenant/other/y", "elsewhere/users/z"} {
		if _, err := core.NewMultipartUpload(t.Context(), bucket, obj, miniogo.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ws, err := s.PartialWrites(t.Context(), "users/")
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || ws[0].Key != "users/a/assets/x/src/01-r" || ws[0].ID == "" || ws[0].Started.IsZero() {
		t.Fatalf("PartialWrites(users/) = %+v, want the one upload under the store's users/", ws)
	}
	if err := s.AbortPartialWrite(t.Context(), ws[0]); err != nil {
		t.Fatalf("AbortPartialWrite: %v", err)
	}
	if err := s.AbortPartialWrite(t.Context(), ws[0]); err != nil {
		t.Errorf("AbortPartialWrite of an aborted upload: %v, want nil", err)
	}
	if ws, err := s.PartialWrites(t.Context(), ""); err != nil || len(ws) != 1 || ws[0].Key != "other/y" {
		t.Errorf("PartialWrites after the abort = %+v, %v; want only other/y", ws, err)
	}
	if _, err := s.PartialWrites(t.Context(), "../"); err == nil {
		t.Error("PartialWrites(../) succeeded")
	}
	var _ store.PartialWriter = s
}
