package live

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jitstream/jitstream/internal/media"
)

// entry is one segment of a live playlist: a stored fragment, or a gap
// (fragments that never arrived, whose numbers a playlist must still
// count: they answer 404, and HLS marks them EXT-X-GAP).
type entry struct {
	num   int // the playlist number: HLS media sequence number, DASH $Number$, the URL's
	epoch int
	seq   int
	t, d  int64   // decode time (the fragment's tfdt) and duration, in ts
	ts    uint32  // the epoch's timescale
	start float64 // on the stream's timeline, in seconds
	gap   bool
}

// seconds is e's duration in seconds.
func (e entry) seconds() float64 { return float64(e.d) / float64(e.ts) }

// end is where e ends on the stream's timeline, in seconds.
func (e entry) end() float64 { return e.start + e.seconds() }

// entries are the segments of r, epoch by epoch in sequence order,
// numbered Base+seq (consecutive across epochs). The missing numbers
// between two fragments share the decode time between them; when there
// is none (an encoder restart), they are left out. Fragments of an epoch
// numbered before its first to arrive are left out (they are archived).
func entries(r *Rep) []entry {
	out := make([]entry, 0, len(r.Frags))
	var re *RepEpoch
	for i, f := range r.Frags {
		if re == nil || re.Epoch != f.Epoch {
			if re = r.epoch(f.Epoch); re == nil || re.Timescale == 0 {
				re = nil
				continue
			}
		}
		if f.Epoch > 0 && f.Seq < re.First {
			continue
		}
		at := func(t int64) float64 { return float64(t+re.Offset) / float64(re.Timescale) }
		if i > 0 && r.Frags[i-1].Epoch == f.Epoch && len(out) > 0 && out[len(out)-1].epoch == f.Epoch {
			p := r.Frags[i-1]
			if k := int64(f.Seq - p.Seq - 1); k > 0 && f.Time-p.End() >= k {
				t := p.End()
				for j := range k {
					d := (f.Time - p.End()) / k
					if j == k-1 {
						d = f.Time - t
					}
					seq := p.Seq + 1 + int(j)
					out = append(out, entry{num: re.Base + seq, epoch: f.Epoch, seq: seq, t: t, d: d, ts: re.Timescale, start: at(t), gap: true})
					t += d
				}
			}
		}
		out = append(out, entry{num: re.Base + f.Seq, epoch: f.Epoch, seq: f.Seq, t: f.Time, d: f.Dur, ts: re.Timescale, start: at(f.Time)})
	}
	return out
}

// targetDuration is the EXT-X-TARGETDURATION of es: the longest,
// rounded to the nearest second, at least 1.
func targetDuration(es []entry) int {
	td := 1
	for _, e := range es {
		td = max(td, int(math.Round(e.seconds())))
	}
	return td
}

// initName is the name of r's init segment of epoch n in the playlists'
// URLs: init.mp4 for epoch 0, init-N.mp4 after.
func initName(n int) string {
	if n == 0 {
		return "init.mp4"
	}
	return fmt.Sprintf("init-%d.mp4", n)
}

// mediaPlaylist is the live media playlist of r in view v: a sliding
// window of at least three target durations (as RFC 8216 asks of a server
// that removes segments), or everything from the start (an EVENT
// playlist), or a time-shift range (EVENT while it grows); once complete
// (the stream has ended, or reached the range's end) a VOD playlist with
// EXT-X-ENDLIST. A new epoch (an encoder that reconnected) starts with
// EXT-X-DISCONTINUITY and its own EXT-X-MAP, counted by
// EXT-X-DISCONTINUITY-SEQUENCE once the window has slid past.
func mediaPlaylist(st *State, r *Rep, v view) ([]byte, error) {
	all := entries(r)
	td := targetDuration(all)
	es, complete, err := v.pickEntries(st, all, float64(3*td))
	if err != nil {
		return nil, err
	}
	disc := 0
	for i := 1; i < len(all) && all[i-1].num < es[0].num; i++ {
		if all[i].epoch != all[i-1].epoch {
			disc++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:%d\n", td, es[0].num)
	if disc > 0 {
		fmt.Fprintf(&b, "#EXT-X-DISCONTINUITY-SEQUENCE:%d\n", disc)
	}
	if v.dvr <= 0 {
		if complete {
			b.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n")
		} else {
			b.WriteString("#EXT-X-PLAYLIST-TYPE:EVENT\n")
		}
	}
	b.WriteString("#EXT-X-INDEPENDENT-SEGMENTS\n")
	for i, e := range es {
		newEpoch := i == 0 || e.epoch != es[i-1].epoch
		if i > 0 && newEpoch {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if newEpoch {
			fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"%s\"\n", initName(e.epoch))
		}
		if newEpoch || e.t != es[i-1].t+es[i-1].d {
			pdt := st.Start.Add(time.Duration(e.start * float64(time.Second)))
			fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", pdt.UTC().Format("2006-01-02T15:04:05.000Z"))
		}
		fmt.Fprintf(&b, "#EXTINF:%.6f,\n", e.seconds())
		if e.gap {
			b.WriteString("#EXT-X-GAP\n")
		}
		fmt.Fprintf(&b, "%d.m4s\n", e.num)
	}
	if complete {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return []byte(b.String()), nil
}

// bandwidth is r's peak bit rate, at least 1.
func bandwidth(r *Rep) int64 { return max(r.Bandwidth, 1) }

// masterPlaylist is the HLS master playlist of st: a variant per video
// representation, the audio representations as one rendition group
// ("audio"); without video, a variant per audio representation. q is
// appended to the media playlists' URIs.
func masterPlaylist(st *State, q string) ([]byte, error) {
	video, audio, muxed := st.playable(media.KindVideo), st.playable(media.KindAudio), st.playableMuxed()
	if len(video) == 0 && len(audio) == 0 && len(muxed) == 0 {
		return nil, fmt.Errorf("%w: %s/%s has no fragment yet", errNoStream, st.User, st.Name)
	}
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	// A muxed representation is a variant of its own, with every codec
	// of its tracks and no rendition group.
	for _, m := range muxed {
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,CODECS=\"%s\"", bandwidth(m), strings.Join(m.Codecs, ","))
		if m.Width > 0 && m.Height > 0 {
			fmt.Fprintf(&b, ",RESOLUTION=%dx%d", m.Width, m.Height)
		}
		fmt.Fprintf(&b, "\n%s/index.m3u8%s\n", m.Name, q)
	}
	if len(video) == 0 && len(audio) == 0 {
		return []byte(b.String()), nil
	}
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

// mpd is the DASH manifest of st in view v at now: dynamic while the
// view goes on (a sliding window of at least three fragment durations in
// the SegmentTimeline and timeShiftBufferDepth; everything from the start,
// or from vbegin, without one), static once it is complete (the stream has
// ended: the whole recording; a time-shift range that the stream has
// reached: that range, starting at 0). Media time 0 of epoch 0 is at
// st.Start. Each epoch (an encoder that reconnected) is a Period that
// starts at the epoch's Start on the stream's timeline; its
// SegmentTimelines keep the fragments' own decode times, which
// presentationTimeOffset maps to the Period's start.
func mpd(st *State, v view, now time.Time) ([]byte, error) {
	// Video, audio, then the muxed representations (several tracks
	// each) as one more AdaptationSet, without contentType.
	sets := [][]*Rep{st.playable(media.KindVideo), st.playable(media.KindAudio), st.playableMuxed()}
	fd := st.fragDuration()
	// The window of each representation, and the epochs it covers.
	wins := map[*Rep][]entry{}
	var epochs []int
	first, end := math.Inf(1), 0.0
	complete := true
	var noneErr error
	for _, set := range sets {
		for _, r := range set {
			es, c, err := v.pickEntries(st, entries(r), 3*fd)
			if err != nil {
				noneErr = err
				continue
			}
			complete = complete && c
			wins[r] = es
			for _, e := range es {
				if !slices.Contains(epochs, e.epoch) {
					epochs = append(epochs, e.epoch)
				}
			}
			first, end = min(first, es[0].start), max(end, es[len(es)-1].end())
		}
	}
	if len(wins) == 0 {
		if noneErr == nil {
			noneErr = fmt.Errorf("%w: %s/%s has no fragment yet", errNoStream, st.User, st.Name)
		}
		return nil, noneErr
	}
	// A complete time-shift range is presented from 0.
	shift := 0.0
	if complete && v.shifted() {
		shift = first
	}
	slices.Sort(epochs)
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011"`)
	if complete {
		fmt.Fprintf(&b, ` type="static" mediaPresentationDuration="%s"`, isoDuration(end-shift))
	} else {
		fmt.Fprintf(&b, ` type="dynamic" availabilityStartTime="%s" publishTime="%s" minimumUpdatePeriod="%s" suggestedPresentationDelay="%s"`,
			st.Start.UTC().Format("2006-01-02T15:04:05.000Z"), st.Updated.UTC().Format("2006-01-02T15:04:05.000Z"),
			isoDuration(fd), isoDuration(2*fd))
		if v.dvr > 0 {
			fmt.Fprintf(&b, ` timeShiftBufferDepth="%s"`, isoDuration(max(v.dvr, 3*fd)))
		}
	}
	fmt.Fprintf(&b, " minBufferTime=\"%s\">\n", isoDuration(fd))
	for _, n := range epochs {
		start := st.epochStart(n)
		if shift > 0 {
			start = max(start, shift)
		}
		fmt.Fprintf(&b, " <Period id=\"%d\" start=\"%s\">\n", n, isoDuration(start-shift))
		for i, set := range sets {
			var reps []*Rep
			for _, r := range set {
				if slices.ContainsFunc(wins[r], func(e entry) bool { return e.epoch == n }) {
					reps = append(reps, r)
				}
			}
			if len(reps) == 0 {
				continue
			}
			if kind := reps[0].Kind; i < 2 {
				fmt.Fprintf(&b, "  <AdaptationSet id=\"%d\" contentType=\"%s\" mimeType=\"%s/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\">\n", i, kind, kind)
			} else {
				fmt.Fprintf(&b, "  <AdaptationSet id=\"%d\" mimeType=\"video/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\">\n", i)
			}
			for _, r := range reps {
				writeRepresentation(&b, r, n, start, wins[r])
			}
			b.WriteString("  </AdaptationSet>\n")
		}
		b.WriteString(" </Period>\n")
	}
	if !complete {
		fmt.Fprintf(&b, " <UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:direct:2014\" value=\"%s\"/>\n", now.UTC().Format("2006-01-02T15:04:05.000Z"))
	}
	b.WriteString("</MPD>\n")
	return []byte(b.String()), nil
}

// writeRepresentation writes the Representation of r in the Period of
// epoch n, which starts at start seconds: the entries of es of that epoch.
func writeRepresentation(b *strings.Builder, r *Rep, n int, start float64, es []entry) {
	i := slices.IndexFunc(es, func(e entry) bool { return e.epoch == n })
	j := i
	for j < len(es) && es[j].epoch == n {
		j++
	}
	es = es[i:j]
	re := r.epoch(n)
	codecs := r.Codec
	if r.Muxed() {
		codecs = strings.Join(r.Codecs, ",")
	}
	fmt.Fprintf(b, "   <Representation id=\"%s\" codecs=\"%s\" bandwidth=\"%d\"", r.Name, codecs, bandwidth(r))
	if r.Width > 0 && r.Height > 0 {
		fmt.Fprintf(b, " width=\"%d\" height=\"%d\"", r.Width, r.Height)
	}
	fmt.Fprintf(b, ">\n    <SegmentTemplate timescale=\"%d\" initialization=\"$RepresentationID$/%s\" media=\"$RepresentationID$/$Number$.m4s\" startNumber=\"%d\"",
		re.Timescale, initName(n), es[0].num)
	// The media time at the Period's start: the Period starts where
	// the epoch does on the stream's timeline (tfdt + Offset).
	if pto := int64(math.Round(start*float64(re.Timescale))) - re.Offset; pto != 0 {
		fmt.Fprintf(b, " presentationTimeOffset=\"%d\"", pto)
	}
	b.WriteString(">\n     <SegmentTimeline>\n")
	for j := 0; j < len(es); {
		// A run of back-to-back segments of one duration.
		k := j + 1
		for k < len(es) && es[k].d == es[j].d && es[k].t == es[k-1].t+es[k-1].d {
			k++
		}
		fmt.Fprintf(b, "      <S t=\"%d\" d=\"%d\"", es[j].t, es[j].d)
		if k-j > 1 {
			fmt.Fprintf(b, " r=\"%d\"", k-j-1)
		}
		b.WriteString("/>\n")
		j = k
	}
	b.WriteString("     </SegmentTimeline>\n    </SegmentTemplate>\n   </Representation>\n")
}
