package outputs

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/transcode"
	"github.com/jitstream/jitstream/internal/vfile"
)

func TestSplitRendition(t *testing.T) {
	for _, tc := range []struct {
		stem, id, name string
		ok             bool
	}{
		{"GX010042.480p", "GX010042", "480p", true},
		{"my_video.360p", "my_video", "360p", true},
		{"a.b", "a", "b", true},
		{"GX010042", "", "", false},
		{"GX010042_480p", "", "", false},
		{".480p", "", "", false},
		{"GX010042.", "", "", false},
		{"", "", "", false},
	} {
		id, name, ok := splitRendition(tc.stem)
		if id != tc.id || name != tc.name || ok != tc.ok {
			t.Errorf("splitRendition(%q) = %q, %q, %v; want %q, %q, %v", tc.stem, id, name, ok, tc.id, tc.name, tc.ok)
		}
	}
}

// fragment is a moof with an mfhd of sequence number seq, then payload.
func fragment(seq uint32, payload string) []byte {
	b := binary.BigEndian.AppendUint32(nil, 24)
	b = append(b, "moof"...)
	b = binary.BigEndian.AppendUint32(b, 16)
	b = append(b, "mfhd\x00\x00\x00\x00"...)
	b = binary.BigEndian.AppendUint32(b, seq)
	return append(b, payload...)
}

func TestWithSequence(t *testing.T) {
	good := fragment(7, "rest")
	badSize := fragment(7, "rest")
	binary.BigEndian.PutUint32(badSize[8:], 20)
	noMfhd := fragment(7, "rest")
	copy(noMfhd[12:], "traf")
	for _, tc := range []struct {
		name string
		frag []byte
		ok   bool
	}{
		{"moof and mfhd", good, true},
		{"short", good[:20], false},
		{"not a moof", append([]byte("\x00\x00\x00\x18mdat"), good[8:]...), false},
		{"mfhd of another size", badSize, false},
		{"no mfhd first", noMfhd, false},
	} {
		orig := slices.Clone(tc.frag)
		hdr, err := withSequence(tc.frag, 42)
		if (err == nil) != tc.ok {
			t.Errorf("%s: error %v, want ok=%v", tc.name, err, tc.ok)
			continue
		}
		if !bytes.Equal(tc.frag, orig) {
			t.Errorf("%s: the fragment was changed", tc.name)
		}
		if tc.ok && (!bytes.Equal(append(hdr, tc.frag[len(hdr):]...), fragment(42, "rest"))) {
			t.Errorf("%s: header % x, want the fragment with sequence number 42", tc.name, hdr)
		}
	}
}

func TestRenditionObjects(t *testing.T) {
	p := transcode.CachePrefix
	f := vfile.New("x", "", time.Time{}, "", []vfile.Piece{
		vfile.Bytes([]byte("moov")),
		vfile.Stored(p+"s/r/0", 100, 900),
		vfile.Stored("originals/a.mp4", 10, 20),
		vfile.Stored(p+"s/r/1", 80, 20),
		vfile.Stored(p+"s/r/1", 120, 380),
		vfile.Stored("originals/a.mp4", 40, 20),
	})
	got := renditionObjects(f)
	want := []transcode.SegmentObject{{Key: p + "s/r/0", Size: 1000}, {Key: p + "s/r/1", Size: 500}}
	if !slices.Equal(got, want) {
		t.Errorf("renditionObjects = %+v, want %+v", got, want)
	}
}

// renditionEnv is a library with one small H.264 asset and Outputs that
// offer its 180p rendition.
type renditionEnv struct {
	st   store.Store
	out  *Outputs
	a    *library.Asset
	name string // the rendition file's name
	logs *bytes.Buffer
}

func newRenditionEnv(t *testing.T) *renditionEnv {
	t.Helper()
	fixtures.RequireTools(t)
	ctx := context.Background()
	st, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	lib := library.New(st, library.Options{})
	if err := lib.AddUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	path := fixtures.H264AAC(t)
	done := false
	a, err := lib.Ingest(ctx, "alice", "", func() (*library.Upload, error) {
		if done {
			return nil, nil
		}
		done = true
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { f.Close() })
		return &library.Upload{Name: filepath.Base(path), R: f}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ladder, err := transcode.ParseLadder("180p=200k")
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	tc := transcode.New(transcode.Options{Store: st, Concurrency: 2, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { tc.Close() })
	out := New(lib, 0)
	out.SetRenditions(RenditionOptions{Transcoder: tc, Ladder: ladder, Logger: log})
	return &renditionEnv{st: st, out: out, a: a, name: a.ID + ".180p.mp4", logs: logs}
}

// stream opens the rendition file, which must not be complete, and
// downloads its stream.
func (e *renditionEnv) stream(t *testing.T) []byte {
	t.Helper()
	f, how, err := e.out.OpenDelivery(context.Background(), "alice", e.name, nil)
	if err != nil || f != nil || how.Stream == nil {
		t.Fatalf("OpenDelivery of the incomplete %s: %v, %v, %v; want its stream", e.name, f, how, err)
	}
	w := httptest.NewRecorder()
	how.Stream.Serve(w, httptest.NewRequest(http.MethodGet, "/files/alice/"+e.name, nil), StreamOptions{})
	if w.Code != http.StatusOK || !w.Flushed || w.Header().Get("Content-Length") != "" || w.Body.Len() == 0 {
		t.Fatalf("stream: %d, flushed %v, header %v, %d bytes", w.Code, w.Flushed, w.Header(), w.Body.Len())
	}
	return w.Body.Bytes()
}

// TestRenditionEviction: a complete rendition file one of whose segments
// left the store (evicted by another node sharing it) is dropped at the
// next Open once verifyInterval has passed: the file streams again,
// which transcodes the segment again, and is then complete again, with a
// new ETag.
func TestRenditionEviction(t *testing.T) {
	e := newRenditionEnv(t)
	ctx := context.Background()
	if _, err := e.out.Open(ctx, "alice", e.name, nil); !errors.Is(err, ErrIncomplete) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open of the incomplete %s: %v, want ErrIncomplete", e.name, err)
	}
	e.stream(t)
	f, err := e.out.Open(ctx, "alice", e.name, nil)
	if err != nil || f.Size == 0 || f.ETag == "" {
		t.Fatalf("Open after the stream: %v, %v; want the complete file", f, err)
	}
	if g, err := e.out.Open(ctx, "alice", e.name, nil); err != nil || g != f {
		t.Fatalf("Open again: %p, %v; want the cached %p", g, err, f)
	}
	objs := renditionObjects(f)
	if len(objs) != 2 {
		t.Fatalf("the complete file reads %d segment objects, want 2: %+v", len(objs), objs)
	}
	if err := e.st.Delete(ctx, objs[1].Key); err != nil {
		t.Fatal(err)
	}
	defer func(d time.Duration) { verifyInterval = d }(verifyInterval)
	verifyInterval = 0
	if _, err := e.out.Open(ctx, "alice", e.name, nil); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Open with segment 1 gone: %v, want ErrIncomplete", err)
	}
	if !strings.Contains(e.logs.String(), "rendition file dropped") {
		t.Errorf("no log of the dropped file:\n%s", e.logs.String())
	}
	e.stream(t)
	g, err := e.out.Open(ctx, "alice", e.name, nil)
	if err != nil || g == f || g.ETag == f.ETag {
		t.Fatalf("Open after the second stream: %v (ETag %q), %v; want a new complete file (the old ETag %q)", g, g.ETag, err, f.ETag)
	}
}

// TestStreamMethods: a stream answers HEAD without transcoding, other
// methods 405.
func TestStreamMethods(t *testing.T) {
	e := newRenditionEnv(t)
	_, how, err := e.out.OpenDelivery(context.Background(), "alice", e.name, nil)
	if err != nil || how.Stream == nil {
		t.Fatalf("OpenDelivery: %v, %v", how, err)
	}
	for _, tc := range []struct {
		method string
		status int
		allow  string
	}{
		{http.MethodHead, http.StatusOK, ""},
		{http.MethodPost, http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodPut, http.StatusMethodNotAllowed, "GET, HEAD"},
	} {
		w := httptest.NewRecorder()
		how.Stream.Serve(w, httptest.NewRequest(tc.method, "/files/alice/"+e.name, nil), StreamOptions{})
		if w.Code != tc.status || w.Header().Get("Allow") != tc.allow || (tc.method == http.MethodHead && w.Body.Len() != 0) {
			t.Errorf("%s: %d, Allow %q, %d bytes; want %d, Allow %q", tc.method, w.Code, w.Header().Get("Allow"), w.Body.Len(), tc.status, tc.allow)
		}
	}
	infos, err := e.st.List(context.Background(), transcode.CachePrefix)
	if err != nil || len(infos) != 0 {
		t.Errorf("the cache after HEAD: %d objects, %v; want none", len(infos), err)
	}
}
