// Package dash builds MPEG-DASH media presentation descriptions (ISO/IEC
// 23009-1) of an asset from its media index: a static MPD whose
// representations are the asset's tracks as fragmented MP4 segments
// (mp4build.InitSegment and mp4build.MediaSegment), addressed by a
// SegmentTemplate with $Number$ and described exactly by a SegmentTimeline,
// plus a trick-mode adaptation set of key frames only (package trick).
//
// MPD is a pure function: no I/O, no global mutable state. URIs are
// relative to the MPD and follow the layout served under an asset's stream
// root, by default:
//
//	dash/manifest.mpd
//	dash/{track}/init.mp4          mp4build.InitSegment(ix, {track})
//	dash/{track}/{n}.m4s           mp4build.MediaSegment(b, ix, {track}, segs[n], n+1)
//	dash/trick/{track}/init.mp4    the same with trick.Keyframes(track)
//	dash/trick/{track}/{n}.m4s
//
// where {track} is hls.TrackName ("v1", "a2"), which is also the
// Representation@id ("trick/v1" for trick mode), so that the templates are
// "$RepresentationID$/init.mp4" and "$RepresentationID$/$Number$.m4s".
package dash

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jitstream/jitstream/internal/build/hls"
	"github.com/jitstream/jitstream/internal/build/trick"
	"github.com/jitstream/jitstream/internal/media"
)

// Profile identifiers.
const (
	// ProfileLive is the ISO base media file format live profile, which
	// static MPDs with SegmentTemplate use.
	ProfileLive = "urn:mpeg:dash:profile:isoff-live:2011"
	// ProfileCMAF is the CMAF profile (ISO/IEC 23009-1 4th edition).
	ProfileCMAF = "urn:mpeg:dash:profile:cmaf:2019"
)

// TrickModeScheme is the DASH-IF scheme of the EssentialProperty that marks
// a trick-mode adaptation set; its value is the id of the adaptation set it
// serves.
const TrickModeScheme = "http://dashif.org/guidelines/trickmode"

// Options configures MPD. The zero value makes the MPD served as
// dash/manifest.mpd with the default layout.
type Options struct {
	// Exclude lists track IDs to leave out.
	Exclude []uint32
	// Profiles is MPD@profiles; default ProfileLive.
	Profiles string
	// MinBufferTime is MPD@minBufferTime; default the longest segment
	// rounded up to whole seconds.
	MinBufferTime time.Duration
	// Initialization and Media are the SegmentTemplate URL templates;
	// default "$RepresentationID$/init.mp4" and
	// "$RepresentationID$/$Number$.m4s". $Number$ counts from 0.
	Initialization, Media string
	// BaseURL, when set, is written as the MPD's BaseURL.
	BaseURL string
	// NoTrickMode leaves out the trick-mode adaptation set.
	NoTrickMode bool
	// TrickPrefix prefixes the trick-mode Representation@id; default
	// "trick/".
	TrickPrefix string
	// Thumbnails, when set, adds an image AdaptationSet of thumbnail
	// sheets (see ThumbnailSet).
	Thumbnails *ThumbnailSet
}

// MPD returns the static MPD of ix, whose media segments are segs (from
// ix.Segments), with one Period:
//
//   - an AdaptationSet of the video tracks (mimeType video/mp4,
//     segmentAlignment, startWithSAP=1, maxWidth, maxHeight, maxFrameRate),
//     one Representation per track with codecs, width, height, frameRate;
//   - an AdaptationSet per audio language, one Representation per audio
//     track with codecs, audioSamplingRate and AudioChannelConfiguration;
//   - unless disabled, a trick-mode AdaptationSet (EssentialProperty of
//     TrickModeScheme naming the video AdaptationSet) with one
//     Representation per video track holding its key frames only
//     (trick.Keyframes): codingDependency=false, maxPlayoutRate the average
//     GOP length in frames, frameRate the nominal key frame rate; not for
//     transcoded renditions (media.Track.Rendition). A video
//     track with a segment without key frames (possible only for a video
//     track other than the reference) gets no trick-mode representation;
//   - with Options.Thumbnails, an image AdaptationSet (contentType image,
//     mimeType image/jpeg) of tiled thumbnail sheets, as DASH-IF IOP 6.2.6
//     describes it (see ThumbnailSet).
//
// Representation@id is hls.TrackName; @bandwidth is the peak segment bit
// rate with the fMP4 overhead estimates (hls.PeakBitrate). Every
// SegmentTemplate has the track's timescale, presentationTimeOffset =
// MediaTime (the original edit, so that tracks align as in the original),
// startNumber 0 and a SegmentTimeline whose S@t are exactly the tfdt of the
// media segments mp4build.MediaSegment builds for that track
// (hls.TrackSegments), runs of equal durations compressed with @r.
// Trailing segments without samples of a track (an audio track ending
// before the video) are left out of its timeline; a track without samples
// in an earlier segment is an error, since $Number$ could not address the
// segments after it.
func MPD(ix *media.Index, segs []media.Segment, opt Options) ([]byte, error) {
	ref := ix.Reference()
	if ref == nil || len(segs) == 0 {
		return nil, errors.New("dash: no segments")
	}
	initTmpl, mediaTmpl := opt.Initialization, opt.Media
	if initTmpl == "" {
		initTmpl = "$RepresentationID$/init.mp4"
	}
	if mediaTmpl == "" {
		mediaTmpl = "$RepresentationID$/$Number$.m4s"
	}
	profiles := opt.Profiles
	if profiles == "" {
		profiles = ProfileLive
	}
	minBuf := opt.MinBufferTime
	if minBuf <= 0 {
		minBuf = time.Duration(hls.TargetDuration(segs, ref.Timescale)) * time.Second
	}
	m := mpdXML{
		Profiles:                  profiles,
		Type:                      "static",
		MediaPresentationDuration: duration(ix.Duration()),
		MinBufferTime:             duration(minBuf),
		BaseURL:                   opt.BaseURL,
		Period:                    periodXML{ID: "0", Start: "PT0S"},
	}
	rep := func(t *media.Track, id string) (representationXML, error) {
		tl, err := timeline(ix, t, segs)
		if err != nil {
			return representationXML{}, err
		}
		r := representationXML{
			ID:        id,
			Bandwidth: max(hls.PeakBitrate(ix, []*media.Track{t}, segs, hls.FMP4SampleOverhead, hls.FMP4SegmentOverhead), 1),
			Codecs:    t.Codec,
			SegmentTemplate: segmentTemplateXML{
				Timescale:      t.Timescale,
				Initialization: initTmpl,
				Media:          mediaTmpl,
				Timeline:       tl,
			},
		}
		if t.MediaTime > 0 {
			r.SegmentTemplate.PresentationTimeOffset = uint64(t.MediaTime)
		}
		return r, nil
	}

	// Tracks offered: video, and audio grouped by language.
	var videos []*media.Track
	var langs []string
	audios := map[string][]*media.Track{}
	for _, t := range ix.Tracks {
		if t.Samples.Len() == 0 || excluded(t.ID, opt.Exclude) {
			continue
		}
		switch t.Kind {
		case media.KindVideo:
			videos = append(videos, t)
		case media.KindAudio:
			lang := hls.Language(t.Language)
			if _, ok := audios[lang]; !ok {
				langs = append(langs, lang)
			}
			audios[lang] = append(audios[lang], t)
		}
	}
	if len(videos) == 0 && len(langs) == 0 {
		return nil, errors.New("dash: no video or audio track to offer")
	}
	sets := &m.Period.AdaptationSets
	role := []descriptorXML{{SchemeIDURI: "urn:mpeg:dash:role:2011", Value: "main"}}

	if len(videos) > 0 {
		as := adaptationSetXML{
			ID: len(*sets) + 1, ContentType: "video", MimeType: "video/mp4",
			SegmentAlignment: true, StartWithSAP: 1, Roles: role,
		}
		var maxRate float64
		for _, v := range videos {
			r, err := rep(v, hls.TrackName(v))
			if err != nil {
				return nil, err
			}
			r.Width, r.Height = v.Width, v.Height
			num, den := hls.FrameRate(v)
			r.FrameRate = fraction(num, den)
			if f := float64(num) / float64(den); f > maxRate {
				maxRate, as.MaxFrameRate = f, r.FrameRate
			}
			as.MaxWidth, as.MaxHeight = max(as.MaxWidth, v.Width), max(as.MaxHeight, v.Height)
			as.Representations = append(as.Representations, r)
		}
		*sets = append(*sets, as)
	}

	for k, lang := range langs {
		as := adaptationSetXML{
			ID: len(*sets) + 1, ContentType: "audio", MimeType: "audio/mp4", Lang: lang,
			SegmentAlignment: true, StartWithSAP: 1,
		}
		if k == 0 {
			as.Roles = role
		}
		for _, a := range audios[lang] {
			r, err := rep(a, hls.TrackName(a))
			if err != nil {
				return nil, err
			}
			r.AudioSamplingRate = a.SampleRate
			if a.Channels > 0 {
				r.AudioChannels = []descriptorXML{{
					SchemeIDURI: "urn:mpeg:dash:23003:3:audio_channel_configuration:2011",
					Value:       strconv.Itoa(int(a.Channels)),
				}}
			}
			as.Representations = append(as.Representations, r)
		}
		*sets = append(*sets, as)
	}

	if len(videos) > 0 && !opt.NoTrickMode {
		prefix := opt.TrickPrefix
		if prefix == "" {
			prefix = "trick/"
		}
		as := adaptationSetXML{
			ID: len(*sets) + 1, ContentType: "video", MimeType: "video/mp4",
			SegmentAlignment: true, StartWithSAP: 1,
			EssentialProperties: []descriptorXML{{SchemeIDURI: TrickModeScheme, Value: strconv.Itoa((*sets)[0].ID)}},
		}
		for _, v := range videos {
			if v.Rendition != "" {
				continue // the original's key frames serve every rendition
			}
			kt := trick.Keyframes(v)
			r, err := rep(kt, prefix+hls.TrackName(v))
			if err != nil {
				// A segment without key frames (a video track whose key
				// frames are not aligned with the segments): no trick mode
				// for this track.
				continue
			}
			r.Width, r.Height = v.Width, v.Height
			// The nominal key frame rate: one per most common GOP duration.
			r.FrameRate = fraction(hls.FrameRate(kt))
			r.MaxPlayoutRate = max(1, (v.Samples.Len()+kt.Samples.Len()/2)/max(kt.Samples.Len(), 1))
			f := false
			r.CodingDependency = &f
			as.MaxWidth, as.MaxHeight = max(as.MaxWidth, v.Width), max(as.MaxHeight, v.Height)
			as.Representations = append(as.Representations, r)
		}
		if len(as.Representations) > 0 {
			*sets = append(*sets, as)
		}
	}

	if opt.Thumbnails != nil {
		if err := opt.Thumbnails.check(ix.Duration()); err != nil {
			return nil, err
		}
		*sets = append(*sets, thumbnailSet(opt.Thumbnails, len(*sets)+1))
	}

	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("dash: %w", err)
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// timeline returns the SegmentTimeline of track t: its decode time span in
// each segment, in its timescale, runs of equal durations compressed.
func timeline(ix *media.Index, t *media.Track, segs []media.Segment) (*segmentTimelineXML, error) {
	spans := hls.TrackSegments(ix, t, segs)
	for len(spans) > 0 && spans[len(spans)-1].End == spans[len(spans)-1].Start {
		spans = spans[:len(spans)-1]
	}
	type run struct {
		t, d int64
		r    int
	}
	var runs []run
	for n, sp := range spans {
		d := sp.End - sp.Start
		if d <= 0 {
			return nil, fmt.Errorf("dash: track %d has no samples in segment %d of %d", t.ID, n, len(segs))
		}
		if k := len(runs) - 1; k >= 0 && runs[k].d == d && runs[k].t+d*int64(runs[k].r+1) == sp.Start {
			runs[k].r++
			continue
		}
		runs = append(runs, run{sp.Start, d, 0})
	}
	// @t on the first S and after a discontinuity (none: spans are
	// contiguous), @r for repeats.
	tl := &segmentTimelineXML{S: make([]sXML, len(runs))}
	var end int64
	for k, r := range runs {
		tl.S[k] = sXML{D: r.d, R: r.r}
		if k == 0 || r.t != end {
			start := r.t
			tl.S[k].T = &start
		}
		end = r.t + r.d*int64(r.r+1)
	}
	return tl, nil
}

// duration formats d as an xs:duration in seconds with millisecond
// precision, "PT6.016S".
func duration(d time.Duration) string {
	ms := d.Round(time.Millisecond).Milliseconds()
	if ms%1000 == 0 {
		return "PT" + strconv.FormatInt(ms/1000, 10) + "S"
	}
	return fmt.Sprintf("PT%d.%03dS", ms/1000, ms%1000)
}

// fraction formats num/den reduced, as a FrameRateType: "30", "30000/1001".
func fraction(num, den int64) string {
	if den <= 0 || num <= 0 {
		return "0"
	}
	a, b := num, den
	for b != 0 {
		a, b = b, a%b
	}
	num, den = num/a, den/a
	if den == 1 {
		return strconv.FormatInt(num, 10)
	}
	return strconv.FormatInt(num, 10) + "/" + strconv.FormatInt(den, 10)
}

func excluded(id uint32, exclude []uint32) bool {
	for _, x := range exclude {
		if x == id {
			return true
		}
	}
	return false
}

// XML model of the MPD, in schema order.

type mpdXML struct {
	XMLName                   xml.Name  `xml:"urn:mpeg:dash:schema:mpd:2011 MPD"`
	Profiles                  string    `xml:"profiles,attr"`
	Type                      string    `xml:"type,attr"`
	MediaPresentationDuration string    `xml:"mediaPresentationDuration,attr"`
	MinBufferTime             string    `xml:"minBufferTime,attr"`
	BaseURL                   string    `xml:"BaseURL,omitempty"`
	Period                    periodXML `xml:"Period"`
}

type periodXML struct {
	ID             string             `xml:"id,attr"`
	Start          string             `xml:"start,attr"`
	AdaptationSets []adaptationSetXML `xml:"AdaptationSet"`
}

type adaptationSetXML struct {
	ID                  int                 `xml:"id,attr"`
	ContentType         string              `xml:"contentType,attr"`
	MimeType            string              `xml:"mimeType,attr"`
	Lang                string              `xml:"lang,attr,omitempty"`
	SegmentAlignment    bool                `xml:"segmentAlignment,attr,omitempty"`
	StartWithSAP        int                 `xml:"startWithSAP,attr,omitempty"`
	MaxWidth            uint32              `xml:"maxWidth,attr,omitempty"`
	MaxHeight           uint32              `xml:"maxHeight,attr,omitempty"`
	MaxFrameRate        string              `xml:"maxFrameRate,attr,omitempty"`
	EssentialProperties []descriptorXML     `xml:"EssentialProperty"`
	Roles               []descriptorXML     `xml:"Role"`
	Representations     []representationXML `xml:"Representation"`
}

type representationXML struct {
	ID                string             `xml:"id,attr"`
	Bandwidth         int64              `xml:"bandwidth,attr"`
	Codecs            string             `xml:"codecs,attr,omitempty"`
	Width             uint32             `xml:"width,attr,omitempty"`
	Height            uint32             `xml:"height,attr,omitempty"`
	FrameRate         string             `xml:"frameRate,attr,omitempty"`
	AudioSamplingRate uint32             `xml:"audioSamplingRate,attr,omitempty"`
	MaxPlayoutRate    int                `xml:"maxPlayoutRate,attr,omitempty"`
	CodingDependency  *bool              `xml:"codingDependency,attr,omitempty"`
	AudioChannels     []descriptorXML    `xml:"AudioChannelConfiguration"`
	Essential         []descriptorXML    `xml:"EssentialProperty"` // thumbnail_tile
	SegmentTemplate   segmentTemplateXML `xml:"SegmentTemplate"`
}

type descriptorXML struct {
	SchemeIDURI string `xml:"schemeIdUri,attr"`
	Value       string `xml:"value,attr,omitempty"`
}

type segmentTemplateXML struct {
	Timescale              uint32              `xml:"timescale,attr"`
	PresentationTimeOffset uint64              `xml:"presentationTimeOffset,attr,omitempty"`
	Duration               int64               `xml:"duration,attr,omitempty"` // thumbnail sheets
	Initialization         string              `xml:"initialization,attr,omitempty"`
	Media                  string              `xml:"media,attr"`
	StartNumber            int                 `xml:"startNumber,attr"`
	Timeline               *segmentTimelineXML `xml:"SegmentTimeline"`
}

type segmentTimelineXML struct {
	S []sXML `xml:"S"`
}

type sXML struct {
	T *int64 `xml:"t,attr"`
	D int64  `xml:"d,attr"`
	R int    `xml:"r,attr,omitempty"`
}
