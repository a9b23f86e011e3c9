package ts

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/testutil/mediatest"
)

// segmentInputs returns the inputs of segment k of segs for the first video
// and first audio track of ix: the samples decoded in the segment's span;
// the last segment takes every remaining sample, with their Data.
func segmentInputs(tb testing.TB, ix *media.Index, segs []media.Segment, k int) []Input {
	tb.Helper()
	ref := ix.Reference()
	var in []Input
	for _, t := range []*media.Track{ix.Video(), ix.Audio()} {
		if t == nil {
			continue
		}
		first, end := t.SampleSpan(segs[k].Start, segs[k].End, ref.Timescale)
		if k == len(segs)-1 {
			end = t.Samples.Len()
		}
		in = append(in, Input{Track: t, First: first, End: end, Data: mediatest.Samples(tb, ix, t, first, end)})
	}
	return in
}

// pes is one PES packet found by demux.
type pes struct {
	pid        uint16
	start, end int64 // byte range of its TS packets
	pts, dts   int64 // dts == pts when the header has no DTS
	hasDTS     bool
	pcr        int64 // PCR base in the first packet, -1 if none
	rai        bool
	payload    []byte
}

// demuxed is a transport stream checked and taken apart by demux.
type demuxed struct {
	pes      []pes
	psiAt    []int64 // offsets of PAT packets (each followed by a PMT)
	pmt      []byte  // the PMT section
	packets  int
	streams  map[uint16]byte // PID -> stream_type
	pcrPID   uint16
	ccJumped bool
}

// demux parses a transport stream made by this package, checking packet
// structure, continuity counters (from 0 per PID), PSI CRCs, PES lengths and
// that PES packets of a PID are contiguous.
func demux(b []byte) (*demuxed, error) { return demuxFrom(b, true) }

// demuxFrom is demux; with ccFromZero the continuity counter of each PID
// must start at 0.
func demuxFrom(b []byte, ccFromZero bool) (*demuxed, error) {
	if len(b)%PacketSize != 0 {
		return nil, fmt.Errorf("size %d is not a multiple of %d", len(b), PacketSize)
	}
	d := &demuxed{streams: map[uint16]byte{}}
	cc := map[uint16]int{}
	open := map[uint16]*pes{}
	var cur *pes // the PES whose packets are being read
	finish := func(p *pes) error {
		if len(p.payload) < 9 || !bytes.Equal(p.payload[:3], []byte{0, 0, 1}) {
			return fmt.Errorf("PES at %d: bad start", p.start)
		}
		h := p.payload
		l := int(h[4])<<8 | int(h[5])
		if l != 0 && l != len(h)-6 {
			return fmt.Errorf("PES at %d: PES_packet_length %d, have %d", p.start, l, len(h)-6)
		}
		flags, hl := h[7], int(h[8])
		if len(h) < 9+hl {
			return fmt.Errorf("PES at %d: short header", p.start)
		}
		ts := func(b []byte) int64 {
			return int64(b[0]>>1&7)<<30 | int64(b[1])<<22 | int64(b[2]>>1)<<15 | int64(b[3])<<7 | int64(b[4]>>1)
		}
		if flags&0x80 == 0 {
			return fmt.Errorf("PES at %d: no PTS", p.start)
		}
		p.pts = ts(h[9:])
		p.dts = p.pts
		if flags&0x40 != 0 {
			p.hasDTS = true
			p.dts = ts(h[14:])
		}
		p.payload = h[9+hl:]
		d.pes = append(d.pes, *p)
		return nil
	}
	for off := 0; off < len(b); off += PacketSize {
		pk := b[off : off+PacketSize]
		d.packets++
		if pk[0] != 0x47 {
			return nil, fmt.Errorf("packet at %d: sync byte 0x%02x", off, pk[0])
		}
		pusi := pk[1]&0x40 != 0
		pid := uint16(pk[1]&0x1F)<<8 | uint16(pk[2])
		ctl := pk[3] >> 4 & 3
		c := int(pk[3] & 15)
		if want, ok := cc[pid]; !ok && ccFromZero && c != 0 || ok && c != want {
			return nil, fmt.Errorf("packet at %d, PID 0x%x: continuity counter %d, want %d", off, pid, c, want)
		}
		cc[pid] = (c + 1) & 15
		payload := pk[4:]
		pcr, rai := int64(-1), false
		if ctl&2 != 0 {
			l := int(payload[0])
			if l > 183 {
				return nil, fmt.Errorf("packet at %d: adaptation field length %d", off, l)
			}
			af := payload[1 : 1+l]
			if l > 0 {
				rai = af[0]&0x40 != 0
				if af[0]&0x10 != 0 {
					pcr = int64(af[1])<<25 | int64(af[2])<<17 | int64(af[3])<<9 | int64(af[4])<<1 | int64(af[5]>>7)
				}
				for i := 1; i < l; i++ {
					if pcr >= 0 && i < 7 {
						continue
					}
					if af[i] != 0xFF {
						return nil, fmt.Errorf("packet at %d: stuffing byte 0x%02x", off, af[i])
					}
				}
			}
			payload = payload[1+l:]
		}
		if ctl&1 == 0 {
			return nil, fmt.Errorf("packet at %d: no payload", off)
		}
		if cur != nil && (cur.pid != pid || pusi) {
			if l := int(cur.payload[4])<<8 | int(cur.payload[5]); l != 0 && len(cur.payload) < l+6 {
				return nil, fmt.Errorf("packet at %d (PID 0x%x) interrupts the PES at %d", off, pid, cur.start)
			}
			cur = nil
		}
		switch pid {
		case PIDPAT, PIDPMT:
			if !pusi || payload[0] != 0 {
				return nil, fmt.Errorf("packet at %d: PSI without pointer field 0", off)
			}
			sec := payload[1:]
			n := 3 + (int(sec[1]&0x0F)<<8 | int(sec[2]))
			if crc32MPEG2(sec[:n]) != 0 {
				return nil, fmt.Errorf("packet at %d: PSI CRC mismatch", off)
			}
			if pid == PIDPAT {
				if sec[0] != 0 || int(sec[10]&0x1F)<<8|int(sec[11]) != PIDPMT {
					return nil, fmt.Errorf("PAT at %d does not point at PID 0x1000", off)
				}
				d.psiAt = append(d.psiAt, int64(off))
				continue
			}
			if off == 0 || int(b[off-PacketSize+1]&0x1F)<<8|int(b[off-PacketSize+2]) != PIDPAT {
				return nil, fmt.Errorf("PMT at %d does not follow a PAT", off)
			}
			d.pmt = append([]byte(nil), sec[:n]...)
			d.pcrPID = uint16(sec[8]&0x1F)<<8 | uint16(sec[9])
			pil := int(sec[10]&0x0F)<<8 | int(sec[11])
			for es := sec[12+pil : n-4]; len(es) >= 5; {
				epid := uint16(es[1]&0x1F)<<8 | uint16(es[2])
				d.streams[epid] = es[0]
				il := int(es[3]&0x0F)<<8 | int(es[4])
				es = es[5+il:]
			}
			continue
		}
		if _, ok := d.streams[pid]; !ok {
			return nil, fmt.Errorf("packet at %d: PID 0x%x not in the PMT", off, pid)
		}
		if pusi {
			if p := open[pid]; p != nil {
				if err := finish(p); err != nil {
					return nil, err
				}
			}
			p := &pes{pid: pid, start: int64(off), pcr: pcr, rai: rai}
			open[pid] = p
			cur = p
		} else if p := open[pid]; p == nil || cur != p {
			return nil, fmt.Errorf("packet at %d: PID 0x%x continues no PES in progress", off, pid)
		}
		if pcr >= 0 && !pusi {
			return nil, fmt.Errorf("packet at %d: PCR outside the first packet of a PES", off)
		}
		cur.payload = append(cur.payload, payload...)
		cur.end = int64(off + PacketSize)
		if len(cur.payload) < 6 {
			return nil, fmt.Errorf("packet at %d: PES header split", off)
		}
	}
	for _, pid := range []uint16{PIDVideo, PIDAudio} {
		if p := open[pid]; p != nil {
			if err := finish(p); err != nil {
				return nil, err
			}
		}
	}
	return d, nil
}

// byPID returns the PES packets of one PID in order.
func (d *demuxed) byPID(pid uint16) []pes {
	var out []pes
	for _, p := range d.pes {
		if p.pid == pid {
			out = append(out, p)
		}
	}
	// finish appends the last PES of each PID at the end; sort by start.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].start < out[j-1].start; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// annexB splits an Annex B byte stream into NAL units (without start codes
// or trailing zero bytes).
func annexB(b []byte) [][]byte {
	var nals [][]byte
	start := -1
	for i := 0; i+2 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				nals = append(nals, bytes.TrimRight(b[start:i], "\x00"))
			}
			start = i + 3
			i += 2
		}
	}
	if start >= 0 {
		nals = append(nals, b[start:])
	}
	return nals
}
