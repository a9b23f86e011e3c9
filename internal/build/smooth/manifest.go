package smooth

import (
	"encoding/xml"
	"fmt"
	"sort"

	"github.com/jitstream/jitstream/internal/media"
)

// ManifestTimeScale is the SmoothStreamingMedia TimeScale (100 ns units),
// in which the manifest's Duration is given. Chunk times are in each
// StreamIndex's own TimeScale, its track's media timescale.
const ManifestTimeScale = 10_000_000

// ManifestOptions tunes the client manifest.
type ManifestOptions struct {
	// Repeat writes runs of chunks of equal duration as one c element with
	// an r attribute (the number of chunks of the run, as dash.js and
	// ExoPlayer read it). Off, every chunk has its own c element. Either
	// way every c element has its start time t.
	Repeat bool
	// VideoLevels are more QualityLevels of the video StreamIndex: the
	// transcoded renditions of the video track, whose fragments have its
	// chunks' times (see RewriteCMAF). With them, a video track that
	// Smooth Streaming cannot offer itself (H.265) still has a
	// StreamIndex, of these levels only.
	VideoLevels []VideoLevel
}

// VideoLevel is a transcoded rendition offered as a QualityLevel.
type VideoLevel struct {
	// Bitrate names it in the manifest and in fragment URLs; it must
	// differ from the video track's Bitrate and the other levels'.
	Bitrate       int64
	Width, Height uint32
	// SampleEntry is the avc1 sample entry of its fragments, from which
	// its CodecPrivateData is made.
	SampleEntry []byte
}

// Manifest returns the Smooth Streaming client manifest of ix for the
// segments segs (ix.Segments; every track's fragments must be built with
// the same segments): a StreamIndex per offered track (see Tracks) with one
// quality level whose Bitrate is Bitrate(track), and one chunk per segment
// that holds samples of the track. For the reference track (see
// media.Index.Reference) that is every segment, chunk n starting at
// segs[n].Start; the other track's chunk n starts at the decode time of its
// first sample in segment n. Fragment URLs follow the template
// "QualityLevels({bitrate})/Fragments(video={start time})" (audio for the
// audio stream), relative to the manifest.
//
// It fails with an error wrapping ErrUnsupported when ix cannot be
// presented (see Tracks).
func Manifest(ix *media.Index, segs []media.Segment, opt ManifestOptions) ([]byte, error) {
	tracks, err := Tracks(ix)
	renditionsOnly := false
	if err != nil && len(opt.VideoLevels) > 0 && ix.Video() != nil {
		// The video only through its renditions; the audio as it is.
		tracks, renditionsOnly = []*media.Track{ix.Video()}, true
		if a := ix.Audio(); a != nil {
			if _, aerr := describe(a); aerr != nil {
				return nil, aerr
			}
			tracks = append(tracks, a)
		}
	} else if err != nil {
		return nil, err
	}
	ref, err := checkSegments(ix, segs)
	if err != nil {
		return nil, err
	}
	doc := xmlMedia{MajorVersion: 2, MinorVersion: 2, TimeScale: ManifestTimeScale}
	for _, t := range tracks {
		var s stream
		if !(renditionsOnly && t == ix.Video()) {
			if s, err = describe(t); err != nil {
				return nil, err
			}
		}
		typ := StreamType(t)
		si := StreamIndexXML{
			Type:          typ,
			Name:          typ,
			QualityLevels: 1,
			TimeScale:     t.Timescale,
			URL:           "QualityLevels({bitrate})/Fragments(" + typ + "={start time})",
		}
		if t.Language != "" && t.Language != "und" {
			si.Language = t.Language
		}
		ql := QualityLevelXML{
			Bitrate:          Bitrate(t),
			FourCC:           s.fourCC,
			CodecPrivateData: hexUpper(s.privData),
		}
		switch t.Kind {
		case media.KindVideo:
			ql.MaxWidth, ql.MaxHeight = t.Width, t.Height
			si.MaxWidth, si.MaxHeight = t.Width, t.Height
			si.DisplayWidth, si.DisplayHeight = t.TkhdWidth>>16, t.TkhdHeight>>16
		case media.KindAudio:
			ql.SamplingRate, ql.Channels = s.sampleRate, s.channels
			ql.BitsPerSample, ql.PacketSize, ql.AudioTag = 16, 4, 255
		}
		si.Levels = []QualityLevelXML{ql}
		if t == ix.Video() && len(opt.VideoLevels) > 0 {
			if renditionsOnly {
				si.Levels = si.Levels[:0]
			}
			for _, vl := range opt.VideoLevels {
				d, err := describeVideo(t, vl.SampleEntry)
				if err != nil {
					return nil, fmt.Errorf("smooth streaming: rendition of %d bit/s: %w", vl.Bitrate, err)
				}
				si.Levels = append(si.Levels, QualityLevelXML{Index: len(si.Levels), Bitrate: vl.Bitrate, FourCC: d.fourCC,
					MaxWidth: vl.Width, MaxHeight: vl.Height, CodecPrivateData: hexUpper(d.privData)})
				si.MaxWidth, si.MaxHeight = max(si.MaxWidth, vl.Width), max(si.MaxHeight, vl.Height)
			}
			si.QualityLevels = len(si.Levels)
		}
		for _, c := range chunks(ref, t, segs) {
			si.Chunks++
			if k := len(si.C) - 1; opt.Repeat && k >= 0 {
				if last := si.C[k]; last.D == c.d && last.T+int64(max(last.R, 1))*last.D == c.t {
					si.C[k].R = max(last.R, 1) + 1
					continue
				}
			}
			si.C = append(si.C, ChunkXML{T: c.t, D: c.d})
		}
		doc.Streams = append(doc.Streams, si)
		doc.Duration = max(doc.Duration, media.Rescale(t.Duration(), t.Timescale, ManifestTimeScale))
	}
	out, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("smooth streaming: encoding manifest: %w", err)
	}
	return append(append([]byte(xml.Header), out...), '\n'), nil
}

// The client manifest (MS-SSTR 2.2.2). Attributes are written in field
// order.
type xmlMedia struct {
	XMLName      xml.Name         `xml:"SmoothStreamingMedia"`
	MajorVersion int              `xml:",attr"`
	MinorVersion int              `xml:",attr"`
	TimeScale    int64            `xml:",attr"`
	Duration     int64            `xml:",attr"`
	Streams      []StreamIndexXML `xml:"StreamIndex"`
}

// StreamIndexXML is a StreamIndex element of a client manifest (MS-SSTR
// 2.2.2.3), for VOD here and for live streams (internal/live).
type StreamIndexXML struct {
	Type          string            `xml:",attr"`
	Name          string            `xml:",attr"`
	Language      string            `xml:",attr,omitempty"`
	Chunks        int               `xml:",attr"`
	QualityLevels int               `xml:",attr"`
	TimeScale     uint32            `xml:",attr"`
	MaxWidth      uint32            `xml:",attr,omitempty"`
	MaxHeight     uint32            `xml:",attr,omitempty"`
	DisplayWidth  uint32            `xml:",attr,omitempty"`
	DisplayHeight uint32            `xml:",attr,omitempty"`
	URL           string            `xml:"Url,attr"`
	Levels        []QualityLevelXML `xml:"QualityLevel"`
	C             []ChunkXML        `xml:"c"`
}

// QualityLevelXML is a QualityLevel element (MS-SSTR 2.2.2.5).
type QualityLevelXML struct {
	Index            int    `xml:",attr"`
	Bitrate          int64  `xml:",attr"`
	FourCC           string `xml:",attr"`
	MaxWidth         uint32 `xml:",attr,omitempty"`
	MaxHeight        uint32 `xml:",attr,omitempty"`
	SamplingRate     uint32 `xml:",attr,omitempty"`
	Channels         uint16 `xml:",attr,omitempty"`
	BitsPerSample    int    `xml:",attr,omitempty"`
	PacketSize       int    `xml:",attr,omitempty"`
	AudioTag         int    `xml:",attr,omitempty"`
	CodecPrivateData string `xml:",attr"`
}

// ChunkXML is a c (StreamFragmentElement) element (MS-SSTR 2.2.2.6): a
// fragment's start time t and duration d, repeated r more times.
type ChunkXML struct {
	T int64 `xml:"t,attr"`
	D int64 `xml:"d,attr"`
	R int   `xml:"r,attr,omitempty"`
}

// chunk is the part of a track in segment n: samples [first, end), starting
// at decode time t and lasting d, in the track's timescale.
type chunk struct {
	n          int
	first, end int
	t, d       int64
}

// checkSegments checks that segs are contiguous, non-empty spans and
// returns the index's reference track, whose timescale they are in.
func checkSegments(ix *media.Index, segs []media.Segment) (*media.Track, error) {
	ref := ix.Reference()
	if ref == nil || ref.Samples.Len() == 0 {
		return nil, fmt.Errorf("%w: no samples", ErrUnsupported)
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("smooth streaming: no segments")
	}
	for n, s := range segs {
		if s.Start < 0 || s.End <= s.Start || (n > 0 && s.Start != segs[n-1].End) {
			return nil, fmt.Errorf("smooth streaming: segment %d [%d, %d) is not contiguous and non-empty", n, s.Start, s.End)
		}
	}
	return ref, nil
}

// span returns the samples of track t in segment n, like the DASH and HLS
// media segments (mp4build.MediaSegment): those decoded in [Start, End)
// rescaled to t's timescale, and every remaining sample for a segment that
// ends at or after the reference track's end.
func span(ref, t *media.Track, segs []media.Segment, n int) (first, end int) {
	seg := segs[n]
	first = t.Find(media.Rescale(seg.Start, ref.Timescale, t.Timescale))
	end = t.Samples.Len()
	if seg.End < ref.Duration() {
		end = t.Find(media.Rescale(seg.End, ref.Timescale, t.Timescale))
	}
	return first, max(first, end)
}

// chunkOf returns track t's chunk of segment n; ok is false when the
// segment holds none of its samples.
func chunkOf(ref, t *media.Track, segs []media.Segment, n int) (c chunk, ok bool) {
	first, end := span(ref, t, segs, n)
	if first == end {
		return chunk{}, false
	}
	dts := t.Samples.DTS
	return chunk{n: n, first: first, end: end, t: dts[first], d: dts[end] - dts[first]}, true
}

// chunks returns track t's chunks, in order.
func chunks(ref, t *media.Track, segs []media.Segment) []chunk {
	out := make([]chunk, 0, len(segs))
	for n := range segs {
		if c, ok := chunkOf(ref, t, segs, n); ok {
			out = append(out, c)
		}
	}
	return out
}

// FragmentIndex maps the start time of a fragment URL
// ("Fragments(video=t)"), in the track's timescale, to the chunk number n
// for Fragment: the segment whose chunk of track starts exactly at t. It
// returns ok false for any other time.
func FragmentIndex(ix *media.Index, track *media.Track, segs []media.Segment, t uint64) (n int, ok bool) {
	ref, err := checkSegments(ix, segs)
	if err != nil || t > uint64(track.Duration()) {
		return 0, false
	}
	s := &track.Samples
	i := track.Find(int64(t))
	if i >= s.Len() || s.DTS[i] != int64(t) {
		return 0, false
	}
	// Chunk starts never decrease with n: take the last segment whose
	// first sample is at or before i.
	n = sort.Search(len(segs), func(n int) bool {
		first, _ := span(ref, track, segs, n)
		return first > i
	}) - 1
	if n < 0 {
		return 0, false
	}
	if c, ok := chunkOf(ref, track, segs, n); !ok || c.first != i {
		return 0, false
	}
	return n, true
}
