package playback

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"

	"github.com/jitstream/jitstream/internal/streams"
)

// typeMPD is the media type of DASH manifests.
const typeMPD = "application/dash+xml"

// mpd is the session's static DASH manifest: one Period per item, each
// with the item's first video and audio tracks as Representations "v" and
// "a" (the same ids in every Period, so that players continue the tracks
// across them), described by SegmentTemplate and an exact SegmentTimeline
// in the track's timescale. The segments are the items' CMAF segments,
// the same as HLS's (and, for content, the same shared URLs).
func (h *Handler) mpd(w http.ResponseWriter, r *http.Request) {
	l, video, audio, ok := h.loadManifest(w, r)
	if !ok {
		return
	}
	var total float64
	for _, it := range l.s.Timeline.Items {
		total += it.Duration
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	fmt.Fprintf(&b, `<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="static" minBufferTime="PT2S" mediaPresentationDuration="%s">`+"\n", isoDuration(total))
	var start float64
	for i, it := range l.s.Timeline.Items {
		in := l.infos[i]
		fmt.Fprintf(&b, `  <Period id="%d" start="%s" duration="%s">`+"\n", i, isoDuration(start), isoDuration(it.Duration))
		start += it.Duration
		if video {
			t := in.Video
			fmt.Fprintf(&b, `    <AdaptationSet id="1" contentType="video" mimeType="video/mp4" segmentAlignment="true" startWithSAP="1">`+"\n")
			fmt.Fprintf(&b, `      <Representation id="v" bandwidth="%d" codecs="%s" width="%d" height="%d">`+"\n", in.Bandwidth, xmlAttr(t.Codec), t.Width, t.Height)
			writeTemplate(&b, "v", i, t)
			b.WriteString("      </Representation>\n    </AdaptationSet>\n")
		}
		if audio {
			t := in.Audio
			fmt.Fprintf(&b, `    <AdaptationSet id="2" contentType="audio" mimeType="audio/mp4" segmentAlignment="true" startWithSAP="1">`+"\n")
			fmt.Fprintf(&b, `      <Representation id="a" bandwidth="%d" codecs="%s">`+"\n", in.Bandwidth, xmlAttr(t.Codec))
			writeTemplate(&b, "a", i, t)
			b.WriteString("      </Representation>\n    </AdaptationSet>\n")
		}
		b.WriteString("  </Period>\n")
	}
	b.WriteString("</MPD>\n")
	writeText(w, r, typeMPD, b.Bytes())
}

// writeTemplate writes the SegmentTemplate of rendition name of item i.
func writeTemplate(b *bytes.Buffer, name string, i int, t *streams.TrackInfo) {
	fmt.Fprintf(b, `        <SegmentTemplate timescale="%d" initialization="%s/%d/init.mp4" media="%s/%d/$Number$.m4s" startNumber="0"`, t.Timescale, name, i, name, i)
	if t.MediaTime > 0 {
		fmt.Fprintf(b, ` presentationTimeOffset="%d"`, t.MediaTime)
	}
	b.WriteString(">\n          <SegmentTimeline>\n")
	for k := 0; k < len(t.Spans); {
		d := t.Spans[k].End - t.Spans[k].Start
		r := 0
		for k+r+1 < len(t.Spans) && t.Spans[k+r+1].End-t.Spans[k+r+1].Start == d && t.Spans[k+r+1].Start == t.Spans[k+r].End {
			r++
		}
		if r > 0 {
			fmt.Fprintf(b, `            <S t="%d" d="%d" r="%d"/>`+"\n", t.Spans[k].Start, d, r)
		} else {
			fmt.Fprintf(b, `            <S t="%d" d="%d"/>`+"\n", t.Spans[k].Start, d)
		}
		k += r + 1
	}
	b.WriteString("          </SegmentTimeline>\n        </SegmentTemplate>\n")
}

// isoDuration formats seconds as an xs:duration, to the millisecond.
func isoDuration(sec float64) string {
	return "PT" + strconv.FormatFloat(float64(int64(sec*1000+0.5))/1000, 'f', -1, 64) + "S"
}

// xmlAttr escapes s for an attribute value.
func xmlAttr(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
