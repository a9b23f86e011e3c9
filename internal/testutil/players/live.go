package players

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/testutil/browser"
)

// LiveResult is what a live check measured.
type LiveResult struct {
	// Player is the library and its installed version.
	Player string
	// StartTime is the media element's currentTime when playback began;
	// EndTime when the check ended (more than 2 s later).
	StartTime, EndTime float64
	// Latency is the distance in seconds from the playback position to
	// the live edge at the end of the check, as the player estimates it
	// (see PlayLiveHLS and PlayLiveDASH).
	Latency float64
	// Frames is the number of decoded video frames at the end; Width and
	// Height are videoWidth and videoHeight.
	Frames        int
	Width, Height int
	// Startup is the time from loading the page until playback began.
	Startup time.Duration
	// Warnings are the non-fatal errors that the player reported.
	Warnings []string
}

// hlsLiveSetup is hlsSetup with a target latency of two target durations
// (liveSyncDurationCount 2) instead of hls.js's default of three, which
// plays exactly three segment durations behind the live edge and drifts
// past it while the playlist ages between reloads.
var hlsLiveSetup = strings.Replace(hlsSetup, "new Hls({debug: false})", "new Hls({debug: false, liveSyncDurationCount: 2})", 1)

// liveLatencyJS are the JavaScript expressions (numbers, NaN when the
// player does not consider the stream live) of each player's live latency.
const (
	// hls.latency: the level playlist's edge plus the time since the
	// playlist last grew, minus currentTime.
	hlsLatencyJS = `(window.__player && window.__player.liveSyncPosition !== null ? window.__player.latency : NaN)`
	// player.getCurrentLiveLatency(): the wall clock (synchronised with
	// the MPD's UTCTiming) minus the availabilityStartTime and the
	// playback position, for a dynamic MPD.
	dashLatencyJS = `(window.__player && window.__player.isDynamic() ? window.__player.getCurrentLiveLatency() : NaN)`
)

// PlayLiveHLS plays the live HLS presentation at manifestURL with hls.js
// (configured with liveSyncDurationCount 2, see hlsLiveSetup): it waits
// until playback starts and currentTime has advanced by more than 2 s,
// checks that video frames were decoded and reports the latency as
// hls.js estimates it (hls.latency: the end of the live playlist plus the
// time since it last grew, minus currentTime). It fails the test as
// PlayHLS does, and when hls.js does not consider the stream live
// (liveSyncPosition null). ctx comes from browser.New.
func PlayLiveHLS(tb testing.TB, ctx context.Context, manifestURL string) LiveResult {
	tb.Helper()
	p := hlsPlayer
	p.setup = hlsLiveSetup
	return playLive(tb, ctx, p, manifestURL, hlsLatencyJS)
}

// PlayLiveDASH plays the dynamic MPD at mpdURL with dash.js (default
// settings: its live delay is the MPD's suggestedPresentationDelay) like
// PlayLiveHLS, and reports the latency as dash.js estimates it
// (player.getCurrentLiveLatency(): the wall clock, synchronised with the
// MPD's UTCTiming, minus availabilityStartTime and the playback
// position). It fails the test when dash.js does not consider the stream
// dynamic.
func PlayLiveDASH(tb testing.TB, ctx context.Context, mpdURL string) LiveResult {
	tb.Helper()
	return playLive(tb, ctx, dashPlayer, mpdURL, dashLatencyJS)
}

// PlayLiveSmooth plays the live Smooth Streaming presentation (a client
// manifest with IsLive="TRUE") at manifestURL with dash.js and its MSS
// module, like PlayLiveDASH. dash.js gives a live Smooth presentation an
// availabilityStartTime of 1970, so the latency it reports is the wall
// clock minus the playback position: meaningful when the manifest's times
// count from the Unix epoch (as the live Smooth output of internal/live
// does). A Smooth manifest has no UTCTiming, and dash.js would then
// synchronise its clock with time.akamai.com, which a test machine may
// not reach (a fatal error, code 16): clock synchronisation is turned off
// (streaming.utcSynchronization.enabled false), the page and the server
// sharing a clock. Its target latency is one fragment duration
// (streaming.delay.liveDelayFragmentCount 1) instead of dash.js's default
// for Smooth of four (more than three segment durations by itself):
// dash.js takes the end of the manifest's last fragment as the live edge,
// which is up to a fragment older than the wall clock, and a live Smooth
// server answers a fragment only once it can name the next one (tfrf), so
// playback settles about two fragment durations behind the wall clock
// with any target up to two; a larger one adds the manifest's age.
func PlayLiveSmooth(tb testing.TB, ctx context.Context, manifestURL string) LiveResult {
	tb.Helper()
	p := smoothPlayer
	p.setup = strings.Replace(p.setup, "p.initialize(", "p.updateSettings({streaming: {utcSynchronization: {enabled: false}, delay: {liveDelayFragmentCount: 1}}});\np.initialize(", 1)
	return playLive(tb, ctx, p, manifestURL, dashLatencyJS)
}

// liveState is the page state with the player's latency.
type liveState struct {
	State   state   `json:"state"`
	Latency float64 `json:"latency"`
}

// playLive runs the live check with player p; latencyJS evaluates the
// player's latency.
func playLive(tb testing.TB, ctx context.Context, p player, manifestURL, latencyJS string) LiveResult {
	tb.Helper()
	ss, stop := open(tb, ctx, p, manifestURL)
	defer stop()
	res := LiveResult{Player: ss.res.Player}
	s := ss.wait("playback to start", `v.currentTime > 0 && !v.paused && v.readyState >= 2`)
	res.Startup = time.Since(ss.start)
	res.StartTime = s.Time
	s = ss.wait(fmt.Sprintf("currentTime past %.3f and a live latency (a live stream)", res.StartTime+2),
		fmt.Sprintf(`v.currentTime > %f && Number.isFinite(%s)`, res.StartTime+2, latencyJS))
	if s.VideoWidth == 0 || (s.Frames == 0 && s.FrameCallbacks == 0) {
		ss.fail("no video frames decoded")
	}
	ls := evalLive(ctx, ss, latencyJS)
	if ls.Latency < 0 {
		ss.fail("%s does not play the stream as live (latency unknown)", res.Player)
	}
	res.EndTime = ls.State.Time
	res.Latency = ls.Latency
	res.Frames, res.Width, res.Height = ls.State.Frames, ls.State.VideoWidth, ls.State.VideoHeight
	res.Warnings = ls.State.Warnings
	return res
}

// evalLive reads the page state and the latency together (-1 for an
// unknown latency: NaN does not survive JSON).
func evalLive(ctx context.Context, ss *session, latencyJS string) liveState {
	ls, err := browser.Eval[liveState](ctx, fmt.Sprintf(`(() => { const l = %s; return {state: window.__state(), latency: Number.isFinite(l) ? l : -1}; })()`, latencyJS), stepTimeout)
	if err != nil {
		ss.fail("reading the latency: %v", err)
	}
	if math.IsNaN(ls.Latency) {
		ls.Latency = -1
	}
	return ls
}
