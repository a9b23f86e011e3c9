package library

import (
	"regexp"
	"strings"
	"testing"
)

// nameSpec is the specification validName implements without a regexp.
var nameSpec = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"demo", true},
		{"a", true},
		{"Z9_-x", true},
		{"0abc", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{"_a", false},
		{"-a", false},
		{"a.b", false},
		{"a/b", false},
		{"..", false},
		{"a b", false},
		{"é", false},
		{"a\x00", false},
	} {
		if got := validName(tc.s); got != tc.want || got != nameSpec.MatchString(tc.s) {
			t.Errorf("validName(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}

func FuzzValidName(f *testing.F) {
	for _, s := range []string{"demo", "_x", "a-b_c", "", "a/b", strings.Repeat("z", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validName(s), nameSpec.MatchString(s); got != want {
			t.Fatalf("validName(%q) = %v, the regexp says %v", s, got, want)
		}
	})
}

func TestImmutableKey(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want bool
	}{
		{"users/alice/assets/a1/src/00-r1", true},
		{"users/alice/assets/a1/src/stream0-e1-00000003", true}, // a live stream's fragment of epoch 1
		{"users/alice/assets/a1/src/stream0-e1-init", true},
		{"users/alice/assets/a1/index-r1.jsix", true},
		{"users/alice/assets/a1/meta.json", false},
		{"users/alice/assets/a1/deleted", false},
		{"users/alice/user.json", false},
		{"users/alice/tokens/t1.json", false},
		{"users/alice/assets/a1/src/00-r1/x", false},
		{"users/alice/assets/a1/index-r1.json", false},
		{"other/alice/assets/a1/src/00-r1", false},
		{"users/alice/files/a1/src/00-r1", false},
	} {
		if got := ImmutableKey(tc.key); got != tc.want {
			t.Errorf("ImmutableKey(%q) = %v, want %v", tc.key, got, tc.want)
		}
	}
}
