package smooth

import (
	"bytes"
	"encoding/xml"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/mediatest"
	"github.com/jitstream/jitstream/internal/vfile"
)

// fragmentBytes builds and materializes fragment n of track.
func fragmentBytes(tb testing.TB, ix *media.Index, track *media.Track, segs []media.Segment, n int) []byte {
	tb.Helper()
	var b vfile.Builder
	if err := Fragment(&b, ix, track, segs, n); err != nil {
		tb.Fatalf("Fragment(track %d, %d): %v", track.ID, n, err)
	}
	return mediatest.Materialize(tb, b.File("frag", "video/mp4", ix.Created, ""))
}

// sampleBytes reads the stored bytes of samples [first, end) of track t.
func sampleBytes(tb testing.TB, ix *media.Index, t *media.Track, first, end int) []byte {
	tb.Helper()
	return bytes.Join(mediatest.Samples(tb, ix, t, first, end), nil)
}

// decodedFragment is a fragment decoded by mp4ff.
type decodedFragment struct {
	moof *mp4.MoofBox
	tfxd *mp4.TfxdData
	mdat []byte // payload
}

// decodeFragment decodes a moof+mdat pair with mp4ff, failing unless it is
// exactly that with one traf holding a tfhd, tfdt, trun and tfxd.
func decodeFragment(tb testing.TB, data []byte) decodedFragment {
	tb.Helper()
	d := decodeMediaSegment(tb, data)
	for _, c := range d.moof.Traf.Children {
		if u, ok := c.(*mp4.UUIDBox); ok && u.Tfxd != nil {
			d.tfxd = u.Tfxd
		}
	}
	if d.tfxd == nil {
		tb.Fatalf("traf has no tfxd box")
	}
	return d
}

// decodeMediaSegment decodes a moof+mdat pair with mp4ff, failing unless it
// is exactly that with one traf holding a tfhd, tfdt and one trun.
func decodeMediaSegment(tb testing.TB, data []byte) decodedFragment {
	tb.Helper()
	var boxes []mp4.Box
	r := bytes.NewReader(data)
	var pos uint64
	for r.Len() > 0 {
		b, err := mp4.DecodeBox(pos, r)
		if err != nil {
			tb.Fatalf("mp4ff: decoding box at %d: %v", pos, err)
		}
		boxes = append(boxes, b)
		pos += b.Size()
	}
	if len(boxes) != 2 || boxes[0].Type() != "moof" || boxes[1].Type() != "mdat" {
		var types []string
		for _, b := range boxes {
			types = append(types, b.Type())
		}
		tb.Fatalf("fragment has boxes %v, want [moof mdat]", types)
	}
	d := decodedFragment{moof: boxes[0].(*mp4.MoofBox), mdat: boxes[1].(*mp4.MdatBox).Data}
	if d.moof.Mfhd == nil || len(d.moof.Trafs) != 1 {
		tb.Fatalf("moof has mfhd %v and %d trafs", d.moof.Mfhd, len(d.moof.Trafs))
	}
	traf := d.moof.Traf
	if traf.Tfhd == nil || traf.Tfdt == nil || traf.Trun == nil || len(traf.Truns) != 1 {
		tb.Fatalf("traf lacks tfhd, tfdt or trun, or has several truns")
	}
	return d
}

// Parsed client manifest, independent of the package's own types.
type parsedManifest struct {
	MajorVersion int    `xml:",attr"`
	MinorVersion int    `xml:",attr"`
	TimeScale    int64  `xml:",attr"`
	Duration     int64  `xml:",attr"`
	IsLive       string `xml:",attr"`
	Streams      []struct {
		Type          string `xml:",attr"`
		Name          string `xml:",attr"`
		Chunks        int    `xml:",attr"`
		QualityLevels int    `xml:",attr"`
		TimeScale     uint32 `xml:",attr"`
		URL           string `xml:"Url,attr"`
		Levels        []struct {
			Index            string `xml:",attr"`
			Bitrate          int64  `xml:",attr"`
			FourCC           string `xml:",attr"`
			MaxWidth         int    `xml:",attr"`
			MaxHeight        int    `xml:",attr"`
			SamplingRate     int    `xml:",attr"`
			Channels         int    `xml:",attr"`
			BitsPerSample    int    `xml:",attr"`
			PacketSize       int    `xml:",attr"`
			AudioTag         int    `xml:",attr"`
			CodecPrivateData string `xml:",attr"`
		} `xml:"QualityLevel"`
		C []mediatest.SmoothChunk `xml:"c"`
	} `xml:"StreamIndex"`
}

// manifestChunk is a chunk of a parsed manifest, repeats expanded.
type manifestChunk struct{ t, d int64 }

// parseManifest parses a client manifest, failing on malformed XML.
func parseManifest(tb testing.TB, data []byte) parsedManifest {
	tb.Helper()
	var m parsedManifest
	dec := xml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		tb.Fatalf("manifest is not valid XML: %v\n%s", err, data)
	}
	return m
}

// expand returns the chunks of stream k of m, with repeats (r) expanded the
// way dash.js and ExoPlayer do: r is the number of chunks of the run.
func (m parsedManifest) expand(tb testing.TB, k int) []manifestChunk {
	tb.Helper()
	var out []manifestChunk
	mediatest.EachSmoothChunk(m.Streams[k].C, func(t, d int64) { out = append(out, manifestChunk{t, d}) })
	return out
}

// ffmpegCopy runs ffmpeg -i src <args> dst (stream copy), returning dst.
func ffmpegCopy(tb testing.TB, src, name string, args ...string) string {
	tb.Helper()
	fixtures.RequireTools(tb)
	dst := filepath.Join(tb.TempDir(), name)
	cmd := exec.Command("ffmpeg", append(append([]string{"-nostdin", "-v", "error", "-y", "-i", src}, args...), dst)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("ffmpeg %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return dst
}
