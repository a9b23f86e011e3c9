package media

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"slices"
)

// marshalV1 is Marshal as it was in index format version 1 (see the
// format comment in encode.go), kept to test that Unmarshal still reads
// the version 1 indexes in users' stores.
func marshalV1(ix *Index) ([]byte, error) {
	if ix == nil || slices.Contains(ix.Tracks, nil) {
		return nil, fmt.Errorf("media: marshal: nil index or track")
	}
	if err := ix.Validate(); err != nil {
		return nil, fmt.Errorf("media: marshal: %w", err)
	}
	hdr := *ix
	hdr.Tracks = make([]*Track, len(ix.Tracks))
	for i, t := range ix.Tracks {
		c := *t
		c.Samples = Samples{ChapterStart: t.Samples.ChapterStart, ChapterDesc: t.Samples.ChapterDesc}
		hdr.Tracks[i] = &c
	}
	hj, err := json.Marshal(&hdr)
	if err != nil {
		return nil, fmt.Errorf("media: marshal header: %w", err)
	}
	var b []byte
	b = append(b, indexMagic...)
	b = append(b, 1)
	b = binary.AppendUvarint(b, uint64(len(hj)))
	b = append(b, hj...)
	for _, t := range ix.Tracks {
		b = appendColumnsV1(b, &t.Samples)
	}
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable()))
	return b, nil
}

// appendColumnsV1 appends the sample columns of s in the version 1
// encoding.
func appendColumnsV1(b []byte, s *Samples) []byte {
	var flags byte
	if s.CTO != nil {
		flags |= colCTO
	}
	if s.Sync != nil {
		flags |= colSync
	}
	b = append(b, flags)
	b = appendFixed(b, s.Size, 0, 0)
	for c := 0; c+1 < len(s.ChapterStart); c++ {
		for i := s.ChapterStart[c]; i < s.ChapterStart[c+1]; i++ {
			if i == s.ChapterStart[c] {
				b = binary.AppendUvarint(b, uint64(s.Offset[i]))
			} else {
				b = binary.AppendVarint(b, s.Offset[i]-(s.Offset[i-1]+int64(s.Size[i-1])))
			}
		}
	}
	runs := 0
	for i := range s.Dur {
		if i == 0 || s.Dur[i] != s.Dur[i-1] {
			runs++
		}
	}
	b = binary.AppendUvarint(b, uint64(runs))
	for i := 0; i < len(s.Dur); {
		j := i + 1
		for j < len(s.Dur) && s.Dur[j] == s.Dur[i] {
			j++
		}
		b = binary.AppendUvarint(b, uint64(j-i))
		b = binary.AppendUvarint(b, uint64(s.Dur[i]))
		i = j
	}
	if s.CTO != nil {
		z := make([]uint32, len(s.CTO))
		for i, v := range s.CTO {
			z[i] = uint32(v<<1) ^ uint32(v>>31) // zigzag
		}
		b = appendFixed(b, z, 0, 0)
	}
	if s.Sync != nil {
		k := 0
		for _, v := range s.Sync {
			if v {
				k++
			}
		}
		b = binary.AppendUvarint(b, uint64(k))
		prev := 0
		for i, v := range s.Sync {
			if v {
				b = binary.AppendUvarint(b, uint64(i-prev))
				prev = i
			}
		}
	}
	return b
}
