package httpserve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/spool"
	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/vfile"
)

// getOnly hides the FileOpener of a store, forcing the Get path.
type getOnly struct{ store.Store }

// countingFS counts OpenFile calls.
type countingFS struct {
	*store.FS
	opens atomic.Int64
}

func (c *countingFS) OpenFile(ctx context.Context, key string) (*os.File, error) {
	c.opens.Add(1)
	return c.FS.OpenFile(ctx, key)
}

// fixture is a ~3 MB virtual file mixing generated pieces and ranges of two
// stored objects, and its expected bytes.
type fixture struct {
	fs   *store.FS
	file *vfile.File
	want []byte
}

var modTime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	fs, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	objs := map[string][]byte{
		"media/a/source.mp4": randBytes(r, 2_000_000),
		"media/b/source.mp4": randBytes(r, 1_500_000),
	}
	for k, v := range objs {
		if _, err := fs.Put(context.Background(), k, bytes.NewReader(v)); err != nil {
			t.Fatal(err)
		}
	}
	var b vfile.Builder
	var want []byte
	gen := func(n int) {
		d := randBytes(r, n)
		b.Add(d)
		want = append(want, d...)
	}
	stored := func(obj string, off, n int64) {
		b.AddStored(obj, off, n)
		want = append(want, objs[obj][off:off+n]...)
	}
	const A, B = "media/a/source.mp4", "media/b/source.mp4"
	gen(1000)
	stored(A, 100, 600_000)
	gen(17)
	stored(B, 0, 700_000)
	stored(A, 600_100, 900_000)
	gen(4096)
	stored(B, 700_000, 700_000)
	gen(1)
	stored(A, 1_500_100, 499_900)
	stored(B, 5, 3) // a tiny piece, after a large one of the same object
	gen(300)
	f := b.File("test.mp4", "video/mp4", modTime, vfile.ETag("test"))
	if f.Size != int64(len(want)) {
		t.Fatalf("size %d, want %d", f.Size, len(want))
	}
	return &fixture{fs: fs, file: f, want: want}
}

func newServer(t testing.TB, st store.Store, f *vfile.File, o Options) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ServeFileWith(w, r, st, f, o)
	}))
	t.Cleanup(srv.Close)
	return srv
}

type result struct {
	resp *http.Response
	body []byte
	err  error // reading the body
}

func do(t testing.TB, srv *httptest.Server, method string, hdr ...string) result {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+"/f", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return result{resp, body, err}
}

func (r result) check(t *testing.T, status int) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("reading body: %v", r.err)
	}
	if r.resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %.200q", r.resp.StatusCode, status, r.body)
	}
	if r.resp.Request.Method != http.MethodHead && r.resp.ContentLength != int64(len(r.body)) {
		t.Fatalf("Content-Length %d, got %d bytes", r.resp.ContentLength, len(r.body))
	}
}

// stores runs fn with the FS store used directly (sendfile path) and behind
// getOnly (Get path).
func stores(t *testing.T, fn func(t *testing.T, fx *fixture, st store.Store)) {
	for _, mode := range []string{"fileopener", "get", "spooled"} {
		t.Run(mode, func(t *testing.T) {
			fx := newFixture(t)
			var st store.Store = fx.fs
			switch mode {
			case "get":
				st = getOnly{fx.fs}
			case "spooled":
				fx.file = spooled(t, fx.fs, fx.file)
			}
			fn(t, fx, st)
		})
	}
}

// spooled returns f with its stored pieces turned into pieces of spooled
// copies of their objects (vfile.Source), as streams keeps built files.
func spooled(t *testing.T, fs *store.FS, f *vfile.File) *vfile.File {
	t.Helper()
	sp, err := spool.New(t.TempDir())
	if err != nil {
		if errors.Is(err, errors.ErrUnsupported) && runtime.GOOS != "linux" {
			t.Skipf("no spool on this system: %v", err)
		}
		t.Fatal(err)
	}
	ctx := context.Background()
	srcs := map[string]*spool.File{}
	var ps []vfile.Piece
	for _, p := range f.Pieces {
		if !p.IsStored() {
			ps = append(ps, p)
			continue
		}
		src, ok := srcs[p.Object]
		if !ok {
			info, err := fs.Stat(ctx, p.Object)
			if err != nil {
				t.Fatal(err)
			}
			src, err = sp.Write(ctx, info.Size, func(w io.Writer) error {
				rc, err := fs.Get(ctx, p.Object, 0, info.Size)
				if err != nil {
					return err
				}
				defer rc.Close()
				_, err = io.Copy(w, rc)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			srcs[p.Object] = src
		}
		ps = append(ps, vfile.FromSource(src, p.Off, p.Len))
	}
	return vfile.New(f.Name, f.ContentType, f.ModTime, f.ETag, ps)
}

func TestFullAndHead(t *testing.T) {
	stores(t, func(t *testing.T, fx *fixture, st store.Store) {
		srv := newServer(t, st, fx.file, Options{CacheControl: "public, max-age=60"})
		get := do(t, srv, "GET")
		get.check(t, 200)
		if !bytes.Equal(get.body, fx.want) {
			t.Fatal("full body differs")
		}
		h := get.resp.Header
		for k, v := range map[string]string{
			"Content-Type":   "video/mp4",
			"Content-Length": strconv.Itoa(len(fx.want)),
			"Etag":           fx.file.ETag,
			"Last-Modified":  "Mon, 06 May 2024 07:08:09 GMT",
			"Accept-Ranges":  "bytes",
			"Cache-Control":  "public, max-age=60",
		} {
			if got := h.Get(k); got != v {
				t.Errorf("%s: %q, want %q", k, got, v)
			}
		}
		head := do(t, srv, "HEAD")
		head.check(t, 200)
		if len(head.body) != 0 {
			t.Fatalf("HEAD body of %d bytes", len(head.body))
		}
		for _, k := range []string{"Content-Type", "Content-Length", "Etag", "Last-Modified", "Accept-Ranges", "Cache-Control"} {
			if head.resp.Header.Get(k) != h.Get(k) {
				t.Errorf("HEAD %s: %q, GET has %q", k, head.resp.Header.Get(k), h.Get(k))
			}
		}
		// HEAD with a range mirrors the GET header.
		hr := do(t, srv, "HEAD", "Range", "bytes=10-19")
		hr.check(t, 206)
		if hr.resp.Header.Get("Content-Length") != "10" || hr.resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 10-19/%d", len(fx.want)) || len(hr.body) != 0 {
			t.Fatalf("HEAD range: %v, %d bytes", hr.resp.Header, len(hr.body))
		}
	})
}

func TestSingleRange(t *testing.T) {
	stores(t, func(t *testing.T, fx *fixture, st store.Store) {
		srv := newServer(t, st, fx.file, Options{})
		size := int64(len(fx.want))
		type tc struct {
			hdr        string
			start, end int64 // expected, end exclusive
		}
		tests := []tc{
			{"bytes=0-0", 0, 1},
			{"bytes=0-", 0, size},
			{"bytes=-1", size - 1, size},
			{fmt.Sprintf("bytes=%d-", size-1), size - 1, size},
			{fmt.Sprintf("bytes=%d-%d", size-1, size-1), size - 1, size},
			{"bytes=-500", size - 500, size},
			{"bytes=500-", 500, size},
			{"bytes=10-20", 10, 21},
			{"bytes=999-1000", 999, 1001},                   // generated | stored boundary
			{"bytes=600900-601200", 600900, 601201},         // across a generated piece
			{"bytes=1000-1000000", 1000, 1000001},           // several pieces
			{"bytes=100-99999999999", 100, size},            // clipped
			{"bytes=-99999999999", 0, size},                 // suffix longer than the file
			{"bytes=0-99999999999999999999999999", 0, size}, // saturating
			{"Bytes=5-9", 5, 10},                            // unit is case-insensitive
			{"bytes= 5-9 ,", 5, 10},                         // OWS and empty elements
			{"bytes=0-9,10-19", 0, 20},                      // adjacent: coalesced
			{"bytes=0-99,50-149,-10000000", 0, size},        // overlapping: coalesced
			{fmt.Sprintf("bytes=%d-,5-9", size), 5, 10},     // an unsatisfiable range is dropped
		}
		r := rand.New(rand.NewPCG(3, 4))
		for range 40 {
			a, b := r.Int64N(size), r.Int64N(size)
			if a > b {
				a, b = b, a
			}
			tests = append(tests, tc{fmt.Sprintf("bytes=%d-%d", a, b), a, b + 1})
		}
		for _, tt := range tests {
			res := do(t, srv, "GET", "Range", tt.hdr)
			res.check(t, 206)
			if got, want := res.resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-%d/%d", tt.start, tt.end-1, size); got != want {
				t.Errorf("%s: Content-Range %q, want %q", tt.hdr, got, want)
			}
			if !bytes.Equal(res.body, fx.want[tt.start:tt.end]) {
				t.Errorf("%s: body differs", tt.hdr)
			}
			if res.resp.Header.Get("Content-Type") != "video/mp4" {
				t.Errorf("%s: Content-Type %q", tt.hdr, res.resp.Header.Get("Content-Type"))
			}
		}
	})
}

func TestMultipartRanges(t *testing.T) {
	stores(t, func(t *testing.T, fx *fixture, st store.Store) {
		srv := newServer(t, st, fx.file, Options{})
		size := int64(len(fx.want))
		type rng struct{ start, end int64 }
		tests := []struct {
			hdr  string
			want []rng
		}{
			{"bytes=0-9,100-199,-10", []rng{{0, 10}, {100, 200}, {size - 10, size}}},
			{"bytes=-10,0-9", []rng{{size - 10, size}, {0, 10}}},                         // client order kept
			{"bytes=500-599,0-9,550-700", []rng{{0, 10}, {500, 701}}},                    // coalesced, sorted
			{"bytes=0-0,2-2,4-4,6-6,8-8", []rng{{0, 1}, {2, 3}, {4, 5}, {6, 7}, {8, 9}}}, // tiny parts
			{"bytes=1-1000000,1000002-", []rng{{1, 1000001}, {1000002, size}}},           // large parts
			{fmt.Sprintf("bytes=0-1,%d-", size+5), nil},                                  // one satisfiable: single
		}
		r := rand.New(rand.NewPCG(5, 6))
		for range 10 {
			var specs []string
			var want []rng
			off := int64(0)
			for range 1 + r.IntN(16) {
				a := off + 1 + r.Int64N(size/20)
				b := a + r.Int64N(size/20)
				if b >= size {
					break
				}
				specs = append(specs, fmt.Sprintf("%d-%d", a, b))
				want = append(want, rng{a, b + 1})
				off = b + 1
			}
			if len(want) > 1 {
				tests = append(tests, struct {
					hdr  string
					want []rng
				}{"bytes=" + strings.Join(specs, ","), want})
			}
		}
		for _, tt := range tests {
			res := do(t, srv, "GET", "Range", tt.hdr)
			res.check(t, 206)
			mt, params, err := mime.ParseMediaType(res.resp.Header.Get("Content-Type"))
			if tt.want == nil {
				if mt != "video/mp4" || !bytes.Equal(res.body, fx.want[0:2]) {
					t.Errorf("%s: got %s, %d bytes", tt.hdr, mt, len(res.body))
				}
				continue
			}
			if err != nil || mt != "multipart/byteranges" || params["boundary"] == "" {
				t.Fatalf("%s: Content-Type %q", tt.hdr, res.resp.Header.Get("Content-Type"))
			}
			mr := multipart.NewReader(bytes.NewReader(res.body), params["boundary"])
			for i := 0; ; i++ {
				p, err := mr.NextPart()
				if err == io.EOF {
					if i != len(tt.want) {
						t.Errorf("%s: %d parts, want %d", tt.hdr, i, len(tt.want))
					}
					break
				}
				if err != nil {
					t.Fatalf("%s: part %d: %v", tt.hdr, i, err)
				}
				if i >= len(tt.want) {
					t.Fatalf("%s: too many parts", tt.hdr)
				}
				w := tt.want[i]
				if got, want := p.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-%d/%d", w.start, w.end-1, size); got != want {
					t.Errorf("%s: part %d Content-Range %q, want %q", tt.hdr, i, got, want)
				}
				if p.Header.Get("Content-Type") != "video/mp4" {
					t.Errorf("%s: part %d Content-Type %q", tt.hdr, i, p.Header.Get("Content-Type"))
				}
				data, err := io.ReadAll(p)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(data, fx.want[w.start:w.end]) {
					t.Errorf("%s: part %d differs", tt.hdr, i)
				}
			}
			// The HEAD header announces the same length.
			head := do(t, srv, "HEAD", "Range", tt.hdr)
			if head.resp.ContentLength != int64(len(res.body)) {
				t.Errorf("%s: HEAD Content-Length %d, GET sent %d", tt.hdr, head.resp.ContentLength, len(res.body))
			}
		}
	})
}

func TestRangeNotServed(t *testing.T) {
	stores(t, func(t *testing.T, fx *fixture, st store.Store) {
		srv := newServer(t, st, fx.file, Options{})
		size := len(fx.want)
		var many []string
		for i := range 17 {
			many = append(many, fmt.Sprintf("%d-%d", i*10, i*10+1))
		}
		unsatisfiable := []string{
			fmt.Sprintf("bytes=%d-", size),
			fmt.Sprintf("bytes=%d-%d", size+10, size+20),
			"bytes=-0",
			fmt.Sprintf("bytes=%d-,%d-", size, size+5),
			"bytes=99999999999999999999-",
		}
		for _, hdr := range unsatisfiable {
			res := do(t, srv, "GET", "Range", hdr)
			res.check(t, 416)
			if got := res.resp.Header.Get("Content-Range"); got != fmt.Sprintf("bytes */%d", size) {
				t.Errorf("%s: Content-Range %q", hdr, got)
			}
			checkJSONError(t, res)
		}
		malformed := []string{"bytes=abc", "bytes=5-2", "bytes=", "bytes=,", "bytes=1-2-3",
			"bytes=-", "bytes=+1-2", "bytes=0x10-20", "bytes=1 -2", "bytes=0-1,5-2"}
		for _, hdr := range malformed {
			res := do(t, srv, "GET", "Range", hdr)
			res.check(t, 416)
			checkJSONError(t, res)
		}
		full := []string{
			"bytes=" + strings.Join(many, ","),                 // more than MaxRanges
			"bytes=" + strings.Repeat("0-0,", maxRangeSpecs+1), // coalesce to one, but too many range-specs
			"items=0-5", "bytes 0-5",
		}
		for _, hdr := range full {
			res := do(t, srv, "GET", "Range", hdr)
			res.check(t, 200)
			if !bytes.Equal(res.body, fx.want) || res.resp.Header.Get("Content-Range") != "" {
				t.Errorf("%s: not the full file", hdr)
			}
		}
		// A lower MaxRanges.
		srv2 := newServer(t, st, fx.file, Options{MaxRanges: 2})
		do(t, srv2, "GET", "Range", "bytes=0-1,5-6").check(t, 206)
		res := do(t, srv2, "GET", "Range", "bytes=0-1,5-6,10-11")
		res.check(t, 200)
		if !bytes.Equal(res.body, fx.want) {
			t.Error("MaxRanges 2: not the full file")
		}
	})
}

func checkJSONError(t *testing.T, res result) {
	t.Helper()
	if ct := res.resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if res.resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no nosniff")
	}
	var e struct {
		Error  *string `json:"error"`
		Detail *string `json:"detail"`
	}
	if err := json.Unmarshal(res.body, &e); err != nil || e.Error == nil || *e.Error == "" || e.Detail == nil {
		t.Errorf("error body %q: %v", res.body, err)
	}
}

func TestConditional(t *testing.T) {
	fx := newFixture(t)
	srv := newServer(t, fx.fs, fx.file, Options{CacheControl: "no-cache"})
	etag := fx.file.ETag
	date := func(d time.Duration) string { return modTime.Add(d).Format(http.TimeFormat) }
	tests := []struct {
		name   string
		method string
		hdr    []string
		status int
	}{
		{"inm match", "GET", []string{"If-None-Match", etag}, 304},
		{"inm match HEAD", "HEAD", []string{"If-None-Match", etag}, 304},
		{"inm weak", "GET", []string{"If-None-Match", "W/" + etag}, 304},
		{"inm list", "GET", []string{"If-None-Match", `"x", ` + etag}, 304},
		{"inm star", "GET", []string{"If-None-Match", "*"}, 304},
		{"inm other", "GET", []string{"If-None-Match", `"x"`}, 200},
		{"inm malformed", "GET", []string{"If-None-Match", `x`}, 200},
		{"inm match with range", "GET", []string{"If-None-Match", etag, "Range", "bytes=0-1"}, 304},
		{"ims equal", "GET", []string{"If-Modified-Since", date(0)}, 304},
		{"ims later", "GET", []string{"If-Modified-Since", date(time.Hour)}, 304},
		{"ims earlier", "GET", []string{"If-Modified-Since", date(-time.Second)}, 200},
		{"ims bad date", "GET", []string{"If-Modified-Since", "yesterday"}, 200},
		{"ims ignored with inm", "GET", []string{"If-None-Match", `"x"`, "If-Modified-Since", date(0)}, 200},
		{"im match", "GET", []string{"If-Match", etag}, 200},
		{"im star", "GET", []string{"If-Match", "*"}, 200},
		{"im list", "GET", []string{"If-Match", `"a","b" ,` + etag}, 200},
		{"im mismatch", "GET", []string{"If-Match", `"x"`}, 412},
		{"im weak", "GET", []string{"If-Match", "W/" + etag}, 412},
		{"im mismatch HEAD", "HEAD", []string{"If-Match", `"x"`}, 412},
		{"ius earlier", "GET", []string{"If-Unmodified-Since", date(-time.Second)}, 412},
		{"ius equal", "GET", []string{"If-Unmodified-Since", date(0)}, 200},
		{"ius ignored with im", "GET", []string{"If-Match", etag, "If-Unmodified-Since", date(-time.Hour)}, 200},
		{"im before inm", "GET", []string{"If-Match", `"x"`, "If-None-Match", etag}, 412},
		{"if-range etag", "GET", []string{"If-Range", etag, "Range", "bytes=0-1"}, 206},
		{"if-range other etag", "GET", []string{"If-Range", `"x"`, "Range", "bytes=0-1"}, 200},
		{"if-range weak etag", "GET", []string{"If-Range", "W/" + etag, "Range", "bytes=0-1"}, 200},
		{"if-range date", "GET", []string{"If-Range", date(0), "Range", "bytes=0-1"}, 206},
		{"if-range other date", "GET", []string{"If-Range", date(time.Second), "Range", "bytes=0-1"}, 200},
		{"if-range garbage", "GET", []string{"If-Range", "garbage", "Range", "bytes=0-1"}, 200},
		{"if-range unsatisfiable", "GET", []string{"If-Range", `"x"`, "Range", "bytes=99999999-"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, srv, tt.method, tt.hdr...)
			res.check(t, tt.status)
			h := res.resp.Header
			switch tt.status {
			case 304:
				if len(res.body) != 0 || h.Get("Content-Type") != "" || h.Get("Content-Length") != "" || h.Get("Last-Modified") != "" {
					t.Errorf("304 with body or representation headers: %v", h)
				}
				if h.Get("Etag") != etag || h.Get("Cache-Control") != "no-cache" {
					t.Errorf("304 without validators: %v", h)
				}
			case 412:
				if tt.method == "GET" {
					checkJSONError(t, res)
				}
			case 200:
				if tt.method == "GET" && !bytes.Equal(res.body, fx.want) {
					t.Error("not the full file")
				}
			case 206:
				if !bytes.Equal(res.body, fx.want[:2]) {
					t.Error("wrong range")
				}
			}
		})
	}

	// Without an ETag, a 304 carries Last-Modified; without a modification
	// time, date conditions are ignored.
	f := vfile.New("x", "text/plain", modTime, "", []vfile.Piece{vfile.Bytes([]byte("hello"))})
	srv2 := newServer(t, fx.fs, f, Options{})
	res := do(t, srv2, "GET", "If-Modified-Since", date(0))
	res.check(t, 304)
	if res.resp.Header.Get("Last-Modified") == "" || res.resp.Header.Get("Etag") != "" {
		t.Errorf("304 without ETag: %v", res.resp.Header)
	}
	do(t, srv2, "GET", "If-Match", `"x"`).check(t, 412)
	do(t, srv2, "GET", "If-None-Match", "*").check(t, 304)
	f = vfile.New("x", "", time.Time{}, "", []vfile.Piece{vfile.Bytes([]byte("hello"))})
	srv3 := newServer(t, fx.fs, f, Options{})
	res = do(t, srv3, "GET", "If-Modified-Since", date(0), "If-Unmodified-Since", date(-time.Hour))
	res.check(t, 200)
	if res.resp.Header.Get("Last-Modified") != "" || res.resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("zero modtime: %v", res.resp.Header)
	}
	do(t, srv3, "GET", "If-Range", date(0), "Range", "bytes=0-0").check(t, 200)
}

func TestZeroSize(t *testing.T) {
	fx := newFixture(t)
	f := vfile.New("empty", "video/mp4", modTime, vfile.ETag("empty"), nil)
	srv := newServer(t, fx.fs, f, Options{})
	for _, hdr := range [][]string{nil, {"Range", "bytes=0-"}, {"Range", "bytes=-5"}, {"Range", "bytes=0-0,5-6"}, {"Range", "items=x"}} {
		for _, m := range []string{"GET", "HEAD"} {
			res := do(t, srv, m, hdr...)
			res.check(t, 200)
			if res.resp.ContentLength != 0 || len(res.body) != 0 || res.resp.Header.Get("Content-Range") != "" {
				t.Errorf("%s %v: %v, %d bytes", m, hdr, res.resp.Header, len(res.body))
			}
		}
	}
	// Zero-length stored pieces are not part of a file, but a file made
	// only of them still serves.
	f = vfile.New("empty2", "video/mp4", modTime, vfile.ETag("empty2"), []vfile.Piece{vfile.Stored("media/none", 0, 0)})
	do(t, newServer(t, fx.fs, f, Options{}), "GET").check(t, 200)
}

func TestMethodNotAllowed(t *testing.T) {
	fx := newFixture(t)
	srv := newServer(t, fx.fs, fx.file, Options{})
	for _, m := range []string{"POST", "PUT", "DELETE", "OPTIONS"} {
		res := do(t, srv, m)
		res.check(t, 405)
		if got := res.resp.Header.Get("Allow"); got != "GET, HEAD" {
			t.Errorf("Allow %q", got)
		}
		checkJSONError(t, res)
	}
}

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestMissingObject(t *testing.T) {
	const A, B = "media/a/source.mp4", "media/b/source.mp4"
	for _, tt := range []struct {
		name    string
		get     bool   // through getOnly
		remove  string // object deleted
		trunc   string // object truncated
		rng     string
		status  int  // 500: before the header; else the header is sent...
		aborted bool // ...and the body aborted
	}{
		{name: "first", remove: A, status: 500},
		{name: "second", remove: B, status: 500},
		{name: "truncated", trunc: B, status: 500},
		{name: "not needed by the range", remove: B, rng: "bytes=0-5000", status: 206},
		{name: "get first", get: true, remove: A, status: 500},
		{name: "get second", get: true, remove: B, status: 200, aborted: true},
		{name: "get truncated", get: true, trunc: B, status: 200, aborted: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t)
			var st store.Store = fx.fs
			if tt.get {
				st = getOnly{fx.fs}
			}
			if tt.remove != "" {
				if err := fx.fs.Delete(context.Background(), tt.remove); err != nil {
					t.Fatal(err)
				}
			}
			if tt.trunc != "" {
				if err := os.Truncate(filepath.Join(fx.fs.Root(), tt.trunc), 1000); err != nil {
					t.Fatal(err)
				}
			}
			var logs logBuffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			srv := newServer(t, st, fx.file, Options{Logger: log, CacheControl: "max-age=3600"})
			var hdr []string
			if tt.rng != "" {
				hdr = []string{"Range", tt.rng}
			}
			res := do(t, srv, "GET", hdr...)
			if tt.aborted {
				if res.resp.StatusCode != tt.status || res.err == nil {
					t.Fatalf("status %d, body error %v: want %d and an aborted body", res.resp.StatusCode, res.err, tt.status)
				}
				if !errors.Is(res.err, io.ErrUnexpectedEOF) {
					t.Errorf("body error %v", res.err)
				}
				if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "aborted") {
					t.Errorf("log: %s", logs.String())
				}
				return
			}
			res.check(t, tt.status)
			if tt.status == 500 {
				checkJSONError(t, res)
				h := res.resp.Header
				if h.Get("Etag") != "" || h.Get("Last-Modified") != "" || h.Get("Cache-Control") != "no-store" {
					t.Errorf("500 with validators: %v", h)
				}
				if !strings.Contains(logs.String(), "level=WARN") {
					t.Errorf("log: %s", logs.String())
				}
				if head := do(t, srv, "HEAD"); head.resp.StatusCode != 500 {
					t.Errorf("HEAD: %d", head.resp.StatusCode)
				}
			}
		})
	}
}

func TestOneOpenPerObject(t *testing.T) {
	fx := newFixture(t)
	st := &countingFS{FS: fx.fs}
	srv := newServer(t, st, fx.file, Options{})
	do(t, srv, "GET").check(t, 200)
	if n := st.opens.Load(); n != 2 {
		t.Errorf("full GET: %d opens, want 2", n)
	}
	st.opens.Store(0)
	res := do(t, srv, "GET", "Range", "bytes=0-10,700000-800000,1500000-1600000,-10")
	res.check(t, 206)
	if n := st.opens.Load(); n != 2 {
		t.Errorf("multipart GET: %d opens, want 2", n)
	}
	st.opens.Store(0)
	do(t, srv, "GET", "Range", "bytes=0-999").check(t, 206)
	if n := st.opens.Load(); n != 0 {
		t.Errorf("generated-only range: %d opens, want 0", n)
	}
}

func TestManyObjects(t *testing.T) {
	// More objects than maxOpenFiles, revisited: files are evicted and
	// reopened, bytes stay right.
	fs, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 8))
	objs := make([][]byte, maxOpenFiles+10)
	var b vfile.Builder
	var want []byte
	for i := range objs {
		objs[i] = randBytes(r, 1000)
		if _, err := fs.Put(context.Background(), fmt.Sprintf("o/%d", i), bytes.NewReader(objs[i])); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 2 {
		for i := range objs {
			off := int64(round * 500)
			b.AddStored(fmt.Sprintf("o/%d", i), off, 500)
			want = append(want, objs[i][off:off+500]...)
		}
	}
	f := b.File("many", "application/octet-stream", modTime, vfile.ETag("many"))
	st := &countingFS{FS: fs}
	res := do(t, newServer(t, st, f, Options{}), "GET")
	res.check(t, 200)
	if !bytes.Equal(res.body, want) {
		t.Fatal("body differs")
	}
	if n := st.opens.Load(); n <= int64(len(objs)) {
		t.Errorf("%d opens: expected reopening beyond %d files", n, maxOpenFiles)
	}
}

// countWriter counts the bytes of the body, forwarding ReadFrom.
type countWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func (c countWriter) ReadFrom(r io.Reader) (int64, error) {
	n, err := io.Copy(c.w, r)
	c.n.Add(n)
	return n, err
}

func TestWriterHook(t *testing.T) {
	stores(t, func(t *testing.T, fx *fixture, st store.Store) {
		var n atomic.Int64
		srv := newServer(t, st, fx.file, Options{Writer: func(w io.Writer) io.Writer { return countWriter{w, &n} }})
		res := do(t, srv, "GET", "Range", "bytes=0-99,200-299")
		res.check(t, 206)
		if n.Load() != int64(len(res.body)) {
			t.Errorf("hook saw %d bytes, body has %d", n.Load(), len(res.body))
		}
	})
}

func TestRecorder(t *testing.T) {
	// Without net/http's writer (no ReadFrom), the copy uses the pool.
	fx := newFixture(t)
	rec := httptest.NewRecorder()
	ServeFile(rec, httptest.NewRequest("GET", "/f", nil), fx.fs, fx.file)
	if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), fx.want) {
		t.Fatalf("recorder: %d, %d bytes", rec.Code, rec.Body.Len())
	}
	rec = httptest.NewRecorder()
	ServeFile(rec, httptest.NewRequest("GET", "/f", nil), fx.fs, nil)
	if rec.Code != 500 {
		t.Fatalf("nil file: %d", rec.Code)
	}
}

func TestErrorAndWriteJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	Error(rec, http.StatusNotFound, "not found", `no asset "x"`)
	if rec.Code != 404 || rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("Error: %d %v", rec.Code, rec.Header())
	}
	if rec.Header().Get("Content-Length") != strconv.Itoa(rec.Body.Len()) {
		t.Errorf("Content-Length %s for %d bytes", rec.Header().Get("Content-Length"), rec.Body.Len())
	}
	var e map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e["error"] != "not found" || e["detail"] != `no asset "x"` || len(e) != 2 {
		t.Errorf("Error body %q: %v", rec.Body, err)
	}

	rec = httptest.NewRecorder()
	WriteJSON(rec, http.StatusCreated, map[string]int{"n": 1})
	if rec.Code != 201 || rec.Body.String() != "{\"n\":1}\n" || rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Content-Length") != "8" {
		t.Errorf("WriteJSON: %d %q %v", rec.Code, rec.Body, rec.Header())
	}
	rec = httptest.NewRecorder()
	WriteJSON(rec, http.StatusOK, func() {})
	if rec.Code != 500 {
		t.Errorf("WriteJSON of a func: %d", rec.Code)
	}
}

func TestHTTP2(t *testing.T) {
	fx := newFixture(t)
	var st store.Store = getOnly{fx.fs}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			t.Errorf("protocol %s", r.Proto)
		}
		ServeFile(w, r, st, fx.file)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	res := do(t, srv, "GET", "Range", "bytes=0-99,-100")
	res.check(t, 206)
	res = do(t, srv, "GET")
	res.check(t, 200)
	if !bytes.Equal(res.body, fx.want) {
		t.Fatal("body differs")
	}
	// A failure mid-body must not look like a complete response.
	if err := fx.fs.Delete(context.Background(), "media/b/source.mp4"); err != nil {
		t.Fatal(err)
	}
	res = do(t, srv, "GET")
	if res.resp.StatusCode != 200 || res.err == nil {
		t.Fatalf("status %d, body error %v: want an aborted 200", res.resp.StatusCode, res.err)
	}
}
