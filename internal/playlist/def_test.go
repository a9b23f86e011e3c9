package playlist

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// validDef is a definition using every feature, valid.
const validDef = `{
  "id": "show-1",
  "user": "alice",
  "title": "The show",
  "created": "2025-01-02T03:04:05Z",
  "entries": [
    {"asset": "bumper"},
    {"ad": {"position": "pre", "count": 2,
            "pools": [{"when": {"country": ["DE", "at"], "language": ["de"], "device": ["tv"],
                                "profile": {"tier": ["free"], "age-group": ["18-24", "25-34"]},
                                "hours": {"from": 22, "to": 6}},
                       "ads": [{"asset": "ad-de", "start": 1.5, "end": 16.5}, {"asset": "ad-de2"}]}],
            "default": [{"asset": "ad-x"}]},
     "rules": {"no_skip_forward": true, "skip_after_percent": 50}},
    {"asset": "movie", "start": 10, "end": 2000.25, "rules": {"no_seek": true}},
    {"ad": {"position": "mid", "at": 300, "default": [{"asset": "ad-mid"}]}},
    {"playlist": "extras", "rules": {"no_skip_backward": true}},
    {"ad": {"position": "post", "default": [{"asset": "ad-post"}]}}
  ]
}`

// def returns validDef with the JSON of entries replacing its entries.
func def(entries string) string {
	return `{"id": "p", "user": "alice", "entries": [` + entries + `]}`
}

func TestParseValid(t *testing.T) {
	p, err := Parse(strings.NewReader(validDef), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "show-1" || p.User != "alice" || len(p.Entries) != 6 {
		t.Fatalf("parsed %+v", p)
	}
	slot := p.Entries[1].Ad
	if slot.Count != 2 || len(slot.Pools) != 1 || slot.Pools[0].When.Hours.From != 22 || slot.Pools[0].Ads[0].End != 16.5 {
		t.Errorf("ad slot %+v", slot)
	}
	if !p.Created.Equal(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("created %v", p.Created)
	}
	// No id nor user: an API body takes them from its URL.
	if _, err := Parse(strings.NewReader(`{"entries": [{"asset": "a"}]}`), 100); err != nil {
		t.Errorf("without id and user: %v", err)
	}
}

func TestParseInvalid(t *testing.T) {
	long := strings.Repeat("a", 65)
	pools := func(n int) string {
		return `{"ad": {"position": "pre", "pools": [` + strings.Repeat(`{"when": {}, "ads": [{"asset": "x"}]},`, n-1) + `{"when": {}, "ads": [{"asset": "x"}]}]}}`
	}
	ads := func(n int) string { return strings.Repeat(`{"asset": "x"},`, n-1) + `{"asset": "x"}` }
	profile := func(n int) string {
		var f []string
		for i := range n {
			f = append(f, fmt.Sprintf(`"f%d": ["v"]`, i))
		}
		return strings.Join(f, ",")
	}
	for _, tc := range []struct {
		name, json, want string
	}{
		// JSON itself.
		{"empty", ``, "empty body"},
		{"syntax", `{"id": }`, "not valid JSON at byte"},
		{"truncated", `{"id": "p"`, "ends early"},
		{"unknown field", `{"id": "p", "entries": [{"asset": "a"}], "extra": 1}`, `unknown field "extra"`},
		{"unknown nested field", def(`{"asset": "a", "duration": 3}`), `unknown field "duration"`},
		{"two values", def(`{"asset": "a"}`) + ` {}`, "data after the JSON object"},
		{"trailing garbage", def(`{"asset": "a"}`) + ` x`, "not valid JSON"},
		{"not an object", `[1]`, "a JSON array is not a playlist"},
		{"duplicate key", `{"id": "p", "id": "q", "entries": [{"asset": "a"}]}`, `key "id" appears twice`},
		{"duplicate key folded", `{"id": "p", "ID": "q", "entries": [{"asset": "a"}]}`, `appears twice`},
		{"duplicate key kelvin", def(`{"ad": {"position": "pre", "default": [{"asset": "a"}]}, "asset": "b", "A\u017f\u017fet": "c"}`), `appears twice`},
		{"wrong type", def(`{"ad": {"position": "pre", "count": "2", "default": [{"asset": "a"}]}}`), "count: a JSON string is not a whole number"},
		{"fraction", def(`{"ad": {"position": "pre", "count": 1.5, "default": [{"asset": "a"}]}}`), "count"},
		{"deep", strings.Repeat("[", 20) + strings.Repeat("]", 20), "nested deeper"},
		// The playlist.
		{"bad id", `{"id": "a.b", "entries": [{"asset": "a"}]}`, `id: "a.b" is not a playlist id`},
		{"bad user", `{"user": "-x", "entries": [{"asset": "a"}]}`, `user: "-x" is not a user name`},
		{"no entries", `{"id": "p"}`, "entries: none"},
		{"empty entries", `{"id": "p", "entries": []}`, "entries: none"},
		{"too many entries", def(strings.Repeat(`{"asset": "a"},`, MaxEntries) + `{"asset": "a"}`), "entries: 201 entries, more than 200"},
		// Entries.
		{"empty entry", def(`{"asset": "a"}, {}`), "entries[1]: has none of them: give exactly one of asset, playlist or ad"},
		{"two kinds", def(`{"asset": "a", "playlist": "b"}`), "entries[0]: has asset and playlist"},
		{"three kinds", def(`{"asset": "a", "playlist": "b", "ad": {"position": "pre"}}`), "has asset and playlist and ad"},
		{"asset dot", def(`{"asset": "a.mp4"}`), `entries[0].asset: "a.mp4" is not an asset id`},
		{"asset underscore first", def(`{"asset": "_a"}`), `entries[0].asset`},
		{"asset too long", def(`{"asset": "` + long + `"}`), `entries[0].asset`},
		{"asset slash", def(`{"asset": "a/b"}`), `entries[0].asset`},
		{"negative start", def(`{"asset": "a", "start": -1}`), "entries[0].start: -1 is negative"},
		{"end before start", def(`{"asset": "a", "start": 5, "end": 5}`), "entries[0].end: 5 is not after start 5"},
		{"end negative", def(`{"asset": "a", "end": -3}`), "entries[0].end: -3 is negative"},
		{"huge time", def(`{"asset": "a", "end": 1e8}`), "entries[0].end: 100000000 is more than 10000000 seconds"},
		{"tiny time", def(`{"asset": "a", "start": 1e-40}`), "entries[0].start: 1e-40 has more than 32 digits"},
		{"bad playlist", def(`{"playlist": "x y"}`), `entries[0].playlist: "x y" is not a playlist id`},
		{"self", def(`{"playlist": "p"}`), `entries[0].playlist: "p" is this playlist itself`},
		{"playlist clipped", def(`{"playlist": "q", "start": 3}`), "entries[0].start: only an asset entry is clipped"},
		{"ad clipped", def(`{"ad": {"position": "pre", "default": [{"asset": "a"}]}, "end": 3}`), "entries[0].end: only an asset entry is clipped"},
		{"skip percent", def(`{"asset": "a", "rules": {"skip_after_percent": 101}}`), "entries[0].rules.skip_after_percent: 101 out of 0-100"},
		{"skip percent negative", def(`{"asset": "a", "rules": {"skip_after_percent": -1}}`), "skip_after_percent: -1"},
		// Ad slots.
		{"no position", def(`{"ad": {"default": [{"asset": "a"}]}}`), "entries[0].ad.position: missing"},
		{"bad position", def(`{"ad": {"position": "middle", "default": [{"asset": "a"}]}}`), `entries[0].ad.position: "middle" is not`},
		{"at on pre", def(`{"ad": {"position": "pre", "at": 3, "default": [{"asset": "a"}]}}`), "entries[0].ad.at: only a mid-roll has a time"},
		{"at on post", def(`{"ad": {"position": "post", "at": 3, "default": [{"asset": "a"}]}}`), "entries[0].ad.at"},
		{"at negative", def(`{"ad": {"position": "mid", "at": -3, "default": [{"asset": "a"}]}}`), "entries[0].ad.at: -3 is negative"},
		{"count", def(`{"ad": {"position": "pre", "count": 11, "default": [{"asset": "a"}]}}`), "entries[0].ad.count: 11 out of 0-10"},
		{"count negative", def(`{"ad": {"position": "pre", "count": -1, "default": [{"asset": "a"}]}}`), "entries[0].ad.count: -1"},
		{"no ads", def(`{"asset": "a"}, {"ad": {"position": "pre"}}`), "entries[1].ad: no ads: give pools or a default"},
		{"too many pools", def(pools(MaxPools + 1)), "entries[0].ad.pools: 51 pools, more than 50"},
		{"empty pool", def(`{"ad": {"position": "pre", "pools": [{"when": {}, "ads": []}]}}`), "entries[0].ad.pools[0].ads: none"},
		{"too many pool ads", def(`{"ad": {"position": "pre", "pools": [{"when": {}, "ads": [` + ads(MaxAds+1) + `]}]}}`), "entries[0].ad.pools[0].ads: 101 ads, more than 100"},
		{"too many default ads", def(`{"ad": {"position": "pre", "default": [` + ads(MaxAds+1) + `]}}`), "entries[0].ad.default: 101 ads"},
		{"ad without asset", def(`{"ad": {"position": "pre", "default": [{"start": 1}]}}`), "entries[0].ad.default[0].asset: missing"},
		{"ad bad asset", def(`{"ad": {"position": "pre", "default": [{"asset": "a"}, {"asset": "b.c"}]}}`), `entries[0].ad.default[1].asset: "b.c"`},
		{"ad clip", def(`{"ad": {"position": "pre", "default": [{"asset": "a", "start": 4, "end": 2}]}}`), "entries[0].ad.default[0].end: 2 is not after start 4"},
		// Targeting.
		{"country", def(`{"ad": {"position": "pre", "pools": [{"when": {"country": ["DE", "DEU"]}, "ads": [{"asset": "a"}]}]}}`), `entries[0].ad.pools[0].when.country[1]: "DEU" is not a country code`},
		{"country digits", def(`{"ad": {"position": "pre", "pools": [{"when": {"country": ["D1"]}, "ads": [{"asset": "a"}]}]}}`), `when.country[0]`},
		{"language", def(`{"ad": {"position": "pre", "pools": [{"when": {"language": ["de-CH"]}, "ads": [{"asset": "a"}]}]}}`), `when.language[0]: "de-CH" is not a primary language subtag`},
		{"device", def(`{"ad": {"position": "pre", "pools": [{"when": {"device": [""]}, "ads": [{"asset": "a"}]}]}}`), `when.device[0]: "" is not a device`},
		{"profile fields", def(`{"ad": {"position": "pre", "pools": [{"when": {"profile": {` + profile(17) + `}}, "ads": [{"asset": "a"}]}]}}`), "when.profile: 17 fields, more than 16"},
		{"profile field name", def(`{"ad": {"position": "pre", "pools": [{"when": {"profile": {"a b": ["v"]}}, "ads": [{"asset": "a"}]}]}}`), `when.profile: field "a b" is not a name`},
		{"profile no values", def(`{"ad": {"position": "pre", "pools": [{"when": {"profile": {"tier": []}}, "ads": [{"asset": "a"}]}]}}`), "when.profile.tier: no values"},
		{"profile empty value", def(`{"ad": {"position": "pre", "pools": [{"when": {"profile": {"tier": ["x", ""]}}, "ads": [{"asset": "a"}]}]}}`), `when.profile.tier[1]: "" is not a value`},
		{"hours from", def(`{"asset": "a"}, {"asset": "b"}, {"asset": "c"}, {"ad": {"position": "pre", "pools": [{"when": {"hours": {"from": 25, "to": 3}}, "ads": [{"asset": "a"}]}]}}`),
			"invalid playlist: entries[3].ad.pools[0].when.hours: from 25 out of 0-24"},
		{"hours to", def(`{"ad": {"position": "pre", "pools": [{"when": {"hours": {"from": 2, "to": -1}}, "ads": [{"asset": "a"}]}]}}`), "when.hours: to -1 out of 0-24"},
		{"hours empty", def(`{"ad": {"position": "pre", "pools": [{"when": {"hours": {"from": 5, "to": 5}}, "ads": [{"asset": "a"}]}]}}`), "when.hours: from and to are both 5"},
		{"hours zero", def(`{"ad": {"position": "pre", "pools": [{"when": {"hours": {}}, "ads": [{"asset": "a"}]}]}}`), "when.hours: from and to are both 0"},
		{"pool second", def(`{"ad": {"position": "pre", "pools": [{"when": {}, "ads": [{"asset": "a"}]}, {"when": {"country": ["x"]}, "ads": [{"asset": "a"}]}]}}`), "entries[0].ad.pools[1].when.country[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse(strings.NewReader(tc.json), 1<<20)
			if err == nil {
				t.Fatalf("parsed %+v", p)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseLimit(t *testing.T) {
	body := def(`{"asset": "a"}`)
	if _, err := Parse(strings.NewReader(body), int64(len(body))); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	_, err := Parse(strings.NewReader(body), int64(len(body)-1))
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	// An endless body is read up to the limit only.
	_, err = Parse(endless{}, 1000)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("endless body: %v", err)
	}
	// A failing reader is not the user's fault.
	boom := errors.New("boom")
	if _, err := Parse(failing{boom}, 1000); !errors.Is(err, boom) || errors.Is(err, ErrInvalid) {
		t.Fatalf("failing reader: %v", err)
	}
}

type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

type failing struct{ err error }

func (f failing) Read([]byte) (int, error) { return 0, f.err }

func TestParseCanonical(t *testing.T) {
	// Empty lists and maps come out nil, as they marshal.
	p, err := Parse(strings.NewReader(def(`{"ad": {"position": "pre", "pools": [{"when": {"country": [], "language": [], "device": [], "profile": {}}, "ads": [{"asset": "a"}]}], "default": []}}`)), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	w := p.Entries[0].Ad.Pools[0].When
	if w.Country != nil || w.Language != nil || w.Device != nil || w.Profile != nil || p.Entries[0].Ad.Default != nil {
		t.Errorf("not canonical: %#v", p.Entries[0].Ad)
	}
	checkRoundTrip(t, p)
}

func TestValidateDirect(t *testing.T) {
	// Values that JSON cannot carry but Go callers can.
	for _, tc := range []struct {
		name string
		p    Playlist
		want string
	}{
		{"NaN start", Playlist{Entries: []Entry{{Asset: "a", Start: math.NaN()}}}, "entries[0].start: not a finite number"},
		{"Inf end", Playlist{Entries: []Entry{{Asset: "a", End: math.Inf(1)}}}, "entries[0].end: not a finite number"},
		{"NaN at", Playlist{Entries: []Entry{{Ad: &AdSlot{Position: MidRoll, At: math.NaN(), Default: []AdRef{{Asset: "a"}}}}}}, "entries[0].ad.at: not a finite number"},
		{"NaN ad end", Playlist{Entries: []Entry{{Ad: &AdSlot{Position: PreRoll, Default: []AdRef{{Asset: "a", End: math.NaN()}}}}}}, "entries[0].ad.default[0].end: not a finite number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate: %v, want %q", err, tc.want)
			}
		})
	}
	ok := Playlist{ID: "p", User: "u", Entries: []Entry{{Asset: "a", Start: 0.5, End: 1}, {Ad: &AdSlot{Position: MidRoll, At: 0, Default: []AdRef{{Asset: "b"}}}}}}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid: %v", err)
	}
}

// checkRoundTrip checks that p marshals and parses back to itself.
func checkRoundTrip(t *testing.T, p *Playlist) {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	q, err := Parse(strings.NewReader(string(b)), int64(len(b)))
	if err != nil {
		t.Fatalf("parsing %s again: %v", b, err)
	}
	if !p.Created.Equal(q.Created) || p.Created.Format(time.RFC3339Nano) != q.Created.Format(time.RFC3339Nano) {
		t.Fatalf("created %v, then %v", p.Created, q.Created)
	}
	pc, qc := *p, *q
	pc.Created, qc.Created = time.Time{}, time.Time{}
	if !reflect.DeepEqual(pc, qc) {
		t.Fatalf("round trip changed the playlist:\n%#v\n%#v\nJSON %s", pc, qc, b)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(validDef)
	f.Add(def(`{"asset": "a"}`))
	f.Add(def(`{"asset": "a", "start": 0.1, "end": 1e3}, {"playlist": "q", "rules": {}}`))
	f.Add(def(`{"ad": {"position": "mid", "at": 12.5, "count": 3, "pools": [{"when": {"hours": {"from": 1, "to": 24}}, "ads": [{"asset": "x"}]}]}}`))
	f.Add(def(`{"ad": {"position": "pre", "pools": [{"when": {"country": [], "profile": {"k": ["v", "V"]}}, "ads": [{"asset": "a"}]}]}}`))
	f.Add(`{"id": "p", "created": "2024-05-06T07:08:09.123+02:00", "entries": [{"asset": "a"}]}`)
	f.Add(`{"title": "\u00e9\ud800", "entries": [{"asset": "a"}]}`)
	f.Add(def(`{"asset": "a", "Asset": "b"}`))
	f.Add(def(`{"ad": {"position": "pre", "pools": [{"when": {"hours": {"from": 25, "to": 3}}, "ads": [{"asset": "a"}]}]}}`))
	f.Add(`{"id": "p", "entries": [{"asset": "a"}]} {}`)
	f.Add(`{"id": `)
	f.Add(`null`)
	f.Add(``)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(strings.NewReader(s), 1<<16)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("parsed, then Validate: %v", err)
		}
		checkRoundTrip(t, p)
	})
}
