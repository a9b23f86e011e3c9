package mp4build

import "encoding/binary"

// writer appends big-endian MP4 boxes to a byte slice. A box is opened with
// box or fullBox, which write a header with a placeholder size and return the
// header's position, and closed with end, which patches the size in. Boxes
// nest naturally. There is no per-entry allocation: sample tables are written
// straight into the slice, whose capacity the caller sizes up front.
type writer struct {
	b []byte
}

func (w *writer) u8(v uint8)   { w.b = append(w.b, v) }
func (w *writer) u16(v uint16) { w.b = binary.BigEndian.AppendUint16(w.b, v) }
func (w *writer) u32(v uint32) { w.b = binary.BigEndian.AppendUint32(w.b, v) }
func (w *writer) u64(v uint64) { w.b = binary.BigEndian.AppendUint64(w.b, v) }
func (w *writer) i16(v int16)  { w.u16(uint16(v)) }
func (w *writer) i32(v int32)  { w.u32(uint32(v)) }

// zeros appends n zero bytes.
func (w *writer) zeros(n int) {
	for range n {
		w.b = append(w.b, 0)
	}
}

// fourcc appends a four-character code; shorter codes are padded with spaces.
func (w *writer) fourcc(s string) {
	var c [4]byte
	copy(c[:], "    ")
	copy(c[:], s)
	w.b = append(w.b, c[:]...)
}

// bytes appends raw bytes.
func (w *writer) bytes(p []byte) { w.b = append(w.b, p...) }

// box opens a box of the given type.
func (w *writer) box(typ string) int {
	pos := len(w.b)
	w.u32(0)
	w.fourcc(typ)
	return pos
}

// fullBox opens a full box (with version and flags).
func (w *writer) fullBox(typ string, version uint8, flags uint32) int {
	pos := w.box(typ)
	w.u32(uint32(version)<<24 | flags&0xffffff)
	return pos
}

// end closes the box opened at pos. Boxes are limited to 4 GiB; only mdat
// can be larger and its header is written separately (see mdatHeader).
func (w *writer) end(pos int) {
	binary.BigEndian.PutUint32(w.b[pos:], uint32(len(w.b)-pos))
}

// mdatHeader returns the header of an mdat box with a payload of n bytes: 8
// bytes, or 16 with a 64-bit largesize when the box would not fit 32 bits.
func mdatHeader(n int64) []byte {
	if n+8 <= 1<<32-1 {
		b := binary.BigEndian.AppendUint32(make([]byte, 0, 8), uint32(n+8))
		return append(b, "mdat"...)
	}
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 16), 1)
	b = append(b, "mdat"...)
	return binary.BigEndian.AppendUint64(b, uint64(n+16))
}

// mdatHeaderSize is len(mdatHeader(n)).
func mdatHeaderSize(n int64) int64 {
	if n+8 <= 1<<32-1 {
		return 8
	}
	return 16
}
