package proc

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log")
	if err := os.WriteFile(path, []byte("first line\nsecond line\nthird line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		path  string
		start int64
		n     int
		want  string
	}{
		{"whole file", path, 0, 1 << 10, "first line\nsecond line\nthird line"},
		{"cut at a line", path, 0, 15, "third line"},
		{"cut within the last line", path, 0, 5, "line"},
		{"from an offset", path, 11, 1 << 10, "second line\nthird line"},
		{"from an offset, cut", path, 11, 12, "third line"},
		{"offset at the end", path, 34, 1 << 10, ""},
		{"missing file", filepath.Join(dir, "nope"), 0, 10, "(no log: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tail(tc.path, tc.start, tc.n)
			if strings.HasSuffix(tc.want, ": ") {
				if !strings.HasPrefix(got, tc.want) {
					t.Errorf("tail = %q, want it to start with %q", got, tc.want)
				}
				return
			}
			if got != tc.want {
				t.Errorf("tail = %q, want %q", got, tc.want)
			}
		})
	}
	if got := Tail(path, 15); got != "third line" {
		t.Errorf("Tail = %q, want the last line", got)
	}
}

func TestFreePorts(t *testing.T) {
	ports, err := FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("ports %v: want three distinct ports", ports)
		}
		seen[p] = true
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		l.Close()
	}
	if p, err := FreePort(); err != nil || p <= 0 {
		t.Fatalf("FreePort = %d, %v", p, err)
	}
}

func TestWithFreePorts(t *testing.T) {
	errOther := errors.New("other failure")
	inUse := fmt.Errorf("bind: %w", ErrAddrInUse)
	for _, tc := range []struct {
		name      string
		results   []error // of the calls of start, in turn; the last repeats
		wantCalls int
		wantErr   error
	}{
		{"first try", []error{nil}, 1, nil},
		{"port taken twice", []error{inUse, inUse, nil}, 3, nil},
		{"other error", []error{errOther}, 1, errOther},
		{"taken then other error", []error{inUse, errOther}, 2, errOther},
		{"always taken", []error{inUse}, portAttempts, ErrAddrInUse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := WithFreePorts(2, func(ports []int) error {
				if len(ports) != 2 || ports[0] == ports[1] {
					t.Errorf("ports %v, want two distinct ones", ports)
				}
				r := tc.results[min(calls, len(tc.results)-1)]
				calls++
				return r
			})
			if calls != tc.wantCalls {
				t.Errorf("%d calls, want %d", calls, tc.wantCalls)
			}
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestGetOK(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			fmt.Fprint(w, "fine")
		case "/starting":
			http.Error(w, "Server not initialized yet", http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		path    string
		wantErr string // "" for none
	}{
		{"/ok", ""},
		{"/starting", "503 Service Unavailable: Server not initialized yet"},
		{"/missing", "404 Not Found"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			err := GetOK(t.Context(), srv.Client(), srv.URL+tc.path)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("GetOK: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.HasSuffix(err.Error(), tc.wantErr)):
				t.Errorf("GetOK = %v, want an error ending in %q", err, tc.wantErr)
			}
		})
	}
}

func TestPermanent(t *testing.T) {
	if Permanent(nil) != nil {
		t.Error("Permanent(nil) is not nil")
	}
	base := errors.New("another server")
	err := Permanent(base)
	if !errors.Is(err, base) || err.Error() != base.Error() {
		t.Errorf("Permanent(%v) = %v: want it to wrap and read as the error", base, err)
	}
}
