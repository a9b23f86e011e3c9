package live

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/store"
)

// Errors of a Recorder, which callers map to statuses.
var (
	// ErrConflict: different bytes for a fragment already stored, or a
	// fragment whose tracks differ in kind or timescale from those of
	// the representation's earlier epochs (409).
	ErrConflict = errors.New("conflicting data")
	// ErrFinished: the stream was archived already (409).
	ErrFinished = errors.New("stream finished")
	// ErrNoInit: a fragment of a representation whose init segment has
	// not arrived (409: the encoder is to send it first).
	ErrNoInit = errors.New("no init segment")
	// ErrBadRep: a representation name or sequence number that cannot
	// name an object (400).
	ErrBadRep = errors.New("invalid representation")
	// ErrNothing: the stream ended without a media fragment; nothing is
	// archived.
	ErrNothing = errors.New("no media received")
	// ErrMoved: the stream went on on another node, which resumed it
	// (the encoder reconnected there): this Recorder archives nothing,
	// the other one will.
	ErrMoved = errors.New("stream resumed by another node")
)

// Recorder records one live stream of a user as the originals of a
// reserved asset, and archives it as an ordinary asset when it finishes.
// Each init segment and media fragment is stored as an immutable object
// when it arrives:
//
//	users/{user}/assets/{id}/src/{rep}-e{epoch}-init
//	users/{user}/assets/{id}/src/{rep}-e{epoch}-{seq:08d}
//
// An epoch is a session of the encoder: an encoder that reconnects sends
// its init segments again and restarts its numbering and decode times,
// which starts a new epoch (see AddInit). Each epoch continues the
// stream's timeline where the previous one ended, with a discontinuity
// in the live playlists; the archived asset is one.
//
// After each, and once more when the stream has ended, it stores the
// stream's live State under StateKey, for live playback from any node,
// and for a node that resumes the recording (resumeRecorder) when the
// encoder goes on pushing to it after the ingesting node went away.
//
// A Recorder is safe for concurrent use.
type Recorder struct {
	lib     *library.Library
	st      store.Store
	log     *slog.Logger
	user    string
	name    string
	id, rev string
	started time.Time

	mu       sync.Mutex
	changed  chan struct{} // closed (and replaced) when a fragment is added
	finished bool
	epochs   []*epoch                          // in order; the last is the current one
	frags    map[string]map[fragID]*storedFrag // by representation, then epoch and sequence number
	state    *State                            // the live state, saved after each change
}

// epoch is one session of the encoder (see Recorder).
type epoch struct {
	n     int
	start float64             // on the stream's timeline, in seconds
	inits map[string]*initSeg // by representation
	reps  map[string]repPlace // by representation, from its first fragment
}

// repPlace is where a representation's fragments of one epoch go.
type repPlace struct {
	// offsets, per track, are added to a fragment's decode time (tfdt)
	// to place it on the stream's timeline: 0 in epoch 0, else such
	// that the epoch's first fragment of the representation starts at
	// the epoch's start, rescaled to the track's timescale.
	offsets []int64
	// base: the playlist number of fragment seq is base+seq; first: the
	// first fragment of the epoch to arrive (see RepEpoch).
	base, first int
}

// fragID names a fragment of a representation.
type fragID struct{ epoch, seq int }

// placeEpoch places a representation's fragments of an epoch that starts
// at start seconds (epoch n), from the decode times (tfdt, -1 for none)
// and timescales of the tracks of its first fragment, seq, and the last
// playlist number of its earlier epochs (0 for none).
func placeEpoch(n int, start float64, base []int64, timescales []uint32, seq, lastNum int) repPlace {
	p := repPlace{offsets: make([]int64, len(base))}
	if n == 0 {
		return p
	}
	for j, t := range base {
		p.offsets[j] = int64(math.Round(start*float64(timescales[j]))) - max(t, 0)
	}
	p.base, p.first = lastNum+1-seq, seq
	return p
}

// initSeg is a representation's init segment.
type initSeg struct {
	b    []byte
	size int64
	key  string
}

// storedFrag is a stored media fragment and its samples.
type storedFrag struct {
	rep   string
	epoch int
	seq   int
	key   string
	size  int64
	sum   [sha256.Size]byte
	f     *media.Fragment
}

// NewRecorder reserves an asset id derived from the stream name (see
// library.Reserve) and returns the Recorder of user's stream.
func NewRecorder(ctx context.Context, lib *library.Library, log *slog.Logger, user, name string) (*Recorder, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	id, rev, err := lib.Reserve(ctx, user, name)
	if err != nil {
		return nil, fmt.Errorf("live: %s/%s: %w", user, name, err)
	}
	now := time.Now().UTC()
	return &Recorder{lib: lib, st: lib.Store(), log: log, user: user, name: name, id: id, rev: rev,
		started: now, changed: make(chan struct{}),
		epochs: []*epoch{{inits: map[string]*initSeg{}, reps: map[string]repPlace{}}},
		frags:  map[string]map[fragID]*storedFrag{},
		state:  &State{User: user, Name: name, Asset: id, Created: now, Owner: randomID()}}, nil
}

// resumeParallel bounds the stored fragments that resumeRecorder reads at
// once; maxStoredBytes bounds one object it reads (more than any
// Options.MaxFragmentBytes in use).
const (
	resumeParallel = 8
	maxStoredBytes = 1 << 30
)

// storedFragRE matches the name of a stored fragment under an asset's
// src/ (see Recorder): representation, epoch, sequence number.
var storedFragRE = regexp.MustCompile(`^(.+)-e(\d{1,8})-(\d{8})$`)

// errLostInit: a fragment whose epoch's init segment the store lost.
var errLostInit = errors.New("init segment not found")

// resumeRecorder rebuilds the Recorder of a stream from its live state
// (LoadState; one that has not ended) on a process that has no Recorder
// for it: the ingesting node restarted, or the encoder went on pushing to
// another node. The Recorder continues the state's asset id (its stored
// objects keep it taken, see library.Reserve) with a new revision, and
// the state's epochs, the last one current: an encoder that keeps its
// numbering continues it, one that sends its init segments again starts a
// new one (see AddInit). Every init segment and fragment is read back
// from the store (at most resumeParallel fragments at once, under ctx)
// and parsed as AddFragment did, so that a fragment pushed again is
// recognized (the same bytes accepted once, others ErrConflict) and
// Finish archives the same asset as without the restart.
//
// A fragment stored under the asset but missing from the state (the node
// went between storing it and storing the state) is taken too, as
// AddFragment would have, when the state has its epoch's init segment. A
// fragment of the state that the store lost (or that no longer parses)
// is dropped from the state with a warning. The state is stored again at
// once, with the new Recorder as its Owner: the Recorder of a node that
// had the stream and stayed up archives nothing (see Finish). Errors
// wrap errBadState for a state that cannot be resumed.
func resumeRecorder(ctx context.Context, lib *library.Library, log *slog.Logger, state *State) (*Recorder, error) {
	t0 := time.Now()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	user, name, id := state.User, state.Name, state.Asset
	if library.CheckUser(user) != nil || CheckName(name) != nil || !library.ValidName(id) {
		return nil, fmt.Errorf("live: %q/%q: asset %q: %w", user, name, id, errBadState)
	}
	started := state.Created
	if started.IsZero() {
		started = state.Start // a state written before Created
	}
	if started.IsZero() {
		started = t0.UTC()
	}
	r := &Recorder{lib: lib, st: lib.Store(), log: log, user: user, name: name, id: id, rev: randomID(),
		started: started, changed: make(chan struct{}),
		frags: map[string]map[fragID]*storedFrag{}, state: state}
	state.Owner = randomID()
	bad := func(format string, a ...any) error {
		return fmt.Errorf("live: resume %s/%s: %s: %w", user, name, fmt.Sprintf(format, a...), errBadState)
	}

	// The epochs: 0, then one per State.Epochs.
	last := len(state.Epochs)
	for _, e := range state.Epochs {
		if e.N < 1 || e.N > last {
			return nil, bad("epoch %d of %d", e.N, last+1)
		}
	}
	r.epochs = make([]*epoch, last+1)
	for n := range r.epochs {
		r.epochs[n] = &epoch{n: n, start: state.epochStart(n), inits: map[string]*initSeg{}, reps: map[string]repPlace{}}
	}
	for _, rep := range state.Reps {
		if err := checkRep(rep.Name); err != nil {
			return nil, bad("%v", err)
		}
		if len(rep.Epochs) == 0 {
			rep.Epochs = rep.epochs() // a state written before epochs: epoch 0
		}
		for _, re := range rep.Epochs {
			if re.Epoch < 0 || re.Epoch > last {
				return nil, bad("%s in epoch %d of %d", rep.Name, re.Epoch, last+1)
			}
			b, err := readObject(ctx, r.st, re.Init, maxStoredBytes)
			if errors.Is(err, store.ErrNotFound) {
				log.Error("live stream resumed without an init segment, lost from the store", "user", user, "stream", name, "asset", id,
					"rep", rep.Name, "epoch", re.Epoch, "key", re.Init)
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("live: resume %s/%s: init segment of %s: %w", user, name, rep.Name, err)
			}
			r.epochs[re.Epoch].inits[rep.Name] = &initSeg{b: b, size: int64(len(b)), key: re.Init}
		}
		for _, f := range rep.Frags {
			if f.Epoch < 0 || f.Epoch > last {
				return nil, bad("fragment %d of %s in epoch %d of %d", f.Seq, rep.Name, f.Epoch, last+1)
			}
		}
	}

	// The fragments: those of the state, then those stored but not in it.
	var loads []*fragLoad
	listed := map[string]bool{}
	for _, rep := range state.Reps {
		for _, f := range rep.Frags {
			loads = append(loads, &fragLoad{rep: rep.Name, epoch: f.Epoch, seq: f.Seq, key: f.Key, listed: true})
			listed[f.Key] = true
		}
	}
	infos, err := r.st.List(ctx, r.key(""))
	if err != nil {
		return nil, fmt.Errorf("live: resume %s/%s: %w", user, name, err)
	}
	skipped := 0
	for _, in := range infos {
		m := storedFragRE.FindStringSubmatch(strings.TrimPrefix(in.Key, r.key("")))
		if m == nil || listed[in.Key] {
			continue
		}
		n, _ := strconv.Atoi(m[2]) // at most 8 digits
		seq, _ := strconv.Atoi(m[3])
		if n > last || r.epochs[n].inits[m[1]] == nil || in.Key != fragmentKey(user, id, m[1], n, seq) {
			skipped++ // of an epoch the state does not have: left to jitstream gc
			continue
		}
		loads = append(loads, &fragLoad{rep: m[1], epoch: n, seq: seq, key: in.Key})
	}
	if err := r.loadFrags(ctx, loads); err != nil {
		return nil, fmt.Errorf("live: resume %s/%s: %w", user, name, err)
	}

	// The state's fragments, placed as their epochs were; then the others
	// in order, placed as AddFragment would have.
	lost := map[string]bool{}
	var unlisted []*fragLoad
	byRepEpoch := map[string]map[int][]*fragLoad{}
	for _, l := range loads {
		switch {
		case l.err != nil:
			log.Warn("live stream resumed without a stored fragment", "user", user, "stream", name, "asset", id, "key", l.key, "err", l.err)
			lost[l.key] = true
		case !l.listed:
			unlisted = append(unlisted, l)
		default:
			if byRepEpoch[l.rep] == nil {
				byRepEpoch[l.rep] = map[int][]*fragLoad{}
			}
			byRepEpoch[l.rep][l.epoch] = append(byRepEpoch[l.rep][l.epoch], l)
		}
	}
	for _, rep := range state.Reps {
		for n, ls := range byRepEpoch[rep.Name] {
			re := rep.epoch(n)
			// placeEpoch from the epoch's first fragment to arrive.
			ref := slices.MinFunc(ls, func(a, b *fragLoad) int { return cmp.Compare(a.seq, b.seq) })
			for _, l := range ls {
				if re != nil && l.seq == re.First {
					ref = l
				}
			}
			base, ts := fragTiming(ref.f)
			place := placeEpoch(n, r.epochs[n].start, base, ts, ref.seq, 0)
			if re != nil {
				place.base, place.first = re.Base, re.First
				if re.Timescale != 0 && len(place.offsets) > 0 {
					place.offsets[0] = re.Offset // as the playlists have it
				}
			}
			r.epochs[n].reps[rep.Name] = place
			for _, l := range ls {
				r.addStored(l)
			}
		}
	}
	slices.SortFunc(unlisted, func(a, b *fragLoad) int {
		return cmp.Or(cmp.Compare(a.epoch, b.epoch), cmp.Compare(a.seq, b.seq), cmp.Compare(a.rep, b.rep))
	})
	for _, l := range unlisted {
		if err := r.checkTracks(l.rep, l.f); err != nil {
			log.Warn("live stream resumed without a stored fragment", "user", user, "stream", name, "asset", id, "key", l.key, "err", err)
			continue
		}
		e := r.epochs[l.epoch]
		place, placed := e.reps[l.rep]
		if !placed {
			base, ts := fragTiming(l.f)
			place = placeEpoch(l.epoch, e.start, base, ts, l.seq, r.lastNum(l.rep))
			e.reps[l.rep] = place
		}
		r.addStored(l)
		r.state.addFrag(l.rep, l.epoch, l.seq, l.key, l.size, l.f, place, time.Now())
	}
	for _, rep := range state.Reps {
		rep.Frags = slices.DeleteFunc(rep.Frags, func(f Frag) bool { return lost[f.Key] })
	}
	// Stored now, with its new owner: a Recorder of the stream still on
	// another node (the encoder moved, that node stayed up) no longer
	// archives it (see Finish).
	r.mu.Lock()
	r.saveState(ctx)
	r.mu.Unlock()
	n := 0
	for _, fs := range r.frags {
		n += len(fs)
	}
	log.Info("live stream resumed", "user", user, "stream", name, "asset", id, "epochs", len(r.epochs),
		"fragments", n, "unlisted", len(unlisted), "lost", len(lost), "skipped", skipped, "took", time.Since(t0).Round(time.Millisecond))
	return r, nil
}

// fragLoad is a stored fragment that resumeRecorder reads back.
type fragLoad struct {
	rep        string
	epoch, seq int
	key        string
	listed     bool // in the state

	// Set by load.
	size int64
	sum  [sha256.Size]byte
	f    *media.Fragment
	err  error // one that loses the fragment (lost, malformed)
}

// loadFrags reads and parses the fragments of ls, at most resumeParallel
// at once, each with its epoch's init segment. An error loses the
// fragment (fragLoad.err) when the store lost it or it no longer parses;
// any other error (the store failing, ctx done) is returned.
func (r *Recorder) loadFrags(ctx context.Context, ls []*fragLoad) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		fatal error
	)
	sem := make(chan struct{}, resumeParallel)
loop:
	for _, l := range ls {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		in := r.epochs[l.epoch].inits[l.rep]
		wg.Go(func() {
			defer func() { <-sem }()
			err := l.load(ctx, r.st, in)
			if err != nil {
				mu.Lock()
				if fatal == nil {
					fatal = fmt.Errorf("fragment %s: %w", l.key, err)
				}
				mu.Unlock()
				cancel()
			}
		})
	}
	wg.Wait()
	if fatal != nil {
		return fatal
	}
	return ctx.Err()
}

// load reads the fragment and parses it with in, its init segment (nil
// when lost). It returns the errors that do not lose the fragment.
func (l *fragLoad) load(ctx context.Context, st store.Store, in *initSeg) error {
	if in == nil {
		l.err = errLostInit
		return nil
	}
	b, err := readObject(ctx, st, l.key, maxStoredBytes)
	if errors.Is(err, store.ErrNotFound) {
		l.err = err
		return nil
	}
	if err != nil {
		return err
	}
	f, err := media.FragmentSamples(ctx, in.b, b)
	if errors.Is(err, media.ErrInvalid) || errors.Is(err, media.ErrUnsupported) {
		l.err = err
		return nil
	}
	if err != nil {
		return err
	}
	l.size, l.sum, l.f = int64(len(b)), sha256.Sum256(b), f
	return nil
}

// addStored adds a fragment read back by resumeRecorder.
func (r *Recorder) addStored(l *fragLoad) {
	if r.frags[l.rep] == nil {
		r.frags[l.rep] = map[fragID]*storedFrag{}
	}
	r.frags[l.rep][fragID{l.epoch, l.seq}] = &storedFrag{rep: l.rep, epoch: l.epoch, seq: l.seq, key: l.key, size: l.size, sum: l.sum, f: l.f}
}

// fragTiming returns the decode time (tfdt, -1 for none) and timescale of
// each track of f, for placeEpoch.
func fragTiming(f *media.Fragment) ([]int64, []uint32) {
	base := make([]int64, len(f.Tracks))
	ts := make([]uint32, len(f.Tracks))
	for j, t := range f.Tracks {
		base[j], ts[j] = f.BaseTime[j], t.Timescale
	}
	return base, ts
}

// randomID returns a random name: a State's Owner, or the revision of a
// resumed recording's asset (made as library.Reserve makes them; the
// asset's index is stored under it when archived, so no two Recorders of
// a stream commit the same revision).
func randomID() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b) // never fails
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// State returns a copy of the stream's live state.
func (r *Recorder) State() *State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state.clone()
}

// saveState stores the live state (with r.mu held, so that states are
// stored in order). A failure is logged: the next change stores it again.
func (r *Recorder) saveState(ctx context.Context) {
	r.state.Updated = time.Now().UTC()
	if err := r.state.save(ctx, r.st); err != nil {
		r.log.Warn("live state not stored", "user", r.user, "stream", r.name, "asset", r.id, "err", err)
	}
}

// ID is the id of the asset the stream is recorded as.
func (r *Recorder) ID() string { return r.id }

func (r *Recorder) key(suffix string) string {
	return "users/" + r.user + "/assets/" + r.id + "/src/" + suffix
}

// fragmentKey is the object key of fragment seq of epoch of
// representation rep of user's asset id.
func fragmentKey(user, id, rep string, epoch, seq int) string {
	return fmt.Sprintf("users/%s/assets/%s/src/%s-e%d-%08d", user, id, rep, epoch, seq)
}

// current is the current epoch.
func (r *Recorder) current() *epoch { return r.epochs[len(r.epochs)-1] }

// hasFrags reports whether representation rep has a fragment in epoch n.
func (r *Recorder) hasFrags(rep string, n int) bool {
	_, ok := r.epochs[n].reps[rep]
	return ok
}

// streamEnd is the latest end of a fragment on the stream's timeline, in
// seconds (0 before any).
func (r *Recorder) streamEnd() float64 {
	end := 0.0
	for rep, fs := range r.frags {
		for id, f := range fs {
			p := r.epochs[id.epoch].reps[rep]
			for j, t := range f.f.Tracks {
				if t.Timescale == 0 || t.Samples.Len() == 0 {
					continue
				}
				end = max(end, float64(f.base(j)+p.offsets[j]+t.Duration())/float64(t.Timescale))
			}
		}
	}
	return end
}

// checkRep validates a representation name: a store key element.
func checkRep(rep string) error {
	if !library.ValidName(rep) || len(rep) > 32 {
		return fmt.Errorf("%w: %q", ErrBadRep, rep)
	}
	return nil
}

// AddInit stores the init segment of representation rep. An init segment
// that differs from the one of the current epoch, or that arrives after
// fragments of rep in the current epoch (an encoder that reconnected with
// the same settings), starts a new epoch. The same bytes again before a
// fragment of rep, or the bytes of an earlier epoch's init segment (a late
// retry), are accepted and not stored twice.
func (r *Recorder) AddInit(ctx context.Context, rep string, b []byte) error {
	if err := checkRep(rep); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return fmt.Errorf("live: %s/%s: %w", r.user, r.name, ErrFinished)
	}
	cur := r.current()
	if have := cur.inits[rep]; have != nil {
		same := bytes.Equal(have.b, b)
		if same && !r.hasFrags(rep, cur.n) {
			return nil // a retry
		}
		if !same && slices.ContainsFunc(r.epochs[:cur.n], func(e *epoch) bool { return e.inits[rep] != nil && bytes.Equal(e.inits[rep].b, b) }) {
			return nil // a late retry of an earlier epoch's
		}
		// The encoder reconnected: a new epoch, from the stream's end.
		cur = &epoch{n: cur.n + 1, start: r.streamEnd(), inits: map[string]*initSeg{}, reps: map[string]repPlace{}}
	}
	key := r.key(fmt.Sprintf("%s-e%d-init", rep, cur.n))
	info, err := r.st.Put(ctx, key, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("live: store init segment of %s: %w", rep, err)
	}
	if cur != r.current() {
		r.epochs = append(r.epochs, cur)
		r.state.addEpoch(cur.n, cur.start)
		r.log.Info("live stream: encoder reconnected, new epoch", "user", r.user, "stream", r.name, "asset", r.id,
			"epoch", cur.n, "start", cur.start, "rep", rep)
	}
	cur.inits[rep] = &initSeg{b: bytes.Clone(b), size: info.Size, key: key}
	r.state.addInit(rep, cur.n, key)
	r.saveState(ctx)
	return nil
}

// AddFragment reads media fragment seq of representation rep of the
// current epoch with the representation's init segment of that epoch
// (ErrNoInit without one; errors wrapping media.ErrInvalid for a
// malformed fragment) and stores it. The same bytes again are accepted
// and not stored twice; other bytes for the same seq are ErrConflict, as
// are tracks that differ in number, kind or timescale from the
// representation's in earlier epochs.
func (r *Recorder) AddFragment(ctx context.Context, rep string, seq int, b []byte) error {
	if err := checkRep(rep); err != nil {
		return err
	}
	if seq < 0 || seq > 99999999 {
		return fmt.Errorf("%w: sequence number %d", ErrBadRep, seq)
	}
	sum := sha256.Sum256(b)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return fmt.Errorf("live: %s/%s: %w", r.user, r.name, ErrFinished)
	}
	cur := r.current()
	id := fragID{cur.n, seq}
	if have := r.frags[rep][id]; have != nil {
		if have.sum == sum && have.size == int64(len(b)) {
			return nil
		}
		return fmt.Errorf("live: %s/%s: fragment %d of %s (epoch %d): %w: it differs from the one received", r.user, r.name, seq, rep, cur.n, ErrConflict)
	}
	in := cur.inits[rep]
	if in == nil {
		return fmt.Errorf("live: %s/%s: fragment %d of %s (epoch %d): %w", r.user, r.name, seq, rep, cur.n, ErrNoInit)
	}
	f, err := media.FragmentSamples(ctx, in.b, b)
	if err != nil {
		return fmt.Errorf("live: fragment %d of %s: %w", seq, rep, err)
	}
	if err := r.checkTracks(rep, f); err != nil {
		return fmt.Errorf("live: %s/%s: fragment %d of %s (epoch %d): %w", r.user, r.name, seq, rep, cur.n, err)
	}
	place, placed := cur.reps[rep]
	if !placed {
		base, ts := fragTiming(f)
		place = placeEpoch(cur.n, cur.start, base, ts, seq, r.lastNum(rep))
	}
	key := fragmentKey(r.user, r.id, rep, cur.n, seq)
	info, err := r.st.Put(ctx, key, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("live: store fragment %d of %s: %w", seq, rep, err)
	}
	cur.reps[rep] = place
	if r.frags[rep] == nil {
		r.frags[rep] = map[fragID]*storedFrag{}
	}
	r.frags[rep][id] = &storedFrag{rep: rep, epoch: cur.n, seq: seq, key: key, size: info.Size, sum: sum, f: f}
	r.state.addFrag(rep, cur.n, seq, key, info.Size, f, place, time.Now())
	r.saveState(ctx)
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

// checkTracks checks that the tracks of f, a fragment of rep, match
// those of rep's fragments so far in number, kind and timescale: an
// epoch continues the stream's tracks.
func (r *Recorder) checkTracks(rep string, f *media.Fragment) error {
	for _, have := range r.frags[rep] {
		if len(have.f.Tracks) != len(f.Tracks) {
			return fmt.Errorf("%w: %d tracks, earlier fragments %d", ErrConflict, len(f.Tracks), len(have.f.Tracks))
		}
		for j, t := range f.Tracks {
			if h := have.f.Tracks[j]; h.Kind != t.Kind || h.Timescale != t.Timescale {
				return fmt.Errorf("%w: track %d is %s at %d/s, earlier fragments' %s at %d/s", ErrConflict, j+1, t.Kind, t.Timescale, h.Kind, h.Timescale)
			}
		}
		return nil // all were checked against the first
	}
	return nil
}

// lastNum is the last playlist number of rep's fragments (see RepEpoch),
// 0 before any.
func (r *Recorder) lastNum(rep string) int {
	last := 0
	for id := range r.frags[rep] {
		p := r.epochs[id.epoch].reps[rep]
		if id.epoch == 0 || id.seq >= p.first {
			last = max(last, p.base+id.seq)
		}
	}
	return last
}

// Wait waits until every fragment of want (representation -> sequence
// numbers of the current epoch) has been received, or ctx is done (its
// error).
func (r *Recorder) Wait(ctx context.Context, want map[string][]int) error {
	for {
		r.mu.Lock()
		missing := false
		n := r.current().n
		for rep, seqs := range want {
			for _, seq := range seqs {
				if r.frags[rep][fragID{n, seq}] == nil {
					missing = true
				}
			}
		}
		ch := r.changed
		r.mu.Unlock()
		if !missing {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Finish archives the stream: it builds the asset's media index from every
// fragment received and commits it through the library (library.Commit),
// after which the Recorder takes nothing more (ErrFinished). On failure
// nothing becomes visible and the stored objects are left to
// jitstream gc.
//
// The asset's tracks are those of every representation's init segment,
// video first; its chapters are the fragments in timeline order (decode
// time in seconds, then representation), and each track's samples follow
// chapter by chapter. A jump forward of a representation's decode time
// (tfdt; a lost fragment) stretches the sample before it, so that decode
// times stay right; a jump back within an epoch continues after the last
// sample. A new epoch (an encoder that reconnected) continues the stream
// too: its fragments start where the stream ended when it began (the
// sample before stretched up to there), and a sample entry of its init
// segments that differs is added to the track, used by its chapters. The
// index has no discontinuity flag: the decode times, continuous across
// epochs, are what the outputs rely on.
//
// A Recorder whose stream was taken over by another node (the State in
// the store has another Owner: the other node resumed the stream, and
// archives it or did already) archives nothing and leaves the State
// alone: ErrMoved.
func (r *Recorder) Finish(ctx context.Context) (*library.Asset, error) {
	r.mu.Lock()
	if r.finished {
		r.mu.Unlock()
		return nil, fmt.Errorf("live: %s/%s: %w", r.user, r.name, ErrFinished)
	}
	r.finished = true
	owner := r.state.Owner
	r.mu.Unlock() // nothing changes the maps from now on

	if st, err := LoadState(ctx, r.st, r.user, r.name); err == nil && st.Owner != owner {
		return nil, fmt.Errorf("live: %s/%s (asset %s): %w", r.user, r.name, r.id, ErrMoved)
	}
	a, err := r.archive(ctx)
	r.mu.Lock()
	r.state.Ended = true
	if err == nil {
		r.state.Archived = a.ID
	}
	r.saveState(ctx)
	r.mu.Unlock()
	return a, err
}

// archive commits the asset, for Finish.
func (r *Recorder) archive(ctx context.Context) (*library.Asset, error) {
	ix, chaps, err := r.index()
	if err != nil {
		return nil, fmt.Errorf("live: archive %s/%s as %s: %w", r.user, r.name, r.id, err)
	}
	a, err := r.lib.Commit(ctx, r.user, r.id, r.rev, r.name, ix, chaps)
	if err != nil {
		return nil, fmt.Errorf("live: archive %s/%s as %s: %w", r.user, r.name, r.id, err)
	}
	r.log.Info("live stream archived", "user", r.user, "stream", r.name, "asset", a.ID,
		"fragments", len(chaps), "duration", ix.Duration())
	return a, nil
}

// repTrack is one track of one representation on the asset's timeline.
type repTrack struct {
	tr  *media.Track // the asset's track
	pos int          // position among the representation's tracks
}

// index builds the asset's index from the fragments.
func (r *Recorder) index() (*media.Index, []library.Chapter, error) {
	// Representations with fragments, video first, then by name
	// ("stream2" before "stream10").
	var reps []string
	for rep, fs := range r.frags {
		if len(fs) > 0 {
			reps = append(reps, rep)
		}
	}
	if len(reps) == 0 {
		return nil, nil, ErrNothing
	}
	ordered := map[string][]*storedFrag{}
	for _, rep := range reps {
		for _, f := range r.frags[rep] {
			ordered[rep] = append(ordered[rep], f)
		}
		slices.SortFunc(ordered[rep], func(a, b *storedFrag) int { return cmp.Or(cmp.Compare(a.epoch, b.epoch), cmp.Compare(a.seq, b.seq)) })
	}
	isVideo := func(rep string) bool {
		for _, t := range ordered[rep][0].f.Tracks {
			if t.Kind == media.KindVideo {
				return true
			}
		}
		return false
	}
	slices.SortFunc(reps, func(a, b string) int {
		if va, vb := isVideo(a), isVideo(b); va != vb {
			if va {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(len(a), len(b)), cmp.Compare(a, b))
	})
	repOrder := map[string]int{}
	for i, rep := range reps {
		repOrder[rep] = i
	}

	// The decode time (seconds on the asset's timeline) of every
	// fragment, with each representation's jumps closed.
	type placed struct {
		*storedFrag
		start, dur float64  // seconds
		desc       []uint32 // per track of the representation: its sample entry (1-based)
	}
	var all []placed
	var tracks []*media.Track
	byRep := map[string][]repTrack{}
	for _, rep := range reps {
		fs := ordered[rep]
		for pos, t0 := range fs[0].f.Tracks {
			// The asset's track: the header of the first fragment's,
			// samples appended below.
			tr := *t0
			tr.Samples = media.Samples{}
			tr.References = nil // track IDs of the init segment, not the asset's
			byRep[rep] = append(byRep[rep], repTrack{tr: &tr, pos: pos})
		}
		// Per track: the end of the previous fragment on the stream's
		// timeline (tfdt + the epoch's offset + duration) and on the
		// asset's (ticks).
		srcEnd := make([]int64, len(byRep[rep]))
		end := make([]int64, len(byRep[rep]))
		for k, f := range fs {
			if len(f.f.Tracks) != len(byRep[rep]) {
				return nil, nil, fmt.Errorf("%s fragment %d has %d tracks, the first %d: %w", rep, f.seq, len(f.f.Tracks), len(byRep[rep]), media.ErrInvalid)
			}
			offsets := r.epochs[f.epoch].reps[rep].offsets
			start, dur := math.Inf(1), 0.0
			desc := make([]uint32, len(byRep[rep]))
			for j, rt := range byRep[rep] {
				ft := f.f.Tracks[j]
				s := &rt.tr.Samples
				desc[j] = sampleEntry(rt.tr, ft)
				base := f.f.BaseTime[j]
				if base < 0 {
					base = srcEnd[j] // no tfdt: back to back
				} else {
					base += offsets[j]
				}
				if k > 0 && base > srcEnd[j] && len(s.Dur) > 0 {
					// A jump forward (a lost fragment, the start of an
					// epoch after a longer representation's end):
					// stretch the sample before it.
					last := len(s.Dur) - 1
					gap := min(base-srcEnd[j], math.MaxUint32-int64(s.Dur[last]))
					s.Dur[last] += uint32(gap)
					end[j] += gap
				}
				fd := ft.Duration()
				srcEnd[j] = base + fd
				if ft.Samples.Len() > 0 {
					start = min(start, float64(end[j])/float64(rt.tr.Timescale))
					dur = max(dur, float64(fd)/float64(rt.tr.Timescale))
				}
				end[j] += fd
				// Only the durations for now (in sequence order, to
				// stretch); the samples follow in chapter order below.
				s.Dur = append(s.Dur, ft.Samples.Dur...)
			}
			if math.IsInf(start, 1) {
				start = 0
				for j, rt := range byRep[rep] {
					start = max(start, float64(end[j])/float64(rt.tr.Timescale))
				}
			}
			all = append(all, placed{storedFrag: f, start: start, dur: dur, desc: desc})
		}
		for _, rt := range byRep[rep] {
			tracks = append(tracks, rt.tr)
		}
	}
	slices.SortStableFunc(all, func(a, b placed) int {
		return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(repOrder[a.rep], repOrder[b.rep]), cmp.Compare(a.epoch, b.epoch), cmp.Compare(a.seq, b.seq))
	})

	// Chapters in timeline order; each track's samples chapter by
	// chapter (durations, stretched above, taken in the same order).
	ix := &media.Index{Created: r.started.Truncate(time.Second), Chapters: make([]media.Chapter, len(all))}
	chaps := make([]library.Chapter, len(all))
	durs := map[*media.Track][]uint32{}
	for _, tr := range tracks {
		durs[tr] = tr.Samples.Dur
		tr.Samples = media.Samples{ChapterStart: make([]int, 0, len(all)+1), ChapterDesc: make([]uint32, 0, len(all))}
	}
	for c, p := range all {
		name := fmt.Sprintf("chunk-%s-%05d.m4s", p.rep, p.seq)
		if p.epoch > 0 {
			name = fmt.Sprintf("chunk-%s-e%d-%05d.m4s", p.rep, p.epoch, p.seq)
		}
		ix.Chapters[c] = media.Chapter{Object: p.key, Name: name, Size: p.size,
			Start: time.Duration(p.start * float64(time.Second)), Duration: time.Duration(p.dur * float64(time.Second))}
		chaps[c] = library.Chapter{Name: name, Object: p.key, Size: p.size}
		for _, rep := range reps {
			for _, rt := range byRep[rep] {
				s := &rt.tr.Samples
				s.ChapterStart = append(s.ChapterStart, s.Len())
				s.ChapterDesc = append(s.ChapterDesc, 1)
				if rep != p.rep {
					continue
				}
				s.ChapterDesc[len(s.ChapterDesc)-1] = p.desc[rt.pos]
				fs := &p.f.Tracks[rt.pos].Samples
				n0, n := s.Len(), fs.Len()
				s.Offset = append(s.Offset, fs.Offset...)
				s.Size = append(s.Size, fs.Size...)
				s.Dur = append(s.Dur, durs[rt.tr][n0:n0+n]...)
				if fs.CTO != nil || s.CTO != nil {
					s.CTO = append(padded(s.CTO, n0), padded(fs.CTO, n)...)
				}
				if fs.Sync != nil || s.Sync != nil {
					s.Sync = append(syncPadded(s.Sync, n0), syncPadded(fs.Sync, n)...)
				}
			}
		}
	}
	var kept []*media.Track
	for _, tr := range tracks {
		s := &tr.Samples
		s.ChapterStart = append(s.ChapterStart, s.Len())
		if s.Len() == 0 {
			continue // no sample in any fragment
		}
		tr.ID = uint32(len(kept) + 1)
		s.Derive()
		kept = append(kept, tr)
	}
	ix.Tracks = kept
	if err := ix.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", err, media.ErrInvalid)
	}
	return ix, chaps, nil
}

// sampleEntry returns the 1-based index of the sample entry of ft, a
// track of one fragment, among those of tr, the asset's track, adding it
// when it is new (an epoch whose init segment differs).
func sampleEntry(tr *media.Track, ft *media.Track) uint32 {
	e := ft.SampleEntries[ft.Samples.ChapterDesc[0]-1]
	for i, have := range tr.SampleEntries {
		if bytes.Equal(have, e) {
			return uint32(i + 1)
		}
	}
	tr.SampleEntries = append(slices.Clip(tr.SampleEntries), e)
	return uint32(len(tr.SampleEntries))
}

// base is the decode time (tfdt) of track j of f, 0 when it has none.
func (f *storedFrag) base(j int) int64 { return max(f.f.BaseTime[j], 0) }

// padded is the CTO column c of n samples, zeros when nil.
func padded(c []int32, n int) []int32 {
	if c == nil {
		return make([]int32, n)
	}
	return c
}

// syncPadded is the Sync column c of n samples, all sync when nil.
func syncPadded(c []bool, n int) []bool {
	if c != nil {
		return c
	}
	s := make([]bool, n)
	for i := range s {
		s[i] = true
	}
	return s
}
