package hls

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// A small RFC 8216 reader for the tests: it checks the syntax it parses
// and leaves the semantic checks to the tests.

// mediaPlaylist is a parsed media or I-frame playlist.
type mediaPlaylist struct {
	version, target, sequence int
	playlistType              string
	mapURI                    string
	iframesOnly, endList      bool
	segments                  []segment
}

type segment struct {
	dur         float64
	durText     string
	uri         string
	pdt         time.Time
	hasRange    bool
	length, off int64
}

var (
	extinfRe    = regexp.MustCompile(`^#EXTINF:(\d+\.\d{3}),$`)
	byteRangeRe = regexp.MustCompile(`^#EXT-X-BYTERANGE:(\d+)@(\d+)$`)
	// RFC 8216 4.3.2.6: ISO 8601 with time zone; we write milliseconds, UTC.
	pdtRe = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)
)

// parseMedia parses a media playlist, failing on anything malformed.
func parseMedia(b []byte) (*mediaPlaylist, error) {
	pl := &mediaPlaylist{version: -1, target: -1, sequence: -1}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) == 0 || lines[0] != "#EXTM3U" {
		return nil, fmt.Errorf("first line %q, want #EXTM3U", lines[0])
	}
	var cur *segment
	var pdt time.Time // pending EXT-X-PROGRAM-DATE-TIME
	seen := map[string]bool{}
	for i, l := range lines[1:] {
		errf := func(format string, args ...any) error {
			return fmt.Errorf("line %d %q: %s", i+2, l, fmt.Sprintf(format, args...))
		}
		if l == "" || strings.TrimSpace(l) != l {
			return nil, errf("blank or padded line")
		}
		if pl.endList {
			return nil, errf("after #EXT-X-ENDLIST")
		}
		if !strings.HasPrefix(l, "#") {
			if cur == nil {
				return nil, errf("URI without #EXTINF")
			}
			cur.uri = l
			if !pdt.IsZero() {
				cur.pdt, pdt = pdt, time.Time{}
			}
			pl.segments = append(pl.segments, *cur)
			cur = nil
			continue
		}
		tag, val, _ := strings.Cut(l, ":")
		once := func() error {
			if seen[tag] {
				return errf("repeated tag")
			}
			if len(pl.segments) > 0 || cur != nil {
				return errf("playlist tag after the first segment")
			}
			seen[tag] = true
			return nil
		}
		var err error
		switch tag {
		case "#EXT-X-VERSION":
			if err = once(); err == nil {
				pl.version, err = strconv.Atoi(val)
			}
		case "#EXT-X-TARGETDURATION":
			if err = once(); err == nil {
				pl.target, err = strconv.Atoi(val)
			}
		case "#EXT-X-MEDIA-SEQUENCE":
			if err = once(); err == nil {
				pl.sequence, err = strconv.Atoi(val)
			}
		case "#EXT-X-PLAYLIST-TYPE":
			if err = once(); err == nil {
				pl.playlistType = val
			}
		case "#EXT-X-I-FRAMES-ONLY":
			err = once()
			pl.iframesOnly = true
		case "#EXT-X-MAP":
			if !strings.HasPrefix(val, `URI="`) || !strings.HasSuffix(val, `"`) {
				return nil, errf("bad EXT-X-MAP")
			}
			if err = once(); err == nil {
				pl.mapURI = val[5 : len(val)-1]
			}
		case "#EXT-X-ENDLIST":
			if cur != nil {
				return nil, errf("#EXTINF without URI")
			}
			pl.endList = true
		case "#EXTINF":
			m := extinfRe.FindStringSubmatch(l)
			if m == nil || cur != nil {
				return nil, errf("bad or repeated EXTINF")
			}
			d, _ := strconv.ParseFloat(m[1], 64)
			cur = &segment{dur: d, durText: m[1]}
		case "#EXT-X-BYTERANGE":
			m := byteRangeRe.FindStringSubmatch(l)
			if m == nil || cur == nil {
				return nil, errf("bad EXT-X-BYTERANGE")
			}
			cur.hasRange = true
			cur.length, _ = strconv.ParseInt(m[1], 10, 64)
			cur.off, _ = strconv.ParseInt(m[2], 10, 64)
		case "#EXT-X-PROGRAM-DATE-TIME":
			if !pdtRe.MatchString(val) {
				return nil, errf("date-time not in the expected ISO 8601 form")
			}
			t, perr := time.Parse(time.RFC3339Nano, val)
			if perr != nil {
				return nil, errf("%v", perr)
			}
			if !pdt.IsZero() {
				return nil, errf("repeated date-time for one segment")
			}
			pdt = t // it applies to the next segment
		default:
			return nil, errf("unexpected tag")
		}
		if err != nil {
			return nil, errf("%v", err)
		}
	}
	if cur != nil || !pdt.IsZero() {
		return nil, fmt.Errorf("trailing segment tags without URI")
	}
	return pl, nil
}

// attrList parses an attribute list (RFC 8216 4.2), failing on duplicates
// and bad syntax.
func attrList(s string) (map[string]string, error) {
	attrs := map[string]string{}
	for s != "" {
		name, rest, ok := strings.Cut(s, "=")
		if !ok || name == "" || strings.Trim(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
			return nil, fmt.Errorf("bad attribute name in %q", s)
		}
		var val string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("unterminated quoted string in %q", s)
			}
			val, rest = rest[:end+2], rest[end+2:]
		} else {
			val, rest, _ = strings.Cut(rest, ",")
			rest = "," + rest
			if rest == "," {
				rest = ""
			}
		}
		if _, dup := attrs[name]; dup {
			return nil, fmt.Errorf("duplicate attribute %s", name)
		}
		attrs[name] = val
		if rest != "" {
			if rest[0] != ',' || len(rest) == 1 {
				return nil, fmt.Errorf("bad separator in %q", rest)
			}
			rest = rest[1:]
		}
		s = rest
	}
	return attrs, nil
}

// unquote returns a quoted-string attribute value without its quotes, or
// "" and false.
func unquote(v string) (string, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	return v[1 : len(v)-1], true
}

// masterTag is one tag of a multivariant playlist with its attributes, and
// for EXT-X-STREAM-INF the URI line that follows.
type masterTag struct {
	name  string
	attrs map[string]string
	uri   string
}

// parseMaster parses a multivariant playlist.
func parseMaster(b []byte) (version int, independent bool, tags []masterTag, err error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	first := true
	for sc.Scan() {
		l := sc.Text()
		if first {
			if l != "#EXTM3U" {
				return 0, false, nil, fmt.Errorf("first line %q", l)
			}
			first = false
			continue
		}
		if !strings.HasPrefix(l, "#") {
			if len(tags) == 0 || tags[len(tags)-1].name != "#EXT-X-STREAM-INF" || tags[len(tags)-1].uri != "" || l == "" {
				return 0, false, nil, fmt.Errorf("stray line %q", l)
			}
			tags[len(tags)-1].uri = l
			continue
		}
		name, val, _ := strings.Cut(l, ":")
		switch name {
		case "#EXT-X-VERSION":
			version, err = strconv.Atoi(val)
			if err != nil {
				return 0, false, nil, err
			}
		case "#EXT-X-INDEPENDENT-SEGMENTS":
			independent = true
		case "#EXT-X-MEDIA", "#EXT-X-STREAM-INF", "#EXT-X-I-FRAME-STREAM-INF":
			attrs, err := attrList(val)
			if err != nil {
				return 0, false, nil, fmt.Errorf("%s: %w", name, err)
			}
			tags = append(tags, masterTag{name: name, attrs: attrs})
		default:
			return 0, false, nil, fmt.Errorf("unexpected tag %q", l)
		}
	}
	for _, t := range tags {
		if t.name == "#EXT-X-STREAM-INF" && t.uri == "" {
			return 0, false, nil, fmt.Errorf("EXT-X-STREAM-INF without URI")
		}
	}
	return version, independent, tags, nil
}
