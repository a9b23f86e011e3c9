package ts

import (
	"fmt"
	"time"

	"github.com/jitstream/jitstream/internal/media"
)

// Indexes of the continuity counters in muxer.cc.
const (
	ccPAT = iota
	ccPMT
	ccVideo
	ccAudio
)

// PES stream IDs.
const (
	streamIDVideo = 0xE0
	streamIDAudio = 0xC0
)

// stream is one elementary stream of a segment.
type stream struct {
	t          *media.Track
	first, end int
	data       [][]byte // nil when planning
	pid        uint16
	cc         int // index into muxer.cc
	streamID   byte
	streamType byte
	video      *videoConfig   // first entry in use, video only
	videoCfgs  []*videoConfig // by sample entry index - 1, for the entries in use
	audioCfgs  []*adtsConfig  // likewise, audio only
	offset90   int64          // Options.Offset in 90 kHz ticks
	dtsShift   int64          // largest negative composition offset, track timescale
	groupTicks int64          // AudioPESDuration in the track timescale
	hasSamples bool
}

// segment is everything the muxer needs, checked and prepared once for
// both the planning and the writing pass.
type segment struct {
	video, audio *stream
	pcr          *stream // stream whose PES carry the PCR
	pat, pmt     [PacketSize]byte
	ff           [PacketSize]byte // 0xFF bytes for stuffing
}

// newSegment checks the inputs and prepares the streams. With needData it
// also checks that every muxed sample has data of the indexed size.
func newSegment(ix *media.Index, in []Input, opt Options, needData bool) (*segment, error) {
	if ix == nil {
		return nil, fmt.Errorf("ts: nil index")
	}
	offset := opt.Offset
	if offset == 0 {
		offset = DefaultOffset
	}
	offset90 := floorDiv(int64(offset)*9, int64(time.Second/10000))
	seg := &segment{}
	for k := range in {
		inp := &in[k]
		if inp.Track == nil {
			return nil, fmt.Errorf("ts: input %d has no track", k)
		}
		var slot **stream
		switch inp.Track.Kind {
		case media.KindVideo:
			slot = &seg.video
		case media.KindAudio:
			slot = &seg.audio
		default:
			continue
		}
		if *slot != nil {
			continue // only the first video and the first audio input
		}
		s, err := newStream(ix, inp, offset90, needData)
		if err != nil {
			return nil, fmt.Errorf("ts: input %d (track %d, %s): %w", k, inp.Track.ID, inp.Track.Kind, err)
		}
		*slot = s
	}
	if seg.video == nil && seg.audio == nil {
		return nil, fmt.Errorf("ts: no video or audio input")
	}
	if (seg.video == nil || !seg.video.hasSamples) && (seg.audio == nil || !seg.audio.hasSamples) {
		return nil, fmt.Errorf("ts: no samples to mux")
	}
	switch {
	case seg.video != nil && seg.video.hasSamples:
		seg.pcr = seg.video
	default:
		seg.pcr = seg.audio
	}
	for i := range seg.ff {
		seg.ff[i] = 0xFF
	}
	seg.buildPSI()
	return seg, nil
}

// newStream checks one input and prepares its stream.
func newStream(ix *media.Index, in *Input, offset90 int64, needData bool) (*stream, error) {
	t := in.Track
	found := false
	for _, x := range ix.Tracks {
		found = found || x == t
	}
	if !found {
		return nil, fmt.Errorf("track is not in the index")
	}
	smp := &t.Samples
	n := smp.Len()
	if in.First < 0 || in.End < in.First || in.End > n {
		return nil, fmt.Errorf("samples [%d, %d) out of range [0, %d)", in.First, in.End, n)
	}
	if t.Timescale == 0 {
		return nil, fmt.Errorf("zero timescale: %w", media.ErrInvalid)
	}
	if len(smp.DTS) != n+1 || len(smp.ChapterStart) < 2 || len(smp.ChapterDesc) != len(smp.ChapterStart)-1 {
		return nil, fmt.Errorf("sample table not derived or chapter table malformed: %w", media.ErrInvalid)
	}
	s := &stream{
		t:          t,
		first:      in.First,
		end:        in.End,
		offset90:   offset90,
		hasSamples: in.End > in.First,
		groupTicks: int64(AudioPESDuration) * int64(t.Timescale) / int64(time.Second),
	}
	if needData {
		if len(in.Data) != in.End-in.First {
			return nil, fmt.Errorf("%d data slices for %d samples: %w: %w", len(in.Data), in.End-in.First, ErrData, media.ErrInvalid)
		}
		for i, d := range in.Data {
			if len(d) != int(smp.Size[in.First+i]) {
				return nil, fmt.Errorf("sample %d: %d bytes of data, index says %d: %w: %w",
					in.First+i, len(d), smp.Size[in.First+i], ErrData, media.ErrInvalid)
			}
		}
		s.data = in.Data
	}
	for _, c := range smp.CTO {
		s.dtsShift = max(s.dtsShift, -int64(c))
	}

	// The sample entries in use: those of the chapters that the samples
	// span, or of the chapter at First when there are none.
	c0, c1 := 0, 0
	switch {
	case in.End > in.First:
		c0, c1 = smp.Chapter(in.First), smp.Chapter(in.End-1)
	case n > 0:
		c0 = smp.Chapter(min(in.First, n-1))
		c1 = c0
	}
	entries := len(t.SampleEntries)
	for c := c0; c <= c1; c++ {
		d := int(smp.ChapterDesc[c])
		if d < 1 || d > entries {
			return nil, fmt.Errorf("chapter %d uses sample entry %d of %d: %w", c+1, d, entries, media.ErrInvalid)
		}
		if err := s.addEntry(t.Kind, d-1, t.SampleEntries[d-1]); err != nil {
			return nil, fmt.Errorf("sample entry %d (chapter %d): %w", d, c+1, err)
		}
	}
	if s.streamType == 0 {
		return nil, fmt.Errorf("no sample entry in use: %w", media.ErrInvalid)
	}
	return s, nil
}

// addEntry parses sample entry k (0-based) and checks that it fits the
// stream.
func (s *stream) addEntry(kind media.Kind, k int, e []byte) error {
	switch kind {
	case media.KindVideo:
		if s.videoCfgs == nil {
			s.videoCfgs = make([]*videoConfig, len(s.t.SampleEntries))
		}
		if s.videoCfgs[k] != nil {
			return nil
		}
		cfg, err := parseVideoEntry(e)
		if err != nil {
			return err
		}
		if s.video == nil {
			s.video = cfg
			s.pid, s.cc, s.streamID, s.streamType = PIDVideo, ccVideo, streamIDVideo, cfg.codec.streamType
		} else if cfg.codec.streamType != s.streamType {
			return fmt.Errorf("%s after %s in one segment: %w", cfg.codec.name, s.video.codec.name, media.ErrUnsupported)
		}
		s.videoCfgs[k] = cfg
	default:
		if s.audioCfgs == nil {
			s.audioCfgs = make([]*adtsConfig, len(s.t.SampleEntries))
		}
		if s.audioCfgs[k] != nil {
			return nil
		}
		cfg, err := parseAudioEntry(e)
		if err != nil {
			return err
		}
		s.pid, s.cc, s.streamID, s.streamType = PIDAudio, ccAudio, streamIDAudio, streamTypeAAC
		s.audioCfgs[k] = cfg
	}
	return nil
}

// chapter advances the chapter cursor c to the chapter of sample i, which
// must not precede it, and returns it.
func (s *stream) chapter(c, i int) int {
	cs := s.t.Samples.ChapterStart
	for c+2 < len(cs) && i >= cs[c+1] {
		c++
	}
	return c
}

// entry returns the 0-based sample entry index of chapter c.
func (s *stream) entry(c int) int { return int(s.t.Samples.ChapterDesc[c]) - 1 }

// pts90 is the presentation time of sample i in 90 kHz ticks (see the
// package documentation), not yet wrapped to 33 bits.
func (s *stream) pts90(i int) int64 {
	smp := &s.t.Samples
	return s.offset90 + rescale90(smp.DTS[i]+int64(smp.CompOffset(i))-s.t.MediaTime, s.t.Timescale)
}

// dts90 is the decode time of sample i in 90 kHz ticks.
func (s *stream) dts90(i int) int64 {
	return s.offset90 + rescale90(s.t.Samples.DTS[i]-s.t.MediaTime-s.dtsShift, s.t.Timescale)
}

// seconds is the presentation time of sample i on the asset timeline.
func (s *stream) seconds(i int) float64 {
	smp := &s.t.Samples
	return float64(smp.DTS[i]+int64(smp.CompOffset(i))-s.t.MediaTime) / float64(s.t.Timescale)
}

// rescale90 converts t from timescale ts to 90 kHz, rounding down (also for
// negative t), without overflow on long timelines.
func rescale90(t int64, ts uint32) int64 {
	q := floorDiv(t, int64(ts))
	rem := t - q*int64(ts)
	return q*90000 + rem*90000/int64(ts)
}

// floorDiv is a/b rounded towards negative infinity, for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// buildPSI writes the PAT and PMT packets (continuity counter 0).
func (seg *segment) buildPSI() {
	// PAT: program 1 -> PMT PID.
	pat := []byte{
		0x00,       // table_id
		0xB0, 0x0D, // section_syntax_indicator, section_length 13
		0x00, 0x01, // transport_stream_id
		0xC1,       // version 0, current_next_indicator
		0x00, 0x00, // section_number, last_section_number
		0x00, 0x01, // program_number 1
		0xE0 | PIDPMT>>8, PIDPMT & 0xFF,
	}
	seg.pat = psiPacket(PIDPAT, pat)

	pcrPID := uint16(0x1FFF)
	if seg.pcr != nil {
		pcrPID = seg.pcr.pid
	}
	pmt := []byte{
		0x02,       // table_id
		0xB0, 0x00, // section_length, set below
		0x00, 0x01, // program_number 1
		0xC1,       // version 0, current_next_indicator
		0x00, 0x00, // section_number, last_section_number
		0xE0 | byte(pcrPID>>8), byte(pcrPID),
		0xF0, 0x00, // program_info_length 0
	}
	for _, s := range []*stream{seg.video, seg.audio} {
		if s == nil {
			continue
		}
		var info []byte
		if l := s.t.Language; s == seg.audio && len(l) == 3 && l != "und" {
			// ISO_639_language_descriptor, audio_type undefined.
			info = []byte{0x0A, 4, l[0], l[1], l[2], 0}
		}
		pmt = append(pmt, s.streamType, 0xE0|byte(s.pid>>8), byte(s.pid), 0xF0, byte(len(info)))
		pmt = append(pmt, info...)
	}
	n := len(pmt) - 3 + 4 // after section_length, CRC included
	pmt[1] = 0xB0 | byte(n>>8)
	pmt[2] = byte(n)
	seg.pmt = psiPacket(PIDPMT, pmt)
}

// psiPacket makes the packet of a PSI section (without its CRC, which it
// appends), continuity counter 0.
func psiPacket(pid uint16, section []byte) [PacketSize]byte {
	var p [PacketSize]byte
	p[0] = 0x47
	p[1] = 0x40 | byte(pid>>8) // payload_unit_start_indicator
	p[2] = byte(pid)
	p[3] = 0x10 // payload only
	p[4] = 0    // pointer_field
	n := copy(p[5:], section)
	crc := crc32MPEG2(section)
	p[5+n] = byte(crc >> 24)
	p[6+n] = byte(crc >> 16)
	p[7+n] = byte(crc >> 8)
	p[8+n] = byte(crc)
	for i := 9 + n; i < PacketSize; i++ {
		p[i] = 0xFF
	}
	return p
}

// crc32MPEG2 is the CRC of PSI sections (ISO/IEC 13818-1 annex A):
// polynomial 0x04C11DB7, initial value 0xFFFFFFFF, no reflection, no final
// XOR.
func crc32MPEG2(b []byte) uint32 {
	crc := uint32(0xFFFFFFFF)
	for _, x := range b {
		crc ^= uint32(x) << 24
		for range 8 {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ 0x04C11DB7
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
