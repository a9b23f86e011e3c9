package webapp_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/jitserver"
	"github.com/jitstream/jitstream/internal/webapp"
	"github.com/jitstream/jitstream/web/app"
)

// get serves one request with h and returns the response.
func get(t *testing.T, h http.Handler, method, path string, hdr ...string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func body(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHandler: every file of the app is served with its type, a strong
// ETag (304 on If-None-Match), the cache policy (immutable for the
// versioned vendor files, revalidated for the rest), gzip when asked for,
// the Content-Security-Policy; unknown files and other methods get JSON
// errors.
func TestHandler(t *testing.T) {
	t.Parallel()
	h := webapp.New(webapp.Options{})
	files := app.Files()
	var names []string
	if err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"index.html", "app.css", "icon.svg", "js/main.js", "js/player.js",
		"vendor/hls.js-1.7.4/hls.min.js", "vendor/tus-js-client-4.3.1/tus.min.js"} {
		if !strings.Contains(strings.Join(names, "\n")+"\n", want+"\n") {
			t.Errorf("the embedded app lacks %s (has %v)", want, names)
		}
	}
	types := map[string]string{".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".md": "text/markdown; charset=utf-8", "": "text/plain; charset=utf-8"}
	for _, name := range names {
		want, err := fs.ReadFile(files, name)
		if err != nil {
			t.Fatal(err)
		}
		resp := get(t, h, http.MethodGet, webapp.Prefix+name)
		got := body(t, resp)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
			t.Errorf("GET %s: %d, %d bytes, want 200 and the file's %d bytes", name, resp.StatusCode, len(got), len(want))
			continue
		}
		if ct := types[filepath.Ext(name)]; resp.Header.Get("Content-Type") != ct {
			t.Errorf("%s: Content-Type %q, want %q", name, resp.Header.Get("Content-Type"), ct)
		}
		cc := "no-cache"
		if strings.HasPrefix(name, "vendor/") && strings.Count(name, "/") == 2 {
			cc = "public, max-age=31536000, immutable"
		}
		if resp.Header.Get("Cache-Control") != cc {
			t.Errorf("%s: Cache-Control %q, want %q", name, resp.Header.Get("Cache-Control"), cc)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); csp != webapp.ContentSecurityPolicy {
			t.Errorf("%s: Content-Security-Policy %q", name, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no X-Content-Type-Options: nosniff", name)
		}
		etag := resp.Header.Get("ETag")
		if !regexp.MustCompile(`^"[A-Za-z0-9_-]+"$`).MatchString(etag) {
			t.Errorf("%s: ETag %q is not a strong ETag", name, etag)
		}
		if r := get(t, h, http.MethodGet, webapp.Prefix+name, "If-None-Match", etag); r.StatusCode != http.StatusNotModified {
			t.Errorf("%s with If-None-Match: %d, want 304", name, r.StatusCode)
		}
	}

	t.Run("index at the prefix", func(t *testing.T) {
		resp := get(t, h, http.MethodGet, webapp.Prefix)
		b := body(t, resp)
		if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`<script type="module" src="js/main.js">`)) {
			t.Errorf("GET %s: %d %.200s", webapp.Prefix, resp.StatusCode, b)
		}
		if head := get(t, h, http.MethodHead, webapp.Prefix); head.StatusCode != http.StatusOK || head.Header.Get("Content-Length") == "" {
			t.Errorf("HEAD %s: %d, Content-Length %q", webapp.Prefix, head.StatusCode, head.Header.Get("Content-Length"))
		}
	})
	t.Run("gzip", func(t *testing.T) {
		name := webapp.Prefix + "vendor/hls.js-1.7.4/hls.min.js"
		plain := get(t, h, http.MethodGet, name)
		resp := get(t, h, http.MethodGet, name, "Accept-Encoding", "br;q=1, gzip;q=0.8")
		if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Vary") != "Accept-Encoding" ||
			resp.Header.Get("ETag") == plain.Header.Get("ETag") {
			t.Fatalf("gzip: Content-Encoding %q, Vary %q, ETag %q (plain %q)", resp.Header.Get("Content-Encoding"),
				resp.Header.Get("Vary"), resp.Header.Get("ETag"), plain.Header.Get("ETag"))
		}
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(got, body(t, plain)) {
			t.Errorf("the gzip body does not decompress to the file (%v)", err)
		}
		if r := get(t, h, http.MethodGet, name, "Accept-Encoding", "gzip;q=0"); r.Header.Get("Content-Encoding") != "" {
			t.Errorf("gzip;q=0 got Content-Encoding %q", r.Header.Get("Content-Encoding"))
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			method, path string
			status       int
		}{
			{http.MethodGet, webapp.Prefix + "nope.js", http.StatusNotFound},
			{http.MethodGet, webapp.Prefix + "js/", http.StatusNotFound},
			{http.MethodPost, webapp.Prefix, http.StatusMethodNotAllowed},
		} {
			resp := get(t, h, tc.method, tc.path)
			var e struct{ Error, Detail string }
			if err := json.Unmarshal(body(t, resp), &e); resp.StatusCode != tc.status || err != nil || e.Error == "" {
				t.Errorf("%s %s: %d %+v (%v), want %d with a JSON error", tc.method, tc.path, resp.StatusCode, e, err, tc.status)
			}
		}
	})
	t.Run("no index.html", func(t *testing.T) {
		bad := webapp.New(webapp.Options{Files: fstest.MapFS{"app.js": {Data: []byte("x")}}})
		if r := get(t, bad, http.MethodGet, webapp.Prefix+"app.js"); r.StatusCode != http.StatusInternalServerError {
			t.Errorf("an app without index.html: %d, want 500", r.StatusCode)
		}
	})
}

// TestVendoredVersions: the vendored libraries are the pinned versions,
// byte for byte the files of web/players/node_modules when it is
// installed (make deps), and come with their licenses.
func TestVendoredVersions(t *testing.T) {
	t.Parallel()
	root, err := fixtures.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []struct{ pkg, version, dist, vendored string }{
		{"hls.js", "1.7.4", "dist/hls.min.js", "vendor/hls.js-1.7.4/hls.min.js"},
		{"tus-js-client", "4.3.1", "dist/tus.min.js", "vendor/tus-js-client-4.3.1/tus.min.js"},
	} {
		got, err := fs.ReadFile(app.Files(), v.vendored)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fs.Stat(app.Files(), filepath.Dir(v.vendored)+"/LICENSE"); err != nil {
			t.Errorf("%s: no LICENSE beside it", v.vendored)
		}
		mod := filepath.Join(root, "web", "players", "node_modules", v.pkg)
		pj, err := os.ReadFile(filepath.Join(mod, "package.json"))
		if err != nil {
			t.Fatalf("%s is not installed in web/players (%v): run make deps", v.pkg, err)
		}
		var p struct{ Version string }
		if err := json.Unmarshal(pj, &p); err != nil || p.Version != v.version {
			t.Fatalf("web/players has %s %q, the app vendors %s: update both together (see web/app/vendor/README.md)", v.pkg, p.Version, v.version)
		}
		want, err := os.ReadFile(filepath.Join(mod, v.dist))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s/%s %s", v.vendored, v.pkg, v.dist, v.version)
		}
	}
}

// TestRedirectBrowsers: through the server, GET / sends browsers (Accept
// text/html) to the app, and answers JSON clients, ?format= and clients
// that do not ask for HTML as before; /app redirects to /app/.
func TestRedirectBrowsers(t *testing.T) {
	t.Parallel()
	e := jitserver.New(t, jitserver.WithAuth())
	const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
	resp, _ := e.GetAs(t, "", "/", "Accept", browserAccept)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != webapp.Prefix {
		t.Errorf("GET / as a browser: %d Location %q, want 302 to %s", resp.StatusCode, resp.Header.Get("Location"), webapp.Prefix)
	}
	for _, tc := range []struct{ path, accept, want string }{
		{"/", "application/json", `{"users":["alice"]}`},
		{"/?format=json", browserAccept, `{"users":["alice"]}`},
		{"/", "application/json, text/html", `{"users":["alice"]}`},
	} {
		resp, b := e.Get(t, tc.path, "Accept", tc.accept)
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != tc.want {
			t.Errorf("GET %s (Accept %s): %d %s, want %s", tc.path, tc.accept, resp.StatusCode, b, tc.want)
		}
	}
	if resp, b := e.GetAs(t, "", "/", "Accept", "*/*"); resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte("<html")) {
		t.Errorf("GET / with */*: %d %.100s, want the HTML home page", resp.StatusCode, b)
	}
	resp, _ = e.GetAs(t, "", "/app")
	if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != webapp.Prefix {
		t.Errorf("GET /app: %d Location %q, want a redirect to %s", resp.StatusCode, resp.Header.Get("Location"), webapp.Prefix)
	}
	// The app is open (it has no user's data), token or not.
	resp, b := e.GetAs(t, "", webapp.Prefix)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte("js/main.js")) || resp.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("GET %s without a token: %d %.100s", webapp.Prefix, resp.StatusCode, b)
	}
}
