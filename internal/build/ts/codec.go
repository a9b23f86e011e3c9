package ts

import (
	"encoding/binary"
	"fmt"

	"github.com/jitstream/jitstream/internal/media"
)

// MPEG-2 stream types of the supported codecs.
const (
	streamTypeAAC  = 0x0F // ISO/IEC 13818-7 audio with ADTS transport syntax
	streamTypeH264 = 0x1B
	streamTypeH265 = 0x24
)

// NAL unit types that the muxer inserts or looks for.
const (
	h264AUD    = 9
	h264SPS    = 7
	h264PPS    = 8
	h264Filler = 12

	h265VPS    = 32
	h265SPS    = 33
	h265PPS    = 34
	h265AUD    = 35
	h265Filler = 38
)

// videoCodec holds what differs between H.264 and H.265 in the muxer.
type videoCodec struct {
	name       string
	hevc       bool
	streamType byte
	aud        []byte // Annex B access unit delimiter, start code included
	audType    byte
	filler     []byte // Annex B filler-data NAL unit header, start code included
}

// newVideoCodec returns the codec of a video sample entry format, or nil.
func newVideoCodec(format string) *videoCodec {
	switch format {
	case "avc1", "avc3":
		return &videoCodec{
			name:       "H.264",
			streamType: streamTypeH264,
			// primary_pic_type 7 (any slice type), rbsp stop bit.
			aud:     []byte{0, 0, 0, 1, h264AUD, 0xF0},
			audType: h264AUD,
			filler:  []byte{0, 0, 0, 1, h264Filler},
		}
	case "hvc1", "hev1":
		return &videoCodec{
			name:       "H.265",
			hevc:       true,
			streamType: streamTypeH265,
			// nuh_layer_id 0, nuh_temporal_id_plus1 1; pic_type 2 (B, P
			// or I slices), rbsp stop bit.
			aud:     []byte{0, 0, 0, 1, h265AUD << 1, 0x01, 0x50},
			audType: h265AUD,
			filler:  []byte{0, 0, 0, 1, h265Filler << 1, 0x01},
		}
	}
	return nil
}

// nalType is the type of the NAL unit whose header starts with b.
func (c *videoCodec) nalType(b byte) byte {
	if c.hevc {
		return b >> 1 & 0x3F
	}
	return b & 0x1F
}

// fillerMin is the size of the smallest filler-data NAL unit: header and
// the rbsp trailing byte.
func (c *videoCodec) fillerMin() int { return len(c.filler) + 1 }

// videoConfig is what the muxer needs of a video sample entry.
type videoConfig struct {
	codec      *videoCodec
	lengthSize int    // NAL unit length field size, 3 or 4
	ps         []byte // parameter sets in Annex B form (4-byte start codes)
	psTypes    uint64 // bit t set: ps holds a NAL unit of type t
}

// entryFormat is the four-character type of a raw sample entry.
func entryFormat(e []byte) string {
	if len(e) < 8 {
		return ""
	}
	return string(e[4:8])
}

// childBox returns the payload of the first child box of type typ in b, a
// sequence of boxes.
func childBox(b []byte, typ string) ([]byte, bool) {
	for len(b) >= 8 {
		n := uint64(binary.BigEndian.Uint32(b))
		hdr := uint64(8)
		switch n {
		case 0:
			n = uint64(len(b))
		case 1:
			if len(b) < 16 {
				return nil, false
			}
			n, hdr = binary.BigEndian.Uint64(b[8:]), 16
		}
		if n < hdr || n > uint64(len(b)) {
			return nil, false
		}
		if string(b[4:8]) == typ {
			return b[hdr:n], true
		}
		b = b[n:]
	}
	return nil, false
}

// parseVideoEntry reads the codec configuration of a video sample entry.
func parseVideoEntry(e []byte) (*videoConfig, error) {
	format := entryFormat(e)
	codec := newVideoCodec(format)
	if codec == nil {
		return nil, fmt.Errorf("video codec %q cannot be carried in MPEG-2 TS (supported: avc1, avc3, hvc1, hev1): %w", format, media.ErrUnsupported)
	}
	if len(e) < media.VisualEntrySize {
		return nil, fmt.Errorf("%s sample entry of %d bytes is too short: %w", format, len(e), media.ErrInvalid)
	}
	kids := e[media.VisualEntrySize:]
	var (
		cfg *videoConfig
		err error
	)
	if !codec.hevc {
		c, ok := childBox(kids, "avcC")
		if !ok {
			return nil, fmt.Errorf("%s sample entry has no avcC box: %w", format, media.ErrInvalid)
		}
		cfg, err = parseAvcC(c)
	} else {
		c, ok := childBox(kids, "hvcC")
		if !ok {
			return nil, fmt.Errorf("%s sample entry has no hvcC box: %w", format, media.ErrInvalid)
		}
		cfg, err = parseHvcC(c)
	}
	if err != nil {
		return nil, fmt.Errorf("%s sample entry: %w: %w", format, err, media.ErrInvalid)
	}
	cfg.codec = codec
	if cfg.lengthSize < 3 {
		return nil, fmt.Errorf("%s sample entry: NAL unit length size %d is not supported (3 or 4 only): %w", format, cfg.lengthSize, media.ErrUnsupported)
	}
	return cfg, nil
}

// configReader reads a codec configuration record.
type configReader struct {
	b   []byte
	err error
}

func (r *configReader) u8() int {
	if len(r.b) < 1 {
		r.err = fmt.Errorf("truncated")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return int(v)
}

func (r *configReader) u16() int { return r.u8()<<8 | r.u8() }

func (r *configReader) bytes(n int) []byte {
	if len(r.b) < n {
		r.err = fmt.Errorf("truncated")
		r.b = nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// addPS appends a parameter-set NAL unit to cfg in Annex B form.
func (cfg *videoConfig) addPS(nal []byte, typ byte) error {
	if len(nal) == 0 {
		return fmt.Errorf("empty parameter set")
	}
	cfg.ps = append(cfg.ps, 0, 0, 0, 1)
	cfg.ps = append(cfg.ps, nal...)
	cfg.psTypes |= 1 << typ
	return nil
}

// parseAvcC reads an AVCDecoderConfigurationRecord (ISO/IEC 14496-15
// 5.3.3.1): the NAL length size and the SPS and PPS.
func parseAvcC(b []byte) (*videoConfig, error) {
	c, err := media.ParseAVCConfig(b)
	if err != nil {
		return nil, fmt.Errorf("avcC: %w", err)
	}
	cfg := &videoConfig{lengthSize: c.LengthSize}
	for _, ps := range []struct {
		typ  byte
		nals [][]byte
	}{{h264SPS, c.SPS}, {h264PPS, c.PPS}} {
		for _, nal := range ps.nals {
			if err := cfg.addPS(nal, ps.typ); err != nil {
				return nil, fmt.Errorf("avcC: %w", err)
			}
		}
	}
	return cfg, nil
}

// parseHvcC reads an HEVCDecoderConfigurationRecord (ISO/IEC 14496-15
// 8.3.3.1): the NAL length size and the VPS, SPS and PPS, in that order.
// Other arrays (SEI) are not repeated in the stream.
func parseHvcC(b []byte) (*videoConfig, error) {
	r := &configReader{b: b}
	r.bytes(21)
	cfg := &videoConfig{lengthSize: r.u8()&3 + 1}
	byType := map[byte][][]byte{}
	arrays := r.u8()
	for range arrays {
		typ := byte(r.u8() & 0x3F)
		n := r.u16()
		for range n {
			nal := r.bytes(r.u16())
			if r.err != nil {
				break
			}
			byType[typ] = append(byType[typ], nal)
		}
	}
	if r.err != nil {
		return nil, fmt.Errorf("hvcC: %w", r.err)
	}
	for _, typ := range []byte{h265VPS, h265SPS, h265PPS} {
		for _, nal := range byType[typ] {
			if err := cfg.addPS(nal, typ); err != nil {
				return nil, fmt.Errorf("hvcC: %w", err)
			}
		}
	}
	return cfg, nil
}

// adtsConfig is what the muxer needs of an AAC sample entry: the fixed
// part of the ADTS header.
type adtsConfig struct {
	profile    byte // audio object type - 1
	freqIndex  byte
	channelCfg byte
	rate       int // sampling rate of freqIndex, Hz
}

// header writes the 7-byte ADTS header (no CRC) of a frame of n raw bytes.
func (a *adtsConfig) header(h *[7]byte, n int) {
	l := n + 7
	h[0] = 0xFF
	h[1] = 0xF1 // MPEG-4, layer 0, no CRC
	h[2] = a.profile<<6 | a.freqIndex<<2 | a.channelCfg>>2
	h[3] = a.channelCfg&3<<6 | byte(l>>11)&3
	h[4] = byte(l >> 3)
	h[5] = byte(l&7)<<5 | 0x1F // buffer fullness 0x7FF: variable rate
	h[6] = 0xFC
}

// maxADTSPayload is the largest raw AAC frame an ADTS header can describe.
const maxADTSPayload = 1<<13 - 1 - 7

// parseAudioEntry reads the AudioSpecificConfig of an mp4a sample entry.
func parseAudioEntry(e []byte) (cfg *adtsConfig, err error) {
	format := entryFormat(e)
	if format != "mp4a" {
		return nil, fmt.Errorf("audio codec %q cannot be carried in MPEG-2 TS (supported: AAC in mp4a): %w", format, media.ErrUnsupported)
	}
	if len(e) < media.AudioEntrySize {
		return nil, fmt.Errorf("mp4a sample entry of %d bytes is too short: %w", len(e), media.ErrInvalid)
	}
	dcd, err := media.AudioDecoderConfig(e)
	if err != nil {
		return nil, fmt.Errorf("mp4a sample entry: %w: %w", err, media.ErrInvalid)
	}
	switch dcd.ObjectType {
	case 0x40, 0x66, 0x67, 0x68: // MPEG-4 audio, MPEG-2 AAC Main/LC/SSR
	default:
		return nil, fmt.Errorf("mp4a object type 0x%02x is not AAC: %w", dcd.ObjectType, media.ErrUnsupported)
	}
	if dcd.DecSpecificInfo == nil || len(dcd.DecSpecificInfo.DecConfig) == 0 {
		return nil, fmt.Errorf("mp4a sample entry has no AudioSpecificConfig: %w", media.ErrInvalid)
	}
	return parseASC(dcd.DecSpecificInfo.DecConfig)
}

// parseASC reads the leading fields of an AudioSpecificConfig (ISO/IEC
// 14496-3 1.6.2.1). For explicitly signalled HE-AAC (object types 5 and 29)
// the ADTS header describes the AAC-LC core at the core sampling rate.
func parseASC(b []byte) (*adtsConfig, error) {
	var v uint64
	for i := range 8 {
		v <<= 8
		if i < len(b) {
			v |= uint64(b[i])
		}
	}
	nbits := 8 * len(b)
	pos := 0
	read := func(n int) int {
		x := int(v >> (64 - pos - n) & (1<<n - 1))
		pos += n
		return x
	}
	aot := read(5)
	if aot == 31 {
		aot = 32 + read(6)
	}
	freq := read(4)
	if freq == 15 {
		return nil, fmt.Errorf("AudioSpecificConfig: explicit sampling frequency cannot be signalled in ADTS: %w", media.ErrUnsupported)
	}
	ch := read(4)
	if aot == 5 || aot == 29 {
		if read(4) == 15 { // extension sampling frequency index
			read(24)
		}
		aot = read(5)
	}
	if pos > nbits {
		return nil, fmt.Errorf("AudioSpecificConfig of %d bytes is truncated: %w", len(b), media.ErrInvalid)
	}
	if aot < 1 || aot > 4 {
		return nil, fmt.Errorf("AAC audio object type %d cannot be signalled in ADTS (1 to 4 only): %w", aot, media.ErrUnsupported)
	}
	if freq > 12 {
		return nil, fmt.Errorf("AudioSpecificConfig: reserved sampling frequency index %d: %w", freq, media.ErrInvalid)
	}
	if ch < 1 || ch > 7 {
		return nil, fmt.Errorf("AAC channel configuration %d cannot be signalled in ADTS (1 to 7 only): %w", ch, media.ErrUnsupported)
	}
	rates := [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}
	return &adtsConfig{profile: byte(aot - 1), freqIndex: byte(freq), channelCfg: byte(ch), rate: rates[freq]}, nil
}
