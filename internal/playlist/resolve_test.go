package playlist

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeAsset is an asset of fakeSource: its duration and the start times of
// its segments (0 first), in seconds.
type fakeAsset struct {
	dur  float64
	segs []float64
}

// every returns the segment starts of an asset of duration dur cut every
// step seconds.
func every(dur, step float64) fakeAsset {
	a := fakeAsset{dur: dur}
	for t := 0.0; t < dur; t += step {
		a.segs = append(a.segs, t)
	}
	return a
}

var errNoAsset = errors.New("no such asset")

// fakeSource is a Source of assets and playlists of user alice. A clip
// [start, end) is cut as the streams cut it: its segments are those of the
// asset within it, the first starting at start.
type fakeSource struct {
	assets    map[string]fakeAsset
	playlists map[string]*Playlist
	clips     []string // the clips asked for, "asset start-end"
	err       error    // returned by Playlist when set
}

func (f *fakeSource) Playlist(_ context.Context, user, id string) (*Playlist, error) {
	if f.err != nil {
		return nil, f.err
	}
	p, ok := f.playlists[id]
	if user != "alice" || !ok {
		return nil, fmt.Errorf("fake: %s/%s: %w", user, id, ErrNotFound)
	}
	return p, nil
}

func (f *fakeSource) Clip(_ context.Context, user, asset string, start, end float64) (ClipInfo, error) {
	f.clips = append(f.clips, fmt.Sprintf("%s %s-%s", asset, fmtTime(start), fmtTime(end)))
	a, ok := f.assets[asset]
	if user != "alice" || !ok {
		return ClipInfo{}, fmt.Errorf("fake: %w: %s/%s", errNoAsset, user, asset)
	}
	if end == 0 || end > a.dur {
		end = a.dur
	}
	if start >= end {
		return ClipInfo{}, fmt.Errorf("fake: clip %v-%v of %s: out of range", start, end, asset)
	}
	ci := ClipInfo{Duration: end - start, Segments: []float64{0}}
	for _, s := range a.segs {
		if s > start && s < end {
			ci.Segments = append(ci.Segments, s-start)
		}
	}
	return ci, nil
}

// newSource returns a source of the assets every test uses: content
// "bumper" (10 s), "movie" (600 s, segments of 4 s), "ep1" and "ep2"
// (60 s, segments of 6 s), "short" (5 s, one segment), ads "ad-*" (15 s,
// one segment), and playlists ps.
func newSource(ps ...*Playlist) *fakeSource {
	f := &fakeSource{assets: map[string]fakeAsset{
		"bumper": every(10, 10),
		"movie":  every(600, 4),
		"ep1":    every(60, 6),
		"ep2":    every(60, 6),
		"short":  every(5, 5),
	}, playlists: map[string]*Playlist{}}
	for _, ad := range []string{"a", "b", "c", "d", "de", "tv", "x", "mid", "mid2", "post", "pre", "in", "in-mid"} {
		f.assets["ad-"+ad] = every(15, 15)
	}
	for _, p := range ps {
		f.playlists[p.ID] = p
	}
	return f
}

// show describes a timeline compactly, an item a line:
// "content movie 0-292 292", "ad ad-x 0-0 15 pre".
func show(tl *Timeline) []string {
	var out []string
	for _, it := range tl.Items {
		s := fmt.Sprintf("%s %s %s-%s %s", it.Kind, it.Asset, fmtTime(it.Start), fmtTime(it.End), fmtTime(it.Duration))
		if it.Slot != "" {
			s += " " + it.Slot
		}
		out = append(out, s)
	}
	return out
}

// Shorthands for entries.
func asset(id string) Entry { return Entry{Asset: id} }
func clip(id string, start, end float64) Entry {
	return Entry{Asset: id, Start: start, End: end}
}
func nested(id string) Entry { return Entry{Playlist: id} }
func pre(ads ...string) Entry {
	return Entry{Ad: &AdSlot{Position: PreRoll, Default: refs(ads...)}}
}
func post(ads ...string) Entry {
	return Entry{Ad: &AdSlot{Position: PostRoll, Default: refs(ads...)}}
}
func mid(at float64, ads ...string) Entry {
	return Entry{Ad: &AdSlot{Position: MidRoll, At: at, Default: refs(ads...)}}
}
func refs(ads ...string) []AdRef {
	var out []AdRef
	for _, a := range ads {
		out = append(out, AdRef{Asset: a})
	}
	return out
}
func pl(id string, entries ...Entry) *Playlist {
	return &Playlist{ID: id, User: "alice", Entries: entries}
}

// first is a pick that always takes the first choice.
func first(int) int { return 0 }

func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		name   string
		p      *Playlist
		others []*Playlist
		want   []string
	}{
		{
			// Program time counts the bumper: 300 s is 290 s into the
			// movie, whose next boundary is 292.
			name: "bumper pre content mid post",
			p:    pl("show", asset("bumper"), pre("ad-pre"), asset("movie"), mid(300, "ad-mid"), post("ad-post")),
			want: []string{
				"content bumper 0-0 10",
				"ad ad-pre 0-0 15 pre",
				"content movie 0-292 292",
				"ad ad-mid 0-0 15 mid@300",
				"content movie 292-0 308",
				"ad ad-post 0-0 15 post",
			},
		},
		{
			name: "mid-roll exactly at a boundary",
			p:    pl("p", asset("movie"), mid(12, "ad-mid")),
			want: []string{"content movie 0-12 12", "ad ad-mid 0-0 15 mid@12", "content movie 12-0 588"},
		},
		{
			name: "mid-roll just after a boundary",
			p:    pl("p", asset("movie"), mid(12.5, "ad-mid")),
			want: []string{"content movie 0-16 16", "ad ad-mid 0-0 15 mid@12.5", "content movie 16-0 584"},
		},
		{
			name: "mid-roll at 0 goes after the pre-roll, before the content",
			p:    pl("p", pre("ad-pre"), mid(0, "ad-mid"), asset("movie")),
			want: []string{"ad ad-pre 0-0 15 pre", "ad ad-mid 0-0 15 mid@0", "content movie 0-0 600"},
		},
		{
			name: "mid-roll beyond the end goes after the last content, before the post-roll",
			p:    pl("p", asset("ep1"), mid(1000, "ad-mid"), post("ad-post")),
			want: []string{"content ep1 0-0 60", "ad ad-mid 0-0 15 mid@1000", "ad ad-post 0-0 15 post"},
		},
		{
			name: "mid-roll at the program's end",
			p:    pl("p", asset("ep1"), asset("ep2"), mid(120, "ad-mid")),
			want: []string{"content ep1 0-0 60", "content ep2 0-0 60", "ad ad-mid 0-0 15 mid@120"},
		},
		{
			name: "mid-roll in the last segment of an item goes before the next content",
			p:    pl("p", asset("ep1"), pre("ad-pre"), asset("ep2"), mid(55, "ad-mid")),
			want: []string{"content ep1 0-0 60", "ad ad-pre 0-0 15 pre", "ad ad-mid 0-0 15 mid@55", "content ep2 0-0 60"},
		},
		{
			name: "two mid-rolls in one item",
			p:    pl("p", asset("movie"), mid(100, "ad-a"), mid(201, "ad-b")),
			want: []string{
				"content movie 0-100 100",
				"ad ad-a 0-0 15 mid@100",
				"content movie 100-204 104",
				"ad ad-b 0-0 15 mid@201",
				"content movie 204-0 396",
			},
		},
		{
			name: "mid-rolls placed in the order of At, whatever their entry order",
			p:    pl("p", mid(201, "ad-b"), asset("movie"), mid(100, "ad-a")),
			want: []string{
				"content movie 0-100 100",
				"ad ad-a 0-0 15 mid@100",
				"content movie 100-204 104",
				"ad ad-b 0-0 15 mid@201",
				"content movie 204-0 396",
			},
		},
		{
			name: "two mid-rolls at the same place keep their entry order",
			p:    pl("p", asset("movie"), mid(9, "ad-b"), mid(10, "ad-a"), mid(9, "ad-c")),
			want: []string{
				"content movie 0-12 12",
				"ad ad-b 0-0 15 mid@9",
				"ad ad-c 0-0 15 mid@9",
				"ad ad-a 0-0 15 mid@10",
				"content movie 12-0 588",
			},
		},
		{
			name: "mid-roll inside the second of two content items",
			p:    pl("p", asset("ep1"), asset("ep2"), mid(80, "ad-mid")),
			want: []string{"content ep1 0-0 60", "content ep2 0-24 24", "ad ad-mid 0-0 15 mid@80", "content ep2 24-0 36"},
		},
		{
			name: "mid-roll in a clipped item: absolute asset times",
			p:    pl("p", clip("movie", 100, 200), mid(10, "ad-mid")),
			want: []string{"content movie 100-112 12", "ad ad-mid 0-0 15 mid@10", "content movie 112-200 88"},
		},
		{
			name: "mid-roll in an item of one segment",
			p:    pl("p", asset("short"), mid(2, "ad-mid"), asset("ep1")),
			want: []string{"content short 0-0 5", "ad ad-mid 0-0 15 mid@2", "content ep1 0-0 60"},
		},
		{
			name: "mid-roll without content goes at the end",
			p:    pl("p", mid(5, "ad-mid"), pre("ad-pre")),
			want: []string{"ad ad-pre 0-0 15 pre", "ad ad-mid 0-0 15 mid@5"},
		},
		{
			name:   "nested playlists with their own slots",
			p:      pl("top", pre("ad-pre"), nested("intro"), asset("movie"), mid(100, "ad-mid")),
			others: []*Playlist{pl("intro", pre("ad-in"), asset("ep1"), mid(30, "ad-in-mid"), post("ad-post"))},
			want: []string{
				"ad ad-pre 0-0 15 pre",
				"ad ad-in 0-0 15 p:intro/pre",
				"content ep1 0-30 30",
				"ad ad-in-mid 0-0 15 p:intro/mid@30",
				"content ep1 30-0 30",
				"ad ad-post 0-0 15 p:intro/post",
				"content movie 0-40 40",
				"ad ad-mid 0-0 15 mid@100",
				"content movie 40-0 560",
			},
		},
		{
			name:   "a mid-roll of the parent splits nested content",
			p:      pl("top", nested("intro"), asset("movie"), mid(40, "ad-mid")),
			others: []*Playlist{pl("intro", asset("ep1"), mid(30, "ad-in-mid"))},
			want: []string{
				"content ep1 0-30 30",
				"ad ad-in-mid 0-0 15 p:intro/mid@30",
				"content ep1 30-42 12",
				"ad ad-mid 0-0 15 mid@40",
				"content ep1 42-0 18",
				"content movie 0-0 600",
			},
		},
		{
			name:   "a nested mid-roll beyond its end stays in the nested playlist",
			p:      pl("top", nested("a"), asset("ep2"), mid(60, "ad-mid")),
			others: []*Playlist{pl("a", asset("ep1"), mid(999, "ad-in-mid"))},
			want: []string{
				"content ep1 0-0 60",
				"ad ad-in-mid 0-0 15 p:a/mid@999",
				"ad ad-mid 0-0 15 mid@60",
				"content ep2 0-0 60",
			},
		},
		{
			name:   "parent and nested mid-rolls at the end of the same item",
			p:      pl("top", nested("a"), mid(500, "ad-mid")),
			others: []*Playlist{pl("a", asset("ep1"), mid(999, "ad-in-mid"), post("ad-post"))},
			want: []string{
				"content ep1 0-0 60",
				"ad ad-in-mid 0-0 15 p:a/mid@999",
				"ad ad-mid 0-0 15 mid@500",
				"ad ad-post 0-0 15 p:a/post",
			},
		},
		{
			name:   "three levels",
			p:      pl("top", nested("a"), nested("a")),
			others: []*Playlist{pl("a", pre("ad-a"), nested("b")), pl("b", asset("short"), post("ad-b"))},
			want: []string{
				"ad ad-a 0-0 15 p:a/pre",
				"content short 0-0 5",
				"ad ad-b 0-0 15 p:a/p:b/post",
				"ad ad-a 0-0 15 p:a/pre",
				"content short 0-0 5",
				"ad ad-b 0-0 15 p:a/p:b/post",
			},
		},
		{
			name: "clipped ads",
			p: pl("p", Entry{Ad: &AdSlot{Position: PreRoll, Default: []AdRef{{Asset: "ad-a", Start: 2, End: 7}}}},
				asset("short")),
			want: []string{"ad ad-a 2-7 5 pre", "content short 0-0 5"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl, err := Resolve(t.Context(), newSource(tc.others...), tc.p, Viewer{}, first)
			if err != nil {
				t.Fatal(err)
			}
			if got := show(tl); !slices.Equal(got, tc.want) {
				t.Errorf("timeline\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			checkTimeline(t, tl)
		})
	}
}

// checkTimeline checks what holds for every timeline: content parts of one
// asset that follow each other meet exactly, and their times are exact
// in the URL format.
func checkTimeline(t *testing.T, tl *Timeline) {
	t.Helper()
	for _, it := range tl.Items {
		for _, x := range []float64{it.Start, it.End} {
			if y, err := strconv.ParseFloat(fmtTime(x), 64); err != nil || y != x {
				t.Errorf("%v does not survive its URL format: %v %v", x, y, err)
			}
		}
		if it.Duration <= 0 {
			t.Errorf("item %+v: duration %v", it, it.Duration)
		}
	}
}

func TestResolveSplitExact(t *testing.T) {
	// Segment boundaries of a 29.97 fps asset cut every 60 frames
	// (2.002 s), a clip starting at 0.5: the split times are the clip's
	// start plus its boundaries, not rounded, and the durations add up.
	a := fakeAsset{dur: 100.1}
	for i := range 50 {
		a.segs = append(a.segs, float64(i)*2002/1000)
	}
	src := newSource()
	src.assets["nt"] = a
	p := pl("p", clip("nt", 0.5, 0), mid(10, "ad-mid"), mid(50, "ad-mid2"))
	tl, err := Resolve(t.Context(), src, p, Viewer{}, first)
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Items) != 5 {
		t.Fatalf("timeline %q", show(tl))
	}
	c0, c1, c2 := tl.Items[0], tl.Items[2], tl.Items[4]
	b1 := float64(6)*2002/1000 - 0.5 // the clip's boundary at or after 10
	if c0.End != 0.5+b1 || c1.Start != c0.End || c2.Start != c1.End || c2.End != 0 {
		t.Errorf("parts %v-%v, %v-%v, %v-%v", c0.Start, c0.End, c1.Start, c1.End, c2.Start, c2.End)
	}
	// The second split is at a boundary of the part's own clip.
	if c1.End-c1.Start < 40 || c1.End-c1.Start > 40+2.002 {
		t.Errorf("second split at %v", c1.End)
	}
	if sum := c0.Duration + c1.Duration + c2.Duration; sum < 99.6-1e-9 || sum > 99.6+1e-9 {
		t.Errorf("durations add up to %v, not 99.6", sum)
	}
	if want := []string{"nt 0.5-0", "ad-mid 0-0", "ad-mid2 0-0", "nt " + fmtTime(c1.Start) + "-0"}; !slices.Equal(src.clips, want) {
		t.Errorf("clips asked %q, want %q", src.clips, want)
	}
	checkTimeline(t, tl)
}

func TestResolveTargeting(t *testing.T) {
	slot := Entry{Ad: &AdSlot{Position: PreRoll, Pools: []Pool{
		{When: Targeting{Country: []string{"DE", "at"}}, Ads: refs("ad-de")},
		{When: Targeting{Device: []string{"TV"}}, Ads: refs("ad-tv")},
	}, Default: refs("ad-x")}}
	p := pl("p", slot, asset("short"))
	for _, tc := range []struct {
		v    Viewer
		want string
	}{
		{Viewer{Country: "de", Device: "tv"}, "ad-de"},
		{Viewer{Country: "AT"}, "ad-de"},
		{Viewer{Country: "US", Device: "tv"}, "ad-tv"},
		{Viewer{Country: "US", Device: "mobile"}, "ad-x"},
		{Viewer{}, "ad-x"},
	} {
		tl, err := Resolve(t.Context(), newSource(), p, tc.v, first)
		if err != nil {
			t.Fatal(err)
		}
		if got := tl.Items[0].Asset; got != tc.want {
			t.Errorf("viewer %+v: ad %s, want %s", tc.v, got, tc.want)
		}
	}
	// Without a default, a viewer matching no pool gets no ad.
	slot.Ad.Default = nil
	tl, err := Resolve(t.Context(), newSource(), p, Viewer{Country: "US"}, first)
	if err != nil {
		t.Fatal(err)
	}
	if got := show(tl); !slices.Equal(got, []string{"content short 0-0 5"}) {
		t.Errorf("timeline %q", got)
	}
}

func TestMatches(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2025, 3, 4, h, 30, 0, 0, time.UTC) }
	cet := time.FixedZone("CET", 3600)
	for _, tc := range []struct {
		name string
		t    Targeting
		v    Viewer
		want bool
	}{
		{"empty matches all", Targeting{}, Viewer{}, true},
		{"country", Targeting{Country: []string{"DE", "FR"}}, Viewer{Country: "FR"}, true},
		{"country case", Targeting{Country: []string{"de"}}, Viewer{Country: "DE"}, true},
		{"country other", Targeting{Country: []string{"DE"}}, Viewer{Country: "US"}, false},
		{"country unknown", Targeting{Country: []string{"DE"}}, Viewer{}, false},
		{"language", Targeting{Language: []string{"de"}}, Viewer{Language: "DE"}, true},
		{"language region", Targeting{Language: []string{"de"}}, Viewer{Language: "de-CH"}, true},
		{"language underscore", Targeting{Language: []string{"pt"}}, Viewer{Language: "pt_BR"}, true},
		{"language other", Targeting{Language: []string{"de"}}, Viewer{Language: "en-DE"}, false},
		{"device", Targeting{Device: []string{"tv", "desktop"}}, Viewer{Device: "Desktop"}, true},
		{"device other", Targeting{Device: []string{"tv"}}, Viewer{Device: "mobile"}, false},
		{"profile", Targeting{Profile: map[string][]string{"tier": {"free", "trial"}}}, Viewer{Profile: map[string]string{"tier": "Trial"}}, true},
		{"profile two fields", Targeting{Profile: map[string][]string{"tier": {"free"}, "age": {"18-24"}}},
			Viewer{Profile: map[string]string{"tier": "free", "age": "18-24", "x": "y"}}, true},
		{"profile one field off", Targeting{Profile: map[string][]string{"tier": {"free"}, "age": {"18-24"}}},
			Viewer{Profile: map[string]string{"tier": "free", "age": "25-34"}}, false},
		{"profile field missing", Targeting{Profile: map[string][]string{"tier": {"free"}}}, Viewer{Profile: map[string]string{"age": "free"}}, false},
		{"profile field name exact", Targeting{Profile: map[string][]string{"tier": {"free"}}}, Viewer{Profile: map[string]string{"Tier": "free"}}, false},
		{"all fields", Targeting{Country: []string{"DE"}, Language: []string{"de"}, Device: []string{"tv"}, Hours: &HourRange{18, 23}},
			Viewer{Country: "DE", Language: "de", Device: "tv", Time: at(20)}, true},
		{"all fields but one", Targeting{Country: []string{"DE"}, Language: []string{"de"}, Device: []string{"tv"}},
			Viewer{Country: "DE", Language: "fr", Device: "tv"}, false},
		{"hours in", Targeting{Hours: &HourRange{8, 12}}, Viewer{Time: at(8)}, true},
		{"hours last", Targeting{Hours: &HourRange{8, 12}}, Viewer{Time: at(11)}, true},
		{"hours to excluded", Targeting{Hours: &HourRange{8, 12}}, Viewer{Time: at(12)}, false},
		{"hours before", Targeting{Hours: &HourRange{8, 12}}, Viewer{Time: at(7)}, false},
		{"hours UTC", Targeting{Hours: &HourRange{8, 9}}, Viewer{Time: time.Date(2025, 3, 4, 9, 15, 0, 0, cet)}, true},
		{"hours wrap late", Targeting{Hours: &HourRange{22, 6}}, Viewer{Time: at(23)}, true},
		{"hours wrap from", Targeting{Hours: &HourRange{22, 6}}, Viewer{Time: at(22)}, true},
		{"hours wrap early", Targeting{Hours: &HourRange{22, 6}}, Viewer{Time: at(0)}, true},
		{"hours wrap to excluded", Targeting{Hours: &HourRange{22, 6}}, Viewer{Time: at(6)}, false},
		{"hours wrap day", Targeting{Hours: &HourRange{22, 6}}, Viewer{Time: at(12)}, false},
		{"hours all day", Targeting{Hours: &HourRange{0, 24}}, Viewer{Time: at(23)}, true},
		{"hours no time", Targeting{Hours: &HourRange{0, 24}}, Viewer{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.t.Matches(tc.v); got != tc.want {
				t.Errorf("Matches = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestResolveTargetingEachField(t *testing.T) {
	// Through Resolve: the first matching pool wins, fields one by one.
	pool := func(w Targeting, ad string) Pool { return Pool{When: w, Ads: refs(ad)} }
	slot := Entry{Ad: &AdSlot{Position: PreRoll, Pools: []Pool{
		pool(Targeting{Hours: &HourRange{22, 6}}, "ad-a"),
		pool(Targeting{Profile: map[string][]string{"tier": {"free"}}}, "ad-b"),
		pool(Targeting{Language: []string{"fr"}}, "ad-c"),
		pool(Targeting{Device: []string{"tv"}}, "ad-tv"),
		pool(Targeting{Country: []string{"DE"}}, "ad-de"),
	}, Default: refs("ad-x")}}
	p := pl("p", slot, asset("short"))
	noon := time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    Viewer
		want string
	}{
		{Viewer{Time: time.Date(2025, 3, 4, 2, 0, 0, 0, time.UTC), Country: "DE"}, "ad-a"},
		{Viewer{Time: noon, Profile: map[string]string{"tier": "free"}, Country: "DE"}, "ad-b"},
		{Viewer{Time: noon, Language: "fr-CA", Country: "DE"}, "ad-c"},
		{Viewer{Time: noon, Device: "tv", Country: "DE"}, "ad-tv"},
		{Viewer{Time: noon, Country: "de"}, "ad-de"},
		{Viewer{Time: noon, Country: "fr"}, "ad-x"},
	} {
		tl, err := Resolve(t.Context(), newSource(), p, tc.v, first)
		if err != nil {
			t.Fatal(err)
		}
		if got := tl.Items[0].Asset; got != tc.want {
			t.Errorf("viewer %+v: ad %s, want %s", tc.v, got, tc.want)
		}
	}
}

func TestResolveCount(t *testing.T) {
	slot := func(count int, ads ...string) *Playlist {
		return pl("p", Entry{Ad: &AdSlot{Position: PreRoll, Count: count, Default: refs(ads...)}}, asset("short"))
	}
	for _, tc := range []struct {
		name  string
		count int
		ads   []string
	}{
		{"default count", 0, []string{"ad-a", "ad-b", "ad-c"}},
		{"fewer than the pool", 2, []string{"ad-a", "ad-b", "ad-c"}},
		{"all of the pool", 3, []string{"ad-a", "ad-b", "ad-c"}},
		{"more than the pool", 7, []string{"ad-a", "ad-b", "ad-c"}},
		{"pool of two", 5, []string{"ad-a", "ad-b"}},
		{"pool of one", 3, []string{"ad-a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := max(tc.count, 1)
			for seed := range 50 {
				tl, err := Resolve(t.Context(), newSource(), slot(tc.count, tc.ads...), Viewer{}, PickSeeded(strconv.Itoa(seed)))
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, it := range tl.Items[:len(tl.Items)-1] {
					if it.Kind != Ad || it.Slot != "pre" {
						t.Fatalf("item %+v", it)
					}
					got = append(got, it.Asset)
				}
				if len(got) != want {
					t.Fatalf("%d ads %q, want %d", len(got), got, want)
				}
				// Each round of len(ads) draws has no repetition.
				for i := 0; i < len(got); i += len(tc.ads) {
					round := slices.Clone(got[i:min(i+len(tc.ads), len(got))])
					slices.Sort(round)
					if len(slices.Compact(round)) != len(round) {
						t.Fatalf("ads %q repeat within a round", got)
					}
				}
				// Never the same ad twice in a row, when there are two.
				for i := 1; i < len(got) && len(tc.ads) > 1; i++ {
					if got[i] == got[i-1] {
						t.Fatalf("ads %q repeat in a row", got)
					}
				}
			}
		})
	}
}

func TestChoose(t *testing.T) {
	// Each draw's range and what a pick of the last choice each time
	// gives: the idx arithmetic, exactly.
	var lims []int
	last := func(n int) int { lims = append(lims, n); return n - 1 }
	got, err := choose(7, 3, last)
	if err != nil {
		t.Fatal(err)
	}
	// Round 1 draws from 3, 2, 1; rounds after start with 2 (the previous
	// ad left out).
	if want := []int{3, 2, 1, 2, 2, 1, 2}; !slices.Equal(lims, want) {
		t.Errorf("pick ranges %v, want %v", lims, want)
	}
	if want := []int{2, 1, 0, 1, 0, 2, 0}; !slices.Equal(got, want) {
		t.Errorf("choose = %v, want %v", got, want)
	}
	if _, err := choose(1, 3, func(int) int { return 3 }); err == nil {
		t.Error("a pick out of range was taken")
	}
	// Uniform enough: every ad comes first about as often.
	pick := PickSeeded("uniform")
	counts := make([]int, 4)
	for range 4000 {
		got, err := choose(1, 4, pick)
		if err != nil {
			t.Fatal(err)
		}
		counts[got[0]]++
	}
	for i, c := range counts {
		if c < 850 || c > 1150 {
			t.Errorf("ad %d chosen %d times of 4000", i, c)
		}
	}
}

func TestPick(t *testing.T) {
	a, b := PickSeeded("session-1"), PickSeeded("session-1")
	c := PickSeeded("session-2")
	var sa, sb, sc []int
	for n := range 200 {
		n = n%9 + 1
		sa, sb, sc = append(sa, a(n)), append(sb, b(n)), append(sc, c(n))
	}
	if !slices.Equal(sa, sb) {
		t.Error("the same seed gave other draws")
	}
	if slices.Equal(sa, sc) {
		t.Error("two seeds gave the same draws")
	}
	// Fixed for the seed, across releases: these values must not change.
	s := PickSeeded("fixed")
	var fixed []int
	for range 8 {
		fixed = append(fixed, s(1000))
	}
	if want := []int{402, 770, 347, 293, 297, 366, 250, 772}; !slices.Equal(fixed, want) {
		t.Errorf("PickSeeded(\"fixed\") draws %v, want %v", fixed, want)
	}
	r := PickRandom()
	for n := 1; n < 100; n++ {
		if k := r(n); k < 0 || k >= n {
			t.Fatalf("PickRandom()(%d) = %d", n, k)
		}
	}
	if r(0) != 0 || s(-1) != 0 {
		t.Error("a pick of nothing is not 0")
	}
	r1, r2 := PickRandom(), PickRandom()
	same := true
	for range 20 {
		if r1(1<<30) != r2(1<<30) {
			same = false
		}
	}
	if same {
		t.Error("two PickRandom draw the same")
	}
}

func TestResolveDeterministic(t *testing.T) {
	p := pl("p", Entry{Ad: &AdSlot{Position: PreRoll, Count: 3, Default: refs("ad-a", "ad-b", "ad-c", "ad-d")}},
		asset("movie"), Entry{Ad: &AdSlot{Position: MidRoll, At: 50, Count: 2, Default: refs("ad-a", "ad-b", "ad-c", "ad-d")}})
	var first []string
	for i := range 5 {
		tl, err := Resolve(t.Context(), newSource(), p, Viewer{}, PickSeeded("viewer-7"))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = show(tl)
		} else if got := show(tl); !slices.Equal(got, first) {
			t.Fatalf("resolve %d: %q, then %q", i, first, got)
		}
	}
}

func TestResolveRules(t *testing.T) {
	noSeek := &Rules{NoSeek: true}
	back := &Rules{NoSkipBackward: true}
	skip := &Rules{SkipAfterPercent: 50}
	inner := pl("inner", asset("ep1"), Entry{Asset: "ep2", Rules: back}, pre("ad-a"),
		Entry{Ad: &AdSlot{Position: PreRoll, Default: refs("ad-b")}, Rules: skip})
	outer := pl("outer", nested("inner"))
	p := pl("p", Entry{Asset: "short", Rules: noSeek}, asset("bumper"), Entry{Playlist: "outer", Rules: noSeek}, nested("inner"))
	tl, err := Resolve(t.Context(), newSource(inner, outer), p, Viewer{}, first)
	if err != nil {
		t.Fatal(err)
	}
	want := []Rules{
		*noSeek,        // short: its own
		{},             // bumper: none
		*noSeek,        // ep1 in outer: from the outer entry
		*back,          // ep2 in outer: its own
		DefaultAdRules, // ad-a: ads keep the default
		*skip,          // ad-b: its slot's
		{},             // ep1 directly: none
		*back,          // ep2 directly: its own
		DefaultAdRules, // ad-a
		*skip,          // ad-b
	}
	var got []Rules
	for _, it := range tl.Items {
		got = append(got, it.Rules)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rules\n%+v\nwant\n%+v\n%q", got, want, show(tl))
	}
}

func TestResolveRulesOfSplitParts(t *testing.T) {
	p := pl("p", Entry{Asset: "movie", Rules: &Rules{NoSkipForward: true}}, mid(10, "ad-mid"))
	tl, err := Resolve(t.Context(), newSource(), p, Viewer{}, first)
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Items) != 3 || !tl.Items[0].Rules.NoSkipForward || !tl.Items[2].Rules.NoSkipForward || tl.Items[1].Rules != DefaultAdRules {
		t.Errorf("items %+v", tl.Items)
	}
}

func TestResolveErrors(t *testing.T) {
	chain := func(n int) []*Playlist {
		var ps []*Playlist
		for i := 1; i < n; i++ {
			ps = append(ps, pl(fmt.Sprintf("p%d", i), nested(fmt.Sprintf("p%d", i+1))))
		}
		return append(ps, pl(fmt.Sprintf("p%d", n), asset("short")))
	}
	deOnly := Entry{Ad: &AdSlot{Position: PreRoll, Pools: []Pool{{When: Targeting{Country: []string{"DE"}}, Ads: refs("ad-a")}}}}
	many := func(n int, e Entry) *Playlist {
		p := pl("many")
		for range n {
			p.Entries = append(p.Entries, e)
		}
		return p
	}
	for _, tc := range []struct {
		name    string
		p       *Playlist
		others  []*Playlist
		src     func(*fakeSource)
		invalid bool
		is      error
		want    string
	}{
		{name: "depth", p: chain(5)[0], others: chain(5)[1:], invalid: true,
			want: "p3/p:p4/entries[0].playlist: playlists nest deeper than 4: p1 -> p2 -> p3 -> p4 -> p5"},
		{name: "cycle", p: pl("a", asset("short"), nested("b")), others: []*Playlist{pl("b", nested("c")), pl("c", nested("a"))}, invalid: true,
			want: "p:b/p:c/entries[0].playlist: playlists nest in a cycle: a -> b -> c -> a"},
		{name: "cycle below", p: pl("top", nested("b")), others: []*Playlist{pl("b", nested("c")), pl("c", nested("b"))}, invalid: true,
			want: "cycle: b -> c -> b"},
		{name: "missing nested", p: pl("top", asset("short"), nested("gone")), invalid: true,
			want: `entries[1].playlist: there is no playlist "gone"`},
		{name: "nested invalid", p: pl("top", nested("bad")), others: []*Playlist{pl("bad", Entry{Asset: "a.b"})}, invalid: true,
			want: `invalid playlist: p:bad/entries[0].asset: "a.b" is not an asset id`},
		{name: "source failing", p: pl("top", nested("x")), src: func(f *fakeSource) { f.err = context.DeadlineExceeded },
			is: context.DeadlineExceeded, want: `entries[0]: nested playlist "x"`},
		{name: "missing asset", p: pl("top", asset("short"), clip("nope", 3, 0)), is: errNoAsset,
			want: `playlist: entries[1]: asset "nope" from 3s: fake: no such asset`},
		{name: "missing ad", p: pl("top", asset("short"), pre("ad-nope")), is: errNoAsset,
			want: `entries[1].ad: asset "ad-nope"`},
		{name: "bad clip info", p: pl("top", asset("odd")),
			src:  func(f *fakeSource) { f.assets["odd"] = fakeAsset{dur: 10, segs: []float64{0, 5, 5}} },
			want: `entries[0]: asset "odd": the source's clip: segment 2 at 5, not after 5`},
		{name: "empty timeline", p: pl("top", deOnly),
			invalid: true, want: "nothing to play"},
		{name: "too many items", p: pl("top", nested("many"), nested("many"), nested("many"), nested("many"), nested("many"), nested("many")),
			others: []*Playlist{many(MaxEntries, asset("short"))}, invalid: true,
			want: "p:many/entries[0]: the timeline has more than 1000 items"},
		{name: "too many ads", p: many(MaxEntries, Entry{Ad: &AdSlot{Position: PreRoll, Count: 10, Default: refs("ad-a")}}), invalid: true,
			want: "entries[100]: the timeline has more than 1000 items"},
		{name: "too many visits", p: many(MaxEntries, nested("n2")),
			others:  []*Playlist{many2("n2", MaxEntries, nested("n3")), many2("n3", MaxEntries, deOnly)},
			invalid: true, want: "expands to more than 20000 entries"},
		{name: "no user", p: &Playlist{ID: "p", Entries: []Entry{asset("short")}}, invalid: true, want: "user: missing"},
		{name: "invalid", p: pl("p"), invalid: true, want: "entries: none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newSource(tc.others...)
			if tc.src != nil {
				tc.src(src)
			}
			// The viewer matches no pool (deOnly).
			tl, err := Resolve(t.Context(), src, tc.p, Viewer{Country: "US"}, first)
			if err == nil {
				t.Fatalf("resolved %d items", len(tl.Items))
			}
			if errors.Is(err, ErrInvalid) != tc.invalid {
				t.Errorf("error %v: ErrInvalid %v, want %v", err, !tc.invalid, tc.invalid)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func many2(id string, n int, e Entry) *Playlist {
	p := pl(id)
	for range n {
		p.Entries = append(p.Entries, e)
	}
	return p
}

func TestResolveDepthLimitOK(t *testing.T) {
	// MaxDepth levels, the top one included, resolve.
	ps := []*Playlist{pl("p2", nested("p3")), pl("p3", nested("p4")), pl("p4", asset("short"), pre("ad-a"))}
	tl, err := Resolve(t.Context(), newSource(ps...), pl("p1", nested("p2")), Viewer{}, first)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := show(tl), []string{"content short 0-0 5", "ad ad-a 0-0 15 p:p2/p:p3/p:p4/pre"}; !slices.Equal(got, want) {
		t.Errorf("timeline %q, want %q", got, want)
	}
}

func TestResolveFetchesOnce(t *testing.T) {
	// A nested playlist and a clip used several times are asked for once.
	calls := 0
	src := &countingSource{fakeSource: newSource(pl("n", asset("short"), asset("short"))), calls: &calls}
	p := pl("p", nested("n"), nested("n"), nested("n"), asset("short"))
	tl, err := Resolve(t.Context(), src, p, Viewer{}, first)
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Items) != 7 || calls != 1 || len(src.clips) != 1 {
		t.Errorf("%d items, %d playlist fetches, clips %q", len(tl.Items), calls, src.clips)
	}
}

type countingSource struct {
	*fakeSource
	calls *int
}

func (c *countingSource) Playlist(ctx context.Context, user, id string) (*Playlist, error) {
	*c.calls++
	return c.fakeSource.Playlist(ctx, user, id)
}

func TestResolveCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := Resolve(ctx, newSource(), pl("p", asset("short")), Viewer{}, first)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v", err)
	}
}

// FuzzResolveMidRolls places three mid-rolls anywhere on a program of
// three content items and checks each lands at the program's first
// segment boundary at or after its time (or at the end), in the order of
// their times, with the content parts adding up.
func FuzzResolveMidRolls(f *testing.F) {
	f.Add(0.0, 300.0, 1000.0)
	f.Add(60.0, 59.9, 60.1)
	f.Add(6.0, 6.0, 6.0)
	f.Add(209.5, 214.9, 215.0)
	f.Add(1e-7, 63.9999999, 64.0000001)
	f.Fuzz(func(t *testing.T, a, b, c float64) {
		ats := []float64{a, b, c}
		for _, at := range ats {
			if checkTime("at", at) != nil {
				return
			}
		}
		p := pl("p", asset("ep1"), mid(a, "ad-a"), clip("movie", 100, 250), mid(b, "ad-b"), asset("short"), mid(c, "ad-c"))
		tl, err := Resolve(t.Context(), newSource(), p, Viewer{}, first)
		if err != nil {
			t.Fatal(err)
		}
		// The program's boundaries: ep1 every 6 s, the movie's clip
		// every 4 s from 60, short at 210; its end 215.
		var bounds []float64
		for x := 0.0; x < 60; x += 6 {
			bounds = append(bounds, x)
		}
		for x := 60.0; x < 210; x += 4 {
			bounds = append(bounds, x)
		}
		bounds = append(bounds, 210)
		want := func(at float64) float64 {
			for _, x := range bounds {
				if x >= at-eps {
					return x
				}
			}
			return 215
		}
		pos := 0.0
		var placed []float64 // the times of the ads, in timeline order
		parts := map[string][]Item{}
		for _, it := range tl.Items {
			if it.Kind == Content {
				pos += it.Duration
				parts[it.Asset] = append(parts[it.Asset], it)
				continue
			}
			at := map[string]float64{"ad-a": a, "ad-b": b, "ad-c": c}[it.Asset]
			if w := want(at); math.Abs(pos-w) > 1e-9 {
				t.Errorf("%s (at %v) placed at %v, want %v\n%s", it.Asset, at, pos, w, strings.Join(show(tl), "\n"))
			}
			placed = append(placed, at)
		}
		if !slices.IsSorted(placed) || len(placed) != 3 {
			t.Errorf("ads in the order of %v", placed)
		}
		if math.Abs(pos-215) > 1e-9 {
			t.Errorf("content adds up to %v", pos)
		}
		for asset, ps := range parts {
			for i := 1; i < len(ps); i++ {
				if ps[i].Start != ps[i-1].End {
					t.Errorf("%s: part %d starts at %v, the one before ends at %v", asset, i, ps[i].Start, ps[i-1].End)
				}
			}
		}
		checkTimeline(t, tl)
	})
}
