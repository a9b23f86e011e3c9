package ts

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/jitstream/jitstream/internal/media"
)

const (
	mask33      = 1<<33 - 1
	payloadSize = PacketSize - 4 // packet payload without adaptation field
	// maxAudioPES is the largest audio PES payload: PES_packet_length
	// counts 8 header bytes after itself.
	maxAudioPES = 0xFFFF - 8
)

// muxer walks a segment's PES packets in output order. Planning and writing
// are the same walk: when planning it only adds up sizes, computed from the
// index; when writing it also fills out, and checks at the end of every PES
// that exactly the planned bytes were written.
type muxer struct {
	seg    *segment
	write  bool
	out    []byte // write mode: the segment so far; capacity is its size
	n      int64  // bytes of the segment so far, including the PES in progress
	cc     [4]byte
	layout Layout

	// The PES in progress (write mode).
	pid  uint16
	cci  int
	left int // PES bytes still to write
	room int // payload bytes left in the current packet
}

// run produces the segment.
func (m *muxer) run() error {
	seg := m.seg
	m.psi()
	psiEnd := m.n // end of the last PAT+PMT pair, if nothing followed
	v, a := seg.video, seg.audio
	var vi, ai, vc, ac int
	if v != nil {
		vi = v.first
		vc = v.t.Samples.Chapter(vi)
	}
	if a != nil {
		ai = a.first
		ac = a.t.Samples.Chapter(ai)
	}
	for {
		videoLeft := v != nil && vi < v.end
		audioLeft := a != nil && ai < a.end
		if !videoLeft && !audioLeft {
			break
		}
		// Video goes first on ties, and the segment starts with its first
		// video sample if that is a keyframe.
		if videoLeft && (!audioLeft || v.dts90(vi) <= a.dts90(ai) || vi == v.first && v.t.Samples.IsSync(vi)) {
			key := v.t.Samples.IsSync(vi)
			start := m.n
			if key {
				if m.n == psiEnd {
					start -= 2 * PacketSize
				} else {
					m.psi()
				}
			}
			vc = v.chapter(vc, vi)
			if err := m.videoPES(v, vi, vc, key); err != nil {
				return fmt.Errorf("ts: track %d sample %d: %w", v.t.ID, vi, err)
			}
			if key {
				m.layout.Keyframes = append(m.layout.Keyframes, Range{Offset: start, Length: m.n - start, Time: v.seconds(vi)})
			}
			vi++
			continue
		}
		next, err := m.audioPES(a, ai, &ac)
		if err != nil {
			return fmt.Errorf("ts: track %d: %w", a.t.ID, err)
		}
		ai = next
	}
	m.layout.Size = m.n
	return nil
}

// psi emits a PAT and a PMT packet.
func (m *muxer) psi() {
	m.n += 2 * PacketSize
	if m.write {
		m.out = append(m.out, m.seg.pat[:]...)
		m.out[len(m.out)-PacketSize+3] |= m.cc[ccPAT]
		m.out = append(m.out, m.seg.pmt[:]...)
		m.out[len(m.out)-PacketSize+3] |= m.cc[ccPMT]
	}
	m.cc[ccPAT] = (m.cc[ccPAT] + 1) & 15
	m.cc[ccPMT] = (m.cc[ccPMT] + 1) & 15
}

// videoPES emits sample i, of chapter c, as one PES.
func (m *muxer) videoPES(s *stream, i, c int, key bool) error {
	cfg := s.videoCfgs[s.entry(c)]
	size := int(s.t.Samples.Size[i])
	n := len(cfg.codec.aud) + size
	if key {
		n += len(cfg.ps)
	}
	dts := s.dts90(i)
	var hdr [19]byte
	h := pesHeader(&hdr, s.streamID, s.pts90(i), dts, n)
	pcr := int64(-1)
	if m.seg.pcr == s {
		pcr = (dts - pcrDelay90) & mask33
	}
	m.beginPES(s, h+n, pcr, key)
	if !m.write {
		return nil
	}
	m.put(hdr[:h])
	if err := m.accessUnit(cfg, key, s.data[i-s.first]); err != nil {
		return err
	}
	return m.endPES()
}

// pcrDelay90 is PCRDelay in 90 kHz ticks.
const pcrDelay90 = int64(PCRDelay / (time.Second / 90000))

// accessUnit writes the Annex B form of a sample (see the package
// documentation), exactly len(aud)+len(data) bytes, plus len(ps) for a
// keyframe.
func (m *muxer) accessUnit(cfg *videoConfig, key bool, data []byte) error {
	codec, ls := cfg.codec, cfg.lengthSize
	// Check the NAL unit structure first, so that nothing is written for a
	// malformed sample, and look at the NAL unit types.
	var types uint64
	leadingAUD := false
	for p, k := data, 0; len(p) > 0; k++ {
		if len(p) < ls {
			return fmt.Errorf("%d trailing bytes, shorter than a NAL unit length: %w: %w", len(p), ErrData, media.ErrInvalid)
		}
		l := nalLen(p, ls)
		switch {
		case l == 0:
			return fmt.Errorf("empty NAL unit at byte %d: %w: %w", len(data)-len(p), ErrData, media.ErrInvalid)
		case l > uint64(len(p)-ls):
			return fmt.Errorf("NAL unit of %d bytes at byte %d overruns the sample of %d bytes: %w: %w", l, len(data)-len(p), len(data), ErrData, media.ErrInvalid)
		}
		t := codec.nalType(p[ls])
		if k == 0 && t == codec.audType {
			leadingAUD = true
		}
		types |= 1 << t
		p = p[ls+int(l):]
	}
	insertPS := key && len(cfg.ps) > 0 && types&cfg.psTypes != cfg.psTypes
	pad := 0
	if leadingAUD {
		pad += len(codec.aud)
	} else {
		m.put(codec.aud)
	}
	if key && !insertPS {
		pad += len(cfg.ps)
	}
	startCode := [4]byte{0, 0, 0, 1}
	for p, k := data, 0; len(p) > 0; k++ {
		l := int(nalLen(p, ls))
		if insertPS && !(k == 0 && leadingAUD) {
			m.put(cfg.ps)
			insertPS = false
		}
		m.put(startCode[4-ls:])
		m.put(p[ls : ls+l])
		p = p[ls+l:]
	}
	if insertPS { // a sample without NAL units, or just a delimiter
		m.put(cfg.ps)
	}
	if pad > 0 {
		m.filler(codec, pad)
	}
	return nil
}

// nalLen reads a big-endian NAL unit length of ls bytes.
func nalLen(p []byte, ls int) uint64 {
	if ls == 4 {
		return uint64(binary.BigEndian.Uint32(p))
	}
	return uint64(p[0])<<16 | uint64(p[1])<<8 | uint64(p[2])
}

// filler writes n bytes of padding: a filler-data NAL unit (0xFF bytes and
// the rbsp stop bit), or, in the unlikely case that n is too small for one,
// zero bytes (trailing_zero_8bits of the Annex B byte stream).
func (m *muxer) filler(codec *videoCodec, n int) {
	if n < codec.fillerMin() {
		var zero [8]byte
		m.put(zero[:n])
		return
	}
	m.put(codec.filler)
	for k := n - codec.fillerMin(); k > 0; {
		c := min(k, len(m.seg.ff))
		m.put(m.seg.ff[:c])
		k -= c
	}
	m.put([]byte{0x80})
}

// audioPES emits the audio samples from i on that go into one PES, and
// returns the index of the next sample. *c is the chapter cursor.
func (m *muxer) audioPES(s *stream, i int, c *int) (int, error) {
	smp := &s.t.Samples
	for i < s.end && smp.Size[i] == 0 {
		i++
	}
	if i == s.end {
		return i, nil
	}
	// Frames join the group while they last at most AudioPESDuration and
	// while their times are those that a player infers from the first
	// frame's PTS and the ADTS frame length (1024 samples at the ADTS
	// sampling rate), within a tick.
	cj := s.chapter(*c, i)
	cfg := s.audioCfgs[s.entry(cj)]
	pts0 := s.pts90(i)
	j, payload, frames := i, 0, 0
	for ; j < s.end; j++ {
		size := int(smp.Size[j])
		if size > maxADTSPayload {
			return 0, fmt.Errorf("sample %d: AAC frame of %d bytes is too large for ADTS: %w", j, size, media.ErrInvalid)
		}
		if size == 0 {
			continue
		}
		fl := size + 7
		if j > i {
			cj = s.chapter(cj, j)
			want := pts0 + (int64(frames)*1024*90000+int64(cfg.rate)/2)/int64(cfg.rate)
			if d := s.pts90(j) - want; d < -1 || d > 1 ||
				s.audioCfgs[s.entry(cj)] != cfg ||
				smp.DTS[j]+int64(smp.Dur[j])-smp.DTS[i] > s.groupTicks ||
				payload+fl > maxAudioPES {
				break
			}
		}
		payload += fl
		frames++
	}
	dts := s.dts90(i)
	var hdr [19]byte
	h := pesHeader(&hdr, s.streamID, pts0, pts0, payload)
	pcr := int64(-1)
	if m.seg.pcr == s {
		pcr = (dts - pcrDelay90) & mask33
	}
	m.beginPES(s, h+payload, pcr, true)
	if !m.write {
		return j, nil
	}
	m.put(hdr[:h])
	var adts [7]byte
	for k := i; k < j; k++ {
		d := s.data[k-s.first]
		if len(d) == 0 {
			continue
		}
		*c = s.chapter(*c, k)
		s.audioCfgs[s.entry(*c)].header(&adts, len(d))
		m.put(adts[:])
		m.put(d)
	}
	if err := m.endPES(); err != nil {
		return 0, fmt.Errorf("samples %d to %d: %w", i, j-1, err)
	}
	return j, nil
}

// pesHeader writes a PES header for a payload of n bytes into h and returns
// its length. The DTS is written only when it differs from the PTS.
func pesHeader(h *[19]byte, streamID byte, pts, dts int64, n int) int {
	hl := 5
	if dts != pts {
		hl = 10
	}
	l := 3 + hl + n // PES_packet_length: bytes after the field
	if l > 0xFFFF {
		l = 0 // unbounded, allowed for video
	}
	h[0], h[1], h[2], h[3] = 0, 0, 1, streamID
	h[4], h[5] = byte(l>>8), byte(l)
	h[6] = 0x84 // '10', data_alignment_indicator
	if hl == 10 {
		h[7] = 0xC0 // PTS and DTS
		putTimestamp(h[9:], 0x3, pts)
		putTimestamp(h[14:], 0x1, dts)
	} else {
		h[7] = 0x80 // PTS only
		putTimestamp(h[9:], 0x2, pts)
	}
	h[8] = byte(hl)
	return 9 + hl
}

// putTimestamp writes a 33-bit PTS or DTS with its 4-bit prefix and marker
// bits.
func putTimestamp(b []byte, prefix byte, t int64) {
	t &= mask33
	b[0] = prefix<<4 | byte(t>>29)&0x0E | 1
	b[1] = byte(t >> 22)
	b[2] = byte(t>>14)&0xFE | 1
	b[3] = byte(t >> 7)
	b[4] = byte(t<<1) | 1
}

// beginPES accounts for (and when writing, starts) a PES of total bytes on
// stream s. pcr >= 0 (33 bits) puts a PCR into the first packet; rai sets its
// random_access_indicator.
func (m *muxer) beginPES(s *stream, total int, pcr int64, rai bool) {
	af := 0 // adaptation field size of the first packet
	switch {
	case pcr >= 0:
		af = 8 // length, flags, PCR
	case rai:
		af = 2 // length, flags
	}
	packets := 1
	if room := payloadSize - af; total > room {
		packets += (total - room + payloadSize - 1) / payloadSize
	} else {
		af = payloadSize - total // stuffing in the only packet
	}
	m.n += int64(packets) * PacketSize
	if !m.write {
		m.cc[s.cc] = byte((int(m.cc[s.cc]) + packets) & 15)
		return
	}
	m.pid, m.cci, m.left = s.pid, s.cc, total
	m.header(true, af)
	if af > 0 {
		flags := byte(0)
		if rai {
			flags |= 0x40
		}
		if pcr >= 0 {
			flags |= 0x10
		}
		m.adaptation(af, flags, pcr)
	}
	m.room = payloadSize - af
}

// header appends a packet header for the PES in progress.
func (m *muxer) header(start bool, af int) {
	b1 := byte(m.pid>>8) & 0x1F
	if start {
		b1 |= 0x40
	}
	ctl := byte(0x10) // payload only
	if af > 0 {
		ctl = 0x30
	}
	m.out = append(m.out, 0x47, b1, byte(m.pid), ctl|m.cc[m.cci])
	m.cc[m.cci] = (m.cc[m.cci] + 1) & 15
}

// adaptation appends an adaptation field of size bytes (its length byte
// included) with the given flags, a PCR if pcr >= 0, and stuffing.
func (m *muxer) adaptation(size int, flags byte, pcr int64) {
	m.out = append(m.out, byte(size-1))
	if size == 1 {
		return
	}
	m.out = append(m.out, flags)
	used := 2
	if pcr >= 0 {
		m.out = append(m.out, byte(pcr>>25), byte(pcr>>17), byte(pcr>>9), byte(pcr>>1), byte(pcr<<7)|0x7E, 0)
		used += 6
	}
	m.out = append(m.out, m.seg.ff[:size-used]...)
}

// put writes PES bytes, starting packets as needed; the last packet of the
// PES gets adaptation-field stuffing so that the PES ends with it.
func (m *muxer) put(b []byte) {
	for len(b) > 0 && m.left > 0 {
		if m.room == 0 {
			af := 0
			if m.left < payloadSize {
				af = payloadSize - m.left
			}
			m.header(false, af)
			if af > 0 {
				m.adaptation(af, 0, -1)
			}
			m.room = payloadSize - af
		}
		k := min(len(b), m.room, m.left)
		m.out = append(m.out, b[:k]...)
		m.room -= k
		m.left -= k
		b = b[k:]
	}
	if len(b) > 0 {
		m.left = -1 // overrun, reported by endPES
	}
}

// endPES checks that the PES in progress was written as planned.
func (m *muxer) endPES() error {
	if m.left != 0 || m.room != 0 || int64(len(m.out)) != m.n {
		return fmt.Errorf("ts: internal error: PES written with %d bytes left, %d bytes of room, at %d of %d", m.left, m.room, len(m.out), m.n)
	}
	return nil
}
