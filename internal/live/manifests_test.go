package live

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

// viewQ is the view of query q; it fails the test when q is invalid.
func viewQ(t *testing.T, q string) view {
	t.Helper()
	vs, err := url.ParseQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	v, err := viewOf(vs, DefaultDVR)
	if err != nil {
		t.Fatalf("view of %q: %v", q, err)
	}
	return v
}

// playlistText is mediaPlaylist's text; it fails the test on an error.
func playlistText(t *testing.T, st *State, r *Rep, v view) string {
	t.Helper()
	b, err := mediaPlaylist(st, r, v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rep2s is a representation of 2 s fragments (timescale 1000) with the
// given sequence numbers, each at its natural time.
func rep2s(seqs ...int) *Rep {
	r := &Rep{Name: "stream0", Kind: "video", Codec: "avc1.64000d", Timescale: 1000, Init: "init"}
	for _, s := range seqs {
		r.Frags = append(r.Frags, Frag{Seq: s, Key: "k", Size: 1000, Time: int64(s-1) * 2000, Dur: 2000})
	}
	return r
}

// TestMediaPlaylist: windows, gaps and the end of live media playlists.
func TestMediaPlaylist(t *testing.T) {
	tests := []struct {
		name   string
		rep    *Rep
		query  string
		ended  bool
		want   []string // lines, in order
		absent []string
	}{
		{"window", rep2s(1, 2, 3, 4, 5, 6, 7, 8), "dvr=8", false,
			[]string{"#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:5", "#EXT-X-PROGRAM-DATE-TIME:2025-01-01T00:00:08.000Z", "5.m4s", "8.m4s"},
			[]string{"4.m4s", "#EXT-X-ENDLIST", "#EXT-X-PLAYLIST-TYPE"}},
		{"window at least 3 target durations", rep2s(1, 2, 3, 4, 5), "dvr=1", false,
			[]string{"#EXT-X-MEDIA-SEQUENCE:3", "3.m4s"}, []string{"2.m4s"}},
		{"default window", rep2s(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17), "", false,
			[]string{"#EXT-X-MEDIA-SEQUENCE:3", "3.m4s", "17.m4s"}, []string{"\n2.m4s", "#EXT-X-PLAYLIST-TYPE"}},
		{"event", rep2s(1, 2, 3, 4, 5), "dvr=0", false,
			[]string{"#EXT-X-MEDIA-SEQUENCE:1", "#EXT-X-PLAYLIST-TYPE:EVENT", "1.m4s"}, []string{"#EXT-X-ENDLIST"}},
		{"type event", rep2s(1, 2, 3, 4, 5), "type=event", false,
			[]string{"#EXT-X-MEDIA-SEQUENCE:1", "#EXT-X-PLAYLIST-TYPE:EVENT", "1.m4s"}, []string{"#EXT-X-ENDLIST"}},
		{"ended", rep2s(1, 2, 3), "dvr=0", true,
			[]string{"#EXT-X-PLAYLIST-TYPE:VOD", "3.m4s", "#EXT-X-ENDLIST"}, nil},
		{"ended window", rep2s(1, 2, 3, 4, 5, 6), "dvr=4", true,
			[]string{"#EXT-X-MEDIA-SEQUENCE:1", "1.m4s", "6.m4s", "#EXT-X-ENDLIST"}, nil},
		{"gap", rep2s(1, 2, 4), "dvr=0", false,
			[]string{"2.m4s", "#EXTINF:2.000000,", "#EXT-X-GAP", "3.m4s", "4.m4s"}, nil},
		{"start-over", rep2s(1, 2, 3, 4, 5, 6, 7, 8), "vbegin=2025-01-01T00:00:05Z", false,
			[]string{"#EXT-X-MEDIA-SEQUENCE:3", "#EXT-X-PLAYLIST-TYPE:EVENT", "#EXT-X-PROGRAM-DATE-TIME:2025-01-01T00:00:04.000Z", "3.m4s", "8.m4s"},
			[]string{"2.m4s", "#EXT-X-ENDLIST"}},
		{"time-shift range reached", rep2s(1, 2, 3, 4, 5, 6, 7, 8), "vbegin=2025-01-01T00:00:05Z&vend=2025-01-01T00:00:09Z", false,
			[]string{"#EXT-X-MEDIA-SEQUENCE:3", "#EXT-X-PLAYLIST-TYPE:VOD", "3.m4s", "4.m4s", "5.m4s", "#EXT-X-ENDLIST"},
			[]string{"2.m4s", "6.m4s"}},
		{"time-shift range in seconds since 1970", rep2s(1, 2, 3, 4, 5, 6, 7, 8), "vbegin=1735689605&vend=1735689609.5", false,
			[]string{"#EXT-X-MEDIA-SEQUENCE:3", "#EXT-X-PLAYLIST-TYPE:VOD", "3.m4s", "5.m4s", "#EXT-X-ENDLIST"},
			[]string{"2.m4s", "6.m4s"}},
		{"time-shift range not reached", rep2s(1, 2, 3, 4), "vend=2025-01-01T00:00:20Z", false,
			[]string{"#EXT-X-MEDIA-SEQUENCE:1", "#EXT-X-PLAYLIST-TYPE:EVENT", "1.m4s", "4.m4s"}, []string{"#EXT-X-ENDLIST"}},
		{"time-shift range, stream ended before it", rep2s(1, 2, 3, 4), "vbegin=2025-01-01T00:00:03Z&vend=2025-01-01T00:00:20Z", true,
			[]string{"#EXT-X-MEDIA-SEQUENCE:2", "#EXT-X-PLAYLIST-TYPE:VOD", "2.m4s", "4.m4s", "#EXT-X-ENDLIST"}, []string{"1.m4s"}},
	}
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := &State{User: "u", Name: "n", Start: start, Ended: tc.ended, Reps: []*Rep{tc.rep}}
			got := playlistText(t, st, tc.rep, viewQ(t, tc.query))
			pos := 0
			for _, w := range tc.want {
				i := strings.Index(got[pos:], w+"\n")
				if i < 0 {
					t.Fatalf("no %q (in order) in\n%s", w, got)
				}
				pos += i
			}
			for _, a := range tc.absent {
				if strings.Contains(got, a) {
					t.Errorf("%q in\n%s", a, got)
				}
			}
		})
	}
}

// TestMPD: the segment timeline counts every number, gaps included.
func TestMPD(t *testing.T) {
	r := rep2s(1, 2, 3, 5, 6)
	st := &State{User: "u", Name: "n", Start: time.Unix(0, 0), Reps: []*Rep{r}}
	b, err := mpd(st, view{}, time.Unix(100, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`type="dynamic"`, `startNumber="1"`, `<S t="0" d="2000" r="5"/>`, `availabilityStartTime="1970-01-01T00:00:00.000Z"`} {
		if !strings.Contains(string(b), w) {
			t.Errorf("no %s in\n%s", w, b)
		}
	}
	// A time-shift range that the stream has reached is static, from 0.
	b, err = mpd(st, viewQ(t, "vbegin=3&vend=7"), time.Unix(100, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`type="static" mediaPresentationDuration="PT6.000S"`, `<Period id="0" start="PT0.000S">`,
		`startNumber="2" presentationTimeOffset="2000"`, `<S t="2000" d="2000" r="2"/>`} {
		if !strings.Contains(string(b), w) {
			t.Errorf("time-shift MPD: no %s in\n%s", w, b)
		}
	}
	if _, err := mpd(st, viewQ(t, "vbegin=30"), time.Unix(100, 0)); !errors.Is(err, errNoStream) {
		t.Errorf("MPD of a range after the live edge: %v", err)
	}
	st.Ended = true
	b, _ = mpd(st, view{dvr: 30}, time.Unix(100, 0))
	if !strings.Contains(string(b), `type="static" mediaPresentationDuration="PT12.000S"`) {
		t.Errorf("ended MPD:\n%s", b)
	}
}

// TestViewOf: the query parameters of live manifests.
func TestViewOf(t *testing.T) {
	tests := []struct {
		query string
		want  view
		err   bool
	}{
		{"", view{dvr: DefaultDVR.Seconds()}, false},
		{"dvr=12.5", view{dvr: 12.5}, false},
		{"dvr=0", view{}, false},
		{"type=event", view{}, false},
		{"vbegin=2025-01-01T00:00:05Z", view{begin: time.Date(2025, 1, 1, 0, 0, 5, 0, time.UTC)}, false},
		{"vend=1735689600", view{end: time.Unix(1735689600, 0)}, false},
		{"dvr=x", view{}, true},
		{"dvr=-1", view{}, true},
		{"dvr=NaN", view{}, true},
		{"dvr=1&dvr=2", view{}, true},
		{"type=vod", view{}, true},
		{"vbegin=yesterday", view{}, true},
		{"vbegin=-5", view{}, true},
		{"vbegin=10&vend=10", view{}, true},
		{"vbegin=10&dvr=30", view{}, true},
		{"vend=10&type=event", view{}, true},
		{"vbegin=" + strings.Repeat("1", 50), view{}, true},
	}
	for _, tc := range tests {
		q, _ := url.ParseQuery(tc.query)
		v, err := viewOf(q, DefaultDVR)
		if tc.err {
			if !errors.Is(err, errBadQuery) {
				t.Errorf("%q: %+v, %v; want a bad query", tc.query, v, err)
			}
			continue
		}
		if err != nil || v.dvr != tc.want.dvr || !v.begin.Equal(tc.want.begin) || !v.end.Equal(tc.want.end) {
			t.Errorf("%q: %+v, %v; want %+v", tc.query, v, err, tc.want)
		}
	}
}

// repEpochs is rep2s(1..4) in epoch 0, then an encoder that reconnected:
// epoch 1 from 8 s, numbered 1..3 again with decode times from 0, at
// another timescale.
func repEpochs() (*State, *Rep) {
	r := rep2s(1, 2, 3, 4)
	r.Epochs = []RepEpoch{{Epoch: 0, Init: "i0", Timescale: 1000}, {Epoch: 1, Init: "i1", Timescale: 90000, Offset: 8 * 90000, Base: 4, First: 1}}
	for s := 1; s <= 3; s++ {
		r.Frags = append(r.Frags, Frag{Epoch: 1, Seq: s, Key: "k", Size: 1000, Time: int64(s-1) * 180000, Dur: 180000})
	}
	st := &State{User: "u", Name: "n", Start: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), Reps: []*Rep{r}, Epochs: []Epoch{{N: 1, Start: 8}}}
	return st, r
}

// TestEpochPlaylist: a new epoch follows with a discontinuity and its own
// map, numbered on; the discontinuity sequence counts it once the window
// slid past it.
func TestEpochPlaylist(t *testing.T) {
	tests := []struct {
		name   string
		query  string
		want   []string
		absent []string
	}{
		{"all", "dvr=0", []string{"#EXT-X-MEDIA-SEQUENCE:1", `#EXT-X-MAP:URI="init.mp4"`, "4.m4s", "#EXT-X-DISCONTINUITY",
			`#EXT-X-MAP:URI="init-1.mp4"`, "#EXT-X-PROGRAM-DATE-TIME:2025-01-01T00:00:08.000Z", "#EXTINF:2.000000,", "5.m4s", "7.m4s"},
			[]string{"#EXT-X-DISCONTINUITY-SEQUENCE"}},
		{"window over the junction", "dvr=8", []string{"#EXT-X-MEDIA-SEQUENCE:4", `#EXT-X-MAP:URI="init.mp4"`, "4.m4s", "#EXT-X-DISCONTINUITY", `#EXT-X-MAP:URI="init-1.mp4"`, "7.m4s"},
			[]string{"#EXT-X-DISCONTINUITY-SEQUENCE", "3.m4s"}},
		{"window past the junction", "dvr=4", []string{"#EXT-X-MEDIA-SEQUENCE:5", "#EXT-X-DISCONTINUITY-SEQUENCE:1", `#EXT-X-MAP:URI="init-1.mp4"`, "5.m4s", "7.m4s"},
			[]string{`#EXT-X-MAP:URI="init.mp4"`, "#EXT-X-DISCONTINUITY\n", "4.m4s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, r := repEpochs()
			got := playlistText(t, st, r, viewQ(t, tc.query))
			pos := 0
			for _, w := range tc.want {
				i := strings.Index(got[pos:], w+"\n")
				if i < 0 {
					t.Fatalf("no %q (in order) in\n%s", w, got)
				}
				pos += i
			}
			for _, a := range tc.absent {
				if strings.Contains(got, a) {
					t.Errorf("%q in\n%s", a, got)
				}
			}
		})
	}
	st, r := repEpochs()
	for file, want := range map[string]string{"init.mp4": "i0", "init-1.mp4": "i1", "4.m4s": "k", "5.m4s": "k"} {
		if key, _, err := segmentKey(st, r, file); err != nil || key != want {
			t.Errorf("segmentKey(%s) = %q, %v; want %q", file, key, err, want)
		}
	}
	if key, _, _ := segmentKey(st, r, "8.m4s"); key != fragmentKey("u", "", "stream0", 1, 4) {
		t.Errorf("segmentKey(8.m4s) = %q, want fragment 4 of epoch 1", key)
	}
}

// TestEpochMPD: a Period per epoch, from the epoch's start, with the
// fragments' own decode times mapped by presentationTimeOffset.
func TestEpochMPD(t *testing.T) {
	st, _ := repEpochs()
	b, err := mpd(st, view{}, time.Unix(100, 0))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`<Period id="0" start="PT0.000S">`, `initialization="$RepresentationID$/init.mp4"`, `startNumber="1">`, `<S t="0" d="2000" r="3"/>`,
		`<Period id="1" start="PT8.000S">`, `timescale="90000" initialization="$RepresentationID$/init-1.mp4"`, `startNumber="5">`, `<S t="0" d="180000" r="2"/>`}
	pos := 0
	for _, w := range want {
		i := strings.Index(string(b)[pos:], w)
		if i < 0 {
			t.Fatalf("no %s (in order) in\n%s", w, b)
		}
		pos += i
	}
	// The window keeps the second epoch only.
	b, _ = mpd(st, view{dvr: 4}, time.Unix(100, 0))
	if strings.Contains(string(b), `<Period id="0"`) || !strings.Contains(string(b), `<Period id="1" start="PT8.000S">`) {
		t.Errorf("windowed MPD:\n%s", b)
	}
	// A time-shift range over the junction: both Periods, from 0.
	b, _ = mpd(st, viewQ(t, "vbegin=2025-01-01T00:00:05Z&vend=2025-01-01T00:00:11Z"), time.Unix(100, 0))
	for _, w := range []string{`mediaPresentationDuration="PT8.000S"`, `<Period id="0" start="PT0.000S">`, `<S t="4000" d="2000" r="1"/>`,
		`<Period id="1" start="PT4.000S">`, `<S t="0" d="180000" r="1"/>`} {
		if !strings.Contains(string(b), w) {
			t.Errorf("time-shift MPD over the junction: no %s in\n%s", w, b)
		}
	}
	st.Ended = true
	b, _ = mpd(st, view{}, time.Unix(100, 0))
	if !strings.Contains(string(b), `mediaPresentationDuration="PT14.000S"`) {
		t.Errorf("ended MPD:\n%s", b)
	}
}
