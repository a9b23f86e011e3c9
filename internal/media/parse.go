package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	mp4bits "github.com/Eyevinn/mp4ff/bits"
	"github.com/Eyevinn/mp4ff/mp4"
)

// Limits that keep hostile input from making the parser allocate without
// bound.
const (
	// maxMoovSize caps the moov box that is read into memory. An hour of
	// 60 fps video with audio needs a few megabytes.
	maxMoovSize = 256 << 20
	// maxMoofSize caps one moof box.
	maxMoofSize = 64 << 20
	// maxTracks caps the number of tracks of one file.
	maxTracks = 256
	// bytesPerSample: a file may describe at most one sample per
	// bytesPerSample bytes of its size (plus sampleSlack). Real media
	// averages hundreds of bytes per sample; this bounds the memory that
	// a small hostile file can make the parser use.
	bytesPerSample = 4
	sampleSlack    = 4096
	// sampleFlagNonSync is sample_is_non_sync_sample in the ISO-BMFF
	// sample flags.
	sampleFlagNonSync = 0x00010000
	// mp4Epoch is 1904-01-01 in Unix seconds.
	mp4Epoch = -2082844800
)

// Parse builds the index of an asset made of the given chapters, in order,
// reading only box metadata (ftyp/moov/moof and box headers; never the
// payload of mdat boxes).
//
// The chapters form one continuous timeline: tracks are matched across
// chapters by handler type and order, chapter c starts where chapter c-1
// ends, and the last sample of every track in a chapter is stretched (or
// shrunk, never below 1 tick) so that every track reaches the chapter's end
// exactly. Tracks that have no samples in any chapter are dropped.
//
// Errors wrap ErrInvalid for malformed input and ErrUnsupported for
// well-formed media that cannot be served (such as an unsupported codec);
// other errors come from reading the sources or from ctx.
func Parse(ctx context.Context, srcs []Source) (*Index, error) {
	if len(srcs) == 0 {
		return nil, fmt.Errorf("media: no sources: %w", ErrInvalid)
	}
	files := make([]*fileInfo, len(srcs))
	for i, src := range srcs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := &fileParser{
			ctx:    ctx,
			name:   sourceName(src, i),
			r:      src.R,
			size:   src.Size,
			budget: src.Size/bytesPerSample + sampleSlack,
		}
		fi, err := p.parse()
		if err != nil {
			return nil, err
		}
		files[i] = fi
	}
	ix, err := merge(srcs, files)
	if err != nil {
		return nil, err
	}
	for _, t := range ix.Tracks {
		t.Samples.Derive()
	}
	if err := ix.Validate(); err != nil {
		return nil, fmt.Errorf("media: %w: %w", err, ErrInvalid)
	}
	return ix, nil
}

func sourceName(src Source, i int) string {
	switch {
	case src.Name != "":
		return src.Name
	case src.Object != "":
		return src.Object
	}
	return fmt.Sprintf("source %d", i+1)
}

// fileParser reads the boxes of one file.
type fileParser struct {
	ctx    context.Context
	name   string
	r      io.ReaderAt
	size   int64
	budget int64 // samples this file may still describe
}

// fileInfo is what one file contributes to the index.
type fileInfo struct {
	created uint64 // mvhd creation_time, seconds since 1904
	tracks  []*fileTrack
}

// fileTrack is one track of one file.
type fileTrack struct {
	pos       int    // 1-based position among the file's tracks
	id        uint32 // tkhd track_ID
	handler   string
	name      string
	kind      Kind
	tkhd      *mp4.TkhdBox
	timescale uint32
	language  string
	mediaTime int64
	refs      map[string][]uint32 // tref, file track IDs
	entries   [][]byte            // stsd entries, raw
	used      uint32              // 1-based index of the entry the samples use; 0 if none yet
	trex      *mp4.TrexBox

	off  []int64
	size []uint32
	dur  []uint32
	cto  []int32
	sync []bool
	end  int64 // sum of dur

	// hasBase tells that base is the baseMediaDecodeTime (tfdt) of the
	// track's first fragment.
	hasBase bool
	base    uint64
}

func (p *fileParser) invalid(format string, args ...any) error {
	return fmt.Errorf("media: %s: %s: %w", p.name, fmt.Sprintf(format, args...), ErrInvalid)
}

func (p *fileParser) unsupported(format string, args ...any) error {
	return fmt.Errorf("media: %s: %s: %w", p.name, fmt.Sprintf(format, args...), ErrUnsupported)
}

// take reserves n samples of the file's sample budget.
func (p *fileParser) take(n int64) error {
	if n < 0 || n > p.budget {
		return p.invalid("too many samples for a file of %d bytes", p.size)
	}
	p.budget -= n
	return nil
}

// parse indexes one file.
func (p *fileParser) parse() (*fileInfo, error) {
	if p.r == nil {
		return nil, fmt.Errorf("media: %s: no reader", p.name)
	}
	if p.size <= 0 {
		return nil, p.invalid("empty file")
	}
	top, err := p.scan()
	if err != nil {
		return nil, err
	}
	moov, ok := first(top, "moov")
	if !ok {
		return nil, p.invalid("no moov box: truncated or not an MP4 file")
	}
	if moov.size > maxMoovSize {
		return nil, p.unsupported("moov box of %d bytes is too large", moov.size)
	}
	if err := p.read(&moov); err != nil {
		return nil, err
	}
	fi, err := p.parseMoov(moov)
	if err != nil {
		return nil, err
	}
	moov.data = nil
	if len(fi.tracks) == 0 {
		return nil, p.invalid("no tracks")
	}
	byID := make(map[uint32]*fileTrack, len(fi.tracks))
	for _, t := range fi.tracks {
		byID[t.id] = t
	}
	for _, b := range top {
		if b.typ != "moof" {
			continue
		}
		if err := p.ctx.Err(); err != nil {
			return nil, err
		}
		if b.size > maxMoofSize {
			return nil, p.unsupported("moof box at offset %d of %d bytes is too large", b.off, b.size)
		}
		if err := p.read(&b); err != nil {
			return nil, err
		}
		if err := p.parseMoof(b, byID); err != nil {
			return nil, err
		}
	}
	var total int
	for _, t := range fi.tracks {
		total += len(t.size)
		if len(t.size) > 0 {
			if err := p.checkCodec(t); err != nil {
				return nil, err
			}
		}
	}
	if total == 0 {
		return nil, p.invalid("no samples")
	}
	return fi, nil
}

// knownTopLevel are box types that may start an MP4 or QuickTime file.
func knownTopLevel(t string) bool {
	switch t {
	case "ftyp", "styp", "moov", "mdat", "free", "skip", "wide", "uuid", "sidx",
		"moof", "pdin", "meta", "junk", "pnot", "emsg", "prft":
		return true
	}
	return false
}

// scan walks the top-level boxes by reading their headers only.
func (p *fileParser) scan() ([]box, error) {
	var boxes []box
	var hdr [16]byte
	seenMoov := false
	for off := int64(0); off < p.size; {
		if len(boxes)%1024 == 1023 {
			if err := p.ctx.Err(); err != nil {
				return nil, err
			}
		}
		rem := p.size - off
		if rem < 8 {
			if off == 0 {
				return nil, p.invalid("not an MP4 file (%d bytes)", p.size)
			}
			break // a few trailing bytes: ignore
		}
		n := 8
		if rem >= 16 {
			n = 16
		}
		if err := readAt(p.r, hdr[:n], off); err != nil {
			return nil, fmt.Errorf("media: %s: reading box header at offset %d: %w", p.name, off, err)
		}
		typ := hdr[4:8]
		if !printableType(typ) {
			if off == 0 {
				return nil, p.invalid("not an MP4 file")
			}
			return nil, p.invalid("garbage instead of a box at offset %d", off)
		}
		if off == 0 && !knownTopLevel(string(typ)) {
			return nil, p.invalid("not an MP4 file (starts with %q)", typ)
		}
		size := uint64(binary.BigEndian.Uint32(hdr[:4]))
		hl := 8
		switch size {
		case 0:
			size = uint64(rem)
		case 1:
			if n < 16 {
				return nil, p.invalid("truncated 64-bit box header at offset %d", off)
			}
			size = binary.BigEndian.Uint64(hdr[8:16])
			hl = 16
		}
		if size < uint64(hl) {
			return nil, p.invalid("%q box at offset %d has invalid size %d", typ, off, size)
		}
		if size > uint64(rem) {
			if string(typ) == "mdat" && !seenMoov {
				return nil, p.invalid("no moov box: truncated file (mdat box at offset %d declares %d bytes, only %d present)", off, size, rem)
			}
			return nil, p.invalid("%q box at offset %d declares %d bytes but only %d remain: truncated file", typ, off, size, rem)
		}
		if string(typ) == "moov" {
			if seenMoov {
				return nil, p.invalid("second moov box at offset %d", off)
			}
			seenMoov = true
		}
		boxes = append(boxes, box{typ: string(typ), off: off, hdr: hl, size: int64(size)})
		off += int64(size)
	}
	return boxes, nil
}

// read loads the bytes of b.
func (p *fileParser) read(b *box) error {
	b.data = make([]byte, b.size)
	if err := readAt(p.r, b.data, b.off); err != nil {
		return fmt.Errorf("media: %s: reading %s box at offset %d: %w", p.name, b.typ, b.off, err)
	}
	return nil
}

// box is one ISO-BMFF box: its type, where it is in the file and, once read,
// its bytes.
type box struct {
	typ  string
	off  int64  // absolute offset of the box header in the file
	hdr  int    // header length: 8, or 16 with a 64-bit size
	size int64  // total size, header included
	data []byte // the whole box, header included; nil until read
}

// payload is the box's content after its header.
func (b box) payload() []byte { return b.data[b.hdr:] }

// printableType reports whether a four-character code is made of printable
// ASCII or the © sign that QuickTime uses (0xa9).
func printableType(t []byte) bool {
	for _, c := range t {
		if (c < 0x20 || c > 0x7e) && c != 0xa9 {
			return false
		}
	}
	return true
}

// children splits the payload of parent, starting skip bytes after its
// header, into boxes. Every child must fit in its parent.
func (p *fileParser) children(parent box, skip int) ([]box, error) {
	pl := parent.payload()
	if skip > len(pl) {
		return nil, p.invalid("%s box at offset %d is too short (%d bytes)", parent.typ, parent.off, parent.size)
	}
	data := pl[skip:]
	base := parent.off + int64(parent.hdr) + int64(skip)
	var out []box
	for pos := 0; pos < len(data); {
		rem := len(data) - pos
		off := base + int64(pos)
		if rem < 8 {
			// QuickTime ends some containers with a 32-bit zero
			// terminator; tolerate short zero padding.
			if allZero(data[pos:]) {
				break
			}
			return nil, p.invalid("truncated box header at offset %d inside %s box at offset %d", off, parent.typ, parent.off)
		}
		size := uint64(binary.BigEndian.Uint32(data[pos:]))
		typ := data[pos+4 : pos+8]
		hdr := 8
		switch size {
		case 0:
			if allZero(data[pos:]) {
				pos = len(data)
				continue
			}
			size = uint64(rem) // to the end of the parent
		case 1:
			if rem < 16 {
				return nil, p.invalid("truncated 64-bit box header at offset %d inside %s box at offset %d", off, parent.typ, parent.off)
			}
			size = binary.BigEndian.Uint64(data[pos+8:])
			hdr = 16
		}
		if size < uint64(hdr) || size > uint64(rem) {
			return nil, p.invalid("%q box at offset %d has size %d but its parent %s box at offset %d has %d bytes left",
				typ, off, size, parent.typ, parent.off, rem)
		}
		out = append(out, box{
			typ:  string(typ),
			off:  off,
			hdr:  hdr,
			size: int64(size),
			data: data[pos : pos+int(size)],
		})
		pos += int(size)
	}
	return out, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// first returns the first box of type typ, or ok=false.
func first(bs []box, typ string) (box, bool) {
	for _, b := range bs {
		if b.typ == typ {
			return b, true
		}
	}
	return box{}, false
}

// need returns the first box of type typ inside parent, or an error.
func (p *fileParser) need(bs []box, typ string, parent box) (box, error) {
	b, ok := first(bs, typ)
	if !ok {
		return box{}, p.invalid("no %s box in %s box at offset %d", typ, parent.typ, parent.off)
	}
	return b, nil
}

// decodeMP4 decodes one complete box (header included) with mp4ff. The bytes
// are exactly the box, so mp4ff cannot read past it; a panic inside mp4ff is
// turned into an error.
func decodeMP4(data []byte, off int64) (b mp4.Box, err error) {
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("mp4ff: %v", r)
		}
	}()
	if len(data) >= 16 && binary.BigEndian.Uint32(data) == 1 {
		// mp4ff only accepts 64-bit sizes on mdat: rewrite the header
		// of a (legal but unusual) large-size box as a 32-bit one.
		if len(data)-8 > math.MaxUint32 {
			return nil, fmt.Errorf("box too large")
		}
		d := make([]byte, len(data)-8)
		binary.BigEndian.PutUint32(d, uint32(len(d)))
		copy(d[4:8], data[4:8])
		copy(d[8:], data[16:])
		data = d
	}
	return mp4.DecodeBoxSR(uint64(off), mp4bits.NewFixedSliceReader(data))
}

// decodeAs decodes bx with mp4ff and checks that the result has type T.
func decodeAs[T mp4.Box](p *fileParser, bx box) (T, error) {
	var zero T
	b, err := decodeMP4(bx.data, bx.off)
	if err != nil {
		return zero, p.invalid("%s box at offset %d: %v", bx.typ, bx.off, err)
	}
	t, ok := b.(T)
	if !ok {
		return zero, p.invalid("%s box at offset %d decoded as %T", bx.typ, bx.off, b)
	}
	return t, nil
}

// readAt reads exactly len(buf) bytes at off.
func readAt(r io.ReaderAt, buf []byte, off int64) error {
	n, err := r.ReadAt(buf, off)
	if n == len(buf) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// parseMoov reads the movie header and the tracks.
func (p *fileParser) parseMoov(moov box) (*fileInfo, error) {
	kids, err := p.children(moov, 0)
	if err != nil {
		return nil, err
	}
	fi := &fileInfo{}
	var trexs []*mp4.TrexBox
	for _, k := range kids {
		switch k.typ {
		case "mvhd":
			mvhd, err := decodeAs[*mp4.MvhdBox](p, k)
			if err != nil {
				return nil, err
			}
			fi.created = mvhd.CreationTime
		case "trak":
			if len(fi.tracks) >= maxTracks {
				return nil, p.unsupported("more than %d tracks", maxTracks)
			}
			t, err := p.parseTrak(k, len(fi.tracks)+1)
			if err != nil {
				return nil, err
			}
			fi.tracks = append(fi.tracks, t)
		case "mvex":
			mk, err := p.children(k, 0)
			if err != nil {
				return nil, err
			}
			for _, b := range mk {
				if b.typ != "trex" {
					continue
				}
				trex, err := decodeAs[*mp4.TrexBox](p, b)
				if err != nil {
					return nil, err
				}
				trexs = append(trexs, trex)
			}
		}
	}
	seen := make(map[uint32]bool, len(fi.tracks))
	for _, t := range fi.tracks {
		if seen[t.id] {
			return nil, p.invalid("two tracks with ID %d", t.id)
		}
		seen[t.id] = true
		for _, trex := range trexs {
			if trex.TrackID == t.id {
				t.trex = trex
				break
			}
		}
	}
	return fi, nil
}

// kindOf maps a handler type to a track kind.
func kindOf(handler string) Kind {
	switch handler {
	case "vide":
		return KindVideo
	case "soun":
		return KindAudio
	case "text", "sbtl", "subt", "clcp":
		return KindSubtitle
	case "tmcd":
		return KindTimecode
	case "meta":
		return KindMetadata
	}
	return KindOther
}

// fourCC makes a four-character code safe to keep as a string: bytes
// outside printable ASCII become '?', so that the index encodes (as JSON)
// without loss.
func fourCC(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

// cleanName turns an hdlr name into a readable string: without trailing
// NULs, without a QuickTime length prefix, valid UTF-8.
func cleanName(s string) string {
	s = strings.TrimRight(s, "\x00")
	if len(s) > 0 && int(s[0]) == len(s)-1 {
		s = s[1:]
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "")
	}
	return strings.TrimSpace(s)
}

// language decodes the packed ISO 639-2/T code of mdhd, "und" if unset.
func language(code uint16) string {
	if code == 0 || code == 0x7fff || code < 0x400 {
		// 0x7fff is QuickTime's "unspecified"; codes below 0x400 are
		// QuickTime Macintosh language codes.
		return "und"
	}
	var b [3]byte
	for i := range b {
		c := byte((code>>(10-5*i))&0x1f) + 0x60
		if c < 'a' || c > 'z' {
			return "und"
		}
		b[i] = c
	}
	return string(b[:])
}

// parseTrak reads one track's headers and progressive sample tables.
func (p *fileParser) parseTrak(trak box, pos int) (*fileTrack, error) {
	kids, err := p.children(trak, 0)
	if err != nil {
		return nil, err
	}
	tkhdBox, err := p.need(kids, "tkhd", trak)
	if err != nil {
		return nil, err
	}
	tkhd, err := decodeAs[*mp4.TkhdBox](p, tkhdBox)
	if err != nil {
		return nil, err
	}
	if tkhd.TrackID == 0 {
		return nil, p.invalid("track %d has track ID 0", pos)
	}
	t := &fileTrack{pos: pos, id: tkhd.TrackID, tkhd: tkhd}

	mdia, err := p.need(kids, "mdia", trak)
	if err != nil {
		return nil, err
	}
	mdiaKids, err := p.children(mdia, 0)
	if err != nil {
		return nil, err
	}
	mdhdBox, err := p.need(mdiaKids, "mdhd", mdia)
	if err != nil {
		return nil, err
	}
	mdhd, err := decodeAs[*mp4.MdhdBox](p, mdhdBox)
	if err != nil {
		return nil, err
	}
	if mdhd.Timescale == 0 {
		return nil, p.invalid("track %d has timescale 0", pos)
	}
	t.timescale = mdhd.Timescale
	t.language = language(mdhd.Language)
	hdlrBox, err := p.need(mdiaKids, "hdlr", mdia)
	if err != nil {
		return nil, err
	}
	hdlr, err := decodeAs[*mp4.HdlrBox](p, hdlrBox)
	if err != nil {
		return nil, err
	}
	t.handler = fourCC(hdlr.HandlerType)
	t.name = cleanName(hdlr.Name)
	t.kind = kindOf(t.handler)

	if edts, ok := first(kids, "edts"); ok {
		if err := p.parseEdts(t, edts); err != nil {
			return nil, err
		}
	}
	if tref, ok := first(kids, "tref"); ok {
		if err := p.parseTref(t, tref); err != nil {
			return nil, err
		}
	}

	minf, err := p.need(mdiaKids, "minf", mdia)
	if err != nil {
		return nil, err
	}
	minfKids, err := p.children(minf, 0)
	if err != nil {
		return nil, err
	}
	stbl, err := p.need(minfKids, "stbl", minf)
	if err != nil {
		return nil, err
	}
	stblKids, err := p.children(stbl, 0)
	if err != nil {
		return nil, err
	}
	stsd, err := p.need(stblKids, "stsd", stbl)
	if err != nil {
		return nil, err
	}
	entries, err := p.children(stsd, 8) // version, flags, entry_count
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, p.invalid("track %d has no sample entries", pos)
	}
	for _, e := range entries {
		t.entries = append(t.entries, bytes.Clone(e.data))
	}
	if err := p.expand(t, stbl, stblKids); err != nil {
		return nil, err
	}
	return t, nil
}

// parseEdts takes the media time of the first non-empty edit.
func (p *fileParser) parseEdts(t *fileTrack, edts box) error {
	kids, err := p.children(edts, 0)
	if err != nil {
		return err
	}
	eb, ok := first(kids, "elst")
	if !ok {
		return nil
	}
	elst, err := decodeAs[*mp4.ElstBox](p, eb)
	if err != nil {
		return err
	}
	for _, e := range elst.Entries {
		if e.MediaTime == -1 {
			continue // empty edit
		}
		if e.MediaTime < 0 {
			return p.invalid("track %d: edit list media time %d", t.pos, e.MediaTime)
		}
		t.mediaTime = e.MediaTime
		break
	}
	return nil
}

// parseTref reads track references (type -> file track IDs).
func (p *fileParser) parseTref(t *fileTrack, tref box) error {
	kids, err := p.children(tref, 0)
	if err != nil {
		return err
	}
	for _, k := range kids {
		pl := k.payload()
		for i := 0; i+4 <= len(pl); i += 4 {
			id := binary.BigEndian.Uint32(pl[i:])
			if id == 0 {
				continue
			}
			if t.refs == nil {
				t.refs = make(map[string][]uint32)
			}
			typ := fourCC(k.typ)
			t.refs[typ] = append(t.refs[typ], id)
		}
	}
	return nil
}

// useDesc records that samples of t use sample entry d (1-based).
func (p *fileParser) useDesc(t *fileTrack, d uint32) error {
	if d == 0 || int64(d) > int64(len(t.entries)) {
		return p.invalid("track %d: sample description index %d of %d", t.pos, d, len(t.entries))
	}
	switch {
	case t.used == 0:
		t.used = d
	case t.used != d && !bytes.Equal(t.entries[t.used-1], t.entries[d-1]):
		return p.unsupported("track %d uses more than one sample description", t.pos)
	}
	return nil
}

// entry is the raw sample entry that t's samples use.
func (t *fileTrack) entry() []byte {
	if t.used == 0 {
		return t.entries[0]
	}
	return t.entries[t.used-1]
}

// checkSample reports a sample that does not lie within the file.
func (p *fileParser) checkSample(t *fileTrack, i int, off int64, size uint32) error {
	if off < 0 || off > p.size || int64(size) > p.size-off {
		return p.invalid("track %d sample %d (bytes %d+%d) lies outside the file (%d bytes): truncated or corrupt",
			t.pos, i+1, off, size, p.size)
	}
	return nil
}

// expand turns the progressive sample tables of stbl into columns.
func (p *fileParser) expand(t *fileTrack, stbl box, kids []box) error {
	stszBox, ok := first(kids, "stsz")
	if !ok {
		if _, ok := first(kids, "stz2"); ok {
			return p.unsupported("track %d uses compact sample sizes (stz2)", t.pos)
		}
		return nil // no progressive samples
	}
	stsz, err := decodeAs[*mp4.StszBox](p, stszBox)
	if err != nil {
		return err
	}
	n64 := int64(stsz.SampleNumber)
	if n64 == 0 {
		return nil
	}
	if stsz.SampleUniformSize > 0 && n64 > p.size/int64(stsz.SampleUniformSize) {
		return p.invalid("track %d: %d samples of %d bytes do not fit in the file", t.pos, n64, stsz.SampleUniformSize)
	}
	if err := p.take(n64); err != nil {
		return err
	}
	n := int(n64)

	sttsBox, err := p.need(kids, "stts", stbl)
	if err != nil {
		return err
	}
	stts, err := decodeAs[*mp4.SttsBox](p, sttsBox)
	if err != nil {
		return err
	}
	stscBox, err := p.need(kids, "stsc", stbl)
	if err != nil {
		return err
	}
	stsc, err := decodeAs[*mp4.StscBox](p, stscBox)
	if err != nil {
		return err
	}
	var chunks []uint64
	if b, ok := first(kids, "stco"); ok {
		stco, err := decodeAs[*mp4.StcoBox](p, b)
		if err != nil {
			return err
		}
		chunks = make([]uint64, len(stco.ChunkOffset))
		for i, o := range stco.ChunkOffset {
			chunks[i] = uint64(o)
		}
	} else if b, ok := first(kids, "co64"); ok {
		co64, err := decodeAs[*mp4.Co64Box](p, b)
		if err != nil {
			return err
		}
		chunks = co64.ChunkOffset
	} else {
		return p.invalid("no stco or co64 box in stbl box at offset %d", stbl.off)
	}

	size := make([]uint32, n)
	if stsz.SampleUniformSize > 0 {
		for i := range size {
			size[i] = stsz.SampleUniformSize
		}
	} else {
		if len(stsz.SampleSize) != n {
			return p.invalid("track %d: stsz lists %d sizes for %d samples", t.pos, len(stsz.SampleSize), n)
		}
		copy(size, stsz.SampleSize)
	}

	dur := make([]uint32, n)
	i := 0
	for e := 0; e < len(stts.SampleCount) && i < n; e++ {
		d := stts.SampleTimeDelta[e]
		for c := stts.SampleCount[e]; c > 0 && i < n; c-- {
			dur[i] = d
			i++
		}
	}
	if i < n {
		return p.invalid("track %d: stts describes %d of %d samples", t.pos, i, n)
	}

	cto := make([]int32, n)
	if b, ok := first(kids, "ctts"); ok {
		ctts, err := decodeAs[*mp4.CttsBox](p, b)
		if err != nil {
			return err
		}
		i := 0
		for e := 0; e < len(ctts.SampleOffset) && i < n; e++ {
			o := ctts.SampleOffset[e]
			for c := ctts.EndSampleNr[e+1] - ctts.EndSampleNr[e]; c > 0 && i < n; c-- {
				cto[i] = o
				i++
			}
		}
		// Samples that ctts does not cover keep offset 0.
	}

	sync := make([]bool, n)
	if b, ok := first(kids, "stss"); ok {
		stss, err := decodeAs[*mp4.StssBox](p, b)
		if err != nil {
			return err
		}
		for _, s := range stss.SampleNumber {
			if s >= 1 && int64(s) <= n64 {
				sync[s-1] = true
			}
		}
	} else {
		for i := range sync {
			sync[i] = true
		}
	}

	off := make([]int64, n)
	entries := stsc.Entries
	si := 0
	for e := 0; e < len(entries) && si < n; e++ {
		firstChunk := int64(entries[e].FirstChunk)
		if e == 0 {
			firstChunk = 1
		}
		if firstChunk < 1 || (e > 0 && firstChunk <= int64(entries[e-1].FirstChunk)) {
			return p.invalid("track %d: stsc entries out of order", t.pos)
		}
		lastChunk := int64(len(chunks))
		if e+1 < len(entries) {
			lastChunk = min(lastChunk, int64(entries[e+1].FirstChunk)-1)
		}
		spc := int64(entries[e].SamplesPerChunk)
		sdi := stsc.GetSampleDescriptionID(e + 1)
		used := false
		for c := firstChunk; c <= lastChunk && si < n; c++ {
			o := chunks[c-1]
			if o > math.MaxInt64 {
				return p.invalid("track %d: chunk %d offset %d lies outside the file", t.pos, c, o)
			}
			pos := int64(o)
			for k := int64(0); k < spc && si < n; k++ {
				if err := p.checkSample(t, si, pos, size[si]); err != nil {
					return err
				}
				off[si] = pos
				pos += int64(size[si])
				si++
				used = true
			}
		}
		if used {
			if err := p.useDesc(t, sdi); err != nil {
				return err
			}
		}
	}
	if si < n {
		return p.invalid("track %d: chunk tables place %d of %d samples", t.pos, si, n)
	}
	var end int64
	for _, d := range dur {
		end += int64(d)
	}
	t.off, t.size, t.dur, t.cto, t.sync, t.end = off, size, dur, cto, sync, end
	return nil
}

// merge joins the files, chapters of one recording, into an index.
func merge(srcs []Source, files []*fileInfo) (*Index, error) {
	f0 := files[0]
	n := len(f0.tracks)
	// chapterTracks[c][i] is chapter c's track that is asset track i.
	chapterTracks := make([][]*fileTrack, len(files))
	layout0 := layout(f0)
	for c, f := range files {
		name := sourceName(srcs[c], c)
		if l := layout(f); l != layout0 {
			return nil, fmt.Errorf("media: chapter %d (%s) has tracks [%s] but chapter 1 (%s) has [%s]: %w",
				c+1, name, l, sourceName(srcs[0], 0), layout0, ErrInvalid)
		}
		byHandler := make(map[string][]*fileTrack)
		for _, t := range f.tracks {
			byHandler[t.handler] = append(byHandler[t.handler], t)
		}
		seen := make(map[string]int)
		row := make([]*fileTrack, n)
		for i, t0 := range f0.tracks {
			t := byHandler[t0.handler][seen[t0.handler]]
			seen[t0.handler]++
			if t.timescale != t0.timescale {
				return nil, fmt.Errorf("media: chapter %d (%s): %s track %d has timescale %d but %d in chapter 1: changing timescales are not supported: %w",
					c+1, name, t.handler, t.pos, t.timescale, t0.timescale, ErrUnsupported)
			}
			row[i] = t
		}
		chapterTracks[c] = row
	}

	ix := &Index{Chapters: make([]Chapter, len(files))}
	if ct := f0.created; ct != 0 && ct < 1<<40 {
		ix.Created = time.Unix(int64(ct)+mp4Epoch, 0).UTC()
	}
	var start time.Duration
	for c, src := range srcs {
		var d time.Duration
		for _, t := range chapterTracks[c] {
			d = max(d, ticksToDuration(t.end, t.timescale))
		}
		ix.Chapters[c] = Chapter{Object: src.Object, Name: src.Name, Size: src.Size, Start: start, Duration: d}
		start += d
	}

	tracks := make([]*Track, 0, n)
	fileIDs := make([]uint32, 0, n) // chapter 1 track ID of tracks[i]
	for i, t0 := range f0.tracks {
		tr, err := buildTrack(ix, chapterTracks, i)
		if err != nil {
			return nil, err
		}
		if tr.Samples.Len() == 0 {
			continue // empty in every chapter
		}
		tracks = append(tracks, tr)
		fileIDs = append(fileIDs, t0.id)
	}
	if len(tracks) == 0 {
		return nil, fmt.Errorf("media: %s: no samples: %w", sourceName(srcs[0], 0), ErrInvalid)
	}
	assetID := make(map[uint32]uint32, len(tracks))
	for i, tr := range tracks {
		tr.ID = uint32(i + 1)
		assetID[fileIDs[i]] = tr.ID
	}
	for _, tr := range tracks {
		if tr.References == nil {
			continue
		}
		refs := make(map[string][]uint32)
		for typ, ids := range tr.References {
			for _, id := range ids {
				if a, ok := assetID[id]; ok {
					refs[typ] = append(refs[typ], a)
				}
			}
		}
		tr.References = nil
		if len(refs) > 0 {
			tr.References = refs
		}
	}
	ix.Tracks = tracks
	return ix, nil
}

// layout describes a file's tracks by handler, e.g. "vide soun soun".
func layout(f *fileInfo) string {
	counts := make(map[string]int)
	var order []string
	for _, t := range f.tracks {
		if counts[t.handler] == 0 {
			order = append(order, t.handler)
		}
		counts[t.handler]++
	}
	slices.Sort(order) // canonical, independent of track order
	var b strings.Builder
	for i, h := range order {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s", h)
		if counts[h] > 1 {
			fmt.Fprintf(&b, "x%d", counts[h])
		}
	}
	return b.String()
}

// buildTrack joins asset track i of every chapter. References are still in
// chapter 1 track IDs.
func buildTrack(ix *Index, chapterTracks [][]*fileTrack, i int) (*Track, error) {
	t0 := chapterTracks[0][i]
	tr := trackHeader(t0)
	var total int
	for c := range chapterTracks {
		total += len(chapterTracks[c][i].size)
	}
	s := &tr.Samples
	s.Offset = make([]int64, 0, total)
	s.Size = make([]uint32, 0, total)
	s.Dur = make([]uint32, 0, total)
	cto := make([]int32, 0, total)
	sync := make([]bool, 0, total)
	s.ChapterStart = make([]int, len(chapterTracks)+1)
	s.ChapterDesc = make([]uint32, len(chapterTracks))
	var cum int64
	for c := range chapterTracks {
		t := chapterTracks[c][i]
		if len(s.Size) == 0 && len(t.size) > 0 && ix.Chapters[c].Start > 0 {
			// Samples stored back to back cannot start after a gap.
			name := ix.Chapters[c].Name
			if name == "" {
				name = ix.Chapters[c].Object
			}
			return nil, fmt.Errorf("media: %s: %s track %d has samples but none in the chapters before: %w",
				name, t.handler, t.pos, ErrUnsupported)
		}
		s.ChapterStart[c] = len(s.Size)
		s.Offset = append(s.Offset, t.off...)
		s.Size = append(s.Size, t.size...)
		s.Dur = append(s.Dur, t.dur...)
		cto = append(cto, t.cto...)
		sync = append(sync, t.sync...)

		e := t.entry()
		d := -1
		for k, have := range tr.SampleEntries {
			if bytes.Equal(have, e) {
				d = k
				break
			}
		}
		if d < 0 {
			tr.SampleEntries = append(tr.SampleEntries, e)
			d = len(tr.SampleEntries) - 1
		}
		s.ChapterDesc[c] = uint32(d + 1)

		// Stretch the last sample so that the track ends where the
		// chapter ends.
		cum += t.end
		ch := ix.Chapters[c]
		target := durationToTicks(ch.Start+ch.Duration, tr.Timescale)
		if last := len(s.Dur) - 1; last >= 0 {
			nd := int64(s.Dur[last]) + target - cum
			nd = max(1, min(nd, math.MaxUint32))
			cum += nd - int64(s.Dur[last])
			s.Dur[last] = uint32(nd)
		}
	}
	s.ChapterStart[len(chapterTracks)] = len(s.Size)
	for _, o := range cto {
		if o != 0 {
			s.CTO = cto
			break
		}
	}
	for _, k := range sync {
		if !k {
			s.Sync = sync
			break
		}
	}
	return tr, nil
}

// trackHeader is the Track of a file track without samples: its kind,
// codec, timescale and tkhd fields; References are in the file's track IDs.
func trackHeader(t0 *fileTrack) *Track {
	info := describeEntry(t0.kind, t0.entry())
	tr := &Track{
		Kind:           t0.kind,
		Handler:        t0.handler,
		Name:           t0.name,
		Format:         info.format,
		Codec:          info.codec,
		Timescale:      t0.timescale,
		Language:       t0.language,
		Width:          info.width,
		Height:         info.height,
		SampleRate:     info.sampleRate,
		Channels:       info.channels,
		Matrix:         t0.tkhd.Matrix,
		TkhdWidth:      uint32(t0.tkhd.Width),
		TkhdHeight:     uint32(t0.tkhd.Height),
		Volume:         int16(t0.tkhd.Volume),
		AlternateGroup: t0.tkhd.AlternateGroup,
		Flags:          t0.tkhd.Flags,
		MediaTime:      t0.mediaTime,
	}
	if t0.refs != nil {
		tr.References = make(map[string][]uint32, len(t0.refs))
		for k, v := range t0.refs {
			tr.References[k] = append([]uint32(nil), v...)
		}
	}
	return tr
}

// mulDivRound returns round(a*b/c) computed with a 128-bit intermediate,
// saturating at MaxInt64.
func mulDivRound(a, b, c uint64) int64 {
	if c == 0 {
		return 0
	}
	hi, lo := bits.Mul64(a, b)
	lo, carry := bits.Add64(lo, c/2, 0)
	hi += carry
	if hi >= c {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, c)
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}

// ticksToDuration converts ticks in timescale ts to a time.Duration,
// rounding to the nearest nanosecond.
func ticksToDuration(ticks int64, ts uint32) time.Duration {
	if ticks <= 0 {
		return 0
	}
	return time.Duration(mulDivRound(uint64(ticks), uint64(time.Second), uint64(ts)))
}

// durationToTicks converts d to ticks in timescale ts, rounding to nearest.
func durationToTicks(d time.Duration, ts uint32) int64 {
	if d <= 0 {
		return 0
	}
	return mulDivRound(uint64(d), uint64(ts), uint64(time.Second))
}
