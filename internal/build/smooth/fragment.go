package smooth

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/vfile"
)

// tfxdUUID is the extended type of the tfxd box (MS-SSTR 2.2.4.4),
// 6D1D9B05-42D5-44E6-80E2-141DAFF757B2.
var tfxdUUID = [16]byte{0x6d, 0x1d, 0x9b, 0x05, 0x42, 0xd5, 0x44, 0xe6, 0x80, 0xe2, 0x14, 0x1d, 0xaf, 0xf7, 0x57, 0xb2}

// Box flags (ISO/IEC 14496-12 8.8.7, 8.8.8) and sample flags.
const (
	tfhdDefaultBaseIsMoof = 0x020000

	trunDataOffset = 0x000001
	trunDur        = 0x000100
	trunSize       = 0x000200
	trunFlags      = 0x000400
	trunCTO        = 0x000800

	flagsSync    = 0x02000000 // sample_depends_on=2 (independent)
	flagsNonSync = 0x01010000 // sample_depends_on=1, sample_is_non_sync_sample=1
)

// Sizes of the fragment's fixed boxes.
const (
	mfhdSize    = 16
	tfhdSize    = 16 // track_ID only
	tfdtSize    = 20 // version 1
	trunHdrSize = 20 // with data_offset
	tfxdSize    = 8 + 16 + 4 + 16
	mdatHdrSize = 8
)

// maxPresOffset bounds the presentation offset applied to composition
// offsets (see presentationOffset).
const maxPresOffset = 1 << 30

// Fragment appends to b the fragment of chunk n (see FragmentIndex) of
// track, one of the tracks offered by Manifest for the same segments: a
// moof (mfhd with sequence number n+1; a traf with tfhd, tfdt, a trun with
// every sample's duration, size, flags and composition offset, and a tfxd
// with the chunk's time and duration as in the manifest) and an mdat whose
// payload is the samples' byte ranges in the stored originals.
//
// It fails with an error wrapping ErrUnsupported when the track cannot be
// presented, and with one wrapping ErrNoFragment when the track has no
// chunk n.
func Fragment(b *vfile.Builder, ix *media.Index, track *media.Track, segs []media.Segment, n int) error {
	tracks, err := servable(ix)
	if err != nil {
		return err
	}
	if !slices.Contains(tracks, track) {
		return fmt.Errorf("%w: track %d is not offered", ErrNoFragment, track.ID)
	}
	ref, err := checkSegments(ix, segs)
	if err != nil {
		return err
	}
	if n < 0 || n >= len(segs) {
		return fmt.Errorf("%w: chunk %d of %d", ErrNoFragment, n, len(segs))
	}
	c, ok := chunkOf(ref, track, segs, n)
	if !ok {
		return fmt.Errorf("%w: segment %d holds no samples of track %d", ErrNoFragment, n, track.ID)
	}
	moof, payload, err := writeMoof(track, c)
	if err != nil {
		return fmt.Errorf("smooth streaming: fragment %d of track %d: %w", n, track.ID, err)
	}
	b.Add(boxHeader(moof, payload+mdatHdrSize, "mdat"))
	addSamples(b, ix, track, c.first, c.end)
	return nil
}

// presentationOffset is the offset subtracted from track t's composition
// offsets: its MediaTime when that is a small start offset (under a second,
// like a B-frame delay or AAC priming), since Smooth Streaming clients make
// their init segments without edit lists; 0 otherwise.
func presentationOffset(t *media.Track) int64 {
	if t.MediaTime > 0 && t.MediaTime < int64(t.Timescale) && t.MediaTime <= maxPresOffset {
		return t.MediaTime
	}
	return 0
}

// writeMoof returns the moof of chunk c of track t, with room for the mdat
// header, and the size of the mdat payload that follows it.
func writeMoof(t *media.Track, c chunk) ([]byte, int64, error) {
	s := &t.Samples
	shift := presentationOffset(t)
	count := c.end - c.first
	var payload int64
	version, flags := uint8(0), uint32(trunDataOffset|trunDur|trunSize|trunFlags)
	for i := c.first; i < c.end; i++ {
		payload += int64(s.Size[i])
		switch cto := int64(s.CompOffset(i)) - shift; {
		case cto < math.MinInt32:
			return nil, 0, fmt.Errorf("sample %d: composition offset %d out of range", i, cto)
		case cto < 0:
			version, flags = 1, flags|trunCTO
		case cto > 0:
			flags |= trunCTO
		}
	}
	fields := 3
	if flags&trunCTO != 0 {
		fields = 4
	}
	trunSizeB := trunHdrSize + 4*int64(fields)*int64(count)
	trafSize := 8 + tfhdSize + tfdtSize + trunSizeB + tfxdSize
	moofSize := 8 + mfhdSize + trafSize
	if moofSize+mdatHdrSize+payload > math.MaxUint32 {
		// Smooth Streaming clients expect a 32-bit mdat size.
		return nil, 0, fmt.Errorf("fragment of %d bytes is too large", moofSize+mdatHdrSize+payload)
	}

	b := make([]byte, 0, moofSize+mdatHdrSize)
	b = boxHeader(b, moofSize, "moof")
	b = fullBoxHeader(b, mfhdSize, "mfhd", 0, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(c.n+1))
	b = boxHeader(b, trafSize, "traf")
	b = fullBoxHeader(b, tfhdSize, "tfhd", 0, tfhdDefaultBaseIsMoof)
	b = binary.BigEndian.AppendUint32(b, t.ID)
	b = fullBoxHeader(b, tfdtSize, "tfdt", 1, 0)
	b = binary.BigEndian.AppendUint64(b, uint64(c.t))
	b = fullBoxHeader(b, trunSizeB, "trun", version, flags)
	b = binary.BigEndian.AppendUint32(b, uint32(count))
	b = binary.BigEndian.AppendUint32(b, uint32(moofSize+mdatHdrSize)) // data_offset from the moof
	for i := c.first; i < c.end; i++ {
		b = binary.BigEndian.AppendUint32(b, s.Dur[i])
		b = binary.BigEndian.AppendUint32(b, s.Size[i])
		if s.IsSync(i) {
			b = binary.BigEndian.AppendUint32(b, flagsSync)
		} else {
			b = binary.BigEndian.AppendUint32(b, flagsNonSync)
		}
		if fields == 4 {
			b = binary.BigEndian.AppendUint32(b, uint32(int32(int64(s.CompOffset(i))-shift)))
		}
	}
	b = boxHeader(b, tfxdSize, "uuid")
	b = append(b, tfxdUUID[:]...)
	b = binary.BigEndian.AppendUint32(b, 1<<24) // version 1, flags 0
	b = binary.BigEndian.AppendUint64(b, uint64(c.t))
	b = binary.BigEndian.AppendUint64(b, uint64(c.d))
	if int64(len(b)) != moofSize {
		return nil, 0, fmt.Errorf("internal error: moof of %d bytes, computed %d", len(b), moofSize)
	}
	return b, payload, nil
}

// boxHeader appends the header of a box of the given size and type.
func boxHeader(b []byte, size int64, typ string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(size))
	return append(b, typ...)
}

// fullBoxHeader appends the header of a full box.
func fullBoxHeader(b []byte, size int64, typ string, version uint8, flags uint32) []byte {
	b = boxHeader(b, size, typ)
	return binary.BigEndian.AppendUint32(b, uint32(version)<<24|flags&0xffffff)
}

// addSamples appends the stored bytes of samples [first, end) of track t,
// chapter by chapter (AddStored merges contiguous ranges).
func addSamples(b *vfile.Builder, ix *media.Index, t *media.Track, first, end int) {
	s := &t.Samples
	for i := first; i < end; {
		c := s.Chapter(i)
		obj := ix.Chapters[c].Object
		stop := min(s.ChapterStart[c+1], end)
		for ; i < stop; i++ {
			b.AddStored(obj, s.Offset[i], int64(s.Size[i]))
		}
	}
}
