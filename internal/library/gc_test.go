package library_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/teststore"
)

// TestGC: what a dead ingest and a dead delete leave is removed, after the
// grace period only; committed assets and tombstones stay whole.
func TestGC(t *testing.T) {
	ctx := context.Background()
	st := teststore.New(t).Store
	lib := library.New(st, library.Options{})
	if err := lib.AddUser(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	// A committed asset, and one deleted.
	ingest := func() *library.Asset {
		f, err := os.Open(fixtures.H264AAC(t))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		done := false
		a, err := lib.Ingest(ctx, "u", "", func() (*library.Upload, error) {
			if done {
				return nil, nil
			}
			done = true
			return &library.Upload{Name: "clip.mp4", R: f}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	kept := ingest()
	gone := ingest()
	if err := lib.Delete(ctx, "u", gone.ID); err != nil {
		t.Fatal(err)
	}
	// What a node killed mid-ingest leaves: originals and an index, no
	// metadata; what one killed mid-delete leaves next to a tombstone; an
	// old revision next to a committed asset.
	put := func(key string) {
		if _, err := st.Put(ctx, key, strings.NewReader("partial")); err != nil {
			t.Fatal(err)
		}
	}
	orphans := []string{
		"users/u/assets/dead/src/00-r9", "users/u/assets/dead/src/01-r9", "users/u/assets/dead/index-r9.jsix",
		"users/u/assets/" + gone.ID + "/src/00-" + gone.Rev,
		"users/u/assets/" + kept.ID + "/index-old.jsix",
	}
	for _, k := range orphans {
		put(k)
	}
	list := func() []string {
		objs, err := st.List(ctx, "users/u/assets/")
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, o := range objs {
			keys = append(keys, o.Key)
		}
		return keys
	}
	before := list()

	// Within the grace period nothing goes.
	rep, err := lib.GC(ctx, time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Orphans) != 0 || rep.Young != len(orphans) {
		t.Fatalf("GC within the grace period: %d orphans, %d young; want 0 and %d", len(rep.Orphans), rep.Young, len(orphans))
	}
	// A dry run finds them and removes nothing.
	rep, err = lib.GC(ctx, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(rep.Orphans)
	want := slices.Sorted(slices.Values(orphans))
	if !slices.Equal(rep.Orphans, want) {
		t.Fatalf("orphans %v, want %v", rep.Orphans, want)
	}
	if got := list(); !slices.Equal(got, before) {
		t.Fatal("a dry run removed objects")
	}
	// The real run removes exactly them.
	if _, err := lib.GC(ctx, 0, false); err != nil {
		t.Fatal(err)
	}
	after := list()
	for _, k := range before {
		if slices.Contains(orphans, k) == slices.Contains(after, k) {
			t.Errorf("%s: orphan %v, still there %v", k, slices.Contains(orphans, k), slices.Contains(after, k))
		}
	}
	// The committed asset still plays: its index loads.
	a, err := lib.Asset(ctx, "u", kept.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lib.Index(ctx, a); err != nil {
		t.Fatalf("index of the kept asset after GC: %v", err)
	}
	if !slices.Contains(after, "users/u/assets/"+gone.ID+"/deleted") {
		t.Error("the tombstone of the deleted asset was removed")
	}
}
