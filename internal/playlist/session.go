package playlist

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jitstream/jitstream/internal/state"
)

var (
	// ErrNoSession is returned for a session id that is unknown, malformed
	// or expired (HTTP 404, or 410 where the caller prefers).
	ErrNoSession = errors.New("no such session")
	// ErrBadRequest is returned for a request that cannot be checked at
	// all: an item index out of the session's timeline, times that are
	// negative, reversed or not finite, an invalid timeline given to
	// Create (HTTP 400).
	ErrBadRequest = errors.New("bad request")
)

// Defaults of SessionOptions.
const (
	DefaultSessionTTL = 6 * time.Hour
	DefaultTolerance  = 2 * time.Second
	DefaultLookahead  = 12.0
)

// Keys and locks of sessions in the state. Keys and lock names are separate
// namespaces of the state, so both use the same name.
const sessionKeyPrefix = "playlist/session/"

// lockTTL is the lease of the per-session lock taken by Delivered;
// lockMargin is kept free at its end: the reads and writes done under the
// lock must end lockTTL-lockMargin after the lock was taken, so that they
// always end while the lock is still ours (unless taking the lock itself
// took more than lockMargin on the wire).
const (
	lockTTL    = 5 * time.Second
	lockMargin = time.Second
	// unlockTimeout bounds releasing the lock, which is done even when the
	// caller's context is done.
	unlockTimeout = 2 * time.Second
)

// sessionIDEncoding encodes session ids: base32 (RFC 4648) in lower case, without
// padding, so 128 bits give 26 characters of [a-z2-7].
var sessionIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// sessionIDLen is the length of a session id.
const sessionIDLen = 26

// SessionOptions tunes NewSessions. The zero value gives the defaults.
type SessionOptions struct {
	// TTL is the lifetime of a session in the state, refreshed by every
	// Delivered; 0 gives DefaultSessionTTL (6h).
	TTL time.Duration
	// Tolerance releases an ad this much before its duration has passed
	// since its first byte was delivered (so that a player fetching the
	// content after it ahead of time does not stall); 0 gives
	// DefaultTolerance (2s).
	Tolerance time.Duration
	// Lookahead is how many seconds a viewer may request ahead of what was
	// delivered (player buffering, parallel segment fetches) without it
	// counting as a skip, and how far back a re-request of recent segments
	// may go without counting as going back; 0 gives DefaultLookahead (12).
	Lookahead float64
	// Now returns the current time; nil gives time.Now. Session expiry in
	// the state follows the state's own clock.
	Now func() time.Time
	// Beacons receives the ad beacons; nil sends none (and records none).
	Beacons *Beacons
}

// Sessions stores viewer sessions in a shared state and decides, on each
// request of a session, whether it may be served. It is safe for
// concurrent use, and several nodes sharing one state (Redis) may serve the
// requests of one session.
type Sessions struct {
	st  state.State
	opt SessionOptions
}

// NewSessions returns the sessions stored in st.
func NewSessions(st state.State, opt SessionOptions) *Sessions {
	if opt.TTL <= 0 {
		opt.TTL = DefaultSessionTTL
	}
	if opt.Tolerance == 0 {
		opt.Tolerance = DefaultTolerance
	}
	if opt.Lookahead == 0 {
		opt.Lookahead = DefaultLookahead
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Sessions{st: st, opt: opt}
}

// Session is a viewer's session: the timeline decided at its start and the
// progress so far.
type Session struct {
	// ID is 128 random bits, base32 in lower case without padding: 26
	// characters, unguessable and URL-safe.
	ID       string    `json:"id"`
	User     string    `json:"user"`
	Playlist string    `json:"playlist"`
	Created  time.Time `json:"created"`
	Viewer   Viewer    `json:"viewer"`
	Timeline Timeline  `json:"timeline"`
	// Progress has one element per timeline item.
	Progress []ItemProgress `json:"progress"`
}

// ItemProgress is what was delivered of one timeline item.
type ItemProgress struct {
	// Delivered are the spans [start, end) in seconds from the item's
	// start whose bytes were delivered by primary requests, merged and
	// sorted, within [0, the item's duration].
	Delivered [][2]float64 `json:"delivered,omitempty"`
	// FirstByte is when a first response of the item (any track) was
	// delivered completely; zero while none was.
	FirstByte time.Time `json:"first_byte,omitzero"`
	// Beacons are the events already sent, in the order sent.
	Beacons []string `json:"beacons,omitempty"`
}

// Request is one request of a session for media of timeline item Item: the
// span [Start, End) in seconds from the item's start (a segment, or the
// part of a byte range of a stitched file).
//
// Primary is true for requests that count as watching: the reference
// (video) track of a segmented stream, the audio track of an item without
// video, and byte ranges of a stitched file. Others (audio beside video)
// are checked against the ads and items before them but do not move
// progress.
type Request struct {
	Item       int
	Start, End float64
	Primary    bool
}

// Decision says whether a request may be served now.
type Decision struct {
	// Allow is true when the request may be served now.
	Allow bool
	// Wait, when not Allow and not zero, is when the request will be
	// allowed (an ad before it is still playing); the caller may wait
	// until then and Check again.
	Wait time.Time
	// Reason, when not Allow, is a sentence for the JSON error body naming
	// the item and the rule (for a Wait too: why it must wait).
	Reason string
}

// newSessionID returns a new random session id.
func newSessionID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random session id: %w", err)
	}
	return sessionIDEncoding.EncodeToString(b[:]), nil
}

// validSessionID reports whether id has the form of a session id, so that
// arbitrary strings never reach the state as keys.
func validSessionID(id string) bool {
	if len(id) != sessionIDLen {
		return false
	}
	for i := range len(id) {
		c := id[i]
		if !('a' <= c && c <= 'z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

func sessionKey(id string) string { return sessionKeyPrefix + id }

// finiteFloat reports whether f is neither NaN nor infinite.
func finiteFloat(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// validateTimeline checks a timeline given to Create.
func validateTimeline(tl *Timeline) error {
	if tl == nil || len(tl.Items) == 0 {
		return errors.New("empty timeline")
	}
	if len(tl.Items) > MaxItems {
		return fmt.Errorf("%d timeline items, at most %d", len(tl.Items), MaxItems)
	}
	for i, it := range tl.Items {
		if it.Kind != Content && it.Kind != Ad {
			return fmt.Errorf("item %d: kind %q, want %q or %q", i, it.Kind, Content, Ad)
		}
		if !finiteFloat(it.Duration) || it.Duration <= 0 {
			return fmt.Errorf("item %d: duration %v is not positive", i, it.Duration)
		}
	}
	return nil
}

// validate checks the times of r and that its item is one of n.
func (r Request) validate(n int) error {
	if r.Item < 0 || r.Item >= n {
		return fmt.Errorf("item %d out of the timeline's %d items: %w", r.Item, n, ErrBadRequest)
	}
	if !finiteFloat(r.Start) || !finiteFloat(r.End) || r.Start < 0 || r.End < r.Start {
		return fmt.Errorf("item %d: span [%v, %v) is not a span of seconds: %w", r.Item, r.Start, r.End, ErrBadRequest)
	}
	return nil
}

// Create starts a session of user's playlist for viewer v with the timeline
// tl (copied), and stores it with the TTL of the options.
func (s *Sessions) Create(ctx context.Context, user, playlist string, v Viewer, tl *Timeline) (*Session, error) {
	if err := validateTimeline(tl); err != nil {
		return nil, fmt.Errorf("playlist: creating a session of %q: %w: %w", playlist, ErrBadRequest, err)
	}
	sess := &Session{
		User:     user,
		Playlist: playlist,
		Created:  s.opt.Now().UTC(),
		Viewer:   v,
		Timeline: Timeline{Items: append([]Item(nil), tl.Items...)},
		Progress: make([]ItemProgress, len(tl.Items)),
	}
	// 128 random bits do not collide; SetNX makes sure anyway.
	for range 3 {
		id, err := newSessionID()
		if err != nil {
			return nil, fmt.Errorf("playlist: creating a session of %q: %w", playlist, err)
		}
		sess.ID = id
		data, err := json.Marshal(sess)
		if err != nil {
			return nil, fmt.Errorf("playlist: creating a session of %q: encoding: %w", playlist, err)
		}
		ok, err := s.st.SetNX(ctx, sessionKey(id), data, s.opt.TTL)
		if err != nil {
			return nil, fmt.Errorf("playlist: creating a session of %q: %w", playlist, err)
		}
		if ok {
			return sess, nil
		}
	}
	return nil, fmt.Errorf("playlist: creating a session of %q: random ids collide", playlist)
}

// Get returns the session id. An unknown, malformed or expired id gives an
// error wrapping ErrNoSession.
func (s *Sessions) Get(ctx context.Context, id string) (*Session, error) {
	if !validSessionID(id) {
		return nil, fmt.Errorf("playlist: session %q: %w", id, ErrNoSession)
	}
	data, err := s.st.Get(ctx, sessionKey(id))
	if errors.Is(err, state.ErrNotFound) {
		return nil, fmt.Errorf("playlist: session %s: %w", id, ErrNoSession)
	}
	if err != nil {
		return nil, fmt.Errorf("playlist: session %s: %w", id, err)
	}
	var sess Session
	if err := json.Unmarshal(data, &sess); err != nil {
		return nil, fmt.Errorf("playlist: session %s: decoding: %w", id, err)
	}
	if sess.ID != id || len(sess.Progress) != len(sess.Timeline.Items) {
		return nil, fmt.Errorf("playlist: session %s: corrupt: id %q, %d progress for %d items", id, sess.ID, len(sess.Progress), len(sess.Timeline.Items))
	}
	return &sess, nil
}

// Check decides whether request r of session id may be served now. It
// reads the session without locking. An unknown session gives an error
// wrapping ErrNoSession, an invalid request one wrapping ErrBadRequest.
//
// The frontier of an item is the end of its delivered span that starts at
// 0 (0 if none), covered the total of its delivered spans, and an item is
// complete when something of it was delivered and covered is at least its
// duration less 50 ms. For a request of item k:
//
//  1. Every Ad item before k must be released: complete, and its duration
//     less the Tolerance passed since its FirstByte. Not complete: refused.
//     Complete but too early: a Decision with Wait, at the latest release
//     time of those ads.
//  2. Every Content item before k whose rules forbid skipping forward
//     (NoSkipForward or NoSeek) must be complete, unless SkipAfterPercent
//     is set and covered reaches that percent of its duration: else
//     refused.
//  3. Within item k, for Primary requests only: a forward jump (Start
//     beyond the frontier plus the Lookahead) is refused under
//     NoSkipForward or NoSeek, unless SkipAfterPercent is set and covered
//     reaches it; a backward jump (End at or before the frontier less the
//     Lookahead) is refused under NoSkipBackward or NoSeek.
//  4. Items after k are not looked at.
//
// A refusal wins over a wait. Reasons name items by their position in the
// timeline, counted from 1: "the ad at position 2 (slot pre) has not been
// played (10 s of its 15 s delivered)".
func (s *Sessions) Check(ctx context.Context, id string, r Request) (Decision, error) {
	sess, err := s.Get(ctx, id)
	if err != nil {
		return Decision{}, err
	}
	if err := r.validate(len(sess.Timeline.Items)); err != nil {
		return Decision{}, fmt.Errorf("playlist: session %s: %w", id, err)
	}
	return sess.decide(r, s.opt.Now(), s.opt.Lookahead, s.opt.Tolerance), nil
}

// Delivered records that the bytes of r were sent completely (the response
// ended without error): it merges the span into the item's progress when
// r is Primary, sets the item's FirstByte if unset (any request), refreshes
// the session's TTL, and sends the beacons (for Ad items) that this
// delivery reaches, each at most once per session and item.
//
// The update is made under a per-session lock of the state, so that
// concurrent deliveries on several nodes never lose one another's update.
// Beacons are sent only once the update is stored (a failed update sends
// none), while the lock is still held, so that the beacons of a session
// are written in the order of its deliveries. An error releasing the lock
// is returned after the update was stored and its beacons sent.
func (s *Sessions) Delivered(ctx context.Context, id string, r Request) error {
	if !validSessionID(id) {
		return fmt.Errorf("playlist: session %q: %w", id, ErrNoSession)
	}
	if err := r.validate(math.MaxInt); err != nil {
		return fmt.Errorf("playlist: session %s: %w", id, err)
	}
	l, err := s.st.Lock(ctx, sessionKey(id), lockTTL)
	if err != nil {
		return fmt.Errorf("playlist: session %s: locking: %w", id, err)
	}
	beacons, err := s.update(ctx, id, r)
	if err == nil && len(beacons) > 0 && s.opt.Beacons != nil {
		// Still under the lock, so that the beacons of a session reach the
		// file in the order of its deliveries, across nodes.
		s.opt.Beacons.emit(ctx, beacons)
	}
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout)
	uerr := l.Unlock(uctx)
	cancel()
	if err != nil {
		return err
	}
	if uerr != nil {
		return fmt.Errorf("playlist: session %s: releasing the lock after recording a delivery: %w", id, uerr)
	}
	return nil
}

// update is the locked part of Delivered: it reads the session, records r
// and stores the session, all within lockTTL-lockMargin, and returns the
// beacons to send.
func (s *Sessions) update(ctx context.Context, id string, r Request) ([]Beacon, error) {
	ctx, cancel := context.WithTimeout(ctx, lockTTL-lockMargin)
	defer cancel()
	sess, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := r.validate(len(sess.Timeline.Items)); err != nil {
		return nil, fmt.Errorf("playlist: session %s: %w", id, err)
	}
	now := s.opt.Now()
	events := sess.record(r, now, s.opt.Beacons != nil)
	data, err := json.Marshal(sess)
	if err != nil {
		return nil, fmt.Errorf("playlist: session %s: encoding: %w", id, err)
	}
	if err := s.st.Set(ctx, sessionKey(id), data, s.opt.TTL); err != nil {
		return nil, fmt.Errorf("playlist: session %s: storing a delivery: %w", id, err)
	}
	if len(events) == 0 {
		return nil, nil
	}
	it := sess.Timeline.Items[r.Item]
	beacons := make([]Beacon, len(events))
	for i, ev := range events {
		beacons[i] = Beacon{
			Time:     now.UTC(),
			Event:    ev,
			Session:  sess.ID,
			User:     sess.User,
			Playlist: sess.Playlist,
			Item:     r.Item,
			Slot:     it.Slot,
			Asset:    it.Asset,
			Viewer:   sess.Viewer,
		}
	}
	return beacons, nil
}

// position names timeline item i in reasons: "the ad at position 2 (slot
// pre)", "the item at position 3"; positions count from 1.
func (s *Session) position(i int) string {
	it := s.Timeline.Items[i]
	if it.Kind == Ad {
		if it.Slot != "" {
			return fmt.Sprintf("the ad at position %d (slot %s)", i+1, it.Slot)
		}
		return fmt.Sprintf("the ad at position %d", i+1)
	}
	return fmt.Sprintf("the item at position %d", i+1)
}

// fmtSeconds formats a time in seconds for reasons.
func fmtSeconds(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", f), "0"), ".") + " s"
}
