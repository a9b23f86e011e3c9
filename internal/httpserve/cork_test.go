//go:build linux

package httpserve

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"

	"github.com/jitstream/jitstream/internal/vfile"
)

// corked reports whether TCP_CORK is set on c.
func corked(t *testing.T, c *net.TCPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		v, serr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK)
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	return v != 0
}

// corkProbe is a ResponseWriter that notes whether the connection was
// corked at each body write.
type corkProbe struct {
	http.ResponseWriter
	t      *testing.T
	c      *net.TCPConn
	writes []bool
}

func (p *corkProbe) Write(b []byte) (int, error) {
	p.writes = append(p.writes, corked(p.t, p.c))
	return p.ResponseWriter.Write(b)
}

func (p *corkProbe) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// TestCork: small unpaced bodies are written on a corked connection, which
// is uncorked when the response is done; other bodies are not corked; and
// the client gets the same bytes either way.
func TestCork(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int
		paced bool
		cork  bool
	}{
		{"1 KiB: one write anyway", 1 << 10, false, false},
		{"20 KiB", 20 << 10, false, true},
		{"64 KiB", 64 << 10, false, true},
		{"200 KiB", 200 << 10, false, false},
		{"20 KiB paced", 20 << 10, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := bytes.Repeat([]byte("0123456789abcdef"), tc.size/16)
			f := vfile.New("f", "text/plain", modTime, `"x"`, []vfile.Piece{vfile.Bytes(data[:tc.size/2]), vfile.Bytes(data[tc.size/2:])})
			o := Options{}
			if tc.paced {
				o.Pacer = enderPacer{size: 1 << 20, ended: make(chan bodyEnd, 1)}
			}
			type seen struct {
				writes []bool
				after  bool
			}
			got := make(chan seen, 1)
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c := r.Context().Value(connKey{}).(*net.TCPConn)
				p := &corkProbe{ResponseWriter: w, t: t, c: c}
				ServeFileWith(p, r, nil, f, o)
				got <- seen{p.writes, corked(t, c)}
			}))
			srv.Config.ConnContext = WithConn
			srv.Start()
			defer srv.Close()
			resp, err := srv.Client().Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || !bytes.Equal(body, data) {
				t.Fatalf("body of %d bytes (want %d), %v", len(body), len(data), err)
			}
			s := <-got
			if len(s.writes) == 0 {
				t.Fatal("no body write")
			}
			for i, c := range s.writes {
				if c != tc.cork {
					t.Errorf("write %d: corked %v, want %v", i, c, tc.cork)
				}
			}
			if s.after {
				t.Error("the connection is still corked after the response")
			}
		})
	}
}
