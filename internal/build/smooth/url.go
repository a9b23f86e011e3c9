package smooth

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/jitstream/jitstream/internal/media"
)

// ManifestContentType is the media type of the client manifest.
const ManifestContentType = "application/vnd.ms-sstr+xml"

// ContentType is the media type of track t's fragments: "video/mp4" or
// "audio/mp4".
func ContentType(t *media.Track) string {
	if t.Kind == media.KindAudio {
		return "audio/mp4"
	}
	return "video/mp4"
}

// FragmentPath is the path of a fragment relative to the manifest, as
// clients form it from the manifest's Url template:
// "QualityLevels(315647)/Fragments(video=61440)".
func FragmentPath(t *media.Track, start uint64) string {
	return fmt.Sprintf("QualityLevels(%d)/Fragments(%s=%d)", Bitrate(t), StreamType(t), start)
}

// ParseFragmentPath parses a fragment path relative to the manifest (see
// FragmentPath) into the quality level's bit rate, the stream type and the
// fragment's start time. Lookup and FragmentIndex then find the track and
// the chunk. It fails with an error wrapping ErrNoFragment for any other
// path.
func ParseFragmentPath(p string) (bitrate int64, streamType string, start uint64, err error) {
	bad := func(why string) (int64, string, uint64, error) {
		return 0, "", 0, fmt.Errorf("%w: %q: %s", ErrNoFragment, p, why)
	}
	rest, ok := strings.CutPrefix(p, "QualityLevels(")
	if !ok {
		return bad(`want "QualityLevels({bitrate})/Fragments({type}={start time})"`)
	}
	br, rest, ok := strings.Cut(rest, ")/Fragments(")
	if !ok {
		return bad(`want "QualityLevels({bitrate})/Fragments({type}={start time})"`)
	}
	if bitrate, err = parseDecimal(br); err != nil || bitrate <= 0 {
		return bad("bad bit rate")
	}
	inner, ok := strings.CutSuffix(rest, ")")
	if !ok {
		return bad(`missing ")"`)
	}
	streamType, ts, ok := strings.Cut(inner, "=")
	if !ok || (streamType != TypeVideo && streamType != TypeAudio) {
		return bad(`want "video=" or "audio="`)
	}
	t, err := parseDecimal(ts)
	if err != nil {
		return bad("bad start time")
	}
	return bitrate, streamType, uint64(t), nil
}

// parseDecimal parses a non-negative decimal integer without sign or
// leading zeros (but "0").
func parseDecimal(s string) (int64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("not a decimal number: %q", s)
	}
	return strconv.ParseInt(s, 10, 64)
}
