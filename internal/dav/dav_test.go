package dav_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/jitserver"
)

// asset is the part of the API's asset JSON the tests read.
type asset struct {
	ID       string `json:"id"`
	Chapters []struct {
		Name string `json:"name"`
		Size int64  `json:"size"`
	} `json:"chapters"`
}

// listing is the JSON file view of /files/{user}/.
type listing struct {
	Files []struct {
		Name     string `json:"name"`
		Size     int64  `json:"size"`
		Modified string `json:"modified"`
	} `json:"files"`
}

// multistatus is a PROPFIND answer.
type multistatus struct {
	Responses []struct {
		Href      string `xml:"DAV: href"`
		Propstats []struct {
			Prop struct {
				DisplayName  *string `xml:"DAV: displayname"`
				Length       *int64  `xml:"DAV: getcontentlength"`
				Modified     *string `xml:"DAV: getlastmodified"`
				ETag         *string `xml:"DAV: getetag"`
				ContentType  *string `xml:"DAV: getcontenttype"`
				Created      *string `xml:"DAV: creationdate"`
				ResourceType *struct {
					Collection *struct{} `xml:"DAV: collection"`
				} `xml:"DAV: resourcetype"`
				All []struct {
					XMLName xml.Name
				} `xml:",any"`
			} `xml:"DAV: prop"`
			Status string `xml:"DAV: status"`
		} `xml:"DAV: propstat"`
	} `xml:"DAV: response"`
}

// do sends a request with the given body (nil for none) and header fields
// (name and value pairs) and returns the response and its body.
func do(t *testing.T, method, u string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// propfind sends a PROPFIND and decodes its 207 answer.
func propfind(t *testing.T, u, depth, body string) multistatus {
	t.Helper()
	hdr := []string{"Content-Type", "application/xml"}
	if depth != "" {
		hdr = append(hdr, "Depth", depth)
	}
	resp, b := do(t, "PROPFIND", u, strings.NewReader(body), hdr...)
	if resp.StatusCode != http.StatusMultiStatus {
		t.Fatalf("PROPFIND %s (Depth %q): %d %s", u, depth, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/xml") {
		t.Errorf("PROPFIND %s: Content-Type %q", u, ct)
	}
	var ms multistatus
	if err := xml.Unmarshal(b, &ms); err != nil {
		t.Fatalf("PROPFIND %s: %v\n%s", u, err, b)
	}
	return ms
}

// hrefs are the hrefs of ms, in order.
func (ms multistatus) hrefs() []string {
	var out []string
	for _, r := range ms.Responses {
		out = append(out, r.Href)
	}
	return out
}

// library ingests TwoChapters and H264AAC and returns them.
func library(t *testing.T, e *jitserver.Env) []asset {
	return []asset{
		jitserver.Ingest[asset](t, e, fixtures.TwoChapters(t)...),
		jitserver.Ingest[asset](t, e, fixtures.H264AAC(t)),
	}
}

// filesListing is the sizes of the JSON file view of alice's library,
// without the query-named example clips (see jsonView).
func filesListing(t *testing.T, e *jitserver.Env) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for name, f := range jsonView(t, e) {
		out[name] = f.Size
	}
	return out
}

func TestPropfindDescribesWhatGetServes(t *testing.T) {
	e := jitserver.New(t)
	as := library(t, e)
	a := as[0]
	dav := e.URL + "/dav/alice/"

	// Depth 0 on the root: the collection alone.
	ms := propfind(t, dav, "0", "")
	if got := ms.hrefs(); !slices.Equal(got, []string{"/dav/alice/"}) {
		t.Fatalf("Depth 0 on the root: %q", got)
	}
	if p := ms.Responses[0].Propstats[0].Prop; p.ResourceType == nil || p.ResourceType.Collection == nil || p.Length != nil {
		t.Errorf("root is not a collection without length: %+v", p)
	}

	// Depth 1: both generated files and the collection of every asset.
	ms = propfind(t, dav, "1", "")
	var want []string
	want = append(want, "/dav/alice/")
	for _, a := range as {
		want = append(want, "/dav/alice/"+a.ID+".mp4", "/dav/alice/"+a.ID+".frag.mp4", "/dav/alice/"+a.ID+"/")
	}
	if got := ms.hrefs(); !slices.Equal(got, want) {
		t.Fatalf("Depth 1 on the root:\n got %q\nwant %q", got, want)
	}

	// Depth 1 on an asset: its originals. Without a trailing slash too.
	for _, u := range []string{dav + a.ID + "/", dav + a.ID} {
		ms = propfind(t, u, "1", "")
		want := []string{"/dav/alice/" + a.ID + "/", "/dav/alice/" + a.ID + "/" + fixtures.Chapter1Name, "/dav/alice/" + a.ID + "/" + fixtures.Chapter2Name}
		if got := ms.hrefs(); !slices.Equal(got, want) {
			t.Fatalf("Depth 1 on %s:\n got %q\nwant %q", u, got, want)
		}
	}

	// No Depth is infinity: every file of the JSON view, with its size,
	// and each property equal to the header of a GET of the same file.
	ms = propfind(t, dav, "", "")
	files := filesListing(t, e)
	seen := map[string]bool{}
	for _, r := range ms.Responses {
		name := strings.TrimPrefix(r.Href, "/dav/alice/")
		p := r.Propstats[0].Prop
		if r.Propstats[0].Status != "HTTP/1.1 200 OK" || len(r.Propstats) != 1 {
			t.Errorf("%s: propstats %+v", name, r.Propstats)
		}
		if p.DisplayName == nil || p.Modified == nil || p.Created == nil || p.ResourceType == nil {
			t.Errorf("%s: missing properties: %+v", name, p)
			continue
		}
		if name == "" || strings.HasSuffix(name, "/") {
			if p.ResourceType.Collection == nil {
				t.Errorf("%s is not a collection", name)
			}
			continue
		}
		seen[name] = true
		if p.ResourceType.Collection != nil || p.Length == nil || p.ETag == nil || p.ContentType == nil {
			t.Errorf("%s: file properties %+v", name, p)
			continue
		}
		if size, ok := files[name]; !ok || size != *p.Length {
			t.Errorf("%s: getcontentlength %d, JSON view %d (listed %t)", name, *p.Length, size, ok)
		}
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			resp, b := do(t, method, e.URL+"/files/alice/"+name, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s %s: %d", method, name, resp.StatusCode)
			}
			if method == http.MethodGet && int64(len(b)) != *p.Length {
				t.Errorf("GET %s: %d bytes, getcontentlength %d", name, len(b), *p.Length)
			}
			h := resp.Header
			if h.Get("Content-Length") != strconv.FormatInt(*p.Length, 10) || h.Get("ETag") != *p.ETag ||
				h.Get("Last-Modified") != *p.Modified || h.Get("Content-Type") != *p.ContentType {
				t.Errorf("%s %s: Content-Length %s ETag %s Last-Modified %s Content-Type %s; PROPFIND %d %s %s %s", method, name,
					h.Get("Content-Length"), h.Get("ETag"), h.Get("Last-Modified"), h.Get("Content-Type"),
					*p.Length, *p.ETag, *p.Modified, *p.ContentType)
			}
		}
		if *p.DisplayName != path.Base(name) {
			t.Errorf("%s: displayname %q", name, *p.DisplayName)
		}
	}
	for name := range files {
		if !seen[name] {
			t.Errorf("%s of the JSON view is not in the PROPFIND", name)
		}
	}
	if len(seen) != len(files) {
		t.Errorf("PROPFIND lists %d files, the JSON view %d", len(seen), len(files))
	}

	// Depth 0 and 1 on a file: the file alone.
	for _, depth := range []string{"0", "1"} {
		ms = propfind(t, dav+a.ID+".mp4", depth, "")
		if got := ms.hrefs(); !slices.Equal(got, []string{"/dav/alice/" + a.ID + ".mp4"}) {
			t.Errorf("Depth %s on a file: %q", depth, got)
		}
	}
}

func TestPropfindBodies(t *testing.T) {
	e := jitserver.New(t)
	a := library(t, e)[0]
	u := e.URL + "/dav/alice/" + a.ID + ".mp4"

	// prop: what is asked for, the unknown in a 404 propstat.
	ms := propfind(t, u, "0", `<?xml version="1.0"?>
<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop>
<d:getcontentlength/><d:getetag/><oc:checksums/><d:quota-used-bytes/></d:prop></d:propfind>`)
	ps := ms.Responses[0].Propstats
	if len(ps) != 2 || ps[0].Status != "HTTP/1.1 200 OK" || ps[1].Status != "HTTP/1.1 404 Not Found" {
		t.Fatalf("propstats: %+v", ps)
	}
	if p := ps[0].Prop; p.Length == nil || p.ETag == nil || p.DisplayName != nil || p.Modified != nil {
		t.Errorf("found: %+v", p)
	}
	var lacking []string
	for _, n := range ps[1].Prop.All {
		lacking = append(lacking, n.XMLName.Space+" "+n.XMLName.Local)
	}
	if !slices.Equal(lacking, []string{"http://owncloud.org/ns checksums", "DAV: quota-used-bytes"}) {
		t.Errorf("not found: %q", lacking)
	}

	// propname: the names, empty.
	ms = propfind(t, u, "0", `<propfind xmlns="DAV:"><propname/></propfind>`)
	p := ms.Responses[0].Propstats[0].Prop
	if p.Length == nil || *p.Length != 0 || p.ETag == nil || *p.ETag != "" {
		t.Errorf("propname: %+v", p)
	}

	// allprop as an element, as an empty body.
	for _, body := range []string{`<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>`, ""} {
		ms = propfind(t, u, "0", body)
		if p := ms.Responses[0].Propstats[0].Prop; p.Length == nil || *p.Length == 0 || p.ETag == nil {
			t.Errorf("allprop %q: %+v", body, p)
		}
	}

	// Bad requests.
	for _, c := range []struct{ depth, body string }{{"2", ""}, {"1", "<notxml"}, {"1", `<propfind xmlns="urn:other"/>`}} {
		resp, b := do(t, "PROPFIND", u, strings.NewReader(c.body), "Depth", c.depth)
		if resp.StatusCode != http.StatusBadRequest || !json.Valid(b) {
			t.Errorf("PROPFIND Depth %s %q: %d %s", c.depth, c.body, resp.StatusCode, b)
		}
	}
}

func TestGetIsTheFilesHandler(t *testing.T) {
	e := jitserver.New(t)
	a := library(t, e)[0]
	for _, name := range []string{a.ID + ".mp4", a.ID + ".frag.mp4", a.ID + "/" + fixtures.Chapter2Name, a.ID + ".mp4?start=1&end=3"} {
		for _, hdr := range [][]string{nil, {"Range", "bytes=100-2099"}, {"Range", "bytes=0-9,-10"}} {
			want, wb := e.Get(t, "/files/alice/"+name, hdr...)
			got, gb := e.Get(t, "/dav/alice/"+name, hdr...)
			multipart := strings.HasPrefix(want.Header.Get("Content-Type"), "multipart/")
			if got.StatusCode != want.StatusCode || len(gb) != len(wb) || !multipart && !bytes.Equal(gb, wb) {
				t.Errorf("GET %s %q: %d (%d bytes), /files %d (%d bytes)", name, hdr, got.StatusCode, len(gb), want.StatusCode, len(wb))
			}
			for _, k := range []string{"Content-Length", "Content-Range", "ETag", "Last-Modified", "Content-Type", "Accept-Ranges"} {
				if k == "Content-Type" && multipart {
					continue // a boundary of its own
				}
				if got.Header.Get(k) != want.Header.Get(k) {
					t.Errorf("GET %s %q: %s %q, /files %q", name, hdr, k, got.Header.Get(k), want.Header.Get(k))
				}
			}
		}
	}
	// Conditionals too.
	want, _ := e.Get(t, "/files/alice/"+a.ID+".mp4")
	got, _ := e.Get(t, "/dav/alice/"+a.ID+".mp4", "If-None-Match", want.Header.Get("ETag"))
	if got.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", got.StatusCode)
	}
	// A collection answers the /files listing.
	got, b := e.Get(t, "/dav/alice/", "Accept", "application/json")
	if got.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`"files"`)) {
		t.Errorf("GET /dav/alice/: %d %s", got.StatusCode, b)
	}
}

func TestOptions(t *testing.T) {
	e := jitserver.New(t)
	a := library(t, e)[0]
	for _, c := range []struct{ path, allow string }{
		{"/dav/alice/", "OPTIONS, GET, HEAD, PROPFIND"},
		{"/dav/alice/" + a.ID + ".mp4", "OPTIONS, GET, HEAD, PROPFIND"},
		{"/dav/alice/NEW.MP4", "OPTIONS, PUT"},
	} {
		resp, _ := do(t, http.MethodOptions, e.URL+c.path, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("DAV") != "1" || resp.Header.Get("Allow") != c.allow {
			t.Errorf("OPTIONS %s: %d DAV %q Allow %q", c.path, resp.StatusCode, resp.Header.Get("DAV"), resp.Header.Get("Allow"))
		}
	}
	// Other routes keep their CORS preflight answer.
	if resp, _ := do(t, http.MethodOptions, e.URL+"/files/alice/", nil); resp.StatusCode != http.StatusNoContent {
		t.Errorf("OPTIONS /files/alice/: %d", resp.StatusCode)
	}
}

// wantJSONError checks that resp is status with a JSON error body.
func wantJSONError(t *testing.T, what string, resp *http.Response, b []byte, status int) {
	t.Helper()
	var body struct{ Error, Detail string }
	if resp.StatusCode != status || json.Unmarshal(b, &body) != nil || body.Error == "" {
		t.Errorf("%s: %d %s, want %d with a JSON error", what, resp.StatusCode, b, status)
	}
}

func TestWritesAreRefused(t *testing.T) {
	e := jitserver.New(t)
	a := library(t, e)[0]
	dav := e.URL + "/dav/alice/"
	orig := a.ID + "/" + fixtures.Chapter1Name
	for _, name := range []string{a.ID + ".mp4", a.ID + ".frag.mp4", orig, a.ID + "/", ""} {
		for _, method := range []string{http.MethodPut, http.MethodDelete, "MKCOL", "MOVE", "COPY", "PROPPATCH"} {
			resp, b := do(t, method, dav+name, strings.NewReader("x"), "Destination", dav+"other.mp4")
			wantJSONError(t, method+" "+name, resp, b, http.StatusForbidden)
		}
		for _, method := range []string{"LOCK", "UNLOCK"} {
			resp, b := do(t, method, dav+name, nil)
			wantJSONError(t, method+" "+name, resp, b, http.StatusMethodNotAllowed)
			if resp.Header.Get("Allow") == "" {
				t.Errorf("%s %s: no Allow", method, name)
			}
		}
	}
	for _, c := range []struct {
		method, name string
		status       int
	}{
		{"MKCOL", "newdir/", http.StatusForbidden},
		{http.MethodPut, a.ID + "/GX030042.MP4", http.StatusForbidden},
		{http.MethodPut, "nodir/GX030042.MP4", http.StatusConflict},
		{http.MethodDelete, "nothing.mp4", http.StatusNotFound},
		{"PROPFIND", "nothing.mp4", http.StatusNotFound},
		{"PROPFIND", "nothing/", http.StatusNotFound},
		{http.MethodGet, "nothing.mp4", http.StatusNotFound},
		{http.MethodGet, a.ID + "/nothing.MP4", http.StatusNotFound},
	} {
		var body io.Reader
		if c.method == http.MethodPut {
			body = strings.NewReader("x")
		}
		resp, b := do(t, c.method, dav+c.name, body, "Depth", "0")
		wantJSONError(t, c.method+" "+c.name, resp, b, c.status)
	}
	// Nothing changed.
	if n := len(filesListing(t, e)); n != 4+3 {
		t.Errorf("the library has %d files, want 7", n)
	}
}

func TestUnknownUser(t *testing.T) {
	e := jitserver.New(t)
	for _, method := range []string{"PROPFIND", http.MethodGet, http.MethodPut, http.MethodOptions} {
		for _, p := range []string{"/dav/bob/", "/dav/bob", "/dav/bob/X.mp4", "/dav/bob/X/Y.MP4", "/dav/no%20one/"} {
			resp, b := do(t, method, e.URL+p, strings.NewReader("x"), "Depth", "1")
			wantJSONError(t, method+" "+p, resp, b, http.StatusNotFound)
		}
	}
}

func TestPutIngests(t *testing.T) {
	e := jitserver.New(t)
	src := fixtures.H264AAC(t)
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	put := func(name string) (*http.Response, []byte) {
		t.Helper()
		f, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return do(t, http.MethodPut, e.URL+"/dav/alice/"+name, f, "Content-Type", "video/mp4")
	}

	resp, b := put("NEW.MP4")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT NEW.MP4: %d %s", resp.StatusCode, b)
	}
	var a asset
	if err := json.Unmarshal(b, &a); err != nil || a.ID != "NEW" || len(a.Chapters) != 1 || a.Chapters[0].Size != int64(len(data)) {
		t.Fatalf("PUT NEW.MP4: %v %s", err, b)
	}
	if loc := resp.Header.Get("Location"); loc != "/dav/alice/NEW/" {
		t.Errorf("Location %q", loc)
	}
	files := filesListing(t, e)
	for _, name := range []string{"NEW.mp4", "NEW.frag.mp4", "NEW/NEW.MP4"} {
		if _, ok := files[name]; !ok {
			t.Errorf("%s not in the library: %v", name, files)
		}
	}

	// The uploaded name reads back as the original (not listed).
	ms := propfind(t, e.URL+"/dav/alice/NEW.MP4", "0", "")
	if p := ms.Responses[0].Propstats[0].Prop; ms.Responses[0].Href != "/dav/alice/NEW.MP4" || p.Length == nil || *p.Length != int64(len(data)) {
		t.Errorf("PROPFIND NEW.MP4: %s %+v", ms.Responses[0].Href, p)
	}
	if got, gb := e.Get(t, "/dav/alice/NEW.MP4"); got.StatusCode != http.StatusOK || !bytes.Equal(gb, data) {
		t.Errorf("GET NEW.MP4: %d, %d bytes", got.StatusCode, len(gb))
	}
	if got := propfind(t, e.URL+"/dav/alice/", "1", "").hrefs(); slices.Contains(got, "/dav/alice/NEW.MP4") {
		t.Errorf("the upload name is listed: %q", got)
	}

	// The same name again: another asset, with an id of its own.
	resp, b = put("NEW.MP4")
	if err := json.Unmarshal(b, &a); resp.StatusCode != http.StatusCreated || err != nil || a.ID != "NEW-2" {
		t.Errorf("PUT NEW.MP4 again: %d %s", resp.StatusCode, b)
	}
	// A name that is an existing generated file is refused.
	resp, b = put("NEW.mp4")
	wantJSONError(t, "PUT NEW.mp4", resp, b, http.StatusForbidden)
	// A name in need of escaping.
	resp, b = put(url.PathEscape("my clip #1.mov"))
	if err := json.Unmarshal(b, &a); resp.StatusCode != http.StatusCreated || err != nil || a.ID != "my_clip_1" || a.Chapters[0].Name != "my clip #1.mov" {
		t.Fatalf("PUT 'my clip #1.mov': %d %s", resp.StatusCode, b)
	}
	ms = propfind(t, e.URL+"/dav/alice/my_clip_1/", "1", "")
	if got := ms.hrefs(); !slices.Equal(got, []string{"/dav/alice/my_clip_1/", "/dav/alice/my_clip_1/my%20clip%20%231.mov"}) {
		t.Errorf("hrefs %q", got)
	}
}

func TestPutBadMedia(t *testing.T) {
	e := jitserver.New(t)
	garbage, err := os.ReadFile(fixtures.NotMedia(t))
	if err != nil {
		t.Fatal(err)
	}
	resp, b := do(t, http.MethodPut, e.URL+"/dav/alice/GARBAGE.MP4", bytes.NewReader(garbage))
	wantJSONError(t, "PUT garbage", resp, b, http.StatusUnprocessableEntity)
	// The upload API answers the same.
	status, ab := e.Upload(t, jitserver.User, fixtures.NotMedia(t))
	if status != resp.StatusCode {
		t.Errorf("upload API: %d %s; WebDAV %d %s", status, ab, resp.StatusCode, b)
	}
	resp, b = do(t, http.MethodPut, e.URL+"/dav/alice/EMPTY.MP4", http.NoBody)
	wantJSONError(t, "PUT nothing", resp, b, http.StatusBadRequest)
	if n := len(filesListing(t, e)); n != 0 {
		t.Errorf("failed uploads left %d files", n)
	}
}
