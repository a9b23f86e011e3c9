package hls

import (
	"bytes"
	"strconv"
	"time"

	"github.com/jitstream/jitstream/internal/media"
)

// Format is the segment format of a playlist.
type Format int

// Segment formats.
const (
	// FMP4 segments are fragmented MP4 (CMAF) media segments with an init
	// segment (EXT-X-MAP); playlists declare version 7.
	FMP4 Format = iota
	// TS segments are MPEG-2 transport stream segments; playlists declare
	// version 4 (the lowest that allows byte ranges).
	TS
)

func (f Format) version() int {
	if f == TS {
		return 4
	}
	return 7
}

func (f Format) ext() string {
	if f == TS {
		return ".ts"
	}
	return ".m4s"
}

// MediaOptions configures Media and IFrames playlists. The zero value makes
// an fMP4 playlist with URIs relative to hls/{track}/.
type MediaOptions struct {
	// Format is the segment format.
	Format Format
	// SegmentURI names media segment n (0-based); default "{n}.m4s" for
	// FMP4 and "{n}.ts" for TS. IFrames uses it only for entries without
	// a URI.
	SegmentURI func(n int) string
	// Map is the URI of the init segment (EXT-X-MAP) of an FMP4 playlist;
	// default "init.mp4". Ignored for TS.
	Map string
	// Start is the recording time of the asset timeline's time 0 (see
	// media.Index.Created). When not zero, the first segment carries an
	// EXT-X-PROGRAM-DATE-TIME, with millisecond precision, in UTC.
	Start time.Time
	// DateTimeEvery repeats EXT-X-PROGRAM-DATE-TIME every that many
	// segments when Start is set; 0 writes it on the first segment only.
	DateTimeEvery int
}

func (o *MediaOptions) segmentURI(b []byte, n int) []byte {
	if o.SegmentURI != nil {
		return append(b, o.SegmentURI(n)...)
	}
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, o.Format.ext()...)
}

// header writes the playlist header common to media and I-frame
// playlists.
func (o *MediaOptions) header(b *bytes.Buffer, target int, iframes bool) {
	buf := b.AvailableBuffer()
	buf = append(buf, "#EXTM3U\n#EXT-X-VERSION:"...)
	buf = strconv.AppendInt(buf, int64(o.Format.version()), 10)
	buf = append(buf, "\n#EXT-X-TARGETDURATION:"...)
	buf = strconv.AppendInt(buf, int64(target), 10)
	buf = append(buf, "\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n"...)
	if iframes {
		buf = append(buf, "#EXT-X-I-FRAMES-ONLY\n"...)
	}
	if o.Format == FMP4 {
		m := o.Map
		if m == "" {
			m = "init.mp4"
		}
		buf = append(buf, "#EXT-X-MAP:URI="...)
		buf = appendQuoted(buf, m)
		buf = append(buf, '\n')
	}
	b.Write(buf)
}

// dateTime appends EXT-X-PROGRAM-DATE-TIME for entry n starting at ms
// milliseconds on the asset timeline, when one is due.
func (o *MediaOptions) dateTime(buf []byte, n int, ms int64) []byte {
	if o.Start.IsZero() || (n > 0 && (o.DateTimeEvery <= 0 || n%o.DateTimeEvery != 0)) {
		return buf
	}
	buf = append(buf, "#EXT-X-PROGRAM-DATE-TIME:"...)
	t := o.Start.Add(time.Duration(ms) * time.Millisecond).UTC()
	buf = t.AppendFormat(buf, "2006-01-02T15:04:05.000Z07:00")
	return append(buf, '\n')
}

// Media returns the VOD media playlist of segments segs, given in timescale
// ts: for the reference track, the segments of media.Index.Segments in
// its timescale; for another track, TrackSegments of that track in its own
// timescale gives the exact durations of its segments (the boundaries of
// both are the same up to one sample).
//
// Segment n's EXTINF is the difference of its end and start times each
// rounded to the millisecond, so the durations add up to the playlist's
// duration without drift; EXT-X-TARGETDURATION is TargetDuration. The
// playlist has #EXT-X-ENDLIST and, for FMP4, #EXT-X-MAP.
func Media(segs []media.Segment, ts uint32, opt MediaOptions) []byte {
	if ts == 0 {
		ts = 1
	}
	var b bytes.Buffer
	// About 40 bytes per segment: "#EXTINF:4.000,\n1234.m4s\n" and slack.
	b.Grow(256 + 40*len(segs))
	opt.header(&b, TargetDuration(segs, ts), false)
	for n, s := range segs {
		start := millis(s.Start, ts)
		buf := opt.dateTime(b.AvailableBuffer(), n, start)
		buf = append(buf, "#EXTINF:"...)
		buf = appendMillis(buf, millis(s.End, ts)-start)
		buf = append(buf, ",\n"...)
		buf = opt.segmentURI(buf, n)
		buf = append(buf, '\n')
		b.Write(buf)
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	return b.Bytes()
}

// IFrame is one entry of an I-frame playlist: an I-frame stored as the byte
// range [Offset, Offset+Length) of a media segment, presented from Start
// for Duration (in the playlist's timescale) until the next I-frame.
type IFrame struct {
	// URI is the media segment's URI; when empty, MediaOptions.SegmentURI
	// of Segment names it.
	URI string
	// Segment is the index of the media segment, used when URI is empty.
	Segment int
	// Offset and Length delimit the I-frame's bytes in the segment: for
	// fMP4 from the moof to the end of the frame, for TS the packets
	// carrying it (with PAT and PMT).
	Offset, Length int64
	// Start and Duration place the entry on the asset timeline.
	Start, Duration int64
}

// IFrames returns the VOD I-frame playlist (EXT-X-I-FRAMES-ONLY) of the
// given entries, times in timescale ts: one EXTINF and EXT-X-BYTERANGE
// per entry, with EXT-X-MAP for FMP4. Durations are rounded as in Media.
// FMP4IFrames computes the entries of an fMP4 video track; for TS the
// entries come from the TS muxer's layout.
func IFrames(frames []IFrame, ts uint32, opt MediaOptions) []byte {
	if ts == 0 {
		ts = 1
	}
	var longest int64
	for _, f := range frames {
		longest = max(longest, millis(f.Start+f.Duration, ts)-millis(f.Start, ts))
	}
	var b bytes.Buffer
	b.Grow(256 + 64*len(frames))
	opt.header(&b, int(max((longest+999)/1000, 1)), true)
	for n, f := range frames {
		start := millis(f.Start, ts)
		buf := opt.dateTime(b.AvailableBuffer(), n, start)
		buf = append(buf, "#EXTINF:"...)
		buf = appendMillis(buf, millis(f.Start+f.Duration, ts)-start)
		buf = append(buf, ",\n#EXT-X-BYTERANGE:"...)
		buf = strconv.AppendInt(buf, f.Length, 10)
		buf = append(buf, '@')
		buf = strconv.AppendInt(buf, f.Offset, 10)
		buf = append(buf, '\n')
		if f.URI != "" {
			buf = append(buf, f.URI...)
		} else {
			buf = opt.segmentURI(buf, f.Segment)
		}
		buf = append(buf, '\n')
		b.Write(buf)
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	return b.Bytes()
}
