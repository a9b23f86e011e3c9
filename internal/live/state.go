package live

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
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
// once more when the stream has ended. A node that gets a file of a stream
// it has no Recorder for (the ingesting node restarted, or the encoder
// moved to another node) resumes the recording from it (see
// resumeRecorder) unless it has ended.
type State struct {
	User  string `json:"user"`
	Name  string `json:"name"`
	Asset string `json:"asset"` // the asset the stream is recorded as
	// Created is when the recording started (its first file): the
	// archived asset's creation time. Zero in states written before it.
	Created time.Time `json:"created,omitzero"`
	// Owner names the Recorder that writes the state (random, one per
	// Recorder): a node that resumes the stream takes it over, and the
	// Recorder of the node that had it archives nothing (ErrMoved).
	Owner string `json:"owner,omitempty"`
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
	// Epochs are the encoder's sessions after the first (an encoder that
	// reconnects sends new init segments and restarts its numbering and
	// decode times): epoch 0, the first, is implied.
	Epochs []Epoch `json:"epochs,omitempty"`
}

// Epoch is one session of the encoder on the stream's timeline.
type Epoch struct {
	N int `json:"n"`
	// Start is where the epoch starts on the stream's timeline, in
	// seconds: the latest end of a fragment when it began. Each
	// representation's first fragment of the epoch starts there.
	Start float64 `json:"start"`
}

// Rep is one representation of a live stream: its first track, or, in a
// muxed representation (several tracks in each fragment, as ffmpeg's HLS
// push sends them), its video track, Codecs listing every track's codec.
// Timing (Timescale, Frags) is always the first track's.
type Rep struct {
	Name      string `json:"name"`            // "streamN"
	Kind      string `json:"kind,omitempty"`  // "video" or "audio"; "" before a fragment
	Codec     string `json:"codec,omitempty"` // RFC 6381
	Width     uint32 `json:"width,omitempty"`
	Height    uint32 `json:"height,omitempty"`
	Channels  uint16 `json:"channels,omitempty"`
	Timescale uint32 `json:"timescale,omitempty"`
	// Codecs, in a muxed representation only, are the codecs of all its
	// tracks (RFC 6381), in track order.
	Codecs []string `json:"codecs,omitempty"`
	// Bandwidth is the highest bit rate of a fragment, in bits/s.
	Bandwidth int64  `json:"bandwidth,omitempty"`
	Init      string `json:"init"` // the init segment's object key (of its first epoch)
	// Frags are the stored fragments, by epoch then sequence number.
	Frags []Frag `json:"frags"`
	// Epochs are the representation's epochs, in order (nil in states
	// written before epochs: epoch 0 of Init and Timescale).
	Epochs []RepEpoch `json:"epochs,omitempty"`
}

// RepEpoch is a representation in one epoch: its init segment and where
// its fragments lie on the stream's timeline and in the playlists.
type RepEpoch struct {
	Epoch int    `json:"e"`
	Init  string `json:"init"` // the init segment's object key
	// Timescale is the epoch's timescale; 0 until its first fragment,
	// which sets the fields below.
	Timescale uint32 `json:"ts,omitempty"`
	// Offset is added to a fragment's decode time (tfdt, in Timescale)
	// to place it on the stream's timeline: 0 in epoch 0, else such that
	// the epoch's first fragment starts at the Epoch's Start.
	Offset int64 `json:"o,omitempty"`
	// The playlist number (HLS media sequence number, DASH $Number$) of
	// fragment seq is Base+seq; playlists list the epoch from its first
	// fragment to arrive, First, on (Base+First follows the previous
	// epoch's last number).
	Base  int `json:"base,omitempty"`
	First int `json:"first,omitempty"`
}

// Frag is a stored fragment of a representation.
type Frag struct {
	Epoch int    `json:"e,omitempty"`
	Seq   int    `json:"n"`
	Key   string `json:"k"` // object key
	Size  int64  `json:"s"`
	Time  int64  `json:"t"` // decode time of its first sample (tfdt), in its epoch's timescale
	Dur   int64  `json:"d"` // duration, in its epoch's timescale
}

// End is the decode time after the fragment.
func (f Frag) End() int64 { return f.Time + f.Dur }

// StateKey is the store key of the live state of user's stream name.
func StateKey(user, name string) string {
	return "users/" + user + "/live/" + name + "/state.json"
}

// epochs returns r's epochs (epoch 0 alone for a state written before
// epochs).
func (r *Rep) epochs() []RepEpoch {
	if len(r.Epochs) == 0 {
		return []RepEpoch{{Init: r.Init, Timescale: r.Timescale}}
	}
	return r.Epochs
}

// epoch returns r's epoch n, nil if none.
func (r *Rep) epoch(n int) *RepEpoch {
	if len(r.Epochs) == 0 {
		if n != 0 {
			return nil
		}
		return &RepEpoch{Init: r.Init, Timescale: r.Timescale}
	}
	for i := range r.Epochs {
		if r.Epochs[i].Epoch == n {
			return &r.Epochs[i]
		}
	}
	return nil
}

// epochStart is where epoch n starts on the stream's timeline, in
// seconds.
func (s *State) epochStart(n int) float64 {
	for _, e := range s.Epochs {
		if e.N == n {
			return e.Start
		}
	}
	return 0
}

// cmpFrag orders fragments by epoch, then sequence number.
func cmpFrag(f Frag, epoch, seq int) int {
	return cmp.Or(cmp.Compare(f.Epoch, epoch), cmp.Compare(f.Seq, seq))
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

// Muxed reports whether r carries several tracks in each fragment.
func (r *Rep) Muxed() bool { return len(r.Codecs) > 1 }

// playable returns the single-track representations with fragments, of
// kind k.
func (s *State) playable(k media.Kind) []*Rep {
	var out []*Rep
	for _, r := range s.Reps {
		if r.Kind == string(k) && !r.Muxed() && len(r.Frags) > 0 {
			out = append(out, r)
		}
	}
	return out
}

// playableMuxed returns the muxed representations with fragments.
func (s *State) playableMuxed() []*Rep {
	var out []*Rep
	for _, r := range s.Reps {
		if r.Muxed() && len(r.Frags) > 0 {
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
		for _, e := range entries(r) {
			d = max(d, e.seconds())
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
		rc.Epochs = slices.Clone(r.Epochs)
		rc.Codecs = slices.Clone(r.Codecs)
		c.Reps[i] = &rc
	}
	c.Epochs = slices.Clone(s.Epochs)
	return &c
}

// addEpoch records the start of epoch n at start seconds of the stream's
// timeline.
func (s *State) addEpoch(n int, start float64) {
	if n > 0 {
		s.Epochs = append(s.Epochs, Epoch{N: n, Start: start})
	}
}

// addInit records the init segment of representation name in epoch.
func (s *State) addInit(name string, epoch int, key string) {
	r := s.rep(name)
	if r == nil {
		r = &Rep{Name: name, Init: key}
		s.Reps = append(s.Reps, r)
		slices.SortFunc(s.Reps, func(a, b *Rep) int {
			return cmp.Or(cmp.Compare(len(a.Name), len(b.Name)), cmp.Compare(a.Name, b.Name))
		})
	}
	r.Epochs = append(r.Epochs, RepEpoch{Epoch: epoch, Init: key})
}

// addFrag records fragment seq of epoch of representation name, stored
// under key, whose samples are f; place is where the Recorder put the
// representation's epoch (see repPlace); now is when it arrived.
func (s *State) addFrag(name string, epoch, seq int, key string, size int64, f *media.Fragment, place repPlace, now time.Time) {
	r := s.rep(name)
	if r == nil || len(f.Tracks) == 0 {
		return
	}
	re := r.epoch(epoch)
	t := f.Tracks[0]
	if r.Kind == "" {
		r.Kind, r.Codec, r.Timescale = string(t.Kind), t.Codec, t.Timescale
		r.Width, r.Height, r.Channels = t.Width, t.Height, t.Channels
		if len(f.Tracks) > 1 {
			// Muxed: described by its video track, if any.
			for _, ft := range f.Tracks {
				r.Codecs = append(r.Codecs, ft.Codec)
				if ft.Kind == media.KindVideo && r.Kind != string(media.KindVideo) {
					r.Kind, r.Codec, r.Width, r.Height = string(ft.Kind), ft.Codec, ft.Width, ft.Height
				}
				if ft.Kind == media.KindAudio && r.Channels == 0 {
					r.Channels = ft.Channels
				}
			}
		}
	}
	if re == nil || t.Timescale == 0 {
		return
	}
	if re.Timescale == 0 {
		re.Timescale, re.Offset, re.Base, re.First = t.Timescale, place.offsets[0], place.base, place.first
	}
	i, _ := slices.BinarySearchFunc(r.Frags, [2]int{epoch, seq}, func(f Frag, k [2]int) int { return cmpFrag(f, k[0], k[1]) })
	base := f.BaseTime[0]
	if base < 0 {
		base = 0
		if i > 0 && r.Frags[i-1].Epoch == epoch {
			base = r.Frags[i-1].End() // no tfdt: after the one before
		}
	}
	fr := Frag{Epoch: epoch, Seq: seq, Key: key, Size: size, Time: base, Dur: t.Duration()}
	r.Frags = slices.Insert(r.Frags, i, fr)
	if fr.Dur > 0 {
		r.Bandwidth = max(r.Bandwidth, size*8*int64(re.Timescale)/fr.Dur)
	}
	if s.Start.IsZero() {
		s.Start = now.Add(-time.Duration(float64(fr.End()+re.Offset) / float64(re.Timescale) * float64(time.Second))).UTC()
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
// wrapping store.ErrNotFound when the stream never started, errBadState
// when it does not decode).
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
		return nil, fmt.Errorf("live: decode the state of %s/%s: %w: %w", user, name, errBadState, err)
	}
	return &s, nil
}

// errBadState is a stored state that cannot be read back (LoadState) or
// resumed (resumeRecorder).
var errBadState = errors.New("invalid live state")
