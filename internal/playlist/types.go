// Package playlist holds server-side playlists: ordered entries of assets
// (whole or clipped), nested playlists and ad slots whose ads are chosen per
// viewer by targeting rules; the viewer sessions that record those choices;
// and the enforcement of each entry's rules (no seek, no skipping, ads
// watched before the content after them) on every request of a session,
// with server-side ad beacons.
//
// A Playlist is what a publisher creates through the API (JSON). Starting
// playback resolves it for one Viewer into a Timeline: a flat list of Items
// (content parts and chosen ads), with mid-roll slots placed at segment
// boundaries. The Session stores that timeline and the viewer's progress in
// the shared state (memory on one node, Redis across nodes).
package playlist

import "time"

// Limits of playlist definitions.
const (
	MaxEntries = 200 // entries of one playlist
	MaxDepth   = 4   // nesting of playlists in playlists (a top playlist is depth 1)
	MaxPools   = 50  // pools of one ad slot
	MaxAds     = 100 // ad assets of one pool (or of an ad slot's default)
	MaxItems   = 1000
)

// Playlist is a playlist definition, as created through the API.
type Playlist struct {
	ID      string    `json:"id"`
	User    string    `json:"user"`
	Title   string    `json:"title,omitempty"`
	Created time.Time `json:"created"`
	Entries []Entry   `json:"entries"`
}

// Entry is one entry of a playlist: exactly one of Asset, Playlist or Ad.
type Entry struct {
	// Asset is the id of an asset of the playlist's user; Start and End
	// (seconds, End 0 = to the end) clip it.
	Asset string  `json:"asset,omitempty"`
	Start float64 `json:"start,omitempty"`
	End   float64 `json:"end,omitempty"`
	// Playlist is the id of another playlist of the same user, played in
	// place (its own ad slots included).
	Playlist string `json:"playlist,omitempty"`
	// Ad is an ad slot.
	Ad *AdSlot `json:"ad,omitempty"`
	// Rules restrict what the viewer may do during this entry (for an
	// asset or a nested playlist: each of its items; for an ad slot: the
	// ads chosen, which default to DefaultAdRules).
	Rules *Rules `json:"rules,omitempty"`
}

// Ad slot positions.
const (
	PreRoll  = "pre"  // played where it stands in the entries
	MidRoll  = "mid"  // played At seconds into the program (see AdSlot.At)
	PostRoll = "post" // played where it stands in the entries
)

// AdSlot is a place for ads, filled per viewer.
type AdSlot struct {
	// Position is PreRoll, MidRoll or PostRoll.
	Position string `json:"position"`
	// At is, for a mid-roll, the time in seconds on the playlist's
	// program timeline (its content items only, ads left out, nested
	// playlists flattened) where the slot goes; the content item playing
	// then is split at its first segment boundary at or after that time.
	At float64 `json:"at,omitempty"`
	// Count is the number of ads played in the slot (default 1), chosen
	// without repetition while the pool has enough.
	Count int `json:"count,omitempty"`
	// Pools are tried in order; the first whose targeting matches the
	// viewer supplies the ads. Default supplies them when none matches;
	// an empty Default leaves the slot empty for such viewers.
	Pools   []Pool  `json:"pools,omitempty"`
	Default []AdRef `json:"default,omitempty"`
}

// Pool is a set of ads for viewers matching a targeting rule.
type Pool struct {
	When Targeting `json:"when"`
	Ads  []AdRef   `json:"ads"`
}

// AdRef names an ad: an asset of the playlist's user, optionally clipped.
type AdRef struct {
	Asset string  `json:"asset"`
	Start float64 `json:"start,omitempty"`
	End   float64 `json:"end,omitempty"`
}

// Targeting matches viewers: every field given must match (an empty list
// or map matches everyone). Lists match case-insensitively.
type Targeting struct {
	Country  []string `json:"country,omitempty"`  // ISO 3166-1 alpha-2
	Language []string `json:"language,omitempty"` // primary language subtag, "de"
	Device   []string `json:"device,omitempty"`   // "tv", "mobile", "desktop", ...
	// Profile maps a profile field to the values that match.
	Profile map[string][]string `json:"profile,omitempty"`
	// Hours, if set, is the time of day [From, To) in UTC hours (0-24);
	// From > To wraps around midnight.
	Hours *HourRange `json:"hours,omitempty"`
}

// HourRange is a span of the day in UTC hours.
type HourRange struct {
	From int `json:"from"`
	To   int `json:"to"`
}

// Rules restrict a viewer during an entry. The zero value allows
// everything.
type Rules struct {
	NoSeek           bool `json:"no_seek,omitempty"`            // neither forward nor backward: only in order
	NoSkipForward    bool `json:"no_skip_forward,omitempty"`    // no jump ahead, nor past the entry before it is played
	NoSkipBackward   bool `json:"no_skip_backward,omitempty"`   // no going back to what was played
	SkipAfterPercent int  `json:"skip_after_percent,omitempty"` // 1-100: skipping forward allowed once that much was delivered
}

// DefaultAdRules apply to ads whose slot entry has no Rules: an ad must be
// watched through, in order.
var DefaultAdRules = Rules{NoSkipForward: true}

// Viewer describes the viewer a session is for: what targeting matches.
type Viewer struct {
	Country  string            `json:"country,omitempty"`
	Language string            `json:"language,omitempty"`
	Device   string            `json:"device,omitempty"`
	Profile  map[string]string `json:"profile,omitempty"`
	// Time is the time of the session's start (for Targeting.Hours).
	Time time.Time `json:"time"`
}

// Item kinds.
const (
	Content = "content"
	Ad      = "ad"
)

// Item is one part of a resolved timeline: a clip of an asset.
type Item struct {
	Kind  string `json:"kind"` // Content or Ad
	Asset string `json:"asset"`
	// Start and End clip the asset, in seconds (End 0: to its end); for
	// content split by a mid-roll they are segment boundaries of the
	// asset.
	Start float64 `json:"start,omitempty"`
	End   float64 `json:"end,omitempty"`
	// Duration is the item's duration in seconds.
	Duration float64 `json:"duration"`
	Rules    Rules   `json:"rules"`
	// Slot identifies the ad slot of an ad ("pre", "mid@300", "post", with
	// the entry path for nested playlists), for beacons.
	Slot string `json:"slot,omitempty"`
}

// Timeline is a playlist resolved for one viewer.
type Timeline struct {
	Items []Item `json:"items"`
}
