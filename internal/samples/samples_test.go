package samples

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/teststore"
)

func TestReadReturnsEverySampleAsStored(t *testing.T) {
	ctx := context.Background()
	st := teststore.New(t).Store
	var srcs []media.Source
	var raw [][]byte
	for i, f := range fixtures.TwoChapters(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// Keys of originals, which the read cache of the S3 backend keeps.
		key := []string{"users/u/assets/a/src/00-r1", "users/u/assets/a/src/01-r1"}[i]
		if _, err := st.Put(ctx, key, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		raw = append(raw, b)
		srcs = append(srcs, media.Source{Object: key, Name: key, R: bytes.NewReader(b), Size: int64(len(b))})
	}
	ix, err := media.Parse(ctx, srcs)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range ix.Tracks {
		n := tr.Samples.Len()
		for _, span := range [][2]int{{0, n}, {1, 2}, {n / 3, n/3 + 7}, {n - 1, n}, {5, 5}} {
			got, err := Read(ctx, st, ix, tr, span[0], span[1])
			if err != nil {
				t.Fatal(err)
			}
			for k, b := range got {
				i := span[0] + k
				c := tr.Samples.Chapter(i)
				off := tr.Samples.Offset[i]
				if want := raw[c][off : off+int64(tr.Samples.Size[i])]; !bytes.Equal(b, want) {
					t.Fatalf("track %d sample %d differs from the stored bytes", tr.ID, i)
				}
			}
		}
		if _, err := Read(ctx, st, ix, tr, 0, n+1); err == nil {
			t.Errorf("track %d: reading past the last sample succeeded", tr.ID)
		}
	}
}
