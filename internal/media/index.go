// Package media holds the media index of an asset: its tracks and, for every
// sample, where its bytes are stored and when it plays. Indexes are built by
// reading only MP4 box metadata (moov, moof), never media payloads.
package media

import (
	"fmt"
	"time"
)

// Kind classifies a track.
type Kind string

// Track kinds.
const (
	KindVideo    Kind = "video"
	KindAudio    Kind = "audio"
	KindSubtitle Kind = "subtitle"
	KindTimecode Kind = "timecode"
	KindMetadata Kind = "metadata"
	KindOther    Kind = "other"
)

// Index is the media index of one asset: one or more chapters (stored
// original files) forming one continuous timeline.
type Index struct {
	// Created is the recording time (from mvhd), zero if unknown.
	Created time.Time
	// Chapters are the stored originals, in timeline order.
	Chapters []Chapter
	// Tracks are the asset's tracks, in output order. Track i has ID i+1.
	Tracks []*Track
}

// Chapter is one stored original file.
type Chapter struct {
	// Object is the store key of the original bytes.
	Object string
	// Name is the original file name, e.g. "GX010042.MP4".
	Name string
	// Size is the object's size in bytes.
	Size int64
	// Start and Duration place the chapter on the asset timeline.
	Start, Duration time.Duration
}

// Track is one track of an asset across all chapters.
type Track struct {
	ID      uint32
	Kind    Kind
	Handler string // hdlr handler type: "vide", "soun", "meta", "tmcd", "text", "sbtl", "subt", ...
	Name    string // hdlr name
	// Format is the sample entry type of the first sample description,
	// e.g. "avc1", "hvc1", "mp4a", "tmcd", "gpmd".
	Format string
	// Codec is the RFC 6381 codecs parameter where known (avc1.64001f,
	// hvc1.1.6.L93.B0, mp4a.40.2), else Format.
	Codec     string
	Timescale uint32
	Language  string // ISO 639-2/T, "und" when unknown

	Width, Height uint32 // video: coded picture size (from the sample entry)
	SampleRate    uint32 // audio
	Channels      uint16 // audio

	// Tkhd fields carried to outputs.
	Matrix         [9]int32 // tkhd transformation matrix (rotation)
	TkhdWidth      uint32   // tkhd width, 16.16 fixed point
	TkhdHeight     uint32   // tkhd height, 16.16 fixed point
	Volume         int16    // 8.8 fixed point
	AlternateGroup int16
	Flags          uint32 // tkhd flags

	// SampleEntries are the complete sample entry boxes (header included)
	// as found in stsd; chapters whose entries differ add entries.
	SampleEntries [][]byte

	// MediaTime is the media time (in Timescale) at which presentation
	// starts, taken from the first chapter's edit list; 0 when there is none.
	MediaTime int64

	// Rendition, when not empty, names the transcoded rendition
	// (internal/transcode) that this track stands for in manifests: a
	// track that is not stored, with the timing of the video track it is
	// made from and nominal sample sizes (its bit rate); its segments come
	// from the transcoder. It is never encoded in a stored index.
	Rendition string

	// References are tref references: type -> referenced track IDs.
	References map[string][]uint32

	Samples Samples
}

// Samples is a track's sample table, one entry per sample in decode order,
// stored column by column.
type Samples struct {
	Offset []int64  // byte offset within the chapter's object
	Size   []uint32 // bytes
	Dur    []uint32 // decode duration in the track timescale
	CTO    []int32  // composition time offset; nil when all zero
	Sync   []bool   // sync (key) sample; nil when every sample is sync

	// ChapterStart[c] is the index of the first sample of chapter c;
	// ChapterStart[len(Chapters)] == number of samples.
	ChapterStart []int
	// ChapterDesc[c] is the 1-based index into SampleEntries used by
	// chapter c's samples.
	ChapterDesc []uint32

	// DTS is derived on load: decode time of each sample on the asset
	// timeline, in the track timescale (prefix sum of Dur), with one extra
	// element holding the track's end time.
	DTS []int64
}

// Len is the number of samples.
func (s *Samples) Len() int { return len(s.Size) }

// IsSync reports whether sample i is a sync sample.
func (s *Samples) IsSync(i int) bool { return s.Sync == nil || s.Sync[i] }

// CompOffset is sample i's composition time offset.
func (s *Samples) CompOffset(i int) int32 {
	if s.CTO == nil {
		return 0
	}
	return s.CTO[i]
}

// Chapter returns the chapter that sample i belongs to.
func (s *Samples) Chapter(i int) int {
	// Few chapters: linear scan from the end is fine.
	for c := len(s.ChapterStart) - 2; c >= 0; c-- {
		if i >= s.ChapterStart[c] {
			return c
		}
	}
	return 0
}

// Derive fills DTS from Dur. It must be called after the columns are set.
func (s *Samples) Derive() {
	n := len(s.Dur)
	if cap(s.DTS) >= n+1 {
		s.DTS = s.DTS[:n+1]
	} else {
		s.DTS = make([]int64, n+1)
	}
	var t int64
	for i, d := range s.Dur {
		s.DTS[i] = t
		t += int64(d)
	}
	s.DTS[n] = t
}

// Duration is the track's duration in its timescale.
func (t *Track) Duration() int64 {
	if len(t.Samples.DTS) == 0 {
		return 0
	}
	return t.Samples.DTS[len(t.Samples.DTS)-1]
}

// Seconds converts a time in the track's timescale to seconds.
func (t *Track) Seconds(ticks int64) float64 { return float64(ticks) / float64(t.Timescale) }

// Bytes is the sum of the track's sample sizes.
func (t *Track) Bytes() int64 {
	var n int64
	for _, s := range t.Samples.Size {
		n += int64(s)
	}
	return n
}

// Bitrate is the track's average bit rate in bits per second.
func (t *Track) Bitrate() int64 {
	d := t.Duration()
	if d <= 0 {
		return 0
	}
	return t.Bytes() * 8 * int64(t.Timescale) / d
}

// Duration is the asset's duration: the longest track.
func (ix *Index) Duration() time.Duration {
	var d time.Duration
	for _, t := range ix.Tracks {
		if t.Timescale == 0 {
			continue
		}
		td := time.Duration(float64(t.Duration()) / float64(t.Timescale) * float64(time.Second))
		if td > d {
			d = td
		}
	}
	return d
}

// Size is the total size of the stored originals.
func (ix *Index) Size() int64 {
	var n int64
	for _, c := range ix.Chapters {
		n += c.Size
	}
	return n
}

// Bitrate is the asset's average bit rate over all tracks, in bits/s.
func (ix *Index) Bitrate() int64 {
	var b int64
	for _, t := range ix.Tracks {
		b += t.Bitrate()
	}
	return b
}

// Video returns the first video track, or nil.
func (ix *Index) Video() *Track { return ix.first(KindVideo) }

// Audio returns the first audio track, or nil.
func (ix *Index) Audio() *Track { return ix.first(KindAudio) }

func (ix *Index) first(k Kind) *Track {
	for _, t := range ix.Tracks {
		if t.Kind == k {
			return t
		}
	}
	return nil
}

// Validate checks the index's internal consistency: column lengths, chapter
// boundaries, and that every sample lies inside its chapter's object.
func (ix *Index) Validate() error { return ix.validate(true) }

// validate checks the index's structure: track IDs, timescales, column
// lengths, chapter tables and sample entries. With samples set it also
// checks that every sample lies inside its chapter's object, a pass over all
// samples that Unmarshal leaves out because its decoder checks every sample
// as it decodes it.
func (ix *Index) validate(samples bool) error {
	if len(ix.Chapters) == 0 {
		return fmt.Errorf("index: no chapters")
	}
	if len(ix.Tracks) == 0 {
		return fmt.Errorf("index: no tracks")
	}
	for ti, t := range ix.Tracks {
		s := &t.Samples
		n := len(s.Size)
		if t.ID != uint32(ti+1) {
			return fmt.Errorf("index: track %d has ID %d", ti+1, t.ID)
		}
		if t.Timescale == 0 {
			return fmt.Errorf("index: track %d: zero timescale", t.ID)
		}
		if len(s.Offset) != n || len(s.Dur) != n || (s.CTO != nil && len(s.CTO) != n) || (s.Sync != nil && len(s.Sync) != n) {
			return fmt.Errorf("index: track %d: sample columns differ in length", t.ID)
		}
		if len(s.ChapterStart) != len(ix.Chapters)+1 || len(s.ChapterDesc) != len(ix.Chapters) {
			return fmt.Errorf("index: track %d: chapter table does not match %d chapters", t.ID, len(ix.Chapters))
		}
		if s.ChapterStart[0] != 0 || s.ChapterStart[len(ix.Chapters)] != n {
			return fmt.Errorf("index: track %d: chapter table does not cover the samples", t.ID)
		}
		if len(t.SampleEntries) == 0 {
			return fmt.Errorf("index: track %d: no sample entries", t.ID)
		}
		for c := range ix.Chapters {
			a, b := s.ChapterStart[c], s.ChapterStart[c+1]
			if a > b {
				return fmt.Errorf("index: track %d: chapter table out of order", t.ID)
			}
			if d := s.ChapterDesc[c]; d == 0 || int(d) > len(t.SampleEntries) {
				return fmt.Errorf("index: track %d: chapter %d uses sample entry %d of %d", t.ID, c, d, len(t.SampleEntries))
			}
			if !samples {
				continue
			}
			size := ix.Chapters[c].Size
			for i := a; i < b; i++ {
				if s.Offset[i] < 0 || s.Offset[i] > size-int64(s.Size[i]) { // no overflow near MaxInt64
					return fmt.Errorf("index: track %d sample %d (bytes %d+%d) lies outside %s (%d bytes)",
						t.ID, i, s.Offset[i], s.Size[i], ix.Chapters[c].Name, size)
				}
			}
		}
	}
	return nil
}
