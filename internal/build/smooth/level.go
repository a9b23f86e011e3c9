package smooth

import "github.com/jitstream/jitstream/internal/media"

// Level is what a client manifest's QualityLevel element says about a
// track's codec, for manifests made outside this package (the live
// Smooth Streaming output of internal/live).
type Level struct {
	FourCC string // "H264", "AACL" or "AACH"
	// CodecPrivateData is the hexadecimal (capitals) CodecPrivateData:
	// the SPS and PPS as Annex B for H.264, the AudioSpecificConfig for
	// AAC.
	CodecPrivateData string
	// Audio only: the sampling rate, channel count and the fixed
	// BitsPerSample (16), PacketSize (4) and AudioTag (255) that the
	// on-demand manifest writes too.
	SamplingRate  uint32
	Channels      uint16
	BitsPerSample int
	PacketSize    int
	AudioTag      int
}

// Describe returns the quality level attributes of track t, which needs
// Kind, Codec (for audio), SampleEntries (the raw sample entries; all must
// yield the same description) and, when known, SampleRate and Channels.
// It fails with an error wrapping ErrUnsupported for a track that Smooth
// Streaming cannot offer (not H.264 or AAC), as Tracks does.
func Describe(t *media.Track) (Level, error) {
	s, err := describe(t)
	if err != nil {
		return Level{}, err
	}
	l := Level{FourCC: s.fourCC, CodecPrivateData: hexUpper(s.privData)}
	if t.Kind == media.KindAudio {
		l.SamplingRate, l.Channels = s.sampleRate, s.channels
		l.BitsPerSample, l.PacketSize, l.AudioTag = 16, 4, 255
	}
	return l, nil
}
