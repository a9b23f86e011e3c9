package library_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/teststore"
)

// TestReserve: ids come from the name as Ingest makes them, are never given
// twice (reserved, committed or with objects), and only to known users.
func TestReserve(t *testing.T) {
	ctx := context.Background()
	st := teststore.New(t).Store
	lib := library.New(st, library.Options{})
	if err := lib.AddUser(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, "users/u/assets/taken/src/x", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		user, name string
		want       string // id; "" for an error
		err        error
	}{
		{"u", "show", "show", nil},
		{"u", "show", "show-2", nil}, // reserved by the first
		{"u", "My Show.mp4", "My_Show", nil},
		{"u", "taken", "taken-2", nil}, // has an object
		{"u", "", "asset", nil},
		{"nobody", "show", "", library.ErrUnknownUser},
		{"bad/user", "show", "", library.ErrUnknownUser},
	}
	revs := map[string]bool{}
	for _, tc := range tests {
		id, rev, err := lib.Reserve(ctx, tc.user, tc.name)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("Reserve(%q, %q) = %q, %v; want %v", tc.user, tc.name, id, err, tc.err)
			}
			continue
		}
		if err != nil || id != tc.want || rev == "" || revs[rev] {
			t.Errorf("Reserve(%q, %q) = %q, %q, %v; want %q and a new revision", tc.user, tc.name, id, rev, err, tc.want)
		}
		revs[rev] = true
	}
}

// stored puts the file at path as the asset's original key and returns its
// chapter and index.
func stored(t *testing.T, st store.Store, key, path string) (library.Chapter, *media.Index) {
	t.Helper()
	ctx := context.Background()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := st.Put(ctx, key, f)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := media.Parse(ctx, []media.Source{{Object: key, Name: "clip.mp4", Size: info.Size, R: store.NewReaderAt(ctx, st, key, info.Size)}})
	if err != nil {
		t.Fatal(err)
	}
	return library.Chapter{Name: "clip.mp4", Object: key, Size: info.Size}, ix
}

// TestCommit: a valid commit makes the asset visible with its index; an
// invalid one leaves no metadata and no index, and the originals to GC.
func TestCommit(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// change spoils the commit; nil commits a valid asset.
		change func(ix *media.Index, chaps []library.Chapter) (*media.Index, []library.Chapter)
		err    error
	}{
		{"valid", nil, nil},
		{"no index", func(ix *media.Index, c []library.Chapter) (*media.Index, []library.Chapter) { return nil, c }, library.ErrBadCommit},
		{"no chapters", func(ix *media.Index, c []library.Chapter) (*media.Index, []library.Chapter) { return ix, nil }, library.ErrBadCommit},
		{"other object", func(ix *media.Index, c []library.Chapter) (*media.Index, []library.Chapter) {
			c[0].Object += "x"
			return ix, c
		}, library.ErrBadCommit},
		{"outside the asset", func(ix *media.Index, c []library.Chapter) (*media.Index, []library.Chapter) {
			c[0].Object = "users/u/other"
			ix.Chapters[0].Object = c[0].Object
			return ix, c
		}, library.ErrBadCommit},
		{"invalid index", func(ix *media.Index, c []library.Chapter) (*media.Index, []library.Chapter) {
			ix.Tracks[0].Samples.Offset[0] = c[0].Size // outside the original
			return ix, c
		}, library.ErrBadCommit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := teststore.New(t).Store
			lib := library.New(st, library.Options{})
			if err := lib.AddUser(ctx, "u"); err != nil {
				t.Fatal(err)
			}
			id, rev, err := lib.Reserve(ctx, "u", "live")
			if err != nil {
				t.Fatal(err)
			}
			ch, ix := stored(t, st, "users/u/assets/"+id+"/src/video-00000001", fixtures.H264AAC(t))
			chaps := []library.Chapter{ch}
			if tc.change != nil {
				ix, chaps = tc.change(ix, chaps)
			}
			a, err := lib.Commit(ctx, "u", id, rev, "", ix, chaps)
			objs, lerr := st.List(ctx, "users/u/assets/"+id+"/")
			if lerr != nil {
				t.Fatal(lerr)
			}
			var keys []string
			for _, o := range objs {
				keys = append(keys, strings.TrimPrefix(o.Key, "users/u/assets/"+id+"/"))
			}
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Commit: %v, want %v", err, tc.err)
				}
				if !slices.Equal(keys, []string{"src/video-00000001"}) {
					t.Errorf("after a failed commit the asset has %v, want its original only", keys)
				}
				if _, err := lib.Asset(ctx, "u", id); !errors.Is(err, library.ErrUnknownAsset) {
					t.Errorf("Asset after a failed commit: %v, want ErrUnknownAsset", err)
				}
				// The original is an orphan for GC.
				rep, err := lib.GC(ctx, 0, true)
				if err != nil || !slices.Contains(rep.Orphans, "users/u/assets/"+id+"/src/video-00000001") {
					t.Errorf("GC: %v, %v: the original is not an orphan", rep, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.ID != id || a.Rev != rev || a.Title != id || len(a.Chapters) != 1 || a.Chapters[0] != ch {
				t.Errorf("asset %+v", a)
			}
			want := []string{"index-" + rev + ".jsix", "meta.json", "src/video-00000001"}
			if !slices.Equal(keys, want) {
				t.Errorf("asset objects %v, want %v", keys, want)
			}
			got, err := library.New(st, library.Options{}).Asset(ctx, "u", id) // not from a cache
			if err != nil {
				t.Fatal(err)
			}
			gix, err := lib.Index(ctx, got)
			if err != nil || gix.Tracks[0].Samples.Len() != ix.Tracks[0].Samples.Len() {
				t.Fatalf("index of the committed asset: %v", err)
			}
			if !library.ImmutableKey(ch.Object) || !library.ImmutableKey(got.Index) {
				t.Errorf("ImmutableKey refuses %s or %s", ch.Object, got.Index)
			}
			// The id stays taken.
			if id2, _, err := lib.Reserve(ctx, "u", "live"); err != nil || id2 == id {
				t.Errorf("Reserve after commit: %q, %v", id2, err)
			}
		})
	}
}
