package server_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/delivery"
	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/outputs"
	"github.com/jitstream/jitstream/internal/server"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/httpt"
	"github.com/jitstream/jitstream/internal/testutil/jitserver"
)

// hardened starts a server over e's library as `jitstream serve` does (the
// http.Server settings of package server, the handler under Harden with
// l), after cfg has changed the http.Server (to shorten timeouts), with an
// 8 KiB socket send buffer so that a client that stops reading blocks the
// server soon. It returns the server's address.
func hardened(t *testing.T, e *jitserver.Env, opt server.Options, l server.Limits, cfg func(*http.Server)) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(server.Harden(server.New(outputs.New(e.Library, 0), opt), l))
	srv.Config.ReadHeaderTimeout = server.ReadHeaderTimeout
	srv.Config.ReadTimeout = server.ReadTimeout
	srv.Config.IdleTimeout = server.IdleTimeout
	srv.Config.MaxHeaderBytes = server.MaxHeaderBytes
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if tc, ok := c.(*net.TCPConn); ok && s == http.StateNew {
			tc.SetWriteBuffer(8 << 10)
		}
	}
	if cfg != nil {
		cfg(srv.Config)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// closedWithin reads c until it ends and fails unless that happens within
// d; it returns the bytes read.
func closedWithin(t *testing.T, c net.Conn, r io.Reader, d time.Duration) int64 {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	n, err := io.Copy(io.Discard, r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v (%d bytes read)", d, n)
	}
	return n
}

// TestStalledDownloadIsDropped: a client that stops reading a download is
// disconnected once the write idle timeout passes, and its delivery
// session ends as the client's going away.
func TestStalledDownloadIsDropped(t *testing.T) {
	const idle = 300 * time.Millisecond
	e := jitserver.New(t)
	a := jitserver.Ingest[asset](t, e, fixtures.H264AAC(t))
	d, err := delivery.New(delivery.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	addr := hardened(t, e, server.Options{Delivery: d}, server.Limits{WriteIdleTimeout: idle}, nil)
	file := "/files/" + jitserver.User + "/" + a.ID + ".mp4"
	_, whole := e.Get(t, file)

	c := httpt.DialRecvBuffer(t, addr, 4<<10)
	start := time.Now()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", file)
	br := bufio.NewReaderSize(c, 256)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("status line %q, %v", line, err)
	}
	// Stop reading; the session ends once the server gives up.
	base := "http://" + addr
	for {
		fams := scrape(t, base)
		ended, _ := metric(fams, "jitstream_delivery_sessions_ended_total", "kind", "progressive", "end", "client_gone")
		active, _ := metric(fams, "jitstream_delivery_active_sessions")
		if ended == 1 && active == 0 {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("after %v: %v sessions ended as client_gone, %v active", time.Since(start), ended, active)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if took := time.Since(start); took < idle {
		t.Errorf("session ended after %v, before the idle timeout %v", took, idle)
	} else {
		t.Logf("session ended after %v", took)
	}
	if n := closedWithin(t, c, br, 5*time.Second); n >= int64(len(whole)) {
		t.Errorf("read %d bytes of a %d-byte file from a connection dropped early", n, len(whole))
	}
}

// TestLongTransfersOutliveReadTimeout: with http.Server.ReadTimeout far
// shorter than the transfers, a slowly read paced download and a slowly
// sent upload go through whole (net/http lifts the read deadline once a
// request's body is done; Harden reads bodies under an idle deadline
// instead of the whole-request one), while an upload that stalls longer
// than the body idle timeout is answered 408.
func TestLongTransfersOutliveReadTimeout(t *testing.T) {
	const readTimeout = 300 * time.Millisecond
	e := jitserver.New(t)
	a := jitserver.Ingest[asset](t, e, fixtures.H264AAC(t))
	// Under delivery control: a paced body checks the request's context
	// before each chunk, so a context cancelled by the read timeout would
	// cut the download.
	d, err := delivery.New(delivery.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	addr := hardened(t, e, server.Options{Delivery: d}, server.Limits{BodyIdleTimeout: readTimeout},
		func(s *http.Server) { s.ReadTimeout = readTimeout })
	base := "http://" + addr
	file := "/files/" + jitserver.User + "/" + a.ID + ".mp4"
	_, whole := e.Get(t, file)

	t.Run("download", func(t *testing.T) {
		start := time.Now()
		resp, err := http.Get(base + file)
		if err != nil {
			t.Fatal(err)
		}
		// About 4 KiB every 10 ms: several times the read timeout.
		body, err := io.ReadAll(httpt.SlowReader{R: resp.Body, Step: 4 << 10, Pause: 10 * time.Millisecond})
		resp.Body.Close()
		if err != nil || !bytes.Equal(body, whole) {
			t.Fatalf("read %d bytes of %d: %v", len(body), len(whole), err)
		}
		if took := time.Since(start); took < 2*readTimeout {
			t.Fatalf("download took %v; the test wants it to last longer than the read timeout", took)
		}
	})

	src, err := os.ReadFile(fixtures.H264AAC(t))
	if err != nil {
		t.Fatal(err)
	}
	upload := func(body io.Reader) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, base+"/api/v1/users/"+jitserver.User+"/assets?name=slow.mp4", body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "video/mp4")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, []byte(err.Error())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	t.Run("upload", func(t *testing.T) {
		start := time.Now()
		step := len(src)/20 + 1
		resp, b := upload(httpt.SlowReader{R: bytes.NewReader(src), Step: step, Pause: readTimeout / 5})
		if resp == nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("slow upload: %v %s", resp, b)
		}
		if took := time.Since(start); took < 2*readTimeout {
			t.Fatalf("upload took %v; the test wants it to last longer than the read timeout", took)
		}
	})
	t.Run("stalled upload", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			pw.Write(src[:1000])
			time.Sleep(5 * readTimeout)
			pw.Write(src[1000:])
			pw.Close()
		}()
		start := time.Now()
		resp, b := upload(pr)
		if resp == nil || resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("stalled upload: %v %s", resp, b)
		}
		if took := time.Since(start); took > 4*readTimeout {
			t.Errorf("stalled upload answered after %v", took)
		}
	})
}

// TestSlowlorisIsCut: a client that sends its header a byte at a time is
// disconnected once ReadHeaderTimeout passes.
func TestSlowlorisIsCut(t *testing.T) {
	const timeout = 300 * time.Millisecond
	e := jitserver.New(t)
	addr := hardened(t, e, server.Options{}, server.Limits{}, func(s *http.Server) { s.ReadHeaderTimeout = timeout })
	c := httpt.DialRecvBuffer(t, addr, 4<<10)
	start := time.Now()
	hdr := "GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: " + strings.Repeat("a", 200) + "\r\n\r\n"
	sent := 0
	for ; sent < len(hdr); sent++ {
		if _, err := c.Write([]byte{hdr[sent]}); err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
		if time.Since(start) > 5*time.Second {
			t.Fatal("still sending after 5 s")
		}
		// Stop writing once the server has closed (a read sees it).
		c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				break
			}
		}
	}
	took := time.Since(start)
	if sent >= len(hdr) {
		t.Fatalf("the whole header went out a byte at a time in %v", took)
	}
	if took < timeout || took > timeout+2*time.Second {
		t.Errorf("cut after %v, want about %v", took, timeout)
	}
	t.Logf("cut after %v and %d of %d header bytes", took, sent, len(hdr))
}

// TestRequestSizeLimits: over-long URL paths and queries get 414, an
// over-large header 431, and API bodies other than uploads are limited.
func TestRequestSizeLimits(t *testing.T) {
	e := jitserver.New(t)
	base := "http://" + hardened(t, e, server.Options{}, server.Limits{}, nil)
	get := func(path string, hdr ...string) int {
		t.Helper()
		resp, _ := httpt.Get(t, base+path, hdr...)
		return resp.StatusCode
	}
	long := strings.Repeat("x", server.MaxURLPath)
	for _, tc := range []struct {
		path string
		hdr  []string
		want int
	}{
		{"/files/" + jitserver.User + "/" + long[:server.MaxURLPath-100] + ".mp4", nil, http.StatusNotFound},
		{"/files/" + jitserver.User + "/" + long + ".mp4", nil, http.StatusRequestURITooLong},
		{"/files/" + jitserver.User + "/x.mp4?start=" + long, nil, http.StatusRequestURITooLong},
		{"/healthz", []string{"X-Big", strings.Repeat("y", server.MaxHeaderBytes+16<<10)}, http.StatusRequestHeaderFieldsTooLarge}, // net/http allows a few KiB more
		{"/healthz", []string{"X-Fine", strings.Repeat("y", server.MaxHeaderBytes/2)}, http.StatusOK},
	} {
		if got := get(tc.path, tc.hdr...); got != tc.want {
			t.Errorf("GET %.60s... (%d bytes, %d header bytes): %d, want %d", tc.path, len(tc.path), len(strings.Join(tc.hdr, "")), got, tc.want)
		}
	}
}

// TestHardenBodyLimits checks Harden's body limits on a handler that reads
// the body whole: API bodies other than uploads stop at MaxAPIBody;
// uploads and other paths are not limited.
func TestHardenBodyLimits(t *testing.T) {
	srv := httptest.NewServer(server.Harden(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		}
		fmt.Fprint(w, n)
	}), server.Limits{}))
	defer srv.Close()
	big := bytes.Repeat([]byte("z"), server.MaxAPIBody+1)
	for _, tc := range []struct {
		method, path string
		body         []byte
		want         int
	}{
		{"POST", "/api/v1/users/alice/assets/x/links", big, http.StatusRequestEntityTooLarge},
		{"POST", "/api/v1/users/alice/assets/x/links", big[:server.MaxAPIBody], http.StatusOK},
		{"PUT", "/api/v1/users/alice/settings", big, http.StatusRequestEntityTooLarge},
		{"POST", "/api/v1/users/alice/assets", big, http.StatusOK},   // an upload
		{"PUT", "/dav/alice/new.mp4", big, http.StatusOK},            // an upload
		{"POST", "/api/v1/users/alice/uploads/", big, http.StatusOK}, // tus: tusd's own limits
		{"PROPFIND", "/dav/alice/", big, http.StatusOK},              // WebDAV limits its own
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, bytes.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s with %d bytes: %d, want %d", tc.method, tc.path, len(tc.body), resp.StatusCode, tc.want)
		}
	}
}

// TestMultipartUploadLimits: a multipart upload of more files than an
// asset may have chapters, or of too many parts, is refused with 400.
func TestMultipartUploadLimits(t *testing.T) {
	e := jitserver.New(t)
	post := func(files, fields int) (int, string) {
		t.Helper()
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		for i := range fields {
			mw.WriteField(fmt.Sprintf("f%d", i), "x")
		}
		for i := range files {
			w, _ := mw.CreateFormFile("file", fmt.Sprintf("c%03d.mp4", i))
			w.Write([]byte("not media"))
		}
		mw.Close()
		resp, err := http.Post(e.URL+"/api/v1/users/"+jitserver.User+"/assets", mw.FormDataContentType(), &body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := post(library.MaxChapters+1, 0); status != http.StatusBadRequest || !strings.Contains(body, "too many chapters") {
		t.Errorf("%d files: %d %s", library.MaxChapters+1, status, body)
	}
	if status, body := post(1, 1000); status != http.StatusBadRequest || !strings.Contains(body, "parts in a multipart upload") {
		t.Errorf("1000 fields: %d %s", status, body)
	}
	// Within the limits, the files are looked at (and found not to be media).
	if status, body := post(2, 3); status != http.StatusUnprocessableEntity {
		t.Errorf("2 files: %d %s", status, body)
	}
}
