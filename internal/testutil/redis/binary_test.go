package redis

import (
	"strings"
	"testing"
)

func TestFindBinary(t *testing.T) {
	tests := []struct {
		name       string
		candidates []string
		wantErr    bool
	}{
		{"installed", binaryCandidates, false},
		{"missing", []string{"jitstream-no-such-redis-server", "/nonexistent/redis-server"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := findBinary(tt.candidates)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "make deps") {
					t.Fatalf("findBinary = %q, %v; want an error that mentions make deps", got, err)
				}
				return
			}
			if err != nil || got == "" {
				t.Fatalf("findBinary = %q, %v; redis-server must be installed (make deps)", got, err)
			}
		})
	}
}
