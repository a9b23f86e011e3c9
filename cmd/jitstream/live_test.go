package main

import (
	"context"
	"strings"
	"testing"

	"github.com/jitstream/jitstream/internal/auth"
	"github.com/jitstream/jitstream/internal/live"
	"github.com/jitstream/jitstream/internal/store"
)

// TestCLILiveKey: the printed key is the stream key the server checks.
func TestCLILiveKey(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := runCLI(t, "users", "--store", dir, "add", "bob"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args    []string
		wantErr bool
	}{
		{[]string{"live", "--store", dir, "key", "--user", "bob", "--name", "cam1", "--base", "http://h:1/"}, false},
		{[]string{"live", "--store", dir, "key", "--user", "nobody", "--name", "cam1"}, true},
		{[]string{"live", "--store", dir, "key", "--user", "bob", "--name", "bad name"}, true},
		{[]string{"live", "--store", dir, "key", "--user", "bob"}, true},
		{[]string{"live", "--store", dir, "--user", "bob", "--name", "cam1"}, true},
	}
	for _, tc := range tests {
		out, _, err := runCLI(t, tc.args...)
		if (err != nil) != tc.wantErr {
			t.Errorf("%v: err %v, want error %v", tc.args, err, tc.wantErr)
		}
		if err != nil {
			continue
		}
		st, err := store.NewFS(dir)
		if err != nil {
			t.Fatal(err)
		}
		secret, err := auth.LoadSecret(context.Background(), st, nil)
		if err != nil {
			t.Fatal(err)
		}
		key := live.Key(secret, "bob", "cam1")
		want := "key: " + key + "\nurl: http://h:1/live/bob/" + key + "/stream.mpd\n"
		if out != want {
			t.Errorf("%v printed %q, want %q", tc.args, out, want)
		}
		if name, ok := live.ParseKey(secret, "bob", strings.TrimSpace(strings.TrimPrefix(strings.Split(out, "\n")[0], "key:"))); !ok || name != "cam1" {
			t.Errorf("the printed key does not parse: %q %v", name, ok)
		}
	}
}
