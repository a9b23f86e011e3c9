package library_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/testutil/teststore"
)

// TestIngestRefusesTooManyChapters: the file after the MaxChapters-th is
// refused before any of it is stored, and what was stored is removed.
func TestIngestRefusesTooManyChapters(t *testing.T) {
	ctx := context.Background()
	st := teststore.New(t).Store
	lib := library.New(st, library.Options{})
	if err := lib.AddUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	offered := 0
	_, err := lib.Ingest(ctx, "bob", "", func() (*library.Upload, error) {
		offered++
		if offered > library.MaxChapters+5 {
			return nil, nil
		}
		return &library.Upload{Name: "part.mp4", R: strings.NewReader("not media")}, nil
	})
	if !errors.Is(err, library.ErrTooManyChapters) {
		t.Fatalf("err = %v, want ErrTooManyChapters", err)
	}
	if offered != library.MaxChapters+1 {
		t.Errorf("%d uploads asked for, want %d", offered, library.MaxChapters+1)
	}
	objs, err := st.List(ctx, "users/bob/assets/")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 0 {
		t.Errorf("%d objects left behind, e.g. %s", len(objs), objs[0].Key)
	}
}
