package live

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jitstream/jitstream/internal/media"
)

// entry is one segment of a live playlist: a stored fragment, or a gap
// (fragments that never arrived, whose numbers a playlist must still
// count: they answer 404, and HLS marks them EXT-X-GAP).
type entry struct {
	seq  int
	t, d int64 // decode time and duration, in the timescale
	gap  bool
}

// entries are the segments of r, in sequence order. The missing numbers
// between two fragments share the decode time between them; when there
// is none (an encoder restart), they are left out.
func entries(r *Rep) []entry {
	out := make([]entry, 0, len(r.Frags))
	for i, f := range r.Frags {
		if i > 0 {
			p := r.Frags[i-1]
			if k := int64(f.Seq - p.Seq - 1); k > 0 && f.Time-p.End() >= k {
				t := p.End()
				for j := range k {
					d := (f.Time - p.End()) / k
					if j == k-1 {
						d = f.Time - t
					}
					out = append(out, entry{seq: p.Seq + 1 + int(j), t: t, d: d, gap: true})
					t += d
				}
			}
		}
		out = append(out, entry{seq: f.Seq, t: f.Time, d: f.Dur})
	}
	return out
}

// window is the tail of es that lasts at least seconds (all of es for 0):
// the segments of a sliding window.
func window(es []entry, timescale uint32, seconds float64) []entry {
	if seconds <= 0 {
		return es
	}
	i, total := len(es), 0.0
	for i > 0 && total < seconds {
		i--
		total += float64(es[i].d) / float64(timescale)
	}
	return es[i:]
}

// targetDuration is the EXT-X-TARGETDURATION of r: its longest fragment,
// rounded to the nearest second, at least 1.
func targetDuration(r *Rep) int {
	td := 1
	for _, f := range r.Frags {
		td = max(td, int(math.Round(float64(f.Dur)/float64(r.Timescale))))
	}
	return td
}

// mediaPlaylist is the live media playlist of r: the last dvr seconds (at
// least three target durations, as RFC 8216 asks of a server that removes
// segments), or all of it (an EVENT playlist) for dvr 0; EXT-X-ENDLIST
// once the stream has ended.
func mediaPlaylist(st *State, r *Rep, dvr float64) []byte {
	td := targetDuration(r)
	all := entries(r)
	es := all
	if dvr > 0 {
		es = window(all, r.Timescale, max(dvr, float64(3*td)))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:%d\n", td, es[0].seq)
	if dvr <= 0 {
		if st.Ended {
			b.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n")
		} else {
			b.WriteString("#EXT-X-PLAYLIST-TYPE:EVENT\n")
		}
	}
	b.WriteString("#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n")
	ts := float64(r.Timescale)
	prevEnd := int64(-1)
	for _, e := range es {
		if e.t != prevEnd {
			pdt := st.Start.Add(time.Duration(float64(e.t) / ts * float64(time.Second)))
			fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", pdt.UTC().Format("2006-01-02T15:04:05.000Z"))
		}
		fmt.Fprintf(&b, "#EXTINF:%.6f,\n", float64(e.d)/ts)
		if e.gap {
			b.WriteString("#EXT-X-GAP\n")
		}
		fmt.Fprintf(&b, "%d.m4s\n", e.seq)
		prevEnd = e.t + e.d
	}
	if st.Ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return []byte(b.String())
}

// bandwidth is r's peak bit rate, at least 1.
func bandwidth(r *Rep) int64 { return max(r.Bandwidth, 1) }

// masterPlaylist is the HLS master playlist of st: a variant per video
// representation, the audio representations as one rendition group
// ("audio"); without video, a variant per audio representation. q is
// appended to the media playlists' URIs.
func masterPlaylist(st *State, q string) ([]byte, error) {
	video, audio := st.playable(media.KindVideo), st.playable(media.KindAudio)
	if len(video) == 0 && len(audio) == 0 {
		return nil, fmt.Errorf("%w: %s/%s has no fragment yet", errNoStream, st.User, st.Name)
	}
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	if len(video) == 0 {
		for _, a := range audio {
			fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,CODECS=\"%s\"\n%s/index.m3u8%s\n", bandwidth(a), a.Codec, a.Name, q)
		}
		return []byte(b.String()), nil
	}
	var audioBW int64
	for i, a := range audio {
		def := "NO"
		if i == 0 {
			def = "YES"
		}
		fmt.Fprintf(&b, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"%s\",DEFAULT=%s,AUTOSELECT=YES", a.Name, def)
		if a.Channels > 0 {
			fmt.Fprintf(&b, ",CHANNELS=\"%d\"", a.Channels)
		}
		fmt.Fprintf(&b, ",URI=\"%s/index.m3u8%s\"\n", a.Name, q)
		audioBW = max(audioBW, bandwidth(a))
	}
	for _, v := range video {
		codecs := v.Codec
		if len(audio) > 0 {
			codecs += "," + audio[0].Codec
		}
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,CODECS=\"%s\"", bandwidth(v)+audioBW, codecs)
		if v.Width > 0 && v.Height > 0 {
			fmt.Fprintf(&b, ",RESOLUTION=%dx%d", v.Width, v.Height)
		}
		if len(audio) > 0 {
			b.WriteString(",AUDIO=\"audio\"")
		}
		fmt.Fprintf(&b, "\n%s/index.m3u8%s\n", v.Name, q)
	}
	return []byte(b.String()), nil
}

// isoDuration formats seconds as an xs:duration.
func isoDuration(s float64) string {
	return fmt.Sprintf("PT%.3fS", s)
}

// mpd is the DASH manifest of st at now: dynamic while the stream goes on
// (the last dvr seconds, at least three fragment durations, in the
// SegmentTimeline and timeShiftBufferDepth; everything for dvr 0), static
// over the whole recording once it has ended. Media time 0 is at
// st.Start, so no presentationTimeOffset is needed.
func mpd(st *State, dvr float64, now time.Time) ([]byte, error) {
	sets := [][]*Rep{st.playable(media.KindVideo), st.playable(media.KindAudio)}
	if len(sets[0]) == 0 && len(sets[1]) == 0 {
		return nil, fmt.Errorf("%w: %s/%s has no fragment yet", errNoStream, st.User, st.Name)
	}
	fd := st.fragDuration()
	if dvr > 0 {
		dvr = max(dvr, 3*fd)
	}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011"`)
	if st.Ended {
		end := 0.0
		for _, set := range sets {
			for _, r := range set {
				end = max(end, float64(r.Frags[len(r.Frags)-1].End())/float64(r.Timescale))
			}
		}
		fmt.Fprintf(&b, ` type="static" mediaPresentationDuration="%s"`, isoDuration(end))
		dvr = 0
	} else {
		fmt.Fprintf(&b, ` type="dynamic" availabilityStartTime="%s" publishTime="%s" minimumUpdatePeriod="%s" suggestedPresentationDelay="%s"`,
			st.Start.UTC().Format("2006-01-02T15:04:05.000Z"), st.Updated.UTC().Format("2006-01-02T15:04:05.000Z"),
			isoDuration(fd), isoDuration(2*fd))
		if dvr > 0 {
			fmt.Fprintf(&b, ` timeShiftBufferDepth="%s"`, isoDuration(dvr))
		}
	}
	fmt.Fprintf(&b, " minBufferTime=\"%s\">\n", isoDuration(fd))
	b.WriteString(" <Period id=\"0\" start=\"PT0S\">\n")
	for i, set := range sets {
		if len(set) == 0 {
			continue
		}
		kind := set[0].Kind
		fmt.Fprintf(&b, "  <AdaptationSet id=\"%d\" contentType=\"%s\" mimeType=\"%s/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\">\n", i, kind, kind)
		for _, r := range set {
			fmt.Fprintf(&b, "   <Representation id=\"%s\" codecs=\"%s\" bandwidth=\"%d\"", r.Name, r.Codec, bandwidth(r))
			if r.Width > 0 && r.Height > 0 {
				fmt.Fprintf(&b, " width=\"%d\" height=\"%d\"", r.Width, r.Height)
			}
			es := window(entries(r), r.Timescale, dvr)
			fmt.Fprintf(&b, ">\n    <SegmentTemplate timescale=\"%d\" initialization=\"$RepresentationID$/init.mp4\" media=\"$RepresentationID$/$Number$.m4s\" startNumber=\"%d\">\n     <SegmentTimeline>\n",
				r.Timescale, es[0].seq)
			for j := 0; j < len(es); {
				// A run of back-to-back segments of one duration.
				k := j + 1
				for k < len(es) && es[k].d == es[j].d && es[k].t == es[k-1].t+es[k-1].d {
					k++
				}
				fmt.Fprintf(&b, "      <S t=\"%d\" d=\"%d\"", es[j].t, es[j].d)
				if k-j > 1 {
					fmt.Fprintf(&b, " r=\"%d\"", k-j-1)
				}
				b.WriteString("/>\n")
				j = k
			}
			b.WriteString("     </SegmentTimeline>\n    </SegmentTemplate>\n   </Representation>\n")
		}
		b.WriteString("  </AdaptationSet>\n")
	}
	b.WriteString(" </Period>\n")
	if !st.Ended {
		fmt.Fprintf(&b, " <UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:direct:2014\" value=\"%s\"/>\n", now.UTC().Format("2006-01-02T15:04:05.000Z"))
	}
	b.WriteString("</MPD>\n")
	return []byte(b.String()), nil
}
