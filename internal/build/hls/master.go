package hls

import (
	"bytes"
	"strconv"

	"github.com/jitstream/jitstream/internal/media"
)

// MasterOptions configures Master. The zero value makes the playlist served
// as hls/master.m3u8, with URIs relative to it.
type MasterOptions struct {
	// Exclude lists track IDs to leave out (to drop variants or
	// renditions).
	Exclude []uint32
	// MediaURI names the media playlist of a track; default
	// "{TrackName}/index.m3u8".
	MediaURI func(t *media.Track) string
	// IFrameURI names the I-frame playlist of a video track; default
	// "{TrackName}/iframes.m3u8".
	IFrameURI func(t *media.Track) string
	// NoIFrames leaves out the EXT-X-I-FRAME-STREAM-INF tags.
	NoIFrames bool
	// IFrameBandwidth, when set and positive for a track, is the BANDWIDTH
	// of its I-frame variant (IFramesPeakBitrate of its FMP4IFrames, say);
	// otherwise it is estimated with IFrameBitrate.
	IFrameBandwidth func(t *media.Track) int64
	// AudioGroup is the GROUP-ID of the audio renditions; default "aud".
	AudioGroup string
	// AudioName names an audio rendition (NAME, unique within the group);
	// default "Audio" when there is one audio track, else "Audio {ID}".
	AudioName func(t *media.Track) string
	// Images, when not nil, is a thumbnail track, listed with
	// EXT-X-IMAGE-STREAM-INF (see ImagePlaylist).
	Images *ImageTrack
}

func (o *MasterOptions) mediaURI(t *media.Track) string {
	if o.MediaURI != nil {
		return o.MediaURI(t)
	}
	return TrackName(t) + "/index.m3u8"
}

func (o *MasterOptions) iframeURI(t *media.Track) string {
	if o.IFrameURI != nil {
		return o.IFrameURI(t)
	}
	return TrackName(t) + "/iframes.m3u8"
}

// Master returns the multivariant playlist of the fMP4 variant of ix, whose
// media segments are segs (from ix.Segments):
//
//   - every audio track is a rendition of one audio group (EXT-X-MEDIA
//     TYPE=AUDIO with NAME, LANGUAGE when known, CHANNELS; the first is
//     DEFAULT=YES, all AUTOSELECT=YES);
//   - every video track is a variant (EXT-X-STREAM-INF) with BANDWIDTH, the
//     peak segment bit rate of the video and the heaviest audio rendition
//     together (PeakBitrate with the fMP4 overhead estimates),
//     AVERAGE-BANDWIDTH, CODECS (the video's and every audio rendition's),
//     RESOLUTION (the coded size; rotation is not applied), FRAME-RATE and
//     AUDIO;
//   - every video track whose segments all start with a key frame (the
//     reference track always does), transcoded renditions
//     (media.Track.Rendition) excepted, has an I-frame variant
//     (EXT-X-I-FRAME-STREAM-INF) with BANDWIDTH (estimated with
//     IFrameBitrate unless given), the video CODECS and RESOLUTION;
//   - an asset without video has one variant per audio track instead;
//   - with opt.Images, an EXT-X-IMAGE-STREAM-INF of the thumbnail track.
//
// Tracks of other kinds are not offered.
func Master(ix *media.Index, segs []media.Segment, opt MasterOptions) []byte {
	videos := included(ix, media.KindVideo, opt.Exclude)
	audios := included(ix, media.KindAudio, opt.Exclude)
	group := opt.AudioGroup
	if group == "" {
		group = "aud"
	}
	b := make([]byte, 0, 1024)
	b = append(b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n"...)

	if len(videos) == 0 {
		for _, a := range audios {
			tracks := []*media.Track{a}
			b = streamInf(b, PeakBitrate(ix, tracks, segs, FMP4SampleOverhead, FMP4SegmentOverhead),
				AverageBitrate(ix, tracks, segs, FMP4SampleOverhead, FMP4SegmentOverhead), []string{a.Codec})
			b = append(b, '\n')
			b = append(b, opt.mediaURI(a)...)
			b = append(b, '\n')
		}
		return b
	}

	var audioCodecs []string
	for i, a := range audios {
		b = append(b, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="...)
		b = appendQuoted(b, group)
		b = append(b, ",NAME="...)
		switch {
		case opt.AudioName != nil:
			b = appendQuoted(b, opt.AudioName(a))
		case len(audios) == 1:
			b = appendQuoted(b, "Audio")
		default:
			b = appendQuoted(b, "Audio "+strconv.FormatUint(uint64(a.ID), 10))
		}
		if lang := Language(a.Language); lang != "" {
			b = append(b, ",LANGUAGE="...)
			b = appendQuoted(b, lang)
		}
		if i == 0 {
			b = append(b, ",DEFAULT=YES"...)
		} else {
			b = append(b, ",DEFAULT=NO"...)
		}
		b = append(b, ",AUTOSELECT=YES"...)
		if a.Channels > 0 {
			b = append(b, ",CHANNELS="...)
			b = appendQuoted(b, strconv.Itoa(int(a.Channels)))
		}
		b = append(b, ",URI="...)
		b = appendQuoted(b, opt.mediaURI(a))
		b = append(b, '\n')
		audioCodecs = appendUnique(audioCodecs, a.Codec)
	}

	for _, v := range videos {
		var peak, avg int64
		if len(audios) == 0 {
			peak = PeakBitrate(ix, []*media.Track{v}, segs, FMP4SampleOverhead, FMP4SegmentOverhead)
			avg = AverageBitrate(ix, []*media.Track{v}, segs, FMP4SampleOverhead, FMP4SegmentOverhead)
		}
		for _, a := range audios {
			tracks := []*media.Track{v, a}
			peak = max(peak, PeakBitrate(ix, tracks, segs, FMP4SampleOverhead, FMP4SegmentOverhead))
			avg = max(avg, AverageBitrate(ix, tracks, segs, FMP4SampleOverhead, FMP4SegmentOverhead))
		}
		b = streamInf(b, peak, avg, append([]string{v.Codec}, audioCodecs...))
		b = appendResolution(b, v)
		b = append(b, ",FRAME-RATE="...)
		b = appendFrameRate(b, v)
		if len(audios) > 0 {
			b = append(b, ",AUDIO="...)
			b = appendQuoted(b, group)
		}
		b = append(b, '\n')
		b = append(b, opt.mediaURI(v)...)
		b = append(b, '\n')
	}
	if !opt.NoIFrames {
		for _, v := range videos {
			if v.Rendition != "" || !startsWithSync(ix, v, segs) {
				continue // no I-frame playlist (see FMP4IFrames; a rendition's segments are not built yet)
			}
			var bw int64
			if opt.IFrameBandwidth != nil {
				bw = opt.IFrameBandwidth(v)
			}
			if bw <= 0 {
				bw = IFrameBitrate(ix, v, segs, FMP4SampleOverhead, FMP4SegmentOverhead)
			}
			b = append(b, "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH="...)
			b = strconv.AppendInt(b, max(bw, 1), 10)
			b = append(b, ",CODECS="...)
			b = appendQuoted(b, v.Codec)
			b = appendResolution(b, v)
			b = append(b, ",URI="...)
			b = appendQuoted(b, opt.iframeURI(v))
			b = append(b, '\n')
		}
	}
	if opt.Images != nil {
		b = appendImageStream(b, opt.Images)
	}
	return b
}

// TSMasterOptions configures TSMaster. The zero value makes the playlist
// served as hls/ts/master.m3u8, with URIs relative to it.
type TSMasterOptions struct {
	// Exclude lists track IDs to leave out.
	Exclude []uint32
	// MediaURI is the URI of the muxed media playlist; default
	// "index.m3u8".
	MediaURI string
	// IFrameURI is the URI of the I-frame playlist; default
	// "iframes.m3u8".
	IFrameURI string
	// NoIFrames leaves out the EXT-X-I-FRAME-STREAM-INF tag.
	NoIFrames bool
	// IFrameBandwidth, when positive, is the I-frame playlist's BANDWIDTH
	// (computed from the TS muxer's actual byte ranges, say); otherwise it
	// is estimated with IFrameBitrate and the TS overheads.
	IFrameBandwidth int64
	// Renditions are more variants: tracks of ix that stand for
	// transcoded renditions (media.Track.Rendition), each muxed with the
	// same audio, at "{Rendition}/index.m3u8".
	Renditions []*media.Track
}

// TSMaster returns the multivariant playlist of the MPEG-TS variant of ix:
// one variant muxing the first video and the first audio track (not
// excluded), with BANDWIDTH and AVERAGE-BANDWIDTH estimated with the TS
// overheads (TSSampleOverhead, TSSegmentOverhead, TSScale), CODECS of
// both, RESOLUTION and FRAME-RATE; one more such variant per rendition of
// opt.Renditions; and, with video whose segments start with key frames,
// an I-frame variant.
func TSMaster(ix *media.Index, segs []media.Segment, opt TSMasterOptions) []byte {
	var tracks []*media.Track
	var codecs []string
	video := first(included(ix, media.KindVideo, opt.Exclude))
	audio := first(included(ix, media.KindAudio, opt.Exclude))
	for _, t := range []*media.Track{video, audio} {
		if t != nil {
			tracks = append(tracks, t)
			codecs = append(codecs, t.Codec)
		}
	}
	uri := opt.MediaURI
	if uri == "" {
		uri = "index.m3u8"
	}
	b := make([]byte, 0, 512)
	b = append(b, "#EXTM3U\n#EXT-X-VERSION:"...)
	b = strconv.AppendInt(b, int64(TS.version()), 10)
	b = append(b, "\n#EXT-X-INDEPENDENT-SEGMENTS\n"...)
	if len(tracks) == 0 {
		return b
	}
	b = streamInf(b, TSScale(PeakBitrate(ix, tracks, segs, TSSampleOverhead, TSSegmentOverhead)),
		TSScale(AverageBitrate(ix, tracks, segs, TSSampleOverhead, TSSegmentOverhead)), codecs)
	if video != nil {
		b = appendResolution(b, video)
		b = append(b, ",FRAME-RATE="...)
		b = appendFrameRate(b, video)
	}
	b = append(b, '\n')
	b = append(b, uri...)
	b = append(b, '\n')
	for _, r := range opt.Renditions {
		rt, rc := []*media.Track{r}, []string{r.Codec}
		if audio != nil {
			rt, rc = append(rt, audio), append(rc, audio.Codec)
		}
		b = streamInf(b, TSScale(PeakBitrate(ix, rt, segs, TSSampleOverhead, TSSegmentOverhead)),
			TSScale(AverageBitrate(ix, rt, segs, TSSampleOverhead, TSSegmentOverhead)), rc)
		b = appendResolution(b, r)
		b = append(b, ",FRAME-RATE="...)
		b = appendFrameRate(b, r)
		b = append(b, '\n')
		b = append(b, r.Rendition+"/index.m3u8\n"...)
	}
	if video != nil && !opt.NoIFrames && startsWithSync(ix, video, segs) {
		bw := opt.IFrameBandwidth
		if bw <= 0 {
			bw = TSScale(IFrameBitrate(ix, video, segs, 0, TSSampleOverhead+TSSegmentOverhead))
		}
		iuri := opt.IFrameURI
		if iuri == "" {
			iuri = "iframes.m3u8"
		}
		b = append(b, "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH="...)
		b = strconv.AppendInt(b, bw, 10)
		b = append(b, ",CODECS="...)
		b = appendQuoted(b, video.Codec)
		b = appendResolution(b, video)
		b = append(b, ",URI="...)
		b = appendQuoted(b, iuri)
		b = append(b, '\n')
	}
	return b
}

// startsWithSync reports whether every segment of segs holds samples of t
// and starts with a sync sample, so that FMP4IFrames can list them.
func startsWithSync(ix *media.Index, t *media.Track, segs []media.Segment) bool {
	ok := true
	eachSpan(ix, t, segs, func(_, first, end int) {
		ok = ok && first < end && t.Samples.IsSync(first)
	})
	return ok
}

func first(ts []*media.Track) *media.Track {
	if len(ts) == 0 {
		return nil
	}
	return ts[0]
}

// streamInf appends an EXT-X-STREAM-INF tag's start: BANDWIDTH,
// AVERAGE-BANDWIDTH and CODECS (without a line end, so that more
// attributes can follow).
func streamInf(b []byte, peak, avg int64, codecs []string) []byte {
	b = append(b, "#EXT-X-STREAM-INF:BANDWIDTH="...)
	b = strconv.AppendInt(b, max(peak, 1), 10)
	if avg > 0 {
		b = append(b, ",AVERAGE-BANDWIDTH="...)
		b = strconv.AppendInt(b, avg, 10)
	}
	var c bytes.Buffer
	for i, s := range codecs {
		if s == "" {
			continue
		}
		if i > 0 && c.Len() > 0 {
			c.WriteByte(',')
		}
		c.WriteString(s)
	}
	if c.Len() > 0 {
		b = append(b, ",CODECS="...)
		b = appendQuoted(b, c.String())
	}
	return b
}

// appendResolution appends ",RESOLUTION=WxH" when the size is known.
func appendResolution(b []byte, v *media.Track) []byte {
	if v.Width == 0 || v.Height == 0 {
		return b
	}
	b = append(b, ",RESOLUTION="...)
	b = strconv.AppendUint(b, uint64(v.Width), 10)
	b = append(b, 'x')
	return strconv.AppendUint(b, uint64(v.Height), 10)
}

// appendFrameRate appends the frame rate with three decimals.
func appendFrameRate(b []byte, v *media.Track) []byte {
	num, den := FrameRate(v)
	return appendMillis(b, (num*1000+den/2)/den)
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
