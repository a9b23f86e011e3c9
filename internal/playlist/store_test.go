package playlist

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/testutil/teststore"
)

func TestStore(t *testing.T) {
	ts := teststore.New(t)
	t.Logf("store: %s", ts)
	ps := NewStore(ts.Store)
	ctx := t.Context()
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	mk := func(user, id, title string) *Playlist {
		return &Playlist{ID: id, User: user, Title: title, Created: created, Entries: []Entry{
			{Asset: "movie", Start: 1.5, Rules: &Rules{NoSeek: true}},
			{Ad: &AdSlot{Position: MidRoll, At: 30, Pools: []Pool{{When: Targeting{Country: []string{"DE"}, Hours: &HourRange{22, 6}}, Ads: refs("ad-a")}}}},
		}}
	}

	// Ids sorted as ids, not as keys ("a-b.json" < "a.json").
	for _, id := range []string{"b", "a-b", "a", "Z"} {
		if err := ps.Put(ctx, mk("alice", id, "first "+id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := ps.Put(ctx, mk("bob", "a", "bob's")); err != nil {
		t.Fatal(err)
	}

	got, err := ps.Get(ctx, "alice", "a")
	if err != nil {
		t.Fatal(err)
	}
	if want := mk("alice", "a", "first a"); !reflect.DeepEqual(got, want) {
		t.Errorf("Get = %+v, want %+v", got, want)
	}

	// Put replaces.
	if err := ps.Put(ctx, mk("alice", "a", "second")); err != nil {
		t.Fatal(err)
	}
	if got, err := ps.Get(ctx, "alice", "a"); err != nil || got.Title != "second" {
		t.Errorf("after replacing: %+v, %v", got, err)
	}

	list, err := ps.List(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range list {
		ids = append(ids, p.ID)
		if p.User != "alice" {
			t.Errorf("listed %s/%s", p.User, p.ID)
		}
	}
	if want := []string{"Z", "a", "a-b", "b"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("List = %q, want %q", ids, want)
	}
	if list, err := ps.List(ctx, "nobody"); err != nil || len(list) != 0 {
		t.Errorf("List of an unknown user: %v, %v", list, err)
	}

	// Delete.
	if err := ps.Delete(ctx, "alice", "a-b"); err != nil {
		t.Fatal(err)
	}
	if _, err := ps.Get(ctx, "alice", "a-b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete: %v", err)
	}
	if err := ps.Delete(ctx, "alice", "a-b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete again: %v", err)
	}
	if _, err := ps.Get(ctx, "bob", "a"); err != nil {
		t.Errorf("bob's playlist after alice's deletes: %v", err)
	}
	if list, err := ps.List(ctx, "alice"); err != nil || len(list) != 3 {
		t.Errorf("List after Delete: %d playlists, %v", len(list), err)
	}

	// The object is where the layout says, and its JSON parses strictly.
	rc, err := ts.Store.Get(ctx, "users/alice/playlists/b.json", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if p, err := Parse(strings.NewReader(string(b)), int64(len(b))); err != nil || p.Title != "first b" {
		t.Errorf("stored JSON %s: %+v, %v", b, p, err)
	}
	if left := ts.Leftovers(t); len(left) != 0 {
		t.Errorf("leftovers: %q", left)
	}
}

func TestStoreErrors(t *testing.T) {
	ts := teststore.New(t)
	ps := NewStore(ts.Store)
	ctx := t.Context()
	valid := func() *Playlist { return pl("p", asset("a")) }
	for _, tc := range []struct {
		name string
		err  error
		want error
		msg  string
	}{
		{"get missing", func() error { _, err := ps.Get(ctx, "alice", "nope"); return err }(), ErrNotFound, "playlist not found: alice/nope"},
		{"delete missing", ps.Delete(ctx, "alice", "nope"), ErrNotFound, "alice/nope"},
		{"get bad id", func() error { _, err := ps.Get(ctx, "alice", "../x"); return err }(), ErrInvalid, `id: "../x" is not a playlist id`},
		{"get no id", func() error { _, err := ps.Get(ctx, "alice", ""); return err }(), ErrInvalid, "id: missing"},
		{"get bad user", func() error { _, err := ps.Get(ctx, "a/b", "p"); return err }(), ErrInvalid, `user: "a/b" is not a user name`},
		{"list bad user", func() error { _, err := ps.List(ctx, ".."); return err }(), ErrInvalid, `user: ".."`},
		{"delete bad id", ps.Delete(ctx, "alice", "a.json"), ErrInvalid, `id: "a.json"`},
		{"put no id", ps.Put(ctx, &Playlist{User: "alice", Entries: []Entry{asset("a")}}), ErrInvalid, "id: missing"},
		{"put no user", ps.Put(ctx, &Playlist{ID: "p", Entries: []Entry{asset("a")}}), ErrInvalid, "user: missing"},
		{"put bad user", ps.Put(ctx, &Playlist{ID: "p", User: "_x", Entries: []Entry{asset("a")}}), ErrInvalid, `user: "_x"`},
		{"put invalid", ps.Put(ctx, &Playlist{ID: "p", User: "alice"}), ErrInvalid, "entries: none"},
		{"put valid", ps.Put(ctx, valid()), nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == nil {
				if tc.err != nil {
					t.Fatal(tc.err)
				}
				return
			}
			if !errors.Is(tc.err, tc.want) || !strings.Contains(tc.err.Error(), tc.msg) {
				t.Errorf("error %v, want %v containing %q", tc.err, tc.want, tc.msg)
			}
		})
	}
	// Nothing was stored but the valid one.
	infos, err := ts.Store.List(ctx, "users/")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].Key != "users/alice/playlists/p.json" {
		t.Errorf("stored %+v", infos)
	}
}

func TestStoreListSkipsOthers(t *testing.T) {
	// Objects under the prefix that are not playlists are left out.
	ts := teststore.New(t)
	ps := NewStore(ts.Store)
	ctx := t.Context()
	if err := ps.Put(ctx, pl("p", asset("a"))); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"users/alice/playlists/notes.txt", "users/alice/playlists/sub/q.json", "users/alice/playlists/_x.json"} {
		if _, err := ts.Store.Put(ctx, key, strings.NewReader("{}")); err != nil {
			t.Fatal(err)
		}
	}
	list, err := ps.List(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != "p" {
		t.Errorf("List = %+v", list)
	}
	// A stored object naming another playlist than its key is an error.
	if _, err := ts.Store.Put(ctx, "users/alice/playlists/q.json", strings.NewReader(`{"id": "p", "user": "alice"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := ps.Get(ctx, "alice", "q"); err == nil || !strings.Contains(err.Error(), "holds playlist alice/p") {
		t.Errorf("Get of a misplaced playlist: %v", err)
	}
}
