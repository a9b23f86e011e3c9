package hls

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	mp4build "github.com/jitstream/jitstream/internal/build/mp4"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/vfile"
)

// FMP4IFrameRange returns the length of the I-frame byte range of media
// segment seg of a video track, as mp4build.MediaSegment builds it with
// that track only: the range from the start of the segment (offset 0) to
// the end of its first sample, which is the moof, the mdat header (8 or 16
// bytes) and the first sample's bytes. A client that fetches this range
// can decode the segment's first frame.
//
// The first sample must be a sync sample, as it is for the reference track
// (segments start at its key frames); otherwise, or when the segment holds
// no sample of video, it returns an error.
func FMP4IFrameRange(ix *media.Index, video *media.Track, seg media.Segment) (int64, error) {
	first, end := SegmentSpan(ix, video, seg)
	if first == end {
		return 0, fmt.Errorf("hls: track %d has no samples in segment [%d, %d)", video.ID, seg.Start, seg.End)
	}
	if !video.Samples.IsSync(first) {
		return 0, fmt.Errorf("hls: track %d: segment [%d, %d) does not start with a sync sample", video.ID, seg.Start, seg.End)
	}
	var b vfile.Builder
	if err := mp4build.MediaSegment(&b, ix, []*media.Track{video}, seg, 1); err != nil {
		return 0, err
	}
	f := b.File("", "", time.Time{}, "")
	head, err := generated(f, 0, 8)
	if err != nil {
		return 0, err
	}
	if string(head[4:8]) != "moof" {
		return 0, fmt.Errorf("hls: media segment starts with %q, not moof", head[4:8])
	}
	moof := int64(binary.BigEndian.Uint32(head))
	if f.Size-moof < 8 {
		return 0, errors.New("hls: media segment: no mdat after the moof")
	}
	head, err = generated(f, moof, 8)
	if err != nil {
		return 0, err
	}
	if string(head[4:8]) != "mdat" {
		return 0, fmt.Errorf("hls: media segment: %q after the moof, not mdat", head[4:8])
	}
	hdr := int64(8)
	if binary.BigEndian.Uint32(head) == 1 {
		hdr = 16 // 64-bit largesize
	}
	n := moof + hdr + int64(video.Samples.Size[first])
	if n > f.Size {
		return 0, fmt.Errorf("hls: I-frame range of %d bytes exceeds the %d-byte segment", n, f.Size)
	}
	return n, nil
}

// generated returns n bytes of f at off, which must be generated (not
// stored) bytes.
func generated(f *vfile.File, off, n int64) ([]byte, error) {
	var out []byte
	err := f.Slice(off, n, func(p vfile.Piece) error {
		if p.IsStored() {
			return errors.New("hls: media segment box header is not generated data")
		}
		out = append(out, p.Data...)
		return nil
	})
	return out, err
}

// FMP4IFrames returns the I-frame playlist entries of an fMP4 video track
// (for IFrames), one per media segment of segs: segment n's first frame,
// the range given by FMP4IFrameRange, lasting until the next segment.
// Entries name their segment by index (IFrame.Segment), and their times
// are in video's timescale (pass video.Timescale to IFrames).
func FMP4IFrames(ix *media.Index, video *media.Track, segs []media.Segment) ([]IFrame, error) {
	spans := TrackSegments(ix, video, segs)
	frames := make([]IFrame, len(segs))
	for n, seg := range segs {
		length, err := FMP4IFrameRange(ix, video, seg)
		if err != nil {
			return nil, fmt.Errorf("segment %d: %w", n, err)
		}
		frames[n] = IFrame{Segment: n, Length: length, Start: spans[n].Start, Duration: spans[n].End - spans[n].Start}
	}
	return frames, nil
}
