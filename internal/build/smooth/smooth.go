// Package smooth builds Microsoft Smooth Streaming (MS-SSTR) on-demand
// output for an indexed asset: the client manifest and, per track and chunk,
// a fragment (moof with a tfxd box, then an mdat whose payload is byte ranges
// of the stored originals).
//
// A presentation offers at most one H.264 video stream and one AAC audio
// stream: the index's first video track and first audio track. Other codecs
// (H.265 in particular, which Smooth Streaming clients such as dash.js do not
// support) are refused with an error wrapping ErrUnsupported.
//
// # Timeline
//
// Chunks follow the segments given by the caller (media.Index.Segments, the
// same boundaries as the HLS and DASH outputs). Each StreamIndex carries its
// track's own media timescale in its TimeScale attribute (MS-SSTR 2.2.2.3;
// dash.js's MssParser and its generated init segments use it), so chunk
// times and durations, tfxd/tfdt times and sample durations are the index's
// decode times unchanged: no rounding and no drift. The reference track's
// chunk n starts exactly at segs[n].Start; the other track's chunk n holds
// the samples that media segment n of the DASH and HLS outputs holds and
// starts at the decode time of its first sample.
//
// Smooth Streaming clients build the init segment themselves from the
// manifest, without an edit list. A small presentation offset of a track
// (its MediaTime below one second: the B-frame delay of video, the priming
// of AAC) is therefore applied to the composition offsets in the trun
// (signed, version 1, when needed) so that presentation starts at zero like
// in the original; the decode timeline, and so every manifest time, is left
// as it is.
package smooth

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/Eyevinn/mp4ff/aac"

	"github.com/jitstream/jitstream/internal/media"
)

// ErrUnsupported is returned (wrapped) when an asset cannot be presented
// with Smooth Streaming, for example because its video is H.265. It wraps
// media.ErrUnsupported.
var ErrUnsupported = fmt.Errorf("smooth streaming: %w", media.ErrUnsupported)

// ErrNoFragment is returned (wrapped) by Fragment for a chunk number that
// the track does not have.
var ErrNoFragment = errors.New("smooth streaming: no such fragment")

// Stream types, the StreamIndex Type and Name values and the names in
// fragment URLs ("Fragments(video=...)").
const (
	TypeVideo = "video"
	TypeAudio = "audio"
)

// StreamType is the Smooth Streaming stream type of t: "video" or "audio",
// or "" for a track of another kind.
func StreamType(t *media.Track) string {
	switch t.Kind {
	case media.KindVideo:
		return TypeVideo
	case media.KindAudio:
		return TypeAudio
	}
	return ""
}

// Bitrate is the bit rate that identifies t in the manifest and in fragment
// URLs (QualityLevels({bitrate})): its average bit rate in bits per second,
// at least 1.
func Bitrate(t *media.Track) int64 {
	return max(t.Bitrate(), 1)
}

// Tracks returns the tracks that the Smooth Streaming presentation of ix
// offers, video first: the first video track when it is H.264 and the first
// audio track when it is AAC. It fails with an error wrapping ErrUnsupported
// when either of them is in another codec, or when there is neither.
func Tracks(ix *media.Index) ([]*media.Track, error) {
	var tracks []*media.Track
	for _, t := range []*media.Track{ix.Video(), ix.Audio()} {
		if t == nil {
			continue
		}
		if _, err := describe(t); err != nil {
			return nil, err
		}
		tracks = append(tracks, t)
	}
	if len(tracks) == 0 {
		return nil, fmt.Errorf("%w: no video or audio track", ErrUnsupported)
	}
	return tracks, nil
}

// servable returns the tracks whose fragments can be served: those of
// Tracks that Smooth Streaming can present, each on its own (the audio of
// an H.265 asset, whose manifest offers its video through transcoded
// renditions only: see ManifestOptions.VideoLevels).
func servable(ix *media.Index) ([]*media.Track, error) {
	var tracks []*media.Track
	var firstErr error
	for _, t := range []*media.Track{ix.Video(), ix.Audio()} {
		if t == nil {
			continue
		}
		if _, err := describe(t); err != nil {
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		tracks = append(tracks, t)
	}
	if len(tracks) == 0 {
		return nil, cmp.Or(firstErr, fmt.Errorf("%w: no video or audio track", ErrUnsupported))
	}
	return tracks, nil
}

// Lookup returns the offered track of the given stream type ("video" or
// "audio") and bit rate (see Bitrate), as named by a fragment URL. It fails
// with an error wrapping ErrUnsupported when ix cannot be presented, and
// returns ok false when no offered track matches.
func Lookup(ix *media.Index, streamType string, bitrate int64) (t *media.Track, ok bool, err error) {
	tracks, err := servable(ix)
	if err != nil {
		return nil, false, err
	}
	for _, t := range tracks {
		if StreamType(t) == streamType && Bitrate(t) == bitrate {
			return t, true, nil
		}
	}
	return nil, false, nil
}

// stream is what the manifest says about a track's codec.
type stream struct {
	fourCC     string
	privData   []byte // CodecPrivateData
	sampleRate uint32 // audio
	channels   uint16 // audio
}

// describe checks that t can be offered and returns its codec description.
// Every sample entry of the track must yield the same CodecPrivateData, as
// a Smooth Streaming quality level has one.
func describe(t *media.Track) (stream, error) {
	var s stream
	for i, e := range t.SampleEntries {
		var (
			d   stream
			err error
		)
		switch t.Kind {
		case media.KindVideo:
			d, err = describeVideo(t, e)
		case media.KindAudio:
			d, err = describeAudio(t, e)
		default:
			err = fmt.Errorf("%w: track %d is neither video nor audio", ErrUnsupported, t.ID)
		}
		if err != nil {
			return stream{}, err
		}
		if i == 0 {
			s = d
		} else if d.fourCC != s.fourCC || !bytes.Equal(d.privData, s.privData) {
			return stream{}, fmt.Errorf("%w: the codec configuration of %s track %d changes between chapters",
				ErrUnsupported, t.Kind, t.ID)
		}
	}
	if len(t.SampleEntries) == 0 {
		return stream{}, fmt.Errorf("%w: track %d has no sample description", ErrUnsupported, t.ID)
	}
	return s, nil
}

// describeVideo reads the SPS and PPS of an H.264 sample entry.
func describeVideo(t *media.Track, e []byte) (stream, error) {
	format := entryFormat(e)
	if format != "avc1" && format != "avc3" {
		return stream{}, fmt.Errorf("%w: video codec %s (track %d); Smooth Streaming output supports H.264 (avc1, avc3) only",
			ErrUnsupported, codecName(t, format), t.ID)
	}
	if len(e) < media.VisualEntrySize {
		return stream{}, fmt.Errorf("%w: truncated %s sample entry in track %d", ErrUnsupported, format, t.ID)
	}
	for _, c := range media.ChildBoxes(e[media.VisualEntrySize:]) {
		if string(c[4:8]) != "avcC" {
			continue
		}
		priv, err := annexBParameterSets(c[8:])
		if err != nil {
			return stream{}, fmt.Errorf("%w: avcC of track %d: %v", ErrUnsupported, t.ID, err)
		}
		return stream{fourCC: "H264", privData: priv}, nil
	}
	return stream{}, fmt.Errorf("%w: %s sample entry of track %d has no avcC", ErrUnsupported, format, t.ID)
}

// annexBParameterSets returns the sequence and picture parameter sets of an
// AVCDecoderConfigurationRecord, each preceded by a 00 00 00 01 start code:
// the CodecPrivateData of an H.264 quality level. Clients rebuild an avcC
// with 4-byte NAL unit lengths from it, so the record must use those.
func annexBParameterSets(rec []byte) ([]byte, error) {
	c, err := media.ParseAVCConfig(rec)
	if err != nil {
		return nil, err
	}
	if c.Version != 1 {
		return nil, fmt.Errorf("configuration version %d", c.Version)
	}
	if c.LengthSize != 4 {
		return nil, fmt.Errorf("NAL unit lengths of %d bytes; Smooth Streaming clients assume 4", c.LengthSize)
	}
	if len(c.SPS) == 0 || len(c.PPS) == 0 {
		return nil, fmt.Errorf("%d SPS and %d PPS; both are needed", len(c.SPS), len(c.PPS))
	}
	return c.AnnexB(), nil
}

// describeAudio reads the AudioSpecificConfig of an AAC sample entry.
func describeAudio(t *media.Track, e []byte) (stream, error) {
	format := entryFormat(e)
	if format != "mp4a" || !strings.HasPrefix(t.Codec, "mp4a.40") {
		return stream{}, fmt.Errorf("%w: audio codec %s (track %d); Smooth Streaming output supports AAC only",
			ErrUnsupported, codecName(t, format), t.ID)
	}
	if len(e) < media.AudioEntrySize {
		return stream{}, fmt.Errorf("%w: truncated mp4a sample entry in track %d", ErrUnsupported, t.ID)
	}
	asc, err := audioSpecificConfig(e)
	if err != nil {
		return stream{}, fmt.Errorf("%w: AAC configuration of track %d: %v", ErrUnsupported, t.ID, err)
	}
	s := stream{fourCC: "AACL", privData: asc, sampleRate: t.SampleRate, channels: t.Channels}
	if h, err := aac.DecodeAudioSpecificConfigHeader(bytes.NewReader(asc)); err == nil {
		switch h.ObjectType {
		case aac.HEAACv1, aac.HEAACv2:
			s.fourCC = "AACH"
		}
		if s.sampleRate == 0 {
			s.sampleRate = uint32(h.SamplingFrequency)
		}
		if s.channels == 0 {
			s.channels = media.AACChannels(h.ChannelConfiguration)
		}
	}
	if s.sampleRate == 0 || s.channels == 0 {
		return stream{}, fmt.Errorf("%w: unknown sample rate or channel count of AAC track %d", ErrUnsupported, t.ID)
	}
	return s, nil
}

// audioSpecificConfig returns the DecoderSpecificInfo of the esds of an mp4a
// sample entry (also inside a QuickTime wave box).
func audioSpecificConfig(e []byte) ([]byte, error) {
	dcd, err := media.AudioDecoderConfig(e)
	if err != nil {
		return nil, err
	}
	if dcd.DecSpecificInfo == nil {
		return nil, errors.New("no esds decoder specific info")
	}
	asc := dcd.DecSpecificInfo.DecConfig
	if len(asc) < 2 {
		return nil, fmt.Errorf("AudioSpecificConfig of %d bytes", len(asc))
	}
	return asc, nil
}

// codecName names a track's codec in error messages.
func codecName(t *media.Track, format string) string {
	switch format {
	case "hvc1", "hev1":
		return "H.265 (" + format + ")"
	}
	if t.Codec != "" && t.Codec != format {
		return t.Codec
	}
	return format
}

// entryFormat is the four-character type of a raw sample entry.
func entryFormat(e []byte) string {
	if len(e) < 8 {
		return ""
	}
	return strings.TrimRight(string(e[4:8]), " \x00")
}

// hexUpper is the hexadecimal form of b in capitals, as manifests write
// CodecPrivateData.
func hexUpper(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }
