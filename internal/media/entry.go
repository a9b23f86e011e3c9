package media

// Reading raw sample entries (Track.SampleEntries): helpers that the index
// uses and that the output builders share.

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/Eyevinn/mp4ff/mp4"
)

// Sizes of the fixed parts of sample entries, header included: the child
// boxes (codec configuration and others) of a visual or audio sample entry
// follow them.
const (
	VisualEntrySize = 8 + 78 // SampleEntry + VisualSampleEntry fields
	AudioEntrySize  = 8 + 28 // SampleEntry + AudioSampleEntry fields
)

// ChildBoxes splits b, a sequence of boxes such as the children of a
// sample entry after its fixed part, into boxes (header included). It stops
// at the first malformed box: one whose 32-bit size is below 8 (so also a
// box with a 64-bit size or one that extends to the end) or beyond b.
func ChildBoxes(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 8 {
		n := binary.BigEndian.Uint32(b)
		if n < 8 || uint64(n) > uint64(len(b)) {
			break
		}
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// AVCConfig is what an AVCDecoderConfigurationRecord (ISO/IEC 14496-15
// 5.3.3.1, the payload of an avcC box) says about the stream's NAL units.
type AVCConfig struct {
	Version byte
	// LengthSize is the size in bytes of the length field that precedes
	// each NAL unit of a sample: 1, 2 or 4 (3 is reserved but read too).
	LengthSize int
	// SPS and PPS are the sequence and picture parameter set NAL units, in
	// the record's order.
	SPS, PPS [][]byte
}

// ParseAVCConfig reads an AVCDecoderConfigurationRecord up to its picture
// parameter sets; what follows them (the extension of the High profiles) is
// ignored. It fails on a record that ends early or holds an empty
// parameter set; checking the version and whether parameter sets are there
// is for the caller.
func ParseAVCConfig(rec []byte) (AVCConfig, error) {
	if len(rec) < 7 {
		return AVCConfig{}, errors.New("record too short")
	}
	c := AVCConfig{Version: rec[0], LengthSize: int(rec[4]&3) + 1}
	p := rec[5:]
	for k, list := range []*[][]byte{&c.SPS, &c.PPS} {
		if len(p) < 1 {
			return AVCConfig{}, errors.New("record truncated")
		}
		n := int(p[0])
		if k == 0 {
			n &= 0x1f
		}
		p = p[1:]
		for range n {
			if len(p) < 2 {
				return AVCConfig{}, errors.New("record truncated")
			}
			l := int(binary.BigEndian.Uint16(p))
			if len(p) < 2+l {
				return AVCConfig{}, errors.New("record truncated")
			}
			if l == 0 {
				return AVCConfig{}, fmt.Errorf("empty %s", [...]string{"SPS", "PPS"}[k])
			}
			*list = append(*list, p[2:2+l])
			p = p[2+l:]
		}
	}
	return c, nil
}

// AnnexB returns the parameter sets of c, SPS first, each preceded by a
// 00 00 00 01 start code.
func (c AVCConfig) AnnexB() []byte {
	var out []byte
	for _, list := range [][][]byte{c.SPS, c.PPS} {
		for _, nal := range list {
			out = append(out, 0, 0, 0, 1)
			out = append(out, nal...)
		}
	}
	return out
}

// AudioDecoderConfig decodes a raw mp4a sample entry with mp4ff and returns
// the decoder configuration of its esds box, also when the box is inside a
// QuickTime wave box. It fails when the entry does not decode as an audio
// sample entry or has no decoder configuration.
func AudioDecoderConfig(e []byte) (*mp4.DecoderConfigDescriptor, error) {
	b, err := decodeMP4(e, 0)
	if err != nil {
		return nil, err
	}
	a, ok := b.(*mp4.AudioSampleEntryBox)
	if !ok {
		return nil, fmt.Errorf("sample entry decoded as %T", b)
	}
	dcd := decoderConfig(a)
	if dcd == nil {
		return nil, errors.New("no esds decoder configuration")
	}
	return dcd, nil
}

// decoderConfig returns the decoder configuration of the esds box of a, or
// of the esds box in its QuickTime wave box; nil if there is none.
func decoderConfig(a *mp4.AudioSampleEntryBox) *mp4.DecoderConfigDescriptor {
	esds := a.Esds
	if esds == nil && a.Wave != nil {
		esds = a.Wave.Esds
	}
	if esds == nil {
		return nil
	}
	return esds.DecConfigDescriptor
}
