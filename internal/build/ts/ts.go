// Package ts builds MPEG-2 transport stream (TS) segments for HLS from the
// samples of indexed MP4 recordings, at request time.
//
// # Layout of a segment
//
// A segment holds at most two elementary streams: the first video input
// (H.264 or H.265) and the first audio input (AAC). Further inputs, and
// inputs of other kinds (subtitles, timed metadata), are ignored. PIDs are
// fixed like ffmpeg's: PMT PIDPMT (0x1000), video PIDVideo (0x100), audio
// PIDAudio (0x101); the program number is 1.
//
// The segment starts with a PAT and a PMT packet, and a PAT+PMT pair is
// repeated right before the PES of every video keyframe, so that each
// keyframe range of Layout.Keyframes (PAT, PMT, the keyframe's PES) is a
// stream of its own that a player can decode: what an HLS I-frame playlist
// points at. Every access unit of video is one PES; the PES packets of the
// two streams are interleaved by decode time (video first on ties), except
// that a segment whose first video sample is a keyframe starts with it, and
// a PES is never interrupted by packets of another PID.
//
// # Video
//
// Length-prefixed NAL units (AVCC/HVCC, 3- or 4-byte lengths) become Annex B
// NAL units with start codes of the same length, so their size does not
// change. Each access unit starts with an access unit delimiter (inserted,
// unless the sample starts with one), and every keyframe carries the
// parameter sets of its chapter's sample entry (SPS/PPS from avcC,
// VPS/SPS/PPS from hvcC) before its first other NAL unit. A keyframe that
// already holds NAL units of every parameter-set type gets none inserted,
// and a sample that starts with its own delimiter gets no second one; the
// bytes saved are given back as a filler-data NAL unit at the end of the
// access unit. That keeps the size of every access unit a function of the
// index alone, which is what lets Plan compute the exact segment size and
// keyframe ranges without reading media.
//
// # Audio
//
// Every AAC frame gets a 7-byte ADTS header built from the
// AudioSpecificConfig of its chapter's sample entry (HE-AAC v1/v2 signal the
// AAC-LC core, as usual in ADTS). Consecutive frames are grouped into one
// PES as long as the group lasts at most AudioPESDuration (90 ms, that is 4
// frames of 1024 samples at 48 kHz) and each frame's time is the one a
// player infers from the PES's PTS and the frame length (1024 samples at the
// ADTS rate), within one 90 kHz tick: a gap or an irregular duration in the
// index (AAC priming, chapter joins) starts a new PES, so every frame keeps
// its exact time. Groups restart at the first audio sample of each segment,
// so they are deterministic. Empty samples are skipped.
//
// # Timestamps
//
// Timestamps are in 90 kHz units, on the asset timeline, shifted by
// Options.Offset (default DefaultOffset, 10 s):
//
//	PTS = Offset + floor((DTS + CTO - MediaTime) * 90000 / timescale)
//	DTS = Offset + floor((DTS - MediaTime - Shift) * 90000 / timescale)
//
// where DTS, CTO and MediaTime (the first chapter's edit list start) are
// those of the index, and Shift is the largest negative composition offset
// of the track (0 unless the MP4 uses negative ctts offsets), so that DTS
// never exceeds PTS. The presentation time of a sample is thus the same as
// in the fragmented MP4 outputs (tfdt = DTS, with an edit list of MediaTime)
// plus the offset: segment n of an asset always gets the same timestamps, and
// a player switching between TS and fMP4 renditions sees consistent times.
// The offset keeps the first timestamps positive despite B-frame delay and
// AAC priming (which make PTS-MediaTime slightly negative near 0); 33-bit
// timestamps wrap as MPEG-2 defines. The PES header carries a DTS only when
// it differs from the PTS.
//
// The PCR is on the video PID (the audio PID when the segment holds no video
// samples), in the first packet of every PES of that PID, equal to that
// PES's DTS minus PCRDelay. Keyframe and audio PES start with
// random_access_indicator set.
//
// # Continuity counters
//
// Continuity counters start at 0 on every PID in every segment, so a
// segment's bytes depend only on the index, the inputs and the options and
// can be built and cached independently. Concatenated segments thus show a
// continuity-counter jump at each segment boundary; HLS players load
// segments as independent resources and do not mind (ffmpeg only logs it
// at debug level).
package ts

import (
	"errors"
	"fmt"
	"time"

	"github.com/jitstream/jitstream/internal/media"
)

// Fixed PIDs and sizes of the transport stream.
const (
	PIDPAT   = 0x0000 // program association table
	PIDPMT   = 0x1000 // program map table of program 1
	PIDVideo = 0x0100 // video elementary stream
	PIDAudio = 0x0101 // audio elementary stream

	// PacketSize is the size of a transport stream packet.
	PacketSize = 188
)

// Timing constants; see the package documentation.
const (
	// DefaultOffset is the timestamp offset used when Options.Offset is 0.
	DefaultOffset = 10 * time.Second
	// AudioPESDuration is the longest duration of AAC frames grouped in
	// one PES.
	AudioPESDuration = 90 * time.Millisecond
	// PCRDelay is how far the PCR in a PES's first packet lags the PES's
	// decode time.
	PCRDelay = 100 * time.Millisecond
)

// Input is a run of samples of one track: samples [First, End).
type Input struct {
	Track      *media.Track
	First, End int
	// Data[i] holds the bytes of sample First+i exactly as stored in the
	// MP4: length-prefixed NAL units for video, raw AAC frames for audio.
	// Plan does not need it and accepts nil.
	Data [][]byte
}

// Options tune the muxer.
type Options struct {
	// Offset is added to every timestamp (PTS, DTS, PCR). Zero selects
	// DefaultOffset; there is deliberately no way to ask for no offset, as
	// B-frame delay and AAC priming make the first timestamps negative.
	// Negative values are allowed (timestamps wrap modulo 2^33).
	Offset time.Duration
}

// Range is a byte range of a segment.
type Range struct {
	Offset, Length int64
	// Time is the presentation time of the range's keyframe on the asset
	// timeline, in seconds (without Options.Offset):
	// (DTS + CTO - MediaTime) / timescale.
	Time float64
}

// Layout describes a segment without its bytes.
type Layout struct {
	// Size is the segment's size in bytes, a multiple of PacketSize.
	Size int64
	// Keyframes are the byte ranges of the video keyframes, in order: each
	// starts at a PAT packet, followed by a PMT packet and the keyframe's
	// PES, and ends with the last packet of that PES.
	Keyframes []Range
}

// ErrData is returned (wrapped, along with media.ErrInvalid) when sample
// bytes do not match the index or are not well-formed, for example NAL unit
// lengths that overrun the sample.
var ErrData = errors.New("sample data does not match the index")

// Plan computes the layout of the segment that Mux builds from the same
// arguments, from the index alone: no sample bytes are needed (in[i].Data
// is not used).
func Plan(ix *media.Index, in []Input, opt Options) (*Layout, error) {
	s, err := newSegment(ix, in, opt, false)
	if err != nil {
		return nil, err
	}
	m := &muxer{seg: s}
	if err := m.run(); err != nil {
		return nil, err
	}
	return &m.layout, nil
}

// Mux builds the segment: exactly Plan(ix, in, opt).Size bytes. Every input
// that is muxed must have Data for each of its samples.
func Mux(ix *media.Index, in []Input, opt Options) ([]byte, error) {
	b, _, err := MuxLayout(ix, in, opt)
	return b, err
}

// MuxLayout is Mux that also returns the segment's layout, equal to what
// Plan returns.
func MuxLayout(ix *media.Index, in []Input, opt Options) ([]byte, *Layout, error) {
	s, err := newSegment(ix, in, opt, true)
	if err != nil {
		return nil, nil, err
	}
	plan := &muxer{seg: s}
	if err := plan.run(); err != nil {
		return nil, nil, err
	}
	m := &muxer{seg: s, write: true, out: make([]byte, 0, plan.layout.Size)}
	if err := m.run(); err != nil {
		return nil, nil, err
	}
	if int64(len(m.out)) != plan.layout.Size || m.layout.Size != plan.layout.Size {
		return nil, nil, fmt.Errorf("ts: internal error: wrote %d bytes, planned %d", len(m.out), plan.layout.Size)
	}
	if len(m.layout.Keyframes) != len(plan.layout.Keyframes) {
		return nil, nil, fmt.Errorf("ts: internal error: wrote %d keyframes, planned %d", len(m.layout.Keyframes), len(plan.layout.Keyframes))
	}
	for i, k := range m.layout.Keyframes {
		if k != plan.layout.Keyframes[i] {
			return nil, nil, fmt.Errorf("ts: internal error: keyframe %d written at %+v, planned at %+v", i, k, plan.layout.Keyframes[i])
		}
	}
	return m.out, &m.layout, nil
}
