package players

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/jitstream/jitstream/internal/testutil/browser"
)

// Level is a variant of an HLS presentation as hls.js parsed it (variants
// whose codecs this browser lacks are left out by hls.js).
type Level struct {
	Width   int    `json:"width"`
	Height  int    `json:"height"`
	Bitrate int64  `json:"bitrate"`
	Codecs  string `json:"codecs"`
	URL     string `json:"url"`
}

// Switch is one level that PlayHLSLevels played.
type Switch struct {
	// Level is the index in LevelsResult.Levels.
	Level int
	// From and To are the media element's currentTime when the switch
	// was asked for and when playback at the level was checked.
	From, To float64
	// Width and Height are videoWidth and videoHeight then: the size of
	// the pictures of the level.
	Width, Height int
}

// LevelsResult is what PlayHLSLevels measured.
type LevelsResult struct {
	Player   string
	Levels   []Level
	Switches []Switch
	Warnings []string
}

// PlayHLSLevels plays the HLS presentation at manifestURL with hls.js,
// starting at the first level without automatic switching, and switches,
// while it plays, to each of its levels in turn, from the last
// (hls.js sorts them by bit rate, the lightest first: so from the
// heaviest) to the first: for each it sets hls.currentLevel (an immediate
// switch: the buffer ahead is dropped and refilled from the level) and
// waits until hls.js plays the level, the video shows pictures of the
// level's size and currentTime has advanced by more than a second since.
// It fails the test as PlayHLS does, and when hls.js offers no level.
func PlayHLSLevels(tb testing.TB, ctx context.Context, manifestURL string) LevelsResult {
	tb.Helper()
	p := hlsPlayer
	// Manual level selection from the start (the first level), so that
	// no load of hls.js's own choosing is in flight when a switch aborts
	// loads: hls.js 1.7 retries an init segment whose load was aborted
	// forever ("aborted error cascading" from the init segment).
	p.setup = strings.Replace(p.setup, "hls.loadSource(", "hls.on(Hls.Events.MANIFEST_PARSED, () => { hls.loadLevel = 0; });\nhls.loadSource(", 1)
	ss, stop := open(tb, ctx, p, manifestURL)
	defer stop()
	res := LevelsResult{Player: ss.res.Player}
	s := ss.wait("currentTime > 0.5 s", `v.currentTime > 0.5`)
	levels, err := browser.Eval[[]Level](ctx, `window.__player.levels.map(l => ({width: l.width, height: l.height, bitrate: l.bitrate,
  codecs: [l.videoCodec, l.audioCodec].filter(Boolean).join(','), url: String(l.url[0] || l.uri || '')}))`, stepTimeout)
	if err != nil {
		ss.fail("reading the levels: %v", err)
	}
	if len(levels) == 0 {
		ss.fail("hls.js offers no level")
	}
	res.Levels = levels
	for i := len(levels) - 1; i >= 0; i-- {
		from := s.Time
		if _, err := browser.Eval[chromedp.Void](ctx, fmt.Sprintf(`window.__player.currentLevel = %d`, i), stepTimeout); err != nil {
			ss.fail("switching to level %d: %v", i, err)
		}
		l := levels[i]
		s = ss.wait(fmt.Sprintf("playback of level %d (%dx%d %s) past %.3f", i, l.Width, l.Height, l.Codecs, from+1),
			fmt.Sprintf(`window.__player.currentLevel === %d && v.videoHeight === %d && v.currentTime > %f && !v.seeking`, i, l.Height, from+1))
		res.Switches = append(res.Switches, Switch{Level: i, From: from, To: s.Time, Width: s.VideoWidth, Height: s.VideoHeight})
	}
	res.Warnings = s.Warnings
	return res
}
