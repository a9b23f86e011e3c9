package playlist

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/jitstream/jitstream/internal/state"
	testredis "github.com/jitstream/jitstream/internal/testutil/redis"
)

// sessT0 is the start of the tests' clocks.
var sessT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// sessClock is a clock that moves only when told to.
type sessClock struct {
	mu  sync.Mutex
	now time.Time
}

func newSessClock() *sessClock { return &sessClock{now: sessT0} }

func (c *sessClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// At sets the clock to sec seconds after sessT0.
func (c *sessClock) At(sec float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = sessT0.Add(durationOf(sec))
}

func (c *sessClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// stateEnv is a shared state for a test: memory (whose expiry follows the
// test's clock) or a Redis server.
type stateEnv struct {
	clock *sessClock
	// srv and prefix are the Redis server and the test's key prefix; srv
	// is nil for memory.
	srv    *testredis.Server
	prefix string
	// open returns a client of the state: for Redis a new connection (a
	// node), for memory the one state.
	open func(t *testing.T) state.State
}

// sessionRedis returns the redis-server shared by the package's tests
// (TestMain runs redis.Run); tests keep apart by key prefix.
func sessionRedis(t *testing.T) *testredis.Server { return testredis.Shared(t) }

// forEachState runs f against the in-memory state and against Redis on
// srv.
func forEachState(t *testing.T, srv *testredis.Server, f func(t *testing.T, env *stateEnv)) {
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		c := newSessClock()
		m := state.NewMemoryWithClock(c.Now)
		t.Cleanup(func() { m.Close() })
		f(t, &stateEnv{clock: c, open: func(*testing.T) state.State { return m }})
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		prefix := t.Name() + ":"
		f(t, &stateEnv{
			clock:  newSessClock(),
			srv:    srv,
			prefix: prefix,
			open: func(t *testing.T) state.State {
				st, err := state.NewRedis(t.Context(), srv.URL(), state.RedisOptions{Prefix: prefix})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			},
		})
	})
}

// sessions returns Sessions over a new client of the state, with the
// env's clock unless opt has one.
func (e *stateEnv) sessions(t *testing.T, opt SessionOptions) *Sessions {
	if opt.Now == nil {
		opt.Now = e.clock.Now
	}
	return NewSessions(e.open(t), opt)
}

// adTimeline is a bumper, a pre-roll, content, a mid-roll, the rest of
// the content and a post-roll.
func adTimeline() *Timeline {
	return &Timeline{Items: []Item{
		{Kind: Content, Asset: "bumper", Duration: 4, Rules: Rules{NoSeek: true}},
		{Kind: Ad, Asset: "ad-pre", Duration: 15, Rules: DefaultAdRules, Slot: PreRoll},
		{Kind: Content, Asset: "movie", End: 60, Duration: 60},
		{Kind: Ad, Asset: "ad-mid", Duration: 10, Rules: DefaultAdRules, Slot: "mid@60"},
		{Kind: Content, Asset: "movie", Start: 60, Duration: 40},
		{Kind: Ad, Asset: "ad-post", Duration: 20, Rules: DefaultAdRules, Slot: PostRoll},
	}}
}

var sessViewer = Viewer{Country: "DE", Language: "de", Device: "tv", Profile: map[string]string{"tier": "free"}, Time: sessT0}

func createSession(t *testing.T, s *Sessions, tl *Timeline) *Session {
	t.Helper()
	sess, err := s.Create(t.Context(), "alice", "pl1", sessViewer, tl)
	if err != nil {
		t.Fatal(err)
	}
	return sess
}

func getSession(t *testing.T, s *Sessions, id string) *Session {
	t.Helper()
	sess, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return sess
}

func deliverAll(t *testing.T, s *Sessions, id string, reqs ...Request) {
	t.Helper()
	for _, r := range reqs {
		if err := s.Delivered(t.Context(), id, r); err != nil {
			t.Fatalf("Delivered(%+v): %v", r, err)
		}
	}
}

// segments returns the primary requests of the segments of length seg that
// cover [from, to) of item.
func segments(item int, from, to, seg float64) []Request {
	var rs []Request
	for s := from; s < to; s += seg {
		rs = append(rs, Request{Item: item, Start: s, End: min(s+seg, to), Primary: true})
	}
	return rs
}

var sessionIDRe = regexp.MustCompile(`^[a-z2-7]{26}$`)

func TestSessionCreateGet(t *testing.T) {
	t.Parallel()
	srv := sessionRedis(t)
	forEachState(t, srv, func(t *testing.T, env *stateEnv) {
		s := env.sessions(t, SessionOptions{})
		tl := adTimeline()
		a := createSession(t, s, tl)
		b := createSession(t, s, tl)
		for _, id := range []string{a.ID, b.ID} {
			if !sessionIDRe.MatchString(id) {
				t.Errorf("session id %q is not 26 characters of base32 in lower case", id)
			}
		}
		if a.ID == b.ID {
			t.Fatalf("two sessions with id %s", a.ID)
		}
		tl.Items[0].Asset = "changed" // Create copied the timeline
		got := getSession(t, s, a.ID)
		if !reflect.DeepEqual(got.Timeline, *adTimeline()) {
			t.Errorf("timeline = %+v, want %+v", got.Timeline, *adTimeline())
		}
		if got.User != "alice" || got.Playlist != "pl1" || !got.Created.Equal(sessT0) || len(got.Progress) != len(tl.Items) {
			t.Errorf("session = %+v", got)
		}
		if !got.Viewer.Time.Equal(sessViewer.Time) || got.Viewer.Profile["tier"] != "free" || got.Viewer.Country != "DE" {
			t.Errorf("viewer = %+v, want %+v", got.Viewer, sessViewer)
		}

		// Another node sees it.
		other := env.sessions(t, SessionOptions{})
		if got := getSession(t, other, a.ID); got.ID != a.ID {
			t.Errorf("other node: session %s", got.ID)
		}

		for _, id := range []string{"", "x", "aaaaaaaaaaaaaaaaaaaaaaaaaa", "AAAAAAAAAAAAAAAAAAAAAAAAAA", "../../../../etc/passwd/aaa", a.ID + "a"} {
			if _, err := s.Get(t.Context(), id); !errors.Is(err, ErrNoSession) {
				t.Errorf("Get(%q) = %v, want ErrNoSession", id, err)
			}
			if _, err := s.Check(t.Context(), id, Request{Primary: true, End: 1}); !errors.Is(err, ErrNoSession) {
				t.Errorf("Check(%q) = %v, want ErrNoSession", id, err)
			}
			if err := s.Delivered(t.Context(), id, Request{Primary: true, End: 1}); !errors.Is(err, ErrNoSession) {
				t.Errorf("Delivered(%q) = %v, want ErrNoSession", id, err)
			}
		}

		bad := []*Timeline{
			nil,
			{},
			{Items: []Item{{Kind: "bumper", Duration: 1}}},
			{Items: []Item{{Kind: Content, Duration: 0}}},
			{Items: []Item{{Kind: Ad, Duration: -1}}},
			{Items: make([]Item, MaxItems+1)},
		}
		for _, tl := range bad {
			if _, err := s.Create(t.Context(), "alice", "pl1", sessViewer, tl); !errors.Is(err, ErrBadRequest) {
				t.Errorf("Create(%+v) = %v, want ErrBadRequest", tl, err)
			}
		}
	})
}

func TestSessionBadRequests(t *testing.T) {
	t.Parallel()
	srv := sessionRedis(t)
	forEachState(t, srv, func(t *testing.T, env *stateEnv) {
		s := env.sessions(t, SessionOptions{})
		sess := createSession(t, s, adTimeline())
		bad := []Request{
			{Item: -1, End: 1, Primary: true},
			{Item: 6, End: 1, Primary: true},
			{Item: 0, Start: -1, End: 1, Primary: true},
			{Item: 0, Start: 2, End: 1, Primary: true},
			{Item: 0, Start: 0, End: math.NaN(), Primary: true},
			{Item: 0, Start: math.Inf(1), End: math.Inf(1)},
		}
		for _, r := range bad {
			if _, err := s.Check(t.Context(), sess.ID, r); !errors.Is(err, ErrBadRequest) {
				t.Errorf("Check(%+v) = %v, want ErrBadRequest", r, err)
			}
			if err := s.Delivered(t.Context(), sess.ID, r); !errors.Is(err, ErrBadRequest) {
				t.Errorf("Delivered(%+v) = %v, want ErrBadRequest", r, err)
			}
		}
		if got := getSession(t, s, sess.ID); !reflect.DeepEqual(got.Progress, make([]ItemProgress, 6)) {
			t.Errorf("bad requests changed the progress: %+v", got.Progress)
		}
	})
}

// TestDeliveredProgress checks the spans recorded: merged, sorted, clipped
// to the item, primary requests only; and FirstByte set by the first
// delivery of any track.
func TestDeliveredProgress(t *testing.T) {
	t.Parallel()
	srv := sessionRedis(t)
	forEachState(t, srv, func(t *testing.T, env *stateEnv) {
		s := env.sessions(t, SessionOptions{})
		sess := createSession(t, s, adTimeline())
		env.clock.At(1)
		deliverAll(t, s, sess.ID, Request{Item: 2, Start: 0, End: 4}) // audio: no span
		env.clock.At(2)
		deliverAll(t, s, sess.ID,
			Request{Item: 2, Start: 8, End: 12, Primary: true},
			Request{Item: 2, Start: 0, End: 4, Primary: true},
			Request{Item: 2, Start: 20, End: 24, Primary: true},
			Request{Item: 2, Start: 4.0005, End: 8, Primary: true}, // closer than 1 ms: merged
			Request{Item: 2, Start: 22, End: 26, Primary: true},    // overlapping
			Request{Item: 2, Start: 30, End: 30, Primary: true},    // empty
			Request{Item: 2, Start: 58, End: 62.5, Primary: true},  // clipped to the duration
			Request{Item: 2, Start: 40, End: 44},                   // audio
			Request{Item: 4, Start: 45, End: 50, Primary: true},    // beyond the item: nothing
		)
		got := getSession(t, s, sess.ID)
		want := [][2]float64{{0, 12}, {20, 26}, {58, 60}}
		if p := got.Progress[2]; !reflect.DeepEqual(p.Delivered, want) {
			t.Errorf("delivered = %v, want %v", p.Delivered, want)
		}
		if fb := got.Progress[2].FirstByte; !fb.Equal(sessT0.Add(time.Second)) {
			t.Errorf("first byte = %v, want that of the first (audio) delivery %v", fb, sessT0.Add(time.Second))
		}
		if p := got.Progress[4]; len(p.Delivered) != 0 || !p.FirstByte.Equal(sessT0.Add(2*time.Second)) {
			t.Errorf("item 4: %+v", p)
		}
		for _, i := range []int{0, 1, 3, 5} {
			if p := got.Progress[i]; !reflect.DeepEqual(p, ItemProgress{}) {
				t.Errorf("item %d: %+v, want nothing", i, p)
			}
		}
		if p := got.Progress[2]; p.frontier() != 12 || p.covered() != 20 {
			t.Errorf("frontier %v, covered %v; want 12, 20", p.frontier(), p.covered())
		}
	})
}

// TestSessionExpiry checks that a session expires TTL after its last
// delivery.
func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	srv := sessionRedis(t)
	forEachState(t, srv, func(t *testing.T, env *stateEnv) {
		ctx := t.Context()
		if env.srv == nil {
			// Memory follows the test's clock.
			s := env.sessions(t, SessionOptions{TTL: time.Hour})
			sess := createSession(t, s, adTimeline())
			env.clock.Advance(59 * time.Minute)
			deliverAll(t, s, sess.ID, Request{Item: 0, End: 2, Primary: true})
			env.clock.Advance(59 * time.Minute) // 118 min after Create, 59 after the delivery
			getSession(t, s, sess.ID)
			env.clock.Advance(time.Minute)
			if _, err := s.Get(ctx, sess.ID); !errors.Is(err, ErrNoSession) {
				t.Fatalf("Get of an expired session: %v, want ErrNoSession", err)
			}
			if _, err := s.Check(ctx, sess.ID, Request{Item: 0, End: 2, Primary: true}); !errors.Is(err, ErrNoSession) {
				t.Fatalf("Check of an expired session: %v, want ErrNoSession", err)
			}
			if err := s.Delivered(ctx, sess.ID, Request{Item: 0, End: 2, Primary: true}); !errors.Is(err, ErrNoSession) {
				t.Fatalf("Delivered of an expired session: %v, want ErrNoSession", err)
			}
			return
		}
		// Redis expires in real time: the refresh is seen in the key's
		// remaining ttl, the expiry with a short ttl.
		opt, err := goredis.ParseURL(env.srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		rc := goredis.NewClient(opt)
		defer rc.Close()
		pttl := func(id string) time.Duration {
			d, err := rc.PTTL(ctx, env.prefix+"k:"+sessionKey(id)).Result()
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
		s1 := env.sessions(t, SessionOptions{TTL: time.Hour})
		s2 := env.sessions(t, SessionOptions{TTL: 2 * time.Hour})
		sess := createSession(t, s1, adTimeline())
		if d := pttl(sess.ID); d <= 59*time.Minute || d > time.Hour {
			t.Fatalf("ttl after Create %v, want 1h", d)
		}
		s2.Check(ctx, sess.ID, Request{Item: 0, End: 2, Primary: true})
		if d := pttl(sess.ID); d > time.Hour {
			t.Fatalf("ttl after Check %v: Check must not write", d)
		}
		deliverAll(t, s2, sess.ID, Request{Item: 0, End: 2, Primary: true})
		if d := pttl(sess.ID); d <= 119*time.Minute || d > 2*time.Hour {
			t.Fatalf("ttl after Delivered %v, want 2h", d)
		}

		short := env.sessions(t, SessionOptions{TTL: 200 * time.Millisecond})
		sess = createSession(t, short, adTimeline())
		getSession(t, short, sess.ID)
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, err := short.Get(ctx, sess.ID)
			if errors.Is(err, ErrNoSession) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if time.Now().After(deadline) {
				t.Fatal("the session did not expire")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// failingState fails every Set.
type failingState struct{ state.State }

func (failingState) Set(context.Context, string, []byte, time.Duration) error {
	return errors.New("injected failure")
}

// TestDeliveredFailedUpdate checks that a delivery whose update fails
// emits no beacon, and that a later one does.
func TestDeliveredFailedUpdate(t *testing.T) {
	t.Parallel()
	srv := sessionRedis(t)
	forEachState(t, srv, func(t *testing.T, env *stateEnv) {
		file := filepath.Join(t.TempDir(), "beacons.jsonl")
		b, err := NewBeacons(BeaconOptions{File: file})
		if err != nil {
			t.Fatal(err)
		}
		st := env.open(t)
		good := NewSessions(st, SessionOptions{Now: env.clock.Now, Beacons: b})
		bad := NewSessions(failingState{st}, SessionOptions{Now: env.clock.Now, Beacons: b})
		sess := createSession(t, good, adTimeline())
		if err := bad.Delivered(t.Context(), sess.ID, Request{Item: 1, End: 15, Primary: true}); err == nil {
			t.Fatal("Delivered succeeded with a failing Set")
		}
		if data, err := os.ReadFile(file); err != nil || len(data) != 0 {
			t.Fatalf("beacons after a failed update: %q, %v", data, err)
		}
		deliverAll(t, good, sess.ID, Request{Item: 1, End: 15, Primary: true})
		if err := b.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := beaconEvents(readBeacons(t, file), sess.ID, 1); !reflect.DeepEqual(got, allAdEvents) {
			t.Fatalf("events %v, want %v", got, allAdEvents)
		}
		// The lock was released despite the failure: a delivery of
		// another node goes through at once.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := good.Delivered(ctx, sess.ID, Request{Item: 0, End: 2, Primary: true}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestDeliveredConcurrent delivers the segments of a session from many
// goroutines of two nodes (two Sessions, each with its own Beacons on
// one file, over one state), each segment twice, and checks that no span
// is lost and that each beacon is sent exactly once.
func TestDeliveredConcurrent(t *testing.T) {
	t.Parallel()
	srv := sessionRedis(t)
	forEachState(t, srv, func(t *testing.T, env *stateEnv) {
		file := filepath.Join(t.TempDir(), "beacons.jsonl")
		var nodes [2]*Sessions
		var beacons [2]*Beacons
		for i := range nodes {
			b, err := NewBeacons(BeaconOptions{File: file})
			if err != nil {
				t.Fatal(err)
			}
			beacons[i] = b
			nodes[i] = env.sessions(t, SessionOptions{Beacons: b})
		}
		tl := &Timeline{Items: []Item{
			{Kind: Ad, Asset: "ad", Duration: 15, Rules: DefaultAdRules, Slot: PreRoll},
			{Kind: Content, Asset: "movie", Duration: 60},
			{Kind: Ad, Asset: "ad2", Duration: 6, Rules: DefaultAdRules, Slot: PostRoll},
		}}
		sess := createSession(t, nodes[0], tl)

		var reqs []Request
		for range 2 {
			reqs = append(reqs, segments(0, 0, 15, 0.5)...)
			reqs = append(reqs, segments(1, 0, 60, 2)...)
			reqs = append(reqs, segments(2, 0, 6, 1)...)
			reqs = append(reqs, Request{Item: 0, Start: 0, End: 15}, Request{Item: 1, Start: 0, End: 60})
		}
		rand.Shuffle(len(reqs), func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
		const workers = 16
		work := make(chan Request)
		errs := make(chan error, len(reqs))
		var wg sync.WaitGroup
		for w := range workers {
			node := nodes[w%2]
			wg.Go(func() {
				for r := range work {
					if err := node.Delivered(t.Context(), sess.ID, r); err != nil {
						errs <- fmt.Errorf("Delivered(%+v): %w", r, err)
					}
				}
			})
		}
		for _, r := range reqs {
			work <- r
		}
		close(work)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for _, b := range beacons {
			if err := b.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
		}

		got := getSession(t, nodes[1], sess.ID)
		for i, want := range [][][2]float64{{{0, 15}}, {{0, 60}}, {{0, 6}}} {
			if p := got.Progress[i]; !reflect.DeepEqual(p.Delivered, want) {
				t.Errorf("item %d: delivered %v, want %v", i, p.Delivered, want)
			}
		}
		if !reflect.DeepEqual(got.Progress[0].Beacons, allAdEvents) || !reflect.DeepEqual(got.Progress[2].Beacons, allAdEvents) {
			t.Errorf("recorded beacons %v, %v; want %v", got.Progress[0].Beacons, got.Progress[2].Beacons, allAdEvents)
		}
		if len(got.Progress[1].Beacons) != 0 {
			t.Errorf("content item with beacons %v", got.Progress[1].Beacons)
		}
		lines := readBeacons(t, file)
		for _, item := range []int{0, 2} {
			if got := beaconEvents(lines, sess.ID, item); !reflect.DeepEqual(got, allAdEvents) {
				t.Errorf("beacons of item %d in the file: %v, want each of %v once, in order", item, got, allAdEvents)
			}
		}
		if len(lines) != 2*len(allAdEvents) {
			t.Errorf("%d beacon lines, want %d", len(lines), 2*len(allAdEvents))
		}
	})
}
