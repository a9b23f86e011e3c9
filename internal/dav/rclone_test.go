package dav_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/jitserver"
)

// rclone runs rclone (Debian's, 1.60) with no configuration file against
// the WebDAV remote ":webdav:" at alice's library, and returns its standard
// output; the test fails if it fails. One try (--retries 1): a failure
// shows at once, and an upload is never sent twice.
func rclone(t *testing.T, e *jitserver.Env, args ...string) []byte {
	t.Helper()
	bin, err := exec.LookPath("rclone")
	if err != nil {
		t.Fatalf("rclone not found on PATH (%v): run `make deps` to install it", err)
	}
	full := append([]string{"--config", "/dev/null", "--webdav-url", e.URL + "/dav/" + jitserver.User + "/",
		"--retries", "1", "--low-level-retries", "1", "-v"}, args...)
	cmd := exec.Command(bin, full...)
	cmd.Env = append(os.Environ(), "RCLONE_CACHE_DIR="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("rclone %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	t.Logf("rclone %s\n%s", strings.Join(args, " "), stderr.String())
	return stdout.Bytes()
}

// lsjsonEntry is an entry of rclone lsjson.
type lsjsonEntry struct {
	Path    string
	Name    string
	Size    int64
	ModTime time.Time
	IsDir   bool
}

// jsonView is the JSON file view of alice's library without the
// query-named clips, by name.
func jsonView(t *testing.T, e *jitserver.Env) map[string]lsjsonEntry {
	t.Helper()
	resp, b := e.Get(t, "/files/alice/", "Accept", "application/json")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("listing: %d %s", resp.StatusCode, b)
	}
	var l listing
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	out := map[string]lsjsonEntry{}
	for _, f := range l.Files {
		if strings.Contains(f.Name, "?") {
			continue
		}
		mod, err := time.Parse(time.RFC3339, f.Modified)
		if err != nil {
			t.Fatalf("%s: modified %q: %v", f.Name, f.Modified, err)
		}
		out[f.Name] = lsjsonEntry{Path: f.Name, Size: f.Size, ModTime: mod}
	}
	return out
}

func TestRcloneListsWhatTheJSONViewLists(t *testing.T) {
	e := jitserver.New(t)
	as := library(t, e)
	var entries []lsjsonEntry
	if err := json.Unmarshal(rclone(t, e, "lsjson", "-R", ":webdav:"), &entries); err != nil {
		t.Fatal(err)
	}
	view := jsonView(t, e)
	var dirs []string
	files := 0
	for _, en := range entries {
		if en.IsDir {
			dirs = append(dirs, en.Path)
			continue
		}
		files++
		want, ok := view[en.Path]
		switch {
		case !ok:
			t.Errorf("rclone lists %s, the JSON view does not", en.Path)
		case en.Size != want.Size || !en.ModTime.Equal(want.ModTime):
			t.Errorf("%s: rclone size %d modified %v, JSON view %d %v", en.Path, en.Size, en.ModTime, want.Size, want.ModTime)
		}
	}
	if files != len(view) {
		t.Errorf("rclone lists %d files, the JSON view %d", files, len(view))
	}
	slices.Sort(dirs)
	want := []string{as[0].ID, as[1].ID}
	slices.Sort(want)
	if !slices.Equal(dirs, want) {
		t.Errorf("rclone directories %q, want the assets %q", dirs, want)
	}
}

func TestRcloneCopyAndCatGiveTheBytesOfGet(t *testing.T) {
	e := jitserver.New(t)
	a := library(t, e)[0]
	dir := t.TempDir()
	rclone(t, e, "copy", ":webdav:", dir)
	view := jsonView(t, e)
	got := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name = filepath.ToSlash(name)
		got++
		if _, ok := view[name]; !ok {
			t.Errorf("rclone copied %s, which the JSON view does not list", name)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		resp, want := e.Get(t, "/files/alice/"+name)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(b, want) {
			t.Errorf("%s: rclone copied %d bytes, GET gives %d (%d), not the same", name, len(b), len(want), resp.StatusCode)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != len(view) {
		t.Errorf("rclone copied %d files, the JSON view lists %d", got, len(view))
	}

	for _, name := range []string{a.ID + ".mp4", a.ID + ".frag.mp4", a.ID + "/" + fixtures.Chapter2Name} {
		_, whole := e.Get(t, "/files/alice/"+name)
		for _, c := range []struct{ off, n int }{{0, 100}, {1000, 12345}, {len(whole) - 777, 777}, {len(whole) / 2, len(whole)}} {
			b := rclone(t, e, "cat", "--offset", strconv.Itoa(c.off), "--count", strconv.Itoa(c.n), ":webdav:"+name)
			want := whole[c.off:min(c.off+c.n, len(whole))]
			if !bytes.Equal(b, want) {
				t.Errorf("rclone cat --offset %d --count %d %s: %d bytes, not the %d of the same range of GET", c.off, c.n, name, len(b), len(want))
			}
		}
	}
}

func TestRcloneCopytoIngests(t *testing.T) {
	e := jitserver.New(t)
	src := fixtures.H264AAC(t)
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	rclone(t, e, "copyto", src, ":webdav:NEW.MP4")

	resp, b := e.Get(t, "/api/v1/users/alice/assets")
	var list struct{ Assets []asset }
	if err := json.Unmarshal(b, &list); resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("API listing: %d %v %s", resp.StatusCode, err, b)
	}
	if len(list.Assets) != 1 || list.Assets[0].ID != "NEW" || len(list.Assets[0].Chapters) != 1 ||
		list.Assets[0].Chapters[0].Name != "NEW.MP4" || list.Assets[0].Chapters[0].Size != fi.Size() {
		t.Fatalf("API listing after rclone copyto: %s", b)
	}
	// Again: rclone reads NEW.MP4 back, finds it the same size, and
	// sends nothing.
	rclone(t, e, "copyto", src, ":webdav:NEW.MP4")
	_, b = e.Get(t, "/api/v1/users/alice/assets")
	if err := json.Unmarshal(b, &list); err != nil || len(list.Assets) != 1 {
		t.Errorf("a second rclone copyto ingested again: %v %s", err, b)
	}
	// And the new asset's files are there for rclone too.
	var entries []lsjsonEntry
	if err := json.Unmarshal(rclone(t, e, "lsjson", "-R", ":webdav:"), &entries); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, en := range entries {
		names = append(names, en.Path)
	}
	slices.Sort(names)
	if want := []string{"NEW", "NEW.frag.mp4", "NEW.mp4", "NEW/NEW.MP4"}; !slices.Equal(names, want) {
		t.Errorf("rclone lsjson -R after the upload: %q, want %q", names, want)
	}
}
