// Package mediatest holds the helpers that the tests of the builders and
// of the servers share: the fixtures they serve, indexing fixture files,
// reading the bytes of virtual files and samples back from them, the packet
// MD5s of the originals, writing and serving test output, reading Smooth
// Streaming chunk lists, and a synthetic index (Synth).
//
// An index made by Index names each chapter's Object by the path of its
// file, so that Materialize and Samples can read the stored ranges from it.
//
// The package imports internal/media, so package media's own (internal)
// tests cannot use it.
package mediatest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/probe"
	"github.com/jitstream/jitstream/internal/vfile"
)

// Fixture is an original that a test serves: a name for the subtest and
// its chapter files.
type Fixture struct {
	Name     string
	Chapters func(testing.TB) []string
}

// Fixtures returns the originals that the streaming tests serve: H.264 and
// H.265 with AAC, and a recording in two chapters.
func Fixtures() []Fixture {
	return []Fixture{
		{"h264 aac", One(fixtures.H264AAC)},
		{"h265 aac", One(fixtures.H265AAC)},
		{"two chapters", fixtures.TwoChapters},
	}
}

// One turns a single-file fixture into a list of chapter files.
func One(fixture func(testing.TB) string) func(testing.TB) []string {
	return func(tb testing.TB) []string { return []string{fixture(tb)} }
}

// Index indexes the given chapter files with media.Parse; each chapter's
// Object is its path. The files stay open until the test ends.
func Index(tb testing.TB, paths ...string) *media.Index {
	tb.Helper()
	srcs := make([]media.Source, len(paths))
	for i, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { f.Close() })
		fi, err := f.Stat()
		if err != nil {
			tb.Fatal(err)
		}
		srcs[i] = media.Source{Object: p, Name: filepath.Base(p), R: f, Size: fi.Size()}
	}
	ix, err := media.Parse(context.Background(), srcs)
	if err != nil {
		tb.Fatalf("media.Parse(%v): %v", paths, err)
	}
	return ix
}

// files opens files by name once each, for reading stored ranges.
type files map[string]*os.File

func (fs files) open(tb testing.TB, name string) *os.File {
	tb.Helper()
	f := fs[name]
	if f == nil {
		var err error
		if f, err = os.Open(name); err != nil {
			tb.Fatal(err)
		}
		fs[name] = f
	}
	return f
}

func (fs files) close() {
	for _, f := range fs {
		f.Close()
	}
}

// Materialize returns the bytes of a virtual file: generated pieces as they
// are, stored pieces read from the file that their Object names. It fails
// the test unless the bytes add up to the file's Size.
func Materialize(tb testing.TB, f *vfile.File) []byte {
	tb.Helper()
	var out bytes.Buffer
	fs := files{}
	defer fs.close()
	for _, p := range f.Pieces {
		if !p.IsStored() {
			out.Write(p.Data)
			continue
		}
		if _, err := io.Copy(&out, io.NewSectionReader(fs.open(tb, p.Object), p.Off, p.Len)); err != nil {
			tb.Fatal(err)
		}
	}
	if int64(out.Len()) != f.Size {
		tb.Fatalf("materialized %d bytes, vfile says %d", out.Len(), f.Size)
	}
	return out.Bytes()
}

// Samples returns the stored bytes of samples [first, end) of track t, one
// slice per sample, read from the chapter files of ix.
func Samples(tb testing.TB, ix *media.Index, t *media.Track, first, end int) [][]byte {
	tb.Helper()
	fs := files{}
	defer fs.close()
	data := make([][]byte, end-first)
	for i := first; i < end; i++ {
		f := fs.open(tb, ix.Chapters[t.Samples.Chapter(i)].Object)
		b := make([]byte, t.Samples.Size[i])
		if _, err := f.ReadAt(b, t.Samples.Offset[i]); err != nil {
			tb.Fatalf("reading sample %d of track %d: %v", i, t.ID, err)
		}
		data[i-first] = b
	}
	return data
}

// WriteTemp writes b to a new file called name in a temporary directory of
// the test and returns its path.
func WriteTemp(tb testing.TB, b []byte, name string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// WriteFile writes data to dir/name (name with slashes), making
// directories.
func WriteFile(tb testing.TB, dir, name string, data []byte) {
	tb.Helper()
	path := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// Serve serves the files of dir on 127.0.0.1 until the test ends and
// returns the server's URL.
func Serve(tb testing.TB, dir string) string {
	tb.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	tb.Cleanup(srv.Close)
	return srv.URL
}

// SmoothChunk is a chunk element, <c t="…" d="…" r="…"/>, of a StreamIndex
// of a Smooth Streaming client manifest.
type SmoothChunk struct {
	T *int64 `xml:"t,attr"`
	D int64  `xml:"d,attr"`
	R int    `xml:"r,attr"`
}

// EachSmoothChunk calls fn with the start time and duration of every chunk
// that cs describe, repeats expanded the way dash.js and ExoPlayer do: r is
// the number of chunks of the run, and a run without t starts where the
// one before ended.
func EachSmoothChunk(cs []SmoothChunk, fn func(t, d int64)) {
	var next int64
	for _, c := range cs {
		t := next
		if c.T != nil {
			t = *c.T
		}
		for range max(c.R, 1) {
			fn(t, c.D)
			t += c.D
		}
		next = t
	}
}

// OriginalMD5s returns, per stream, the MD5s of the packets of the chapter
// files concatenated in order, every sample included (edit lists ignored):
// the samples that an index of the chapters holds and that the outputs
// built from it carry.
func OriginalMD5s(tb testing.TB, chapters []string) map[int][]string {
	tb.Helper()
	return probe.ConcatMD5s(tb, chapters, "-ignore_editlist", "1")
}
