package streams

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/vfile"
)

func TestInlineKeepsTheBytes(t *testing.T) {
	ctx := context.Background()
	st, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	obj := make([]byte, 400000)
	for i := range obj {
		obj[i] = byte(i * 31)
	}
	for _, k := range []string{"a", "b"} {
		if _, err := st.Put(ctx, k, bytes.NewReader(obj)); err != nil {
			t.Fatal(err)
		}
	}
	var b vfile.Builder
	b.Add([]byte("moof"))
	for off := int64(0); off < 300000; off += 3000 { // small interleaved ranges
		b.AddStored("a", off, 1200)
		b.AddStored("b", off+7, 500)
	}
	b.AddStored("a", 399000, 1000) // far away: its own read
	b.Add([]byte("end"))
	f := b.File("x.m4s", "video/mp4", time.Unix(1, 0), `"e"`)
	if !shouldInline(f) {
		t.Fatal("a file of small pieces is not inlined")
	}
	g, err := inline(ctx, st, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Pieces) != 1 || g.Size != f.Size || g.ETag != f.ETag {
		t.Fatalf("inlined file: %d pieces, %d bytes (want %d), etag %s", len(g.Pieces), g.Size, f.Size, g.ETag)
	}
	var want bytes.Buffer
	f.Slice(0, f.Size, func(p vfile.Piece) error {
		if p.IsStored() {
			rc, _ := st.Get(ctx, p.Object, p.Off, p.Len)
			io.Copy(&want, rc)
			rc.Close()
		} else {
			want.Write(p.Data)
		}
		return nil
	})
	if !bytes.Equal(g.Pieces[0].Data, want.Bytes()) {
		t.Error("inlined bytes differ from the stored pieces")
	}
	big := vfile.New("big", "", time.Time{}, "", []vfile.Piece{vfile.Stored("a", 0, 300000), vfile.Stored("b", 0, 300000)})
	if shouldInline(big) {
		t.Error("a file of large pieces is inlined")
	}
}
