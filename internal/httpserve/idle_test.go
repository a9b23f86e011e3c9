package httpserve

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/testutil/httpt"
	"github.com/jitstream/jitstream/internal/vfile"
)

// bodyEnd is how a body ended, as told to a BodyEnder.
type bodyEnd struct {
	err  error
	gone bool
}

// enderPacer lets chunks of at most size bytes through at once and reports
// the body's end on ended.
type enderPacer struct {
	size  int64
	ended chan bodyEnd
}

func (p enderPacer) Next(ctx context.Context, off, n int64) (int64, error) {
	return min(n, p.size), nil
}
func (p enderPacer) EndBody(err error, gone bool) { p.ended <- bodyEnd{err, gone} }

// smallBufferServer serves f from st with o, with a 16 KiB socket send
// buffer (no autotuning), so that a client that stops reading blocks the
// server's writes after little data. done receives when a handler returns.
func smallBufferServer(t *testing.T, st store.Store, f *vfile.File, o Options, done chan<- time.Time) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ServeFileWith(w, r, st, f, o)
		done <- time.Now()
	}))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if tc, ok := c.(*net.TCPConn); ok && s == http.StateNew {
			tc.SetWriteBuffer(16 << 10)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// stalledClient sends a GET for /f with a 16 KiB receive buffer, reads the
// status line and returns the connection, which it then leaves unread.
func stalledClient(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c := httpt.DialRecvBuffer(t, addr, 16<<10)
	if _, err := io.WriteString(c, "GET /f HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReaderSize(c, 512)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("status line %q, %v", line, err)
	}
	return c, br
}

// TestWriteIdleTimeoutDropsStalledClient: a client that stops reading is
// disconnected once the write idle timeout passes without progress, paced
// or not, from local files (sendfile) or other stores; the body ends as the
// client's going away, and the client gets a truncated body.
func TestWriteIdleTimeoutDropsStalledClient(t *testing.T) {
	const idle = 300 * time.Millisecond
	stores(t, func(t *testing.T, fx *fixture, st store.Store) {
		for _, paced := range []bool{false, true} {
			name := "unpaced"
			if paced {
				name = "paced"
			}
			t.Run(name, func(t *testing.T) {
				o := Options{WriteIdleTimeout: idle}
				ended := make(chan bodyEnd, 1)
				if paced {
					o.Pacer = enderPacer{size: 64 << 10, ended: ended}
				}
				done := make(chan time.Time, 1)
				srv := smallBufferServer(t, st, fx.file, o, done)
				start := time.Now()
				c, br := stalledClient(t, srv.Listener.Addr().String())
				var returned time.Time
				select {
				case returned = <-done:
				case <-time.After(10 * time.Second):
					t.Fatal("the handler still writes to a client that stopped reading")
				}
				if d := returned.Sub(start); d < idle {
					t.Errorf("handler returned after %v, before the idle timeout %v", d, idle)
				}
				t.Logf("handler returned after %v", returned.Sub(start))
				if paced {
					e := <-ended
					if !e.gone || !errors.Is(e.err, os.ErrDeadlineExceeded) {
						t.Errorf("body ended with %v, client gone %v; want a deadline, client gone", e.err, e.gone)
					}
				}
				// The connection is closed: the client reads what was
				// buffered, then the end.
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, err := io.Copy(io.Discard, br)
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("connection still open after %d more bytes", n)
				}
				if n >= int64(len(fx.want)) {
					t.Errorf("got %d body bytes of %d: want a truncated body", n, len(fx.want))
				}
			})
		}
	})
}

// TestWriteIdleTimeoutKeepsSlowClients: a response that lasts far longer
// than the idle timeout goes through whole as long as the client keeps
// reading (a slow reader), and pacing waits do not count (a paced body);
// the deadline does not outlive the response on a kept-alive connection.
func TestWriteIdleTimeoutKeepsSlowClients(t *testing.T) {
	const idle = 150 * time.Millisecond
	stores(t, func(t *testing.T, fx *fixture, st store.Store) {
		t.Run("slow reader", func(t *testing.T) {
			done := make(chan time.Time, 4)
			srv := smallBufferServer(t, st, fx.file, Options{WriteIdleTimeout: idle}, done)
			start := time.Now()
			resp, err := srv.Client().Get(srv.URL + "/f")
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(httpt.SlowReader{R: resp.Body, Step: 64 << 10, Pause: 5 * time.Millisecond})
			resp.Body.Close()
			if err != nil || !bytes.Equal(body, fx.want) {
				t.Fatalf("body of %d bytes (want %d), %v", len(body), len(fx.want), err)
			}
			t.Logf("the slow read took %v", time.Since(start))
			// Same connection, after more than the idle timeout.
			time.Sleep(2 * idle)
			res := do(t, srv, "GET")
			res.check(t, 200)
			if !bytes.Equal(res.body, fx.want) {
				t.Fatal("second body differs")
			}
		})
		t.Run("paced", func(t *testing.T) {
			p := sleepyPacer{size: 512 << 10, interval: idle / 2}
			start := time.Now()
			res := do(t, newServer(t, st, fx.file, Options{WriteIdleTimeout: idle, Pacer: p}), "GET")
			res.check(t, 200)
			if !bytes.Equal(res.body, fx.want) {
				t.Fatal("body differs")
			}
			if d := time.Since(start); d < 2*idle {
				t.Errorf("paced body took %v, want more than %v", d, 2*idle)
			}
		})
	})
}

// deadlineLog records write deadlines, as durations from when they were set.
type deadlineLog struct{ ds []time.Duration }

func (d *deadlineLog) SetWriteDeadline(t time.Time) error {
	d.ds = append(d.ds, time.Until(t))
	return nil
}

// countingWriter records the sizes of writes and ReadFroms, and the
// readers ReadFrom was handed.
type countingWriter struct {
	sizes   []int64
	readers []io.Reader // what each ReadFrom was handed: the reader, or its R if an *io.LimitedReader
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.sizes = append(c.sizes, int64(len(p)))
	return len(p), nil
}

func (c *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	if lr, ok := r.(*io.LimitedReader); ok {
		c.readers = append(c.readers, lr.R)
	} else {
		c.readers = append(c.readers, r)
	}
	n, err := io.Copy(io.Discard, r)
	c.sizes = append(c.sizes, n)
	return n, err
}

// TestIdleWriterChunks: writes and ReadFroms are cut into chunks of at most
// MaxWrite bytes, each after its own deadline of the idle timeout per
// WriteChunk bytes begun, and a ReadFrom of an
// *io.LimitedReader over a file hands on *io.LimitedReaders over the same
// file (which is what net/http sends with sendfile).
func TestIdleWriterChunks(t *testing.T) {
	cw := &countingWriter{}
	dl := &deadlineLog{}
	w := newIdleWriter(cw, dl, time.Second)
	n, err := w.Write(make([]byte, 2*MaxWrite+5))
	if err != nil || n != 2*MaxWrite+5 {
		t.Fatalf("Write = %d, %v", n, err)
	}
	f, err := os.CreateTemp(t.TempDir(), "f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, 3*MaxWrite)); err != nil {
		t.Fatal(err)
	}
	f.Seek(0, io.SeekStart)
	rf := w.(io.ReaderFrom)
	lr := &io.LimitedReader{R: f, N: 2*MaxWrite + 7}
	m, err := rf.ReadFrom(lr)
	if err != nil || m != 2*MaxWrite+7 || lr.N != 0 {
		t.Fatalf("ReadFrom = %d, %v (N left %d)", m, err, lr.N)
	}
	want := []int64{MaxWrite, MaxWrite, 5, MaxWrite, MaxWrite, 7}
	if len(cw.sizes) != len(want) {
		t.Fatalf("writes %v, want %v", cw.sizes, want)
	}
	for i := range want {
		if cw.sizes[i] != want[i] {
			t.Fatalf("writes %v, want %v", cw.sizes, want)
		}
	}
	if len(dl.ds) != len(want) {
		t.Fatalf("%d deadlines set for %d writes", len(dl.ds), len(want))
	}
	for i, d := range dl.ds {
		// A second per 64 KiB begun, less the time since it was set.
		chunks := (want[i] + WriteChunk - 1) / WriteChunk
		if wantD := time.Duration(chunks) * time.Second; d > wantD || d < wantD-time.Second/2 {
			t.Errorf("write %d of %d bytes had a deadline %v ahead, want %v", i, want[i], d, wantD)
		}
	}
	for _, r := range cw.readers {
		if r != f {
			t.Fatalf("ReadFrom was handed %T, want an *io.LimitedReader over the file", r)
		}
	}
	// A short source ends the copy.
	lr = &io.LimitedReader{R: f, N: 10 * MaxWrite}
	if m, err := rf.ReadFrom(lr); err != nil || m != 3*MaxWrite-(2*MaxWrite+7) {
		t.Fatalf("ReadFrom to EOF = %d, %v", m, err)
	}

	// A writer without deadlines (httptest.ResponseRecorder) is written
	// to all the same.
	rec := httptest.NewRecorder()
	w = newIdleWriter(rec, http.NewResponseController(rec), time.Second)
	if n, err := w.Write([]byte("abc")); n != 3 || err != nil || rec.Body.String() != "abc" {
		t.Fatalf("Write to a recorder = %d, %v", n, err)
	}
}
