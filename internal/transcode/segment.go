package transcode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/Eyevinn/mp4ff/avc"
	"github.com/Eyevinn/mp4ff/mp4"
	mp4build "github.com/jitstream/jitstream/internal/build/mp4"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/vfile"
)

// Source is the video track of one asset revision, cut into segments: what
// a rendition is transcoded from.
type Source struct {
	// Key identifies the asset and its revision ("alice/ID/REV"); cache
	// keys are derived from it, so a new revision must have a new Key.
	Key string
	// Index is the asset's media index and Track its video track to
	// transcode (one of Index.Tracks).
	Index *media.Index
	Track *media.Track
	// Segments are the asset's keyframe-aligned segments
	// (Index.Segments(4 s)), in the reference track's timescale. The
	// rendition's segment n has exactly the presentation start and
	// duration of the source's segment n.
	Segments []media.Segment
	// Store holds the asset's original bytes.
	Store store.Store
}

// check reports whether segment n of src can be transcoded to r.
func (src *Source) check(r Rendition, n int) error {
	if err := r.check(); err != nil {
		return err
	}
	if err := src.checkVideo(); err != nil {
		return err
	}
	if n < 0 || n >= len(src.Segments) {
		return fmt.Errorf("transcode: %s: segment %d out of range [0, %d): %w", src.Key, n, len(src.Segments), ErrNoSegment)
	}
	return nil
}

// ErrNoSegment is returned (wrapped) for a segment number outside the
// source's segments.
var ErrNoSegment = errors.New("no such segment")

// sampleSpan returns the samples [first, end) of the source track in
// segment n, by the rule of mp4build.MediaSegment: those decoded in
// [Start, End), and every remaining one for a segment that ends at or
// after the reference track's end.
func (src *Source) sampleSpan(n int) (first, end int) {
	ref, t := src.Index.Reference(), src.Track
	seg := src.Segments[n]
	first = t.Find(media.Rescale(seg.Start, ref.Timescale, t.Timescale))
	end = t.Samples.Len()
	if seg.End < ref.Duration() {
		end = t.Find(media.Rescale(seg.End, ref.Timescale, t.Timescale))
	}
	return first, max(first, end)
}

// Segment is one transcoded segment.
type Segment struct {
	// Media is one CMAF fragment: a moof (sequence number n+1) and its
	// mdat, one track with the source track's ID.
	Media []byte
	// SampleEntry is the avc1 box that describes the fragment's samples.
	SampleEntry []byte
	// avcC is SampleEntry's decoder configuration.
	avcC *mp4.AvcCBox
	// diag holds what ffmpeg wrote on stderr (at level error) although it
	// succeeded: decoding errors it concealed, for the log.
	diag string
}

// TranscodeSegment transcodes segment n of src to the rendition r with the
// ffmpeg binary ffmpeg ("ffmpeg" when empty), without cache, concurrency
// limit or sharing: the building block of Transcoder.Segment. Every
// failure of ffmpeg, and every output that is not a good segment, is an
// *FFmpegError. Segments after 0 must be checked against the init segment
// (made by InitSegment from segment 0's sample entry) by the caller:
// Transcoder does.
func TranscodeSegment(ctx context.Context, ffmpeg string, src Source, r Rendition, n int) (*Segment, error) {
	if err := src.check(r, n); err != nil {
		return nil, err
	}
	if ffmpeg == "" {
		ffmpeg = "ffmpeg"
	}
	return transcodeSegment(ctx, ffmpeg, 0, &src, r, n)
}

// InitSegment returns the init segment of the rendition r of src whose
// samples sampleEntry (Segment.SampleEntry) describes; see buildInit.
func InitSegment(src Source, r Rendition, sampleEntry []byte) ([]byte, error) {
	if err := src.check(r, 0); err != nil {
		return nil, err
	}
	return buildInit(&src, r, sampleEntry)
}

// transcodeSegment transcodes segment n of src to r with the ffmpeg binary
// bin (threads: see Options.Threads). Every failure of ffmpeg, and every output that is not a good
// segment, is an *FFmpegError.
func transcodeSegment(ctx context.Context, bin string, threads int, src *Source, r Rendition, n int) (*Segment, error) {
	tm, err := segmentTiming(src, n)
	if err != nil {
		return nil, err
	}
	input, err := sourceSegment(ctx, src, n)
	if err != nil {
		return nil, err
	}
	fail := func(err error) error {
		var fe *FFmpegError
		if !errors.As(err, &fe) {
			fe = &FFmpegError{Err: err}
		}
		fe.Key, fe.Rendition, fe.Segment = src.Key, r.Name, n
		return fe
	}
	out, diag, err := runFFmpeg(ctx, bin, ffmpegArgs(r, threads), input)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("transcode %s to %s, segment %d: %w", src.Key, r.Name, n, err)
		}
		return nil, fail(err)
	}
	samples, se, err := parseOutput(out)
	if err != nil {
		return nil, fail(err)
	}
	if len(samples) != len(tm.dur) {
		return nil, fail(fmt.Errorf("wrote %d frames, the source segment has %d", len(samples), len(tm.dur)))
	}
	if mp4.DecodeSampleFlags(samples[0].Flags).SampleIsNonSync {
		return nil, fail(errors.New("the first frame is not a key frame"))
	}
	avcC, err := checkSampleEntry(se, r)
	if err != nil {
		return nil, fail(err)
	}
	frag, err := buildFragment(src.Track.ID, uint32(n+1), tm, samples)
	if err != nil {
		return nil, fail(err)
	}
	var b bytes.Buffer
	if err := se.Encode(&b); err != nil {
		return nil, fail(fmt.Errorf("encoding the sample entry: %w", err))
	}
	return &Segment{Media: frag, SampleEntry: b.Bytes(), avcC: avcC, diag: diag}, nil
}

// sourceSegment returns segment n of the source's video track alone as a
// fragmented MP4: the init segment of mp4build.InitSegment and the media
// segment of mp4build.MediaSegment, read from the store.
func sourceSegment(ctx context.Context, src *Source, n int) ([]byte, error) {
	tracks := []*media.Track{src.Track}
	init, err := mp4build.InitSegment(src.Index, tracks)
	if err != nil {
		return nil, fmt.Errorf("transcode %s: %w", src.Key, err)
	}
	var b vfile.Builder
	b.Add(init)
	if err := mp4build.MediaSegment(&b, src.Index, tracks, src.Segments[n], uint32(n+1)); err != nil {
		return nil, fmt.Errorf("transcode %s: segment %d: %w", src.Key, n, err)
	}
	f := b.File("", "", time.Time{}, "")
	data, err := readFile(ctx, src.Store, f)
	if err != nil {
		return nil, fmt.Errorf("transcode %s: reading segment %d: %w", src.Key, n, err)
	}
	return data, nil
}

// readGap is the largest gap between two stored pieces of one object that
// readFile reads through rather than making a second Get (the audio chunks
// between video chunks of an interleaved original).
const readGap = 256 << 10

// readFile reads the bytes of f (a segment's pieces) from st.
func readFile(ctx context.Context, st store.Store, f *vfile.File) ([]byte, error) {
	return vfile.ReadAll(ctx, st, f, readGap)
}

// parseOutput returns the samples of ffmpeg's fragmented MP4 output and
// its video sample entry.
func parseOutput(out []byte) ([]mp4.FullSample, *mp4.VisualSampleEntryBox, error) {
	samples, trak, err := outputSamples(out)
	if err != nil {
		return nil, nil, err
	}
	stsd := trak.Mdia.Minf.Stbl.Stsd
	if stsd == nil || stsd.AvcX == nil || stsd.AvcX.AvcC == nil {
		return nil, nil, errors.New("its output has no avc1 sample entry")
	}
	if len(samples) == 0 {
		return nil, nil, errors.New("wrote no frames")
	}
	return samples, stsd.AvcX, nil
}

// outputSamples reads ffmpeg's fragmented MP4 output of one track: its
// samples (of every fragment) and its trak.
func outputSamples(out []byte) ([]mp4.FullSample, *mp4.TrakBox, error) {
	if len(out) == 0 {
		return nil, nil, errors.New("wrote nothing")
	}
	f, err := mp4.DecodeFile(bytes.NewReader(out))
	if err != nil {
		return nil, nil, fmt.Errorf("parsing its output: %w", err)
	}
	if f.Init == nil || f.Init.Moov == nil || f.Init.Moov.Trak == nil || f.Init.Moov.Mvex == nil {
		return nil, nil, errors.New("its output has no fragmented moov")
	}
	trak := f.Init.Moov.Trak
	if trak.Mdia == nil || trak.Mdia.Minf == nil || trak.Mdia.Minf.Stbl == nil || trak.Tkhd == nil || trak.Mdia.Mdhd == nil {
		return nil, nil, errors.New("its output has no sample table")
	}
	trex, ok := f.Init.Moov.Mvex.GetTrex(trak.Tkhd.TrackID)
	if !ok {
		return nil, nil, errors.New("its output has no trex")
	}
	var samples []mp4.FullSample
	for _, seg := range f.Segments {
		for _, frag := range seg.Fragments {
			fs, err := frag.GetFullSamples(trex)
			if err != nil {
				return nil, nil, fmt.Errorf("reading its output's samples: %w", err)
			}
			samples = append(samples, fs...)
		}
	}
	return samples, trak, nil
}

// checkSampleEntry checks that the encoder wrote what the rendition
// announces: an avc1 sample entry of the rendition's size, High profile at
// the rendition's level (so that Rendition.Codec is right), with one SPS
// and one PPS.
func checkSampleEntry(se *mp4.VisualSampleEntryBox, r Rendition) (*mp4.AvcCBox, error) {
	if se.Type() != "avc1" {
		return nil, fmt.Errorf("wrote sample entry %s, want avc1", se.Type())
	}
	c := se.AvcC
	if len(c.SPSnalus) != 1 || len(c.PPSnalus) != 1 {
		return nil, fmt.Errorf("wrote %d SPS and %d PPS, want one of each", len(c.SPSnalus), len(c.PPSnalus))
	}
	codec := fmt.Sprintf("avc1.%02x%02x%02x", c.AVCProfileIndication, c.ProfileCompatibility, c.AVCLevelIndication)
	if codec != r.Codec {
		return nil, fmt.Errorf("wrote codec %s, the rendition announces %s", codec, r.Codec)
	}
	sps, err := avc.ParseSPSNALUnit(c.SPSnalus[0], false)
	if err != nil {
		return nil, fmt.Errorf("parsing its SPS: %w", err)
	}
	if int(sps.Width) != r.Width || int(sps.Height) != r.Height || int(se.Width) != r.Width || int(se.Height) != r.Height {
		return nil, fmt.Errorf("wrote %dx%d pictures (sample entry %dx%d), want %dx%d",
			sps.Width, sps.Height, se.Width, se.Height, r.Width, r.Height)
	}
	return c, nil
}

// sameParamSets reports whether two decoder configurations hold the same
// SPS and PPS.
func sameParamSets(a, b *mp4.AvcCBox) bool {
	eq := func(x, y [][]byte) bool {
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if !bytes.Equal(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return eq(a.SPSnalus, b.SPSnalus) && eq(a.PPSnalus, b.PPSnalus)
}

// buildFragment writes the moof (sequence number seq, track trackID) and
// mdat of the encoded samples with the source segment's timing.
func buildFragment(trackID, seq uint32, tm timing, samples []mp4.FullSample) ([]byte, error) {
	frag, err := mp4.CreateFragment(seq, trackID)
	if err != nil {
		return nil, err
	}
	frag.EncOptimize = mp4.OptimizeTrun
	t := uint64(tm.start)
	for k, s := range samples {
		flags := mp4.NonSyncSampleFlags
		if k == 0 {
			flags = mp4.SyncSampleFlags
		}
		frag.AddFullSample(mp4.FullSample{
			Sample:     mp4.Sample{Flags: flags, Dur: tm.dur[k], Size: uint32(len(s.Data)), CompositionTimeOffset: tm.cto[k]},
			DecodeTime: t,
			Data:       s.Data,
		})
		t += uint64(tm.dur[k])
	}
	// tfdt version 1 always, like mp4build's fragments.
	frag.Moof.Traf.Tfdt.Version = 1
	var b bytes.Buffer
	b.Grow(int(frag.Size()) + 64)
	if err := frag.Encode(&b); err != nil {
		return nil, fmt.Errorf("writing the fragment: %w", err)
	}
	return b.Bytes(), nil
}

// buildInit returns the rendition's init segment: the source track's init
// segment from mp4build.InitSegment (same track ID, timescale, edit list
// and rotation matrix, so presentation times line up with the original's
// segments) with the transcoded sample entry se and the rendition's size.
func buildInit(src *Source, r Rendition, se []byte) ([]byte, error) {
	base, err := mp4build.InitSegment(src.Index, []*media.Track{src.Track})
	if err != nil {
		return nil, fmt.Errorf("transcode %s: %w", src.Key, err)
	}
	f, err := mp4.DecodeFile(bytes.NewReader(base))
	if err != nil || f.Init == nil || f.Init.Moov == nil || f.Init.Moov.Trak == nil {
		return nil, fmt.Errorf("transcode %s: parsing the source's init segment: %v", src.Key, err)
	}
	box, err := mp4.DecodeBox(0, bytes.NewReader(se))
	if err != nil {
		return nil, fmt.Errorf("transcode %s: parsing the sample entry: %w", src.Key, err)
	}
	trak := f.Init.Moov.Trak
	stbl := trak.Mdia.Minf.Stbl
	stsd := mp4.NewStsdBox()
	stsd.AddChild(box)
	for i, c := range stbl.Children {
		if c == stbl.Stsd {
			stbl.Children[i] = stsd
		}
	}
	stbl.Stsd = stsd
	trak.Tkhd.Width = mp4.Fixed32(uint32(r.Width) << 16)
	trak.Tkhd.Height = mp4.Fixed32(uint32(r.Height) << 16)
	var b bytes.Buffer
	if err := f.Init.Encode(&b); err != nil {
		return nil, fmt.Errorf("transcode %s: writing the init segment: %w", src.Key, err)
	}
	return b.Bytes(), nil
}

// initAvcC returns the decoder configuration in an init segment.
func initAvcC(init []byte) (*mp4.AvcCBox, error) {
	f, err := mp4.DecodeFile(bytes.NewReader(init))
	if err != nil {
		return nil, err
	}
	if f.Init == nil || f.Init.Moov == nil || f.Init.Moov.Trak == nil {
		return nil, errors.New("no moov with a track")
	}
	stsd := f.Init.Moov.Trak.Mdia.Minf.Stbl.Stsd
	if stsd == nil || stsd.AvcX == nil || stsd.AvcX.AvcC == nil {
		return nil, errors.New("no avc1 sample entry")
	}
	return stsd.AvcX.AvcC, nil
}
