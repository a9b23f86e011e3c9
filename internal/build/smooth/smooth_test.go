package smooth

import (
	"bytes"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/aac"
	"github.com/Eyevinn/mp4ff/bits"
	"github.com/Eyevinn/mp4ff/mp4"

	mp4build "github.com/jitstream/jitstream/internal/build/mp4"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/testutil/cmaftest"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/mediatest"
	"github.com/jitstream/jitstream/internal/testutil/probe"
	"github.com/jitstream/jitstream/internal/vfile"
)

// assetCases are the originals that Smooth Streaming can present.
var assetCases = []struct {
	name     string
	chapters func(testing.TB) []string
	types    []string // StreamIndex types, in order
}{
	{"h264 aac", mediatest.One(fixtures.H264AAC), []string{"video", "audio"}},
	{"two chapters", fixtures.TwoChapters, []string{"video", "audio"}},
	{"gpmd metadata track", mediatest.One(fixtures.WithMetadataTrack), []string{"video", "audio"}},
	{"video only", derived("video.mp4", "-map", "0:v", "-c", "copy"), []string{"video"}},
	{"audio only", derived("audio.m4a", "-map", "0:a", "-c", "copy"), []string{"audio"}},
}

// targets are the segment durations tested: the default (few, uneven
// segments) and one GOP (many segments of equal duration).
var targets = []time.Duration{media.DefaultSegmentDuration, time.Second}

// derived remuxes H264AAC with the given ffmpeg output arguments.
func derived(name string, args ...string) func(testing.TB) []string {
	return func(tb testing.TB) []string {
		return []string{ffmpegCopy(tb, fixtures.H264AAC(tb), name, args...)}
	}
}

func TestManifest(t *testing.T) {
	for _, tc := range assetCases {
		for _, target := range targets {
			t.Run(fmt.Sprintf("%s/%v", tc.name, target), func(t *testing.T) {
				ix := mediatest.Index(t, tc.chapters(t)...)
				segs := ix.Segments(target)
				data, err := Manifest(ix, segs, ManifestOptions{})
				if err != nil {
					t.Fatalf("Manifest: %v", err)
				}
				m := parseManifest(t, data)
				if m.MajorVersion != 2 || m.MinorVersion != 2 || m.TimeScale != ManifestTimeScale || m.IsLive != "" {
					t.Errorf("SmoothStreamingMedia version %d.%d, TimeScale %d, IsLive %q; want 2.2, %d, absent",
						m.MajorVersion, m.MinorVersion, m.TimeScale, m.IsLive, ManifestTimeScale)
				}
				if want := ix.Duration(); (time.Duration(m.Duration)*100 - want).Abs() > time.Millisecond {
					t.Errorf("Duration %d (100 ns) = %v, want %v", m.Duration, time.Duration(m.Duration)*100, want)
				}
				tracks, err := Tracks(ix)
				if err != nil {
					t.Fatal(err)
				}
				var types []string
				for _, s := range m.Streams {
					types = append(types, s.Type)
				}
				if !reflect.DeepEqual(types, tc.types) || len(tracks) != len(types) {
					t.Fatalf("StreamIndex types %v (tracks %d), want %v", types, len(tracks), tc.types)
				}
				ref := ix.Reference()
				for k, tr := range tracks {
					checkStream(t, ix, m, k, tr, ref, segs)
				}
			})
		}
	}
}

// checkStream checks StreamIndex k of manifest m, which presents track tr.
func checkStream(t *testing.T, ix *media.Index, m parsedManifest, k int, tr, ref *media.Track, segs []media.Segment) {
	t.Helper()
	s := m.Streams[k]
	typ := StreamType(tr)
	if s.Type != typ || s.Name != typ || s.QualityLevels != 1 || len(s.Levels) != 1 {
		t.Fatalf("StreamIndex %d: Type %q Name %q QualityLevels %d with %d QualityLevel elements", k, s.Type, s.Name, s.QualityLevels, len(s.Levels))
	}
	if s.TimeScale != tr.Timescale {
		t.Errorf("%s TimeScale %d, want the track's %d", typ, s.TimeScale, tr.Timescale)
	}
	if want := "QualityLevels({bitrate})/Fragments(" + typ + "={start time})"; s.URL != want {
		t.Errorf("%s Url %q, want %q", typ, s.URL, want)
	}
	ql := s.Levels[0]
	if ql.Index != "0" || ql.Bitrate != Bitrate(tr) || ql.Bitrate <= 0 {
		t.Errorf("%s QualityLevel Index %q Bitrate %d, want 0 and %d", typ, ql.Index, ql.Bitrate, Bitrate(tr))
	}
	if ql.Bitrate != tr.Bitrate() {
		t.Errorf("%s Bitrate %d, want the average bit rate %d", typ, ql.Bitrate, tr.Bitrate())
	}
	switch typ {
	case "video":
		if ql.FourCC != "H264" || ql.MaxWidth != 320 || ql.MaxHeight != 240 {
			t.Errorf("video FourCC %q %dx%d, want H264 320x240", ql.FourCC, ql.MaxWidth, ql.MaxHeight)
		}
		if want := annexB(t, tr); ql.CodecPrivateData != want {
			t.Errorf("video CodecPrivateData %s, want %s", ql.CodecPrivateData, want)
		}
		// dash.js derives the codecs parameter from the SPS that follows
		// the first start code.
		sps := regexp.MustCompile(`^00000001[0-9]7([0-9A-F]{6})`).FindStringSubmatch(ql.CodecPrivateData)
		if sps == nil || !strings.EqualFold("avc1."+sps[1], tr.Codec) {
			t.Errorf("CodecPrivateData %s yields codecs %v, want %s", ql.CodecPrivateData, sps, tr.Codec)
		}
	case "audio":
		if ql.FourCC != "AACL" || ql.SamplingRate != 48000 || ql.Channels != 2 ||
			ql.BitsPerSample != 16 || ql.PacketSize != 4 || ql.AudioTag != 255 {
			t.Errorf("audio QualityLevel %+v, want AACL 48000 Hz 2 channels 16 bits PacketSize 4 AudioTag 255", ql)
		}
		asc, err := hex.DecodeString(ql.CodecPrivateData)
		if err != nil {
			t.Fatalf("audio CodecPrivateData %q: %v", ql.CodecPrivateData, err)
		}
		cfg, err := aac.DecodeAudioSpecificConfig(bytes.NewReader(asc))
		if err != nil {
			t.Fatalf("audio CodecPrivateData %q is no AudioSpecificConfig: %v", ql.CodecPrivateData, err)
		}
		if cfg.ObjectType != aac.AAClc || cfg.SamplingFrequency != 48000 || cfg.ChannelConfiguration != 2 {
			t.Errorf("AudioSpecificConfig %+v, want AAC-LC 48 kHz stereo", cfg)
		}
	}

	chunks := m.expand(t, k)
	if s.Chunks != len(chunks) {
		t.Errorf("%s Chunks=%d but %d c elements", typ, s.Chunks, len(chunks))
	}
	if tr == ref && len(chunks) != len(segs) {
		t.Errorf("reference %s has %d chunks, want one per segment: %d", typ, len(chunks), len(segs))
	}
	var sum int64
	for n, c := range chunks {
		sum += c.d
		if c.d <= 0 {
			t.Errorf("%s chunk %d has duration %d", typ, n, c.d)
		}
		if n > 0 && c.t != chunks[n-1].t+chunks[n-1].d {
			t.Errorf("%s chunk %d starts at %d, previous ends at %d", typ, n, c.t, chunks[n-1].t+chunks[n-1].d)
		}
	}
	if len(chunks) == 0 || chunks[0].t != 0 || sum != tr.Duration() {
		t.Errorf("%s chunks start at %v and last %d, want 0 and the track's %d", typ, chunks[:min(1, len(chunks))], sum, tr.Duration())
	}
	// Chunk starts are the segment boundaries: exactly for the reference
	// track (whose timescale the segments are in), and for the other track
	// where the DASH/HLS media segment of the same boundaries starts.
	for n, c := range chunks {
		if n >= len(segs) {
			break
		}
		if tr == ref {
			if c.t != segs[n].Start || c.t+c.d != segs[n].End {
				t.Errorf("%s chunk %d is [%d, %d), segment is [%d, %d)", typ, n, c.t, c.t+c.d, segs[n].Start, segs[n].End)
			}
			continue
		}
		seg := decodeMediaSegment(t, mediatest.Materialize(t, cmaftest.MediaSegment(t, ix, []*media.Track{tr}, segs, n)))
		if int64(seg.moof.Traf.Tfdt.BaseMediaDecodeTime()) != c.t {
			t.Errorf("%s chunk %d starts at %d, DASH segment %d at %d", typ, n, c.t, n, seg.moof.Traf.Tfdt.BaseMediaDecodeTime())
		}
	}
}

// annexB returns the expected CodecPrivateData of an H.264 track, from the
// avcC as mp4ff decodes it.
func annexB(t *testing.T, tr *media.Track) string {
	t.Helper()
	b, err := mp4.DecodeBoxSR(0, bits.NewFixedSliceReader(tr.SampleEntries[0]))
	if err != nil {
		t.Fatal(err)
	}
	vse, ok := b.(*mp4.VisualSampleEntryBox)
	if !ok || vse.AvcC == nil {
		t.Fatalf("sample entry decoded as %T without avcC", b)
	}
	var s strings.Builder
	for _, nalus := range [][][]byte{vse.AvcC.SPSnalus, vse.AvcC.PPSnalus} {
		for _, nalu := range nalus {
			s.WriteString("00000001" + strings.ToUpper(hex.EncodeToString(nalu)))
		}
	}
	return s.String()
}

func TestManifestRepeat(t *testing.T) {
	ix := mediatest.Index(t, fixtures.H264AAC(t))
	segs := ix.Segments(time.Second)
	plain, err := Manifest(ix, segs, ManifestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	packed, err := Manifest(ix, segs, ManifestOptions{Repeat: true})
	if err != nil {
		t.Fatal(err)
	}
	p, q := parseManifest(t, plain), parseManifest(t, packed)
	for k := range p.Streams {
		if got, want := q.expand(t, k), p.expand(t, k); !reflect.DeepEqual(got, want) {
			t.Errorf("stream %d: repeat-compressed chunks %v, want %v", k, got, want)
		}
		if q.Streams[k].Chunks != p.Streams[k].Chunks {
			t.Errorf("stream %d: Chunks %d with repeats, %d without", k, q.Streams[k].Chunks, p.Streams[k].Chunks)
		}
	}
	// Video: 1 s GOPs at 15360 ticks per second, the last one shorter.
	if v := q.Streams[0]; len(v.C) != 2 || v.C[0].R != len(segs)-1 {
		t.Errorf("video c elements %+v, want a run of %d and the last chunk", v.C, len(segs)-1)
	}
}

func TestFragments(t *testing.T) {
	for _, tc := range assetCases {
		for _, target := range targets {
			t.Run(fmt.Sprintf("%s/%v", tc.name, target), func(t *testing.T) {
				chapters := tc.chapters(t)
				ix := mediatest.Index(t, chapters...)
				segs := ix.Segments(target)
				data, err := Manifest(ix, segs, ManifestOptions{})
				if err != nil {
					t.Fatal(err)
				}
				m := parseManifest(t, data)
				tracks, err := Tracks(ix)
				if err != nil {
					t.Fatal(err)
				}
				for k, tr := range tracks {
					checkFragments(t, ix, tr, segs, m.expand(t, k), chapters)
				}
			})
		}
	}
}

// checkFragments checks every fragment of track tr against the manifest's
// chunks, then plays them after an init segment with ffmpeg.
func checkFragments(t *testing.T, ix *media.Index, tr *media.Track, segs []media.Segment, chunks []manifestChunk, chapters []string) {
	t.Helper()
	typ := StreamType(tr)
	init, err := mp4build.InitSegment(ix, []*media.Track{tr})
	if err != nil {
		t.Fatal(err)
	}
	file := append([]byte(nil), init...)
	next, sample := 0, 0
	for n := range segs {
		var b vfile.Builder
		err := Fragment(&b, ix, tr, segs, n)
		if errors.Is(err, ErrNoFragment) {
			continue // the segment holds no samples of this track
		}
		if err != nil {
			t.Fatalf("%s fragment %d: %v", typ, n, err)
		}
		if next >= len(chunks) {
			t.Fatalf("%s fragment %d is beyond the manifest's %d chunks", typ, n, len(chunks))
		}
		c := chunks[next]
		next++
		// The fragment URL a client forms from the manifest leads back to
		// the track and chunk.
		path := strings.NewReplacer("{bitrate}", fmt.Sprint(Bitrate(tr)), "{start time}", fmt.Sprint(c.t)).
			Replace("QualityLevels({bitrate})/Fragments(" + typ + "={start time})")
		if path != FragmentPath(tr, uint64(c.t)) {
			t.Errorf("FragmentPath = %q, manifest template gives %q", FragmentPath(tr, uint64(c.t)), path)
		}
		br, st, start, err := ParseFragmentPath(path)
		if err != nil {
			t.Fatalf("ParseFragmentPath(%q): %v", path, err)
		}
		if found, ok, err := Lookup(ix, st, br); err != nil || !ok || found != tr {
			t.Errorf("Lookup(%s, %d) = %v, %v, %v; want track %d", st, br, found, ok, err, tr.ID)
		}
		if got, ok := FragmentIndex(ix, tr, segs, start); !ok || got != n {
			t.Errorf("FragmentIndex(%s, %d) = %d, %v; want %d", typ, start, got, ok, n)
		}

		frag := fragmentBytes(t, ix, tr, segs, n)
		d := decodeFragment(t, frag)
		traf := d.moof.Traf
		if d.moof.Mfhd.SequenceNumber != uint32(n+1) {
			t.Errorf("%s fragment %d: sequence number %d", typ, n, d.moof.Mfhd.SequenceNumber)
		}
		if traf.Tfhd.TrackID != tr.ID {
			t.Errorf("%s fragment %d: tfhd track ID %d, want %d", typ, n, traf.Tfhd.TrackID, tr.ID)
		}
		if d.tfxd.Version != 1 || int64(d.tfxd.FragmentAbsoluteTime) != c.t || int64(d.tfxd.FragmentAbsoluteDuration) != c.d {
			t.Errorf("%s fragment %d: tfxd v%d time %d duration %d, manifest t=%d d=%d",
				typ, n, d.tfxd.Version, d.tfxd.FragmentAbsoluteTime, d.tfxd.FragmentAbsoluteDuration, c.t, c.d)
		}
		if int64(traf.Tfdt.BaseMediaDecodeTime()) != c.t {
			t.Errorf("%s fragment %d: tfdt %d, manifest t=%d", typ, n, traf.Tfdt.BaseMediaDecodeTime(), c.t)
		}
		trun := traf.Trun
		if !trun.HasDataOffset() || int(trun.DataOffset) != int(d.moof.Size())+8 {
			t.Errorf("%s fragment %d: data offset %d, want moof size %d + 8", typ, n, trun.DataOffset, d.moof.Size())
		}
		samples := trun.GetSamples()
		var dur int64
		s := &tr.Samples
		for j, smp := range samples {
			i := sample + j
			if i >= s.Len() || smp.Size != s.Size[i] || smp.Dur != s.Dur[i] {
				t.Fatalf("%s fragment %d sample %d: size %d dur %d, index has sample %d of %d", typ, n, j, smp.Size, smp.Dur, i, s.Len())
			}
			if sync := smp.Flags&0x00010000 == 0; sync != s.IsSync(i) {
				t.Errorf("%s fragment %d sample %d: sync %v, index says %v", typ, n, j, sync, s.IsSync(i))
			}
			if want := s.CompOffset(i) - int32(presentationOffset(tr)); smp.CompositionTimeOffset != want {
				t.Errorf("%s fragment %d sample %d: composition offset %d, want %d", typ, n, j, smp.CompositionTimeOffset, want)
			}
			dur += int64(smp.Dur)
		}
		if dur != c.d {
			t.Errorf("%s fragment %d: samples last %d, manifest d=%d", typ, n, dur, c.d)
		}
		if want := sampleBytes(t, ix, tr, sample, sample+len(samples)); !bytes.Equal(d.mdat, want) {
			t.Errorf("%s fragment %d: mdat payload (%d bytes) differs from the samples' bytes (%d)", typ, n, len(d.mdat), len(want))
		}
		if n == 0 && typ == "video" {
			// Presentation starts at zero, as the edit list says.
			first := int64(1 << 62)
			for j, smp := range samples {
				first = min(first, s.DTS[sample+j]+int64(smp.CompositionTimeOffset))
			}
			if first != 0 {
				t.Errorf("video presentation starts at %d, want 0", first)
			}
		}
		sample += len(samples)
		file = append(file, frag...)
	}
	if next != len(chunks) || sample != tr.Samples.Len() {
		t.Errorf("%s: %d fragments with %d samples, manifest has %d chunks, track %d samples", typ, next, sample, len(chunks), tr.Samples.Len())
	}

	// Init segment and fragments, concatenated, carry the original packets.
	path := mediatest.WriteTemp(t, file, typ+".mp4")
	info := probe.Probe(t, path)
	if len(info.Streams) != 1 || info.Streams[0].CodecType != typ {
		t.Fatalf("ffprobe of the %s fragments: %+v", typ, info.Streams)
	}
	decodeClean(t, path)
	got := probe.PacketMD5s(t, path)[0]
	var want []string
	for _, ch := range chapters {
		want = append(want, probe.PacketMD5s(t, ch)[originalStream(ix, tr)]...)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: %d packets after the init segment differ from the original's %d", typ, len(got), len(want))
	}
}

// decodeClean decodes every frame of src with ffmpeg, failing on any error
// or warning it reports.
func decodeClean(t *testing.T, src string) {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-v", "warning", "-i", src, "-f", "null", "-")
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("ffmpeg decoding %s: %v: %s", filepath.Base(src), err, out)
	}
}

// originalStream is the ffmpeg stream index of track tr in the originals:
// the index keeps the files' track order.
func originalStream(ix *media.Index, tr *media.Track) int {
	for i, t := range ix.Tracks {
		if t == tr {
			return i
		}
	}
	return -1
}

func TestUnsupported(t *testing.T) {
	ix := mediatest.Index(t, fixtures.H265AAC(t))
	segs := ix.Segments(media.DefaultSegmentDuration)
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrUnsupported) || !errors.Is(err, media.ErrUnsupported) {
			t.Errorf("%s: error %v, want ErrUnsupported", what, err)
		} else if !strings.Contains(err.Error(), "H.265") {
			t.Errorf("%s: error %q does not name H.265", what, err)
		}
	}
	_, err := Manifest(ix, segs, ManifestOptions{})
	check("Manifest", err)
	_, err = Tracks(ix)
	check("Tracks", err)
	var b vfile.Builder
	err = Fragment(&b, ix, ix.Video(), segs, 0)
	if !errors.Is(err, ErrNoFragment) || b.Size() != 0 {
		t.Errorf("Fragment of the H.265 track: %v, %d bytes written; want ErrNoFragment, nothing", err, b.Size())
	}
	if _, ok, err := Lookup(ix, TypeVideo, Bitrate(ix.Video())); ok || err != nil {
		t.Errorf("Lookup of the H.265 track: %v, %v", ok, err)
	}
	// The audio still serves, for a manifest that offers the video through
	// transcoded renditions only (ManifestOptions.VideoLevels).
	if a, ok, err := Lookup(ix, TypeAudio, Bitrate(ix.Audio())); !ok || err != nil || a != ix.Audio() {
		t.Errorf("Lookup of the audio track: %v, %v", ok, err)
	}
	if err := Fragment(&b, ix, ix.Audio(), segs, 0); err != nil || b.Size() == 0 {
		t.Errorf("Fragment of the audio track: %v", err)
	}
}

func TestUnknownFragments(t *testing.T) {
	ix := mediatest.Index(t, fixtures.WithMetadataTrack(t))
	segs := ix.Segments(media.DefaultSegmentDuration)
	v, a := ix.Video(), ix.Audio()
	mid := v.Samples.DTS[v.Find(segs[0].End)-1] // a sample inside chunk 0
	for _, tc := range []struct {
		name  string
		track *media.Track
		t     uint64
	}{
		{"video just after a chunk start", v, uint64(segs[1].Start) + 1},
		{"video sample inside a chunk", v, uint64(mid)},
		{"video end", v, uint64(v.Duration())},
		{"video far beyond the end", v, 1 << 63},
		{"max uint64", v, ^uint64(0)},
		{"video time on the audio track", a, uint64(segs[1].Start)},
		{"audio second sample", a, uint64(a.Samples.DTS[1])},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n, ok := FragmentIndex(ix, tc.track, segs, tc.t); ok {
				t.Errorf("FragmentIndex(track %d, %d) = %d, true; want not ok", tc.track.ID, tc.t, n)
			}
		})
	}
	for _, tc := range []struct {
		name  string
		track *media.Track
		n     int
	}{
		{"negative", v, -1},
		{"past the end", v, len(segs)},
		{"metadata track", ix.Tracks[2], 0},
	} {
		t.Run("fragment "+tc.name, func(t *testing.T) {
			var b vfile.Builder
			if err := Fragment(&b, ix, tc.track, segs, tc.n); !errors.Is(err, ErrNoFragment) {
				t.Errorf("Fragment(track %d, %d): %v, want ErrNoFragment", tc.track.ID, tc.n, err)
			}
		})
	}
	// Lookup finds the tracks by type and bit rate, and nothing else.
	for _, tr := range []*media.Track{v, a} {
		got, ok, err := Lookup(ix, StreamType(tr), Bitrate(tr))
		if err != nil || !ok || got != tr {
			t.Errorf("Lookup(%s, %d) = track %v, %v, %v", StreamType(tr), Bitrate(tr), got, ok, err)
		}
		if _, ok, _ := Lookup(ix, StreamType(tr), Bitrate(tr)+1); ok {
			t.Errorf("Lookup(%s, %d) found a track", StreamType(tr), Bitrate(tr)+1)
		}
	}
}

func TestAnnexBParameterSets(t *testing.T) {
	sps, pps := []byte{0x67, 0x64, 0x00, 0x0d, 0xac}, []byte{0x68, 0xeb}
	record := func(lengthSize byte, spss, ppss [][]byte) []byte {
		r := []byte{1, 0x64, 0x00, 0x0d, 0xfc | (lengthSize - 1), 0xe0 | byte(len(spss))}
		for _, s := range spss {
			r = append(r, 0, byte(len(s)))
			r = append(r, s...)
		}
		r = append(r, byte(len(ppss)))
		for _, p := range ppss {
			r = append(r, 0, byte(len(p)))
			r = append(r, p...)
		}
		return r
	}
	for _, tc := range []struct {
		name    string
		rec     []byte
		want    string // hex, "" for an error
		wantErr string
	}{
		{"one SPS one PPS", record(4, [][]byte{sps}, [][]byte{pps}), "000000016764000dac0000000168eb", ""},
		{"two PPS", record(4, [][]byte{sps}, [][]byte{pps, {0x68, 0x01}}), "000000016764000dac0000000168eb000000016801", ""},
		{"high profile trailer ignored", append(record(4, [][]byte{sps}, [][]byte{pps}), 0xfd, 0xf8, 0xf8, 0), "000000016764000dac0000000168eb", ""},
		{"2-byte lengths", record(2, [][]byte{sps}, [][]byte{pps}), "", "NAL unit lengths of 2 bytes"},
		{"no PPS", record(4, [][]byte{sps}, nil), "", "1 SPS and 0 PPS"},
		{"no SPS", record(4, nil, [][]byte{pps}), "", "0 SPS and 1 PPS"},
		{"truncated", record(4, [][]byte{sps}, [][]byte{pps})[:9], "", "truncated"},
		{"short", []byte{1, 2, 3}, "", "too short"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := annexBParameterSets(tc.rec)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || hex.EncodeToString(got) != tc.want {
				t.Errorf("got %x, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func TestParseFragmentPath(t *testing.T) {
	for _, tc := range []struct {
		path    string
		bitrate int64
		typ     string
		start   uint64
		ok      bool
	}{
		{"QualityLevels(315647)/Fragments(video=61440)", 315647, "video", 61440, true},
		{"QualityLevels(64255)/Fragments(audio=0)", 64255, "audio", 0, true},
		{"QualityLevels(1)/Fragments(audio=9223372036854775807)", 1, "audio", 1<<63 - 1, true},
		{"QualityLevels(1)/Fragments(audio=9223372036854775808)", 0, "", 0, false},
		{"QualityLevels(315647)/Fragments(text=0)", 0, "", 0, false},
		{"QualityLevels(315647)/Fragments(video=-1)", 0, "", 0, false},
		{"QualityLevels(315647)/Fragments(video=+1)", 0, "", 0, false},
		{"QualityLevels(315647)/Fragments(video=01)", 0, "", 0, false},
		{"QualityLevels(315647)/Fragments(video=1.5)", 0, "", 0, false},
		{"QualityLevels(315647)/Fragments(video=)", 0, "", 0, false},
		{"QualityLevels(315647)/Fragments(video=1", 0, "", 0, false},
		{"QualityLevels(315647)/Fragments(video=1)x", 0, "", 0, false},
		{"QualityLevels(0)/Fragments(video=1)", 0, "", 0, false},
		{"QualityLevels()/Fragments(video=1)", 0, "", 0, false},
		{"QualityLevels(1)/FragmentInfo(video=1)", 0, "", 0, false},
		{"Manifest", 0, "", 0, false},
		{"", 0, "", 0, false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			br, typ, start, err := ParseFragmentPath(tc.path)
			if !tc.ok {
				if !errors.Is(err, ErrNoFragment) {
					t.Errorf("ParseFragmentPath(%q) = %d, %q, %d, %v; want ErrNoFragment", tc.path, br, typ, start, err)
				}
				return
			}
			if err != nil || br != tc.bitrate || typ != tc.typ || start != tc.start {
				t.Errorf("ParseFragmentPath(%q) = %d, %q, %d, %v; want %d, %q, %d", tc.path, br, typ, start, err, tc.bitrate, tc.typ, tc.start)
			}
		})
	}
}

// TestVideoLevels: transcoded renditions are more quality levels of the
// video StreamIndex; an H.265 asset offers them alone.
func TestVideoLevels(t *testing.T) {
	avc := mediatest.Index(t, fixtures.H264AAC(t)).Video().SampleEntries[0]
	levels := []VideoLevel{{Bitrate: 700_000, Width: 320, Height: 240, SampleEntry: avc}}
	tests := []struct {
		name    string
		fixture string
		want    []int64 // the video levels' bit rates; 0: the track's own
	}{
		{"H.264: the original and the rendition", fixtures.H264AAC(t), []int64{0, 700_000}},
		{"H.265: the rendition alone", fixtures.H265AAC(t), []int64{700_000}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ix := mediatest.Index(t, tc.fixture)
			b, err := Manifest(ix, ix.Segments(media.DefaultSegmentDuration), ManifestOptions{VideoLevels: levels})
			if err != nil {
				t.Fatal(err)
			}
			var m xmlMedia
			if err := xml.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			v := m.Streams[0]
			if v.Type != TypeVideo || v.QualityLevels != len(tc.want) || len(v.Levels) != len(tc.want) || len(m.Streams) != 2 {
				t.Fatalf("video StreamIndex %+v", v)
			}
			for i, br := range tc.want {
				if br == 0 {
					br = Bitrate(ix.Video())
				}
				if l := v.Levels[i]; l.Index != i || l.Bitrate != br || l.FourCC != "H264" || l.CodecPrivateData == "" {
					t.Errorf("level %d: %+v, want bit rate %d", i, l, br)
				}
			}
		})
	}
}
