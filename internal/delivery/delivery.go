// Package delivery controls how fast media files are sent, in the manner of
// IIS Media Services' Bit Rate Throttling:
//
//   - Fast start: the first Config.Burst of media of a response goes at full
//     speed, so that playback starts at once and the player has a buffer.
//   - Throttling: after that, bytes go at the pace their media plays, times
//     Config.Factor: the byte at media time t (from the file's
//     vfile.Timeline, so the rate follows the content's local bit rate, not
//     a file average) is sent (t - start - Burst)/Factor seconds after the
//     response began. A player that stops watching (or a seek, which is a
//     new request) leaves little unwatched data sent. Every response starts
//     its own fast start from its first byte (a Range request or a seek).
//   - A bandwidth budget (Config.MaxEgress) shared by the whole server:
//     each response under control is a Session with a minimum rate (its
//     content's average bit rate times a percentage for its Kind, see
//     Kind.MinPercent) and a target rate, the minimum plus an even share of
//     what the minimums leave of the budget. A session never goes faster
//     than its target, fast start included, so the total stays within the
//     budget; a new session whose minimum no longer fits is refused (503
//     with Retry-After), and adaptive manifests leave out the variants that
//     do not fit (Budget.Fits).
//
// Observability: Stats is a snapshot of the controller's counters (active
// sessions by kind and pacing, bytes by kind and Mode, ends by End,
// refusals, allocated rates), which internal/metrics reads at scrape time;
// Serve logs each session's start (debug) and end (info) with the request's
// logger, and Config.OnSessionEnd sees each session's SessionStats.
//
// The pacing happens in the request's own goroutine (httpserve asks the
// Session before each chunk, see httpserve.Pacer): no goroutine, no
// allocation per chunk, one timer per session, and chunks of about 250 ms
// of data (16 to 256 KiB), each sent with sendfile on the local store.
package delivery

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/vfile"
)

// Defaults of DefaultConfig.
const (
	DefaultBurst      = 10 * time.Second
	DefaultFactor     = 1.1
	DefaultRetryAfter = 10 * time.Second
)

// Config configures a Controller. The zero value controls nothing: no
// pacing and no budget.
type Config struct {
	// Burst is the media duration sent at full speed at the start of each
	// paced response (fast start); 0 for none.
	Burst time.Duration
	// Factor is the ratio of the delivery rate to the content's bit rate
	// after the burst; 0 disables pacing (fast start and throttling), the
	// budget still applies.
	Factor float64
	// PaceSegments paces the segments of adaptive streams too; by default
	// they go at full speed (within the budget, when there is one).
	PaceSegments bool
	// MaxEgress is the server's bandwidth budget in bits per second; 0
	// for none.
	MaxEgress int64
	// RetryAfter is the Retry-After of the 503 answers given when the
	// budget is short; 0 means DefaultRetryAfter.
	RetryAfter time.Duration
	// OnSessionEnd, if not nil, is called with the statistics of each
	// session as it ends, from the goroutine of its request (for metrics
	// and tests). It must not block. (Serve also logs each session, with
	// the logger of its httpserve.Options.)
	OnSessionEnd func(SessionStats)
}

// DefaultConfig is the configuration of `jitstream serve` without flags:
// pacing with a 10 s fast start and a factor of 1.1, segments unpaced, no
// budget.
func DefaultConfig() Config {
	return Config{Burst: DefaultBurst, Factor: DefaultFactor, RetryAfter: DefaultRetryAfter}
}

// Kind is the kind of output a session sends; it selects the share of its
// bit rate that the budget reserves for it (MinPercent).
type Kind uint8

// Kinds of sessions.
const (
	// Progressive is a file played while it downloads: an original, the
	// consolidated MP4, a clip, the fragmented MP4.
	Progressive Kind = iota
	// Trick is a trick-mode (key frames only) file.
	Trick
	// Segment is a media segment of an adaptive stream.
	Segment

	// NumKinds is the number of kinds.
	NumKinds = 3
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case Progressive:
		return "progressive"
	case Trick:
		return "trick"
	case Segment:
		return "segment"
	}
	return "kind" + strconv.Itoa(int(k))
}

// MinPercent is the percentage of a session's content bit rate that the
// budget reserves for it (its minimum rate):
//
//	Progressive 100  it cannot adapt: below its content rate it stalls
//	Segment     100  the variant was offered because it fits (Budget.Fits);
//	                 below its rate the player would stall, then switch down
//	Trick        50  a key-frame preview (scrubbing, fast forward) is not
//	                 played in real time; it yields to real-time playback
//
// The minimum is a floor the budget guarantees, not a cap: every session
// also gets an even share of what the minimums leave.
func (k Kind) MinPercent() int64 {
	switch k {
	case Trick:
		return 50
	default:
		return 100
	}
}

// Mode tells how the bytes of a session went (Stats.Sent).
type Mode uint8

// Modes of delivery.
const (
	// Burst bytes went at full speed during fast start.
	Burst Mode = iota
	// Paced bytes went at the content's rate times the factor, after the
	// fast start.
	Paced
	// Unpaced bytes belong to sessions without pacing (segments, pace=0
	// or a zero factor): they count only against the budget.
	Unpaced

	// NumModes is the number of modes.
	NumModes = 3
)

// String names the mode.
func (m Mode) String() string {
	switch m {
	case Burst:
		return "burst"
	case Paced:
		return "paced"
	case Unpaced:
		return "unpaced"
	}
	return "mode" + strconv.Itoa(int(m))
}

// End tells why a session ended (SessionStats.End).
type End uint8

// Ends of sessions.
const (
	// NoBody: the response had no body (a 304, 412 or 416 answer, a
	// store error before the status line), or the session was closed
	// without being told how its body ended.
	NoBody End = iota
	// Complete: the whole body was sent.
	Complete
	// ClientGone: the client went away (closed or reset the connection,
	// or canceled the request) before the end of the body.
	ClientGone
	// Failed: the server could not send the body (a store error).
	Failed

	// NumEnds is the number of ends.
	NumEnds = 4
)

// String names the end: "no_body", "complete", "client_gone" or "error".
func (e End) String() string {
	switch e {
	case NoBody:
		return "no_body"
	case Complete:
		return "complete"
	case ClientGone:
		return "client_gone"
	case Failed:
		return "error"
	}
	return "end" + strconv.Itoa(int(e))
}

// MinSessionRate is the minimum, in bits per second, of a session whose
// content rate is unknown (a file without timeline).
const MinSessionRate = 256_000

// ErrBusy is returned (wrapped) by Start when the budget cannot take the
// minimum of a new session.
var ErrBusy = errors.New("bandwidth budget exhausted")

// Controller paces responses and keeps the budget of one server. A nil
// *Controller controls nothing: Start returns no session, Serve serves
// unpaced. Its methods are safe for concurrent use.
type Controller struct {
	cfg    Config
	budget *Budget

	// Counters for Stats, updated once per session except sent (once per
	// chunk).
	active           [NumKinds][2]atomic.Int64 // by paced (1) or not (0)
	started, refused [NumKinds]atomic.Int64
	ended            [NumKinds][NumEnds]atomic.Int64
	sent             [NumKinds][NumModes]atomic.Int64
	pacedRate        atomic.Int64 // Σ Session.rate of the active paced sessions
	busy             atomic.Int64 // 503 answers (Refuse)
	waits, waited    atomic.Int64 // waited in ns
}

// New returns a Controller for cfg, or an error if cfg is invalid (negative
// burst, budget or retry delay, or a factor that is negative or not
// finite).
func New(cfg Config) (*Controller, error) {
	switch {
	case cfg.Burst < 0:
		return nil, fmt.Errorf("delivery: negative burst %v", cfg.Burst)
	case cfg.Factor < 0 || math.IsNaN(cfg.Factor) || math.IsInf(cfg.Factor, 0):
		return nil, fmt.Errorf("delivery: pace factor %v is not a positive number (0 disables pacing)", cfg.Factor)
	case cfg.MaxEgress < 0:
		return nil, fmt.Errorf("delivery: negative bandwidth budget %d", cfg.MaxEgress)
	case cfg.RetryAfter < 0:
		return nil, fmt.Errorf("delivery: negative retry delay %v", cfg.RetryAfter)
	}
	if cfg.RetryAfter == 0 {
		cfg.RetryAfter = DefaultRetryAfter
	}
	return &Controller{cfg: cfg, budget: NewBudget(cfg.MaxEgress)}, nil
}

// Config returns the configuration (with defaults applied).
func (c *Controller) Config() Config {
	if c == nil {
		return Config{}
	}
	return c.cfg
}

// Budget returns the server's bandwidth budget; nil (which fits anything)
// for a nil Controller.
func (c *Controller) Budget() *Budget {
	if c == nil {
		return nil
	}
	return c.budget
}

// Paces reports whether responses of kind k are paced by default: when
// pacing is on (Factor > 0), for every kind but segments, and for segments
// with PaceSegments.
func (c *Controller) Paces(k Kind) bool {
	return c != nil && c.cfg.Factor > 0 && (k != Segment || c.cfg.PaceSegments)
}

// Params describe the response a session controls.
type Params struct {
	// Kind selects the budget's minimum (Kind.MinPercent).
	Kind Kind
	// Pace asks for fast start and throttling (ignored when the
	// controller does not pace, see Paces, or the file has no timeline).
	Pace bool
	// Speed is the playback speed of the file's media: media seconds
	// played per second (a clip sent for fast forward at 4× has Speed 4).
	// The pace, the fast start's media duration and the minimum rate are
	// multiplied by it. 0 means 1.
	Speed float64
}

// Start begins the control of one response body sending f, as p says. It
// returns nil when nothing controls the response (not paced, no budget):
// serve it unpaced. Otherwise the caller passes the session to httpserve
// as the Pacer and must Close it when the response ends. With a budget,
// Start fails with an error wrapping ErrBusy when the session's minimum
// does not fit.
func (c *Controller) Start(f *vfile.File, p Params) (*Session, error) {
	if c == nil || f == nil {
		return nil, nil
	}
	speed := p.Speed
	if speed <= 0 || math.IsNaN(speed) || math.IsInf(speed, 0) {
		speed = 1
	}
	k := p.Kind % NumKinds
	tl := f.Timeline
	pace := p.Pace && c.cfg.Factor > 0 && tl.Duration() > 0
	if !pace && !c.budget.Limited() {
		return nil, nil
	}
	s := &Session{c: c, kind: k, tl: tl, size: f.Size, pace: pace,
		burst: c.cfg.Burst.Seconds() * speed, factor: c.cfg.Factor * speed}
	if pace {
		s.rate = int64(float64(tl.Bitrate(f.Size)) * s.factor)
	}
	if c.budget.Limited() {
		rate := float64(tl.Bitrate(f.Size)) * speed
		s.min = int64(rate) * k.MinPercent() / 100
		if s.min <= 0 {
			s.min = MinSessionRate
		}
		if !c.budget.acquire(s.min) {
			c.refused[k].Add(1)
			return nil, fmt.Errorf("delivery: %w: the server's budget of %s has %s left, a %s stream of %s needs %s",
				ErrBusy, FormatRate(c.budget.limit), FormatRate(c.budget.Free()), k, f.Name, FormatRate(s.min))
		}
		s.budgeted = true
	}
	c.started[k].Add(1)
	c.active[k][b2i(pace)].Add(1)
	c.pacedRate.Add(s.rate)
	return s, nil
}

// b2i is 1 for true, 0 for false.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A Session is the Pacer of the response it controls, and is told how its
// body ends.
var (
	_ httpserve.Pacer     = (*Session)(nil)
	_ httpserve.BodyEnder = (*Session)(nil)
)

// Serve serves f (whose stored pieces are in st) in answer to r with
// httpserve.ServeFileWith and o, under control: a GET is paced when p.Pace
// is set (usually Paces(p.Kind)) and the query does not say pace=0 (or
// false, off, no), and counts against the budget; when the budget is short
// it is answered 503 (see Refuse). HEAD, other methods and revalidations
// that will be answered 304 (If-None-Match with f's ETag) are served as
// they are; other conditional requests are controlled like any GET (a
// session that sends no body ends at once).
//
// pace=0 is meant for tools (downloads, tests): it turns off fast start and
// throttling, not the budget, whose share still bounds the response.
//
// A Pacer already in o (one that enforces rules, say) is asked first, then
// the session's (httpserve.ChainPacers).
//
// Each session is logged with o.Logger (nothing when nil): its start at
// debug level, its end at info level ("delivery session": user, path,
// kind, paced, end, bytes, burst_bytes, duration, avg_bps; see logEnd).
func (c *Controller) Serve(w http.ResponseWriter, r *http.Request, st store.Store, f *vfile.File, p Params, o httpserve.Options) {
	if c != nil && r.Method == http.MethodGet && !revalidation(r, f) {
		p.Pace = p.Pace && !NoPace(r)
		s, err := c.Start(f, p)
		if err != nil {
			c.Refuse(w, err)
			return
		}
		if s != nil {
			began := time.Now()
			logStart(o.Logger, r, s)
			defer func() {
				s.Close()
				logEnd(o.Logger, r, s, time.Since(began))
			}()
			o.Pacer = httpserve.ChainPacers(o.Pacer, s)
		}
	}
	httpserve.ServeFileWith(w, r, st, f, o)
}

// logStart logs the start of session s, serving r, at debug level.
func logStart(log *slog.Logger, r *http.Request, s *Session) {
	ctx := r.Context()
	if log == nil || !log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	log.LogAttrs(ctx, slog.LevelDebug, "delivery session start",
		slog.String("user", r.PathValue("user")),
		slog.String("path", r.URL.RequestURI()),
		slog.String("range", r.Header.Get("Range")),
		slog.String("kind", s.kind.String()),
		slog.Bool("paced", s.pace),
		slog.Int64("pace_bps", s.rate),
		slog.Bool("budgeted", s.budgeted),
		slog.Int64("min_bps", s.min))
}

// logEnd logs the end of session s, serving r, at info level: the user
// and path (with the query) of the request, the session's kind, whether
// it was paced, why it ended (End), the bytes it let through and those of
// the fast start, its duration d (from Start to Close) and its average
// rate over d in bits per second.
func logEnd(log *slog.Logger, r *http.Request, s *Session, d time.Duration) {
	ctx := r.Context()
	if log == nil || !log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	var avg int64
	if d > 0 {
		avg = int64(float64(s.sent) * 8 / d.Seconds())
	}
	log.LogAttrs(ctx, slog.LevelInfo, "delivery session",
		slog.String("user", r.PathValue("user")),
		slog.String("path", r.URL.RequestURI()),
		slog.String("kind", s.kind.String()),
		slog.Bool("paced", s.pace),
		slog.String("end", s.end.String()),
		slog.Int64("bytes", s.sent),
		slog.Int64("burst_bytes", s.burstSent),
		slog.Duration("duration", d),
		slog.Int64("avg_bps", avg))
}

// revalidation reports whether r is a revalidation that will be answered
// 304 Not Modified (If-None-Match names f's ETag, or is *): no body, so no
// session, and no 503 for a client that has the file already.
func revalidation(r *http.Request, f *vfile.File) bool {
	inm := r.Header.Get("If-None-Match")
	return f != nil && f.ETag != "" && inm != "" && (strings.TrimSpace(inm) == "*" || strings.Contains(inm, f.ETag))
}

// NoPace reports whether r asks not to be paced: a query parameter pace
// equal to 0, false, off or no.
func NoPace(r *http.Request) bool {
	switch r.URL.Query().Get("pace") {
	case "0", "false", "off", "no":
		return true
	}
	return false
}

// Refuse answers a request that the budget cannot take (err wraps ErrBusy):
// 503 Service Unavailable with Retry-After (Config.RetryAfter, in whole
// seconds), Cache-Control: no-store and the JSON error body
// {"error": "bandwidth budget exhausted", "detail": err}.
func (c *Controller) Refuse(w http.ResponseWriter, err error) {
	if c != nil {
		c.busy.Add(1)
	}
	secs := int64(math.Ceil(c.Config().RetryAfter.Seconds()))
	h := w.Header()
	h.Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	h.Set("Cache-Control", "no-store")
	httpserve.Error(w, http.StatusServiceUnavailable, ErrBusy.Error(), err.Error())
}

// Stats is a snapshot of a Controller's counters, for metrics. Counters
// are read one by one, not under a lock: a snapshot taken while sessions
// start or end may be off by those sessions.
type Stats struct {
	// Active, Started and Refused count sessions by Kind: now, since
	// New, and refused for lack of budget since New. ActivePaced is the
	// part of Active that is paced (fast start and throttling).
	Active, ActivePaced, Started, Refused [NumKinds]int64
	// Ended counts the sessions that ended since New, by Kind and End.
	Ended [NumKinds][NumEnds]int64
	// Sent counts the bytes sessions let through since New, by Kind and
	// Mode. Bytes is their total; BurstBytes the total of those sent
	// during fast start.
	Sent              [NumKinds][NumModes]int64
	Bytes, BurstBytes int64
	// PacedRate is the sum, in bits per second, of the rates at which the
	// active paced sessions are throttled after their fast start (their
	// content's average bit rate times the factor and speed): the egress
	// they settle to, budget or not.
	PacedRate int64
	// Busy counts the 503 answers given for lack of budget (Refuse):
	// refused sessions and manifests.
	Busy int64
	// Waits is the number of times a session slept, WaitTime their total.
	Waits    int64
	WaitTime time.Duration
	Budget   BudgetStats
}

// Stats returns a snapshot of the counters (zero for a nil Controller).
func (c *Controller) Stats() Stats {
	var st Stats
	if c == nil {
		return st
	}
	for k := range NumKinds {
		st.ActivePaced[k] = c.active[k][1].Load()
		st.Active[k] = c.active[k][0].Load() + st.ActivePaced[k]
		st.Started[k] = c.started[k].Load()
		st.Refused[k] = c.refused[k].Load()
		for e := range NumEnds {
			st.Ended[k][e] = c.ended[k][e].Load()
		}
		for m := range NumModes {
			st.Sent[k][m] = c.sent[k][m].Load()
			st.Bytes += st.Sent[k][m]
		}
		st.BurstBytes += st.Sent[k][Burst]
	}
	st.PacedRate, st.Busy = c.pacedRate.Load(), c.busy.Load()
	st.Waits, st.WaitTime = c.waits.Load(), time.Duration(c.waited.Load())
	st.Budget = c.budget.Stats()
	return st
}
