package media

import (
	"context"
	"errors"
	"os"
	"reflect"
	"testing"

	"github.com/jitstream/jitstream/internal/testutil/fixtures"
)

// headerBoxes returns the top-level boxes of the file at path whose types
// are in keep (at most max of them), concatenated: a small seed that has a
// real moov (and moofs) without the media payload.
func headerBoxes(tb testing.TB, path string, max int, keep ...string) []byte {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	boxes, err := fixtures.TopLevelBoxes(path)
	if err != nil {
		tb.Fatal(err)
	}
	var out []byte
	for _, b := range boxes {
		for _, k := range keep {
			if b.Type == k && max > 0 {
				out = append(out, data[b.Offset:b.Offset+b.Size]...)
				max--
			}
		}
	}
	return out
}

// FuzzIndex feeds arbitrary bytes to Parse as a single file. Parse must not
// panic, must fail only with ErrInvalid or ErrUnsupported, and an index it
// returns must survive Marshal and Unmarshal.
func FuzzIndex(f *testing.F) {
	progressive := buildProgressive([]synthTrack{
		{handler: "vide", timescale: 600, entries: [][]byte{avc1Entry(64, 64)}, sizes: []uint32{9, 3, 4, 5}, durs: []uint32{20, 20, 20, 20},
			cto: []int32{40, -20, 0, 0}, sync: []uint32{1, 3}, elst: []int64{-1, 40}, tref: map[string][]uint32{"tmcd": {3}}},
		{handler: "soun", timescale: 48000, entries: [][]byte{mp4aEntry(f)}, sizes: []uint32{6, 7, 8}, durs: []uint32{1024, 1024, 1024}},
		{handler: "tmcd", timescale: 600, entries: [][]byte{plainEntry("tmcd")}, sizes: []uint32{4}, durs: []uint32{600}},
	}, 2, 3786912000)
	fragmented, _, _, _, _ := buildFragmented(f)
	f.Add(progressive)
	f.Add(fragmented)
	f.Add(progressive[:len(progressive)/2])
	f.Add(fragmented[:len(fragmented)*3/4])
	f.Add(headerBoxes(f, fixtures.H264AAC(f), 2, "ftyp", "moov"))
	f.Add(headerBoxes(f, fixtures.H265AAC(f), 2, "ftyp", "moov"))
	f.Add(headerBoxes(f, fixtures.WithMetadataTrack(f), 2, "ftyp", "moov"))
	f.Add(headerBoxes(f, fixtures.Fragmented(f), 4, "ftyp", "moov", "moof"))
	f.Add(headerBoxes(f, fixtures.Unsupported(f), 2, "ftyp", "moov"))
	f.Add([]byte{})
	f.Add([]byte("\x00\x00\x00\x08moov"))

	f.Fuzz(func(t *testing.T, b []byte) {
		ix, err := Parse(context.Background(), []Source{bytesSource("fuzz.mp4", b)})
		checkAccepted(t, ix, err)
	})
}

// checkAccepted fails unless err wraps ErrInvalid or ErrUnsupported or, when
// err is nil, the accepted index ix survives Marshal and Unmarshal
// unchanged.
func checkAccepted(t *testing.T, ix *Index, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnsupported) {
			t.Fatalf("error is neither ErrInvalid nor ErrUnsupported: %v", err)
		}
		return
	}
	enc, err := Marshal(ix)
	if err != nil {
		t.Fatalf("marshal of an accepted index: %v", err)
	}
	got, err := Unmarshal(enc)
	if err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	if !reflect.DeepEqual(got, ix) {
		t.Fatalf("round trip changed the index")
	}
}

// FuzzUnmarshal feeds arbitrary bytes (with a corrected checksum, so that
// the fuzzer gets past it) to Unmarshal: it must not panic, decoding in
// parallel and sequentially must agree, and what it accepts must be a valid
// index that encodes back to the same index.
func FuzzUnmarshal(f *testing.F) {
	indexes := []*Index{smallIndex(f), synthLongIndex(0)}
	for _, c := range v2Cases() {
		if c.name != "synthetic" { // too large to mutate well
			indexes = append(indexes, c.ix)
		}
	}
	for _, ix := range indexes {
		for _, marshal := range []func(*Index) ([]byte, error){Marshal, marshalV1} {
			b, err := marshal(ix)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) >= 9 {
			b = fixCRC(b)
		}
		// Decoded in parallel and sequentially, to the same result.
		ix, err := unmarshalBoth(t, b)
		checkAccepted(t, ix, err)
	})
}
