// Package hls builds HTTP Live Streaming playlists (RFC 8216) of an asset
// from its media index: the multivariant ("master") playlists of the fMP4
// and the MPEG-TS variants, media playlists, and I-frame playlists.
//
// Every builder is a pure function: no I/O, no global mutable state. URIs
// are relative by default and follow the layout served under an asset's
// stream root:
//
//	hls/master.m3u8          fMP4 multivariant playlist (Master)
//	hls/{track}/index.m3u8   media playlist of one track (Media)
//	hls/{track}/iframes.m3u8 I-frame playlist of a video track (IFrames)
//	hls/{track}/init.mp4     init segment (mp4build.InitSegment)
//	hls/{track}/{n}.m4s      media segment n, 0-based (mp4build.MediaSegment)
//	hls/ts/master.m3u8       MPEG-TS multivariant playlist (TSMaster)
//	hls/ts/index.m3u8        muxed audio+video TS media playlist
//	hls/ts/{n}.ts            TS segment n
//	hls/ts/iframes.m3u8      TS I-frame playlist
//
// where {track} is TrackName: the kind's letter and the track ID, "v1",
// "a2". Options let the caller name URIs differently.
//
// The package also holds the helpers that the DASH builder shares: the
// samples of a track in a segment (SegmentSpan, TrackSegments), bit rates
// (PeakBitrate, AverageBitrate), frame rates and language tags.
package hls

import (
	"strconv"
	"strings"

	"github.com/jitstream/jitstream/internal/media"
)

// TrackName names a track in URIs and DASH representation IDs: the first
// letter of its kind and its ID, "v1" for video track 1, "a2" for audio
// track 2 (s: subtitle, t: timecode, m: metadata, o: other); a
// transcoded rendition's track is named by its rendition ("720p").
func TrackName(t *media.Track) string {
	if t.Rendition != "" {
		return t.Rendition
	}
	letter := "o"
	if t.Kind != "" {
		letter = string(t.Kind[0])
	}
	return letter + strconv.FormatUint(uint64(t.ID), 10)
}

// Language converts an ISO 639-2/T code as MP4 stores it ("eng") to the
// RFC 5646 tag that HLS LANGUAGE and DASH @lang expect: the ISO 639-1 code
// for common languages ("en"), the three-letter code otherwise. It returns
// "" for "und", empty or malformed codes, meaning: no language attribute.
func Language(code string) string {
	code = strings.ToLower(strings.TrimSpace(code))
	if len(code) != 3 || code == "und" || code == "mul" || code == "zxx" {
		return ""
	}
	for _, c := range code {
		if c < 'a' || c > 'z' {
			return ""
		}
	}
	// Pairs "xxx=yy;" of ISO 639-2 (T and B forms) and ISO 639-1 codes.
	const table = "ara=ar;ben=bn;bul=bg;cat=ca;ces=cs;cze=cs;chi=zh;zho=zh;dan=da;deu=de;ger=de;" +
		"ell=el;gre=el;eng=en;est=et;eus=eu;baq=eu;fas=fa;per=fa;fin=fi;fra=fr;fre=fr;gle=ga;" +
		"glg=gl;heb=he;hin=hi;hrv=hr;hun=hu;ind=id;isl=is;ice=is;ita=it;jpn=ja;kor=ko;lav=lv;" +
		"lit=lt;msa=ms;may=ms;nld=nl;dut=nl;nor=no;nob=nb;nno=nn;pol=pl;por=pt;ron=ro;rum=ro;" +
		"rus=ru;slk=sk;slo=sk;slv=sl;spa=es;srp=sr;swe=sv;tam=ta;tha=th;tur=tr;ukr=uk;urd=ur;vie=vi;"
	if i := strings.Index(table, code+"="); i >= 0 && (i == 0 || table[i-1] == ';') {
		rest := table[i+4:]
		return rest[:strings.IndexByte(rest, ';')]
	}
	return code
}

// included returns the tracks of ix of the given kind that are not
// excluded, in index order.
func included(ix *media.Index, kind media.Kind, exclude []uint32) []*media.Track {
	var out []*media.Track
	for _, t := range ix.Tracks {
		if t.Kind == kind && t.Samples.Len() > 0 && !excluded(t.ID, exclude) {
			out = append(out, t)
		}
	}
	return out
}

func excluded(id uint32, exclude []uint32) bool {
	for _, x := range exclude {
		if x == id {
			return true
		}
	}
	return false
}

// appendQuoted appends s as an HLS quoted-string: between double quotes,
// with the characters it cannot hold (double quote, CR, LF) replaced.
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			b = append(b, '\'')
		case '\r', '\n':
			b = append(b, ' ')
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// appendMillis appends a duration in milliseconds as decimal seconds with
// three decimals, "4.005".
func appendMillis(b []byte, ms int64) []byte {
	if ms < 0 {
		b = append(b, '-')
		ms = -ms
	}
	b = strconv.AppendInt(b, ms/1000, 10)
	f := ms % 1000
	return append(b, '.', byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10))
}

// millis converts ticks of timescale ts to milliseconds, rounding to the
// nearest, without overflow on long timelines.
func millis(ticks int64, ts uint32) int64 {
	q, r := ticks/int64(ts), ticks%int64(ts)
	return q*1000 + (r*1000+int64(ts)/2)/int64(ts)
}
