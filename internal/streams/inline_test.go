package streams

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/spool"
	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/testutil/teststore"
	"github.com/jitstream/jitstream/internal/vfile"
)

// TestKeep: what is kept of a built file (in memory, spooled or as
// built), and that its bytes are the built file's.
func TestKeep(t *testing.T) {
	ctx := context.Background()
	st := teststore.New(t).Store
	obj := make([]byte, 700000)
	for i := range obj {
		obj[i] = byte(i * 31)
	}
	// Keys of originals, which the read cache of the S3 backend keeps.
	const a, b = "users/u/assets/x/src/01-r", "users/u/assets/x/src/02-r"
	for _, k := range []string{a, b} {
		if _, err := st.Put(ctx, k, bytes.NewReader(obj)); err != nil {
			t.Fatal(err)
		}
	}
	sp, err := spool.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	interleaved := func(until int64) *vfile.File {
		var vb vfile.Builder
		vb.Add([]byte("moof"))
		for off := int64(0); off < until; off += 3000 { // small interleaved ranges
			vb.AddStored(a, off, 1200)
			vb.AddStored(b, off+7, 500)
		}
		vb.AddStored(a, 699000, 1000) // far away: its own read
		vb.Add([]byte("end"))
		return vb.File("x.m4s", "video/mp4", time.Unix(1, 0), `"e"`)
	}
	generated := func(n int) *vfile.File {
		return vfile.New("x.ts", "video/mp2t", time.Unix(1, 0), `"t"`, []vfile.Piece{vfile.Bytes(obj[:n/2]), vfile.Bytes(obj[n/2 : n])})
	}
	large := vfile.New("big", "", time.Time{}, "", []vfile.Piece{vfile.Stored(a, 0, 300000), vfile.Stored(b, 0, 300000)})
	const (
		asBuilt = iota
		inMem
		spooled
	)
	for _, tc := range []struct {
		name  string
		f     *vfile.File
		spool bool
		want  int
	}{
		{"small pieces, no spool", interleaved(300000), false, inMem},
		{"small pieces, spool", interleaved(300000), true, spooled},
		{"small pieces under 64 KiB, spool", interleaved(30000), true, inMem},
		{"generated, no spool", generated(200000), false, asBuilt},
		{"generated, spool", generated(200000), true, spooled},
		{"generated under 64 KiB, spool", generated(20000), true, asBuilt},
		{"large pieces, spool", large, true, asBuilt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s *spool.Spool
			if tc.spool {
				s = sp
			}
			g, err := keep(ctx, st, s, slog.New(slog.DiscardHandler), tc.f)
			if err != nil {
				t.Fatal(err)
			}
			got := asBuilt
			switch {
			case g == tc.f:
			case len(g.Pieces) == 1 && g.Pieces[0].IsSource():
				got = spooled
			case len(g.Pieces) == 1 && g.Pieces[0].InMemory():
				got = inMem
			default:
				t.Fatalf("kept a file of %d pieces", len(g.Pieces))
			}
			if got != tc.want {
				t.Fatalf("kept as %d, want %d (0 as built, 1 in memory, 2 spooled)", got, tc.want)
			}
			if g.Size != tc.f.Size || g.ETag != tc.f.ETag || g.Name != tc.f.Name {
				t.Fatalf("kept file: %d bytes (want %d), etag %s", g.Size, tc.f.Size, g.ETag)
			}
			if a, b := readAll(t, st, g), readAll(t, st, tc.f); !bytes.Equal(a, b) {
				t.Error("kept bytes differ from the built file's")
			}
		})
	}
}

// readAll reads the bytes of f.
func readAll(t *testing.T, st store.Store, f *vfile.File) []byte {
	t.Helper()
	var out bytes.Buffer
	err := f.Slice(0, f.Size, func(p vfile.Piece) error {
		var rc io.ReadCloser
		switch {
		case p.IsStored():
			var err error
			if rc, err = st.Get(context.Background(), p.Object, p.Off, p.Len); err != nil {
				return err
			}
		case p.IsSource():
			f, err := p.Src.Open()
			if err != nil {
				return err
			}
			rc = f
			if _, err := f.Seek(p.Off, io.SeekStart); err != nil {
				return err
			}
		default:
			out.Write(p.Data)
			return nil
		}
		defer rc.Close()
		_, err := io.CopyN(&out, rc, p.Len)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
