package transcode

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/store"
)

// Rung is one step of a bit-rate ladder: a picture height and the video bit
// rate to encode it at.
type Rung struct {
	// Name is the rung's name, "<height>p" ("720p").
	Name string
	// Height is the height of the picture in lines: its short side, so that
	// the "720p" of a portrait (taller than wide) video is 720 pixels wide.
	Height int
	// VideoBitrate is the target video bit rate in bit/s.
	VideoBitrate int64
}

// DefaultLadder is the ladder used when none is configured: 1080p at
// 5 Mbit/s, 720p at 3 Mbit/s, 480p at 1.2 Mbit/s and 360p at 0.7 Mbit/s.
func DefaultLadder() []Rung {
	return []Rung{
		{Name: "1080p", Height: 1080, VideoBitrate: 5_000_000},
		{Name: "720p", Height: 720, VideoBitrate: 3_000_000},
		{Name: "480p", Height: 480, VideoBitrate: 1_200_000},
		{Name: "360p", Height: 360, VideoBitrate: 700_000},
	}
}

// Limits of a rung, as ParseLadder checks them.
const (
	minHeight  = 32
	maxHeight  = 4320
	minBitrate = 32_000
	maxBitrate = 200_000_000
)

// ParseLadder parses a ladder written as a comma-separated list of
// "<height>p=<bitrate>" items, e.g. "1080p=5000k,720p=3000k,480p=1200k"
// (the value of the --ladder flag). A bit rate is a whole number of bit/s,
// or a number (decimals allowed) followed by k (1000) or M (1000000):
// "700k", "1.2M", "700000". Heights must be even, from 32 to 4320, and
// distinct; bit rates from 32 kbit/s to 200 Mbit/s. The rungs are returned
// highest first.
func ParseLadder(s string) ([]Rung, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New(`transcode: empty ladder: want e.g. "1080p=5000k,720p=3000k"`)
	}
	var ladder []Rung
	seen := map[int]bool{}
	for i, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		r, err := parseRung(item)
		if err != nil {
			return nil, fmt.Errorf("transcode: ladder item %d %q: %w", i+1, item, err)
		}
		if seen[r.Height] {
			return nil, fmt.Errorf("transcode: ladder item %d %q: height %d given twice", i+1, item, r.Height)
		}
		seen[r.Height] = true
		ladder = append(ladder, r)
	}
	sort.SliceStable(ladder, func(i, j int) bool { return ladder[i].Height > ladder[j].Height })
	return ladder, nil
}

func parseRung(item string) (Rung, error) {
	name, rate, ok := strings.Cut(item, "=")
	if !ok {
		return Rung{}, errors.New(`want "<height>p=<bitrate>", e.g. "720p=3000k"`)
	}
	digits, ok := strings.CutSuffix(name, "p")
	if !ok || digits == "" || !allDigits(digits) {
		return Rung{}, fmt.Errorf(`height %q: want a number of lines followed by "p", e.g. "720p"`, name)
	}
	h, err := strconv.Atoi(digits)
	if err != nil || h < minHeight || h > maxHeight {
		return Rung{}, fmt.Errorf("height %q: want %d to %d lines", name, minHeight, maxHeight)
	}
	if h%2 != 0 {
		return Rung{}, fmt.Errorf("height %q: must be even (4:2:0 video)", name)
	}
	br, err := parseBitrate(rate)
	if err != nil {
		return Rung{}, err
	}
	return Rung{Name: strconv.Itoa(h) + "p", Height: h, VideoBitrate: br}, nil
}

// parseBitrate parses "3000k", "1.2M" or "700000" (bit/s).
func parseBitrate(s string) (int64, error) {
	bad := func(why string) error {
		return fmt.Errorf(`bit rate %q: %s (want e.g. "3000k", "1.2M" or "700000")`, s, why)
	}
	num, mult := s, 1.0
	switch {
	case strings.HasSuffix(s, "k"):
		num, mult = s[:len(s)-1], 1e3
	case strings.HasSuffix(s, "M"):
		num, mult = s[:len(s)-1], 1e6
	}
	whole, frac, dot := strings.Cut(num, ".")
	if whole == "" || !allDigits(whole) || (dot && (frac == "" || !allDigits(frac) || mult == 1)) {
		return 0, bad("not a number")
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, bad("not a number")
	}
	br := int64(math.Round(v * mult))
	if br < minBitrate || br > maxBitrate {
		return 0, bad(fmt.Sprintf("out of range %dk to %dM", minBitrate/1000, maxBitrate/1_000_000))
	}
	return br, nil
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Rendition is a rung applied to a source: the size of the pictures and the
// H.264 profile and level, all known before anything is transcoded, so that
// manifests can list the rendition at once.
type Rendition struct {
	Rung
	// Width and Height are the coded picture size (even numbers). Height
	// shadows Rung.Height: it is the output height, which is the rung's
	// height for landscape sources and the long side for portrait ones.
	Width, Height int
	// Codec is the RFC 6381 codecs parameter: always H.264 High profile,
	// "avc1.6400LL" with LL the level in hex (avc1.64001f is level 3.1).
	Codec string
	// Level is the H.264 level_idc (31 for level 3.1).
	Level int
	// FrameRate is the frame rate that the encoder's rate control assumes
	// (the source's average), as a rational number "num/den".
	FrameRate string
	// Bandwidth is the peak bit rate to announce in manifests (HLS
	// BANDWIDTH, DASH @bandwidth), video only: 5/4 of VideoBitrate. The
	// encoder's VBV has a maxrate of VideoBitrate and a buffer of one second
	// of it, so a segment of T seconds holds at most VideoBitrate*(T+1)
	// bits: 5/4 of the rate for the 4 s segments (container overhead is
	// below 1%). A last segment shorter than 4 s may exceed it.
	Bandwidth int64
}

// check reports whether r is a rendition that Renditions could have made.
func (r Rendition) check() error {
	switch {
	case r.Width < 2 || r.Height < 2 || r.Width%2 != 0 || r.Height%2 != 0:
		return fmt.Errorf("transcode: rendition %q: bad size %dx%d", r.Name, r.Width, r.Height)
	case r.VideoBitrate <= 0 || r.Level == 0 || r.FrameRate == "" || r.Codec == "":
		return fmt.Errorf("transcode: rendition %q: no bit rate, level, frame rate or codec (use Renditions)", r.Name)
	case store.CheckKey(r.ID()) != nil || strings.Contains(r.Name, "/"):
		return fmt.Errorf("transcode: rendition name %q: want letters, digits, '.', '_' or '-'", r.Name)
	}
	return nil
}

// ID identifies the rendition's encoding in cache keys: name, size and
// bit rate, e.g. "480p-854x480-1200000".
func (r Rendition) ID() string {
	return fmt.Sprintf("%s-%dx%d-%d", r.Name, r.Width, r.Height, r.VideoBitrate)
}

// Renditions returns the renditions of ladder for the video track src,
// highest first: the rungs at or below the source's height (short side;
// nothing is upscaled; for an H.264 source only those below it, the
// original serving its own height), each at the source's display aspect
// ratio. An H.265
// source (sample entry hvc1 or hev1) always gets at least one H.264
// rendition, so that players without HEVC can play it: when every rung is
// above the source, one at the source's own size (its height rounded down
// to even, named like "240p") at the bit rate of the lowest rung scaled by
// the ratio of the picture areas. The result depends only on ladder and the
// track's size, frame rate and format.
//
// The display aspect ratio is that of the track header's width and height
// (which include the pixel aspect ratio of anamorphic video), else of the
// coded size; the rotation matrix is left to the player (the renditions keep
// it), so sizes are in the coded orientation.
func Renditions(ladder []Rung, src *media.Track) []Rendition {
	if src == nil || src.Width == 0 || src.Height == 0 {
		return nil
	}
	dw, dh := displaySize(src)
	short, long := dh, dw
	portrait := dh > dw
	if portrait {
		short, long = dw, dh
	}
	fps := frameRate(src)
	var out []Rendition
	add := func(r Rung) {
		s := r.Height
		l := even(float64(s) * long / short)
		w, h := l, s
		if portrait {
			w, h = s, l
		}
		out = append(out, newRendition(r, w, h, fps))
	}
	sorted := append([]Rung(nil), ladder...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Height > sorted[j].Height })
	srcShort := int(src.Height)
	if portrait {
		srcShort = int(src.Width)
	}
	for _, r := range sorted {
		// An H.264 original plays everywhere: a rung of its own height
		// would only copy it.
		if r.Height > 0 && (r.Height < srcShort || r.Height == srcShort && !isH264(src.Format)) {
			add(r)
		}
	}
	if len(out) == 0 && isHEVC(src.Format) && len(sorted) > 0 {
		s := srcShort &^ 1
		if s < 2 {
			return nil
		}
		low := sorted[len(sorted)-1]
		ratio := float64(s*s) / float64(low.Height*low.Height)
		br := max(int64(math.Round(float64(low.VideoBitrate)*ratio/1000))*1000, 100_000)
		add(Rung{Name: strconv.Itoa(s) + "p", Height: s, VideoBitrate: br})
	}
	return out
}

func isHEVC(format string) bool { return format == "hvc1" || format == "hev1" }

func isH264(format string) bool { return format == "avc1" || format == "avc3" }

// displaySize returns the track's display size before rotation: the track
// header's when it is set and close to the coded aspect ratio (within a
// factor of 2, which covers anamorphic video but not a header written
// rotated), else the coded size.
func displaySize(t *media.Track) (w, h float64) {
	w, h = float64(t.Width), float64(t.Height)
	tw, th := float64(t.TkhdWidth)/65536, float64(t.TkhdHeight)/65536
	if tw >= 1 && th >= 1 {
		r := (tw / th) / (w / h)
		if r > 0.5 && r < 2 {
			return tw, th
		}
	}
	return w, h
}

// even rounds x to the nearest even integer, at least 2.
func even(x float64) int {
	return max(int(math.Round(x/2))*2, 2)
}

func newRendition(r Rung, w, h int, fps *big.Rat) Rendition {
	f, _ := fps.Float64()
	level := h264Level(w, h, f, r.VideoBitrate)
	return Rendition{
		Rung:      r,
		Width:     w,
		Height:    h,
		Codec:     fmt.Sprintf("avc1.6400%02x", level),
		Level:     level,
		FrameRate: fps.Num().String() + "/" + fps.Denom().String(),
		Bandwidth: r.VideoBitrate * 5 / 4,
	}
}

// levelLimits is a row of H.264 Table A-1: MaxMBPS (macroblocks per
// second), MaxFS (macroblocks per frame) and MaxBR (kbit/s for Baseline and
// Main; High profile allows 5/4 of it).
type levelLimits struct {
	idc         int
	mbps, fs    int64
	maxBRkbit   int64
	description string
}

var levels = []levelLimits{
	{30, 40500, 1620, 10000, "3.0"},
	{31, 108000, 3600, 14000, "3.1"},
	{32, 216000, 5120, 20000, "3.2"},
	{40, 245760, 8192, 20000, "4.0"},
	{41, 245760, 8192, 50000, "4.1"},
	{42, 522240, 8704, 50000, "4.2"},
	{50, 589824, 22080, 135000, "5.0"},
	{51, 983040, 36864, 240000, "5.1"},
	{52, 2073600, 36864, 240000, "5.2"},
}

// h264Level returns the lowest level (from 3.0 up) whose limits of frame
// size, macroblock rate and bit rate (High profile) fit a w x h picture at
// fps frames per second and bitrate bit/s: 3.0 for 640x360 at 30 fps, 3.1
// for 854x480 and 1280x720 at 30 fps, 4.0 for 1920x1080 at 30 fps.
func h264Level(w, h int, fps float64, bitrate int64) int {
	mbw, mbh := int64((w+15)/16), int64((h+15)/16)
	fs := mbw * mbh
	mbps := int64(math.Ceil(float64(fs) * fps))
	for _, l := range levels {
		side := int64(math.Sqrt(float64(8 * l.fs)))
		if fs <= l.fs && mbw <= side && mbh <= side && mbps <= l.mbps && bitrate <= l.maxBRkbit*1250 {
			return l.idc
		}
	}
	return levels[len(levels)-1].idc
}

// levelString is the level of idc as x264 takes it ("3.1").
func levelString(idc int) string {
	for _, l := range levels {
		if l.idc == idc {
			return l.description
		}
	}
	return fmt.Sprintf("%d.%d", idc/10, idc%10)
}

// standardRates are frame rates that an average close to them is snapped
// to (within 0.1%).
var standardRates = []*big.Rat{
	big.NewRat(24000, 1001), big.NewRat(24, 1), big.NewRat(25, 1), big.NewRat(30000, 1001),
	big.NewRat(30, 1), big.NewRat(48, 1), big.NewRat(50, 1), big.NewRat(60000, 1001),
	big.NewRat(60, 1), big.NewRat(100, 1), big.NewRat(120000, 1001), big.NewRat(120, 1),
}

// frameRate is the track's typical frame rate: the timescale over the
// median sample duration (of at most 1001 samples spread over the track, so
// that an odd last frame does not count), snapped to a standard rate within
// 0.1%, else rounded to 1/1000 frame per second; 30 when the track has no
// samples. The encoder's rate control and the VUI timing of the parameter
// sets follow it; the renditions' frame times are the source's own.
func frameRate(t *media.Track) *big.Rat {
	durs := t.Samples.Dur
	if len(durs) == 0 || t.Timescale == 0 {
		return big.NewRat(30, 1)
	}
	const most = 1001
	step := max(len(durs)/most, 1)
	var picked []uint32
	for i := 0; i < len(durs); i += step {
		picked = append(picked, durs[i])
	}
	slices.Sort(picked)
	med := picked[len(picked)/2]
	if med == 0 {
		return big.NewRat(30, 1)
	}
	fps := float64(t.Timescale) / float64(med)
	for _, r := range standardRates {
		f, _ := r.Float64()
		if math.Abs(fps-f) <= f*0.001 {
			return r
		}
	}
	return big.NewRat(max(int64(math.Round(fps*1000)), 1), 1000)
}
