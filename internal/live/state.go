package live

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/store"
)

// State is the live state of a stream, shared by the nodes through the
// store (StateKey): what the ingesting node's Recorder has stored so far,
// which every node turns into live playlists. The Recorder rewrites it
// (store.Put, atomic) after each init segment and fragment it stores, and
// once more when the stream has ended.
type State struct {
	User  string `json:"user"`
	Name  string `json:"name"`
	Asset string `json:"asset"` // the asset the stream is recorded as
	// Start is the wall-clock time of media time 0 (the decode time 0 of
	// every representation): when the first fragment arrived minus its
	// end's decode time. Zero until a fragment arrived.
	Start   time.Time `json:"start"`
	Updated time.Time `json:"updated"`
	// Ended is set once the stream has ended; Archived is then the id of
	// the asset it was archived as ("" when archiving failed).
	Ended    bool   `json:"ended,omitempty"`
	Archived string `json:"archived,omitempty"`
	Reps     []*Rep `json:"reps"`
}

// Rep is one representation of a live stream (its first track).
type Rep struct {
	Name      string `json:"name"`            // "streamN"
	Kind      string `json:"kind,omitempty"`  // "video" or "audio"; "" before a fragment
	Codec     string `json:"codec,omitempty"` // RFC 6381
	Width     uint32 `json:"width,omitempty"`
	Height    uint32 `json:"height,omitempty"`
	Channels  uint16 `json:"channels,omitempty"`
	Timescale uint32 `json:"timescale,omitempty"`
	// Bandwidth is the highest bit rate of a fragment, in bits/s.
	Bandwidth int64  `json:"bandwidth,omitempty"`
	Init      string `json:"init"` // the init segment's object key
	// Frags are the stored fragments, by sequence number.
	Frags []Frag `json:"frags"`
}

// Frag is a stored fragment of a representation.
type Frag struct {
	Seq  int    `json:"n"`
	Key  string `json:"k"` // object key
	Size int64  `json:"s"`
	Time int64  `json:"t"` // decode time of its first sample (tfdt), in the timescale
	Dur  int64  `json:"d"` // duration, in the timescale
}

// End is the decode time after the fragment.
func (f Frag) End() int64 { return f.Time + f.Dur }

// StateKey is the store key of the live state of user's stream name.
func StateKey(user, name string) string {
	return "users/" + user + "/live/" + name + "/state.json"
}

// rep returns the representation named name, nil if none.
func (s *State) rep(name string) *Rep {
	for _, r := range s.Reps {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// playable returns the representations with fragments, of kind k.
func (s *State) playable(k media.Kind) []*Rep {
	var out []*Rep
	for _, r := range s.Reps {
		if r.Kind == string(k) && len(r.Frags) > 0 {
			out = append(out, r)
		}
	}
	return out
}

// fragDuration is the longest fragment duration in seconds (2 when there
// is none yet).
func (s *State) fragDuration() float64 {
	d := 0.0
	for _, r := range s.Reps {
		for _, f := range r.Frags {
			d = max(d, float64(f.Dur)/float64(r.Timescale))
		}
	}
	if d <= 0 {
		return 2
	}
	return d
}

// clone copies s deeply enough for a reader while the Recorder goes on.
func (s *State) clone() *State {
	c := *s
	c.Reps = make([]*Rep, len(s.Reps))
	for i, r := range s.Reps {
		rc := *r
		rc.Frags = slices.Clone(r.Frags)
		c.Reps[i] = &rc
	}
	return &c
}

// addInit records the init segment of representation name.
func (s *State) addInit(name, key string) {
	if s.rep(name) == nil {
		s.Reps = append(s.Reps, &Rep{Name: name, Init: key})
		slices.SortFunc(s.Reps, func(a, b *Rep) int {
			return cmp.Or(cmp.Compare(len(a.Name), len(b.Name)), cmp.Compare(a.Name, b.Name))
		})
	}
}

// addFrag records fragment seq of representation name, stored under key,
// whose samples are f; now is when it arrived.
func (s *State) addFrag(name string, seq int, key string, size int64, f *media.Fragment, now time.Time) {
	r := s.rep(name)
	if r == nil || len(f.Tracks) == 0 {
		return
	}
	t := f.Tracks[0]
	if r.Kind == "" {
		r.Kind, r.Codec, r.Timescale = string(t.Kind), t.Codec, t.Timescale
		r.Width, r.Height, r.Channels = t.Width, t.Height, t.Channels
	}
	if r.Timescale == 0 {
		return
	}
	i, _ := slices.BinarySearchFunc(r.Frags, seq, func(f Frag, seq int) int { return f.Seq - seq })
	base := f.BaseTime[0]
	if base < 0 {
		base = 0
		if i > 0 {
			base = r.Frags[i-1].End() // no tfdt: after the one before
		}
	}
	fr := Frag{Seq: seq, Key: key, Size: size, Time: base, Dur: t.Duration()}
	r.Frags = slices.Insert(r.Frags, i, fr)
	if fr.Dur > 0 {
		r.Bandwidth = max(r.Bandwidth, size*8*int64(r.Timescale)/fr.Dur)
	}
	if s.Start.IsZero() {
		s.Start = now.Add(-time.Duration(float64(fr.End()) / float64(r.Timescale) * float64(time.Second))).UTC()
	}
}

// save writes s under its key.
func (s *State) save(ctx context.Context, st store.Store) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("live: encode the state of %s/%s: %w", s.User, s.Name, err)
	}
	if _, err := st.Put(ctx, StateKey(s.User, s.Name), bytes.NewReader(b)); err != nil {
		return fmt.Errorf("live: store the state of %s/%s: %w", s.User, s.Name, err)
	}
	return nil
}

// maxStateBytes bounds a stored state (days of 2 s fragments).
const maxStateBytes = 256 << 20

// LoadState reads the live state of user's stream name from st (an error
// wrapping store.ErrNotFound when the stream never started).
func LoadState(ctx context.Context, st store.Store, user, name string) (*State, error) {
	rc, err := st.Get(ctx, StateKey(user, name), 0, -1)
	if err != nil {
		return nil, fmt.Errorf("live: state of %s/%s: %w", user, name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxStateBytes))
	if err != nil {
		return nil, fmt.Errorf("live: read the state of %s/%s: %w", user, name, err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("live: decode the state of %s/%s: %w", user, name, err)
	}
	return &s, nil
}
