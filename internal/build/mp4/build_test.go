package mp4build

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/vfile"
)

// Tests on synthetic indexes: structure and offsets checked with mp4ff,
// without reading any media bytes.

var synthCases = []struct {
	name string
	opts synthOpts
}{
	{"one chapter", synthOpts{seconds: 60, fps: 30, gop: 30, frameSize: 5000, keySize: 20000, chunk: 15}},
	{"three chapters, second sample entry", synthOpts{seconds: 60, fps: 30, gop: 30, frameSize: 5000, keySize: 20000, chunk: 15, chapters: 3, secondSE: true}},
	{"negative composition offsets", synthOpts{seconds: 20, fps: 60, gop: 60, frameSize: 3000, keySize: 10000, chunk: 60, negCTO: true}},
	{"sample per chunk", synthOpts{seconds: 10, fps: 25, gop: 25, frameSize: 3000, keySize: 10000, chunk: 1}},
	{"stored out of decode order", synthOpts{seconds: 20, fps: 30, gop: 30, frameSize: 3000, keySize: 10000, chunk: 10, reverse: true}},
	{"repeated frames", synthOpts{seconds: 20, fps: 30, gop: 30, frameSize: 3000, keySize: 10000, chunk: 10, dup: 7}},
	{"gaps between chunks", synthOpts{seconds: 20, fps: 30, gop: 30, frameSize: 3000, keySize: 10000, chunk: 10, gap: 16, chapters: 2}},
}

var synthSelections = []struct {
	name string
	sel  Selection
}{
	{"whole", Selection{}},
	{"mid-GOP clip", Selection{Start: 10*time.Second + 250*time.Millisecond, End: 15*time.Second + 500*time.Millisecond}},
	{"head", Selection{End: 500 * time.Millisecond}},
	{"tail", Selection{Start: 9 * time.Second}},
	{"end beyond duration", Selection{Start: 1 * time.Second, End: time.Hour}},
}

func TestSynthetic(t *testing.T) {
	for _, sc := range synthCases {
		ix := synth(sc.opts)
		for _, ss := range synthSelections {
			t.Run(sc.name+"/"+ss.name, func(t *testing.T) {
				if ss.sel.Start >= ix.Duration() {
					t.Skip("selection beyond the recording")
				}
				f, err := Progressive(ix, ss.sel)
				if err != nil {
					t.Fatal(err)
				}
				checkProgressive(t, ix, ss.sel, f)
				if stored := storedPieces(f); stored != len(ix.Chapters) && ss.sel == (Selection{}) && sc.opts.gap == 0 {
					t.Errorf("consolidated file has %d stored pieces, want one per chapter (%d)", stored, len(ix.Chapters))
				}
				ff, err := Fragmented(ix, ss.sel)
				if err != nil {
					t.Fatal(err)
				}
				checkFragmented(t, ix, ss.sel, ff)
			})
		}
	}
}

func storedPieces(f *vfile.File) int {
	n := 0
	for _, p := range f.Pieces {
		if p.IsStored() {
			n++
		}
	}
	return n
}

// TestSyntheticDetails checks details of the generated boxes that the
// sample-level checkers do not: ctts/trun versions, traf sample
// description indexes at chapter boundaries, and sync flags.
func TestSyntheticDetails(t *testing.T) {
	ix := synth(synthCases[2].opts) // negative composition offsets
	f, err := Progressive(ix, Selection{})
	if err != nil {
		t.Fatal(err)
	}
	moov := checkProgressive(t, ix, Selection{}, f)
	if v := moov.Traks[0].Mdia.Minf.Stbl.Ctts.Version; v != 1 {
		t.Errorf("ctts version %d with negative offsets, want 1", v)
	}
	if moov.Traks[0].Edts != nil {
		t.Error("edit list on a track with MediaTime 0")
	}
	if e := moov.Traks[1].Edts; e == nil || e.Elst[0].Entries[0].MediaTime != 1024 {
		t.Error("audio track lost its edit list (MediaTime 1024)")
	}
	if lang := moov.Traks[1].Mdia.Mdhd.GetLanguage(); lang != "eng" {
		t.Errorf("audio language %q, want eng", lang)
	}

	// Chapters 2 and 3 use sample entry 2.
	ix = synth(synthCases[1].opts)
	f, err = Fragmented(ix, Selection{})
	if err != nil {
		t.Fatal(err)
	}
	checkFragmented(t, ix, Selection{}, f) // checks sample_description_index per sample
	moov = checkProgressive(t, ix, Selection{}, must(Progressive(ix, Selection{})))
	if got := len(moov.Traks[0].Mdia.Minf.Stbl.Stsd.Children); got != 2 {
		t.Errorf("stsd has %d entries, want 2", got)
	}
}

// TestInitSegmentSubset checks that an init segment of some tracks keeps
// their IDs and drops references to the tracks left out.
func TestInitSegmentSubset(t *testing.T) {
	ix := synth(synthCases[0].opts)
	ix.Tracks[1].References = map[string][]uint32{"sync": {1}}
	for _, tt := range []struct {
		name     string
		tracks   []*media.Track
		wantRefs int
	}{
		{"all", ix.Tracks, 1},
		{"audio only", ix.Tracks[1:], 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			init, err := InitSegment(ix, tt.tracks)
			if err != nil {
				t.Fatal(err)
			}
			f := vfile.New("", "", time.Time{}, "", []vfile.Piece{vfile.Bytes(init)})
			_, ftypSize, _ := header(t, f, 0)
			_, moovSize, _ := header(t, f, ftypSize)
			if ftypSize+moovSize != int64(len(init)) {
				t.Fatalf("init segment of %d bytes is not ftyp+moov (%d+%d)", len(init), ftypSize, moovSize)
			}
			moov := decodeBox(t, f, ftypSize, moovSize).(*mp4.MoovBox)
			if len(moov.Traks) != len(tt.tracks) || moov.Mvex == nil || len(moov.Mvex.Trexs) != len(tt.tracks) {
				t.Fatalf("%d traks, want %d, with trex each", len(moov.Traks), len(tt.tracks))
			}
			refs := 0
			for k, trak := range moov.Traks {
				if trak.Tkhd.TrackID != tt.tracks[k].ID || moov.Mvex.Trexs[k].TrackID != tt.tracks[k].ID {
					t.Errorf("trak %d has ID %d, want %d", k, trak.Tkhd.TrackID, tt.tracks[k].ID)
				}
				for _, c := range trak.Children {
					if c.Type() == "tref" {
						refs++
					}
				}
			}
			if refs != tt.wantRefs {
				t.Errorf("%d tref boxes, want %d", refs, tt.wantRefs)
			}
			if next := moov.Mvhd.NextTrackID; next != tt.tracks[len(tt.tracks)-1].ID+1 {
				t.Errorf("next track ID %d", next)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestLargeOutput builds the moov of a consolidated file of more than 4 GiB
// (without materializing it): chunk offsets must be 64-bit (co64), the mdat
// header must use a 64-bit largesize, and every offset must point at the
// right stored bytes. A short clip of the same objects, whose stored
// offsets are beyond 4 GiB but whose output is small, uses stco.
func TestLargeOutput(t *testing.T) {
	ix := synth(synthOpts{seconds: 60, fps: 30, gop: 30, frameSize: 3_000_000, keySize: 4_000_000, chunk: 15})
	if ix.Size() <= math.MaxUint32 {
		t.Fatalf("synthetic recording is only %d bytes", ix.Size())
	}
	tests := []struct {
		name     string
		sel      Selection
		wantCo64 bool
	}{
		{"consolidated", Selection{}, true},
		{"clip beyond 4 GiB of the original", Selection{Start: 55 * time.Second, End: 56 * time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Progressive(ix, tt.sel)
			if err != nil {
				t.Fatal(err)
			}
			if big := f.Size > math.MaxUint32; big != tt.wantCo64 {
				t.Fatalf("output of %d bytes", f.Size)
			}
			moov := checkProgressive(t, ix, tt.sel, f) // checks co64 vs stco, mdat header and offsets
			for _, trak := range moov.Traks {
				stbl := trak.Mdia.Minf.Stbl
				if (stbl.Co64 != nil) != tt.wantCo64 {
					t.Errorf("track %d: co64 %v, want %v", trak.Tkhd.TrackID, stbl.Co64 != nil, tt.wantCo64)
				}
			}
			// The mdat header is the last generated piece.
			hdr := f.Pieces[len(f.Pieces)-storedPieces(f)-1].Data
			if wantLen := map[bool]int{true: 16, false: 8}[tt.wantCo64]; len(hdr) != wantLen || string(hdr[4:8]) != "mdat" {
				t.Errorf("mdat header % x", hdr)
			}
			ff, err := Fragmented(ix, tt.sel)
			if err != nil {
				t.Fatal(err)
			}
			checkFragmented(t, ix, tt.sel, ff)
		})
	}
}

func TestSelectionErrors(t *testing.T) {
	ix := synth(synthCases[0].opts) // 60 s
	tests := []struct {
		name string
		sel  Selection
	}{
		{"negative start", Selection{Start: -time.Second}},
		{"negative end", Selection{End: -time.Second}},
		{"end before start", Selection{Start: 10 * time.Second, End: 5 * time.Second}},
		{"empty", Selection{Start: 10 * time.Second, End: 10 * time.Second}},
		{"start at the end", Selection{Start: ix.Duration()}},
		{"start beyond the end", Selection{Start: time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, build := range map[string]func(*media.Index, Selection) (*vfile.File, error){"progressive": Progressive, "fragmented": Fragmented} {
				if _, err := build(ix, tt.sel); !errors.Is(err, ErrRange) {
					t.Errorf("%s: error %v, want ErrRange", name, err)
				}
			}
		})
	}
}

func TestBrokenIndex(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(ix *media.Index)
	}{
		{"nil index", nil},
		{"no chapters", func(ix *media.Index) { ix.Chapters = nil }},
		{"no tracks", func(ix *media.Index) { ix.Tracks = nil }},
		{"short column", func(ix *media.Index) { ix.Tracks[0].Samples.Dur = ix.Tracks[0].Samples.Dur[1:] }},
		{"DTS not derived", func(ix *media.Index) { ix.Tracks[1].Samples.DTS = nil }},
		{"bad sample entry index", func(ix *media.Index) { ix.Tracks[0].Samples.ChapterDesc[0] = 5 }},
		{"chapter table", func(ix *media.Index) { ix.Tracks[0].Samples.ChapterStart = []int{0} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ix *media.Index
			if tt.mutate != nil {
				ix = synth(synthCases[3].opts)
				tt.mutate(ix)
			}
			if _, err := Progressive(ix, Selection{}); err == nil {
				t.Error("Progressive: no error")
			}
			if _, err := Fragmented(ix, Selection{}); err == nil {
				t.Error("Fragmented: no error")
			}
		})
	}
}

func TestETag(t *testing.T) {
	ix := synth(synthCases[0].opts)
	clip := Selection{Start: time.Second, End: 2 * time.Second}
	etag := func(build func(*media.Index, Selection) (*vfile.File, error), sel Selection) string {
		t.Helper()
		f, err := build(ix, sel)
		if err != nil {
			t.Fatal(err)
		}
		if f.ContentType != "video/mp4" || len(f.ETag) < 10 || f.ETag[0] != '"' {
			t.Fatalf("content type %q, etag %q", f.ContentType, f.ETag)
		}
		return f.ETag
	}
	whole := etag(Progressive, Selection{})
	if again := etag(Progressive, Selection{}); again != whole {
		t.Error("ETag not deterministic")
	}
	if e := etag(Progressive, Selection{End: time.Hour}); e != whole {
		t.Error("a selection of the whole asset has another ETag than the zero selection")
	}
	distinct := map[string]string{"whole": whole}
	for name, e := range map[string]string{
		"clip":            etag(Progressive, clip),
		"fragmented":      etag(Fragmented, Selection{}),
		"fragmented clip": etag(Fragmented, clip),
		"identity":        etag(Progressive, Selection{Identity: "rev-2"}),
	} {
		for other, oe := range distinct {
			if e == oe {
				t.Errorf("%s and %s have the same ETag", name, other)
			}
		}
		distinct[name] = e
	}
}

// TestSegmentsAPI checks that InitSegment and MediaSegment, the building
// blocks for segmented protocols, produce exactly the fragmented file.
func TestSegmentsAPI(t *testing.T) {
	for _, sc := range synthCases {
		t.Run(sc.name, func(t *testing.T) {
			ix := synth(sc.opts)
			want, err := Fragmented(ix, Selection{})
			if err != nil {
				t.Fatal(err)
			}
			got := segmentsFile(t, ix, ix.Tracks)
			if !reflect.DeepEqual(got.Pieces, want.Pieces) {
				t.Errorf("InitSegment+MediaSegment differ from Fragmented (%d vs %d pieces, %d vs %d bytes)",
					len(got.Pieces), len(want.Pieces), got.Size, want.Size)
			}
		})
	}
}

// segmentsFile concatenates the init segment and every media segment of
// the given tracks.
func segmentsFile(tb testing.TB, ix *media.Index, tracks []*media.Track) *vfile.File {
	tb.Helper()
	init, err := InitSegment(ix, tracks)
	if err != nil {
		tb.Fatal(err)
	}
	var b vfile.Builder
	b.Add(init)
	for n, seg := range ix.Segments(media.DefaultSegmentDuration) {
		if err := MediaSegment(&b, ix, tracks, seg, uint32(n+1)); err != nil {
			tb.Fatal(err)
		}
	}
	return b.File("", ContentType, time.Time{}, "")
}

// BenchmarkConsolidated60min measures building the consolidated file of a
// 60-minute recording (216k video samples, 169k audio samples).
func BenchmarkConsolidated60min(b *testing.B) {
	benchmarkBuild(b, Progressive, Selection{})
}

// BenchmarkFragmented60min measures building the fragmented file of the
// same recording.
func BenchmarkFragmented60min(b *testing.B) {
	benchmarkBuild(b, Fragmented, Selection{})
}

// BenchmarkClip60min measures building a 10-minute clip from the middle.
func BenchmarkClip60min(b *testing.B) {
	benchmarkBuild(b, Progressive, Selection{Start: 25 * time.Minute, End: 35 * time.Minute})
}

func benchmarkBuild(b *testing.B, build func(*media.Index, Selection) (*vfile.File, error), sel Selection) {
	ix := synth(sixtyMinutes)
	var f *vfile.File
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if f, err = build(ix, sel); err != nil {
			b.Fatal(err)
		}
	}
	var gen int64
	for _, p := range f.Pieces {
		gen += int64(len(p.Data))
	}
	b.ReportMetric(float64(len(f.Pieces)), "pieces")
	b.ReportMetric(float64(gen), "generated-bytes")
}
