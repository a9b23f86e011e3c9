package live

import (
	"strings"
	"testing"
	"time"
)

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
		dvr    float64
		ended  bool
		want   []string // lines, in order
		absent []string
	}{
		{"window", rep2s(1, 2, 3, 4, 5, 6, 7, 8), 8, false,
			[]string{"#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:5", "#EXT-X-PROGRAM-DATE-TIME:2025-01-01T00:00:08.000Z", "5.m4s", "8.m4s"},
			[]string{"4.m4s", "#EXT-X-ENDLIST", "#EXT-X-PLAYLIST-TYPE"}},
		{"window at least 3 target durations", rep2s(1, 2, 3, 4, 5), 1, false,
			[]string{"#EXT-X-MEDIA-SEQUENCE:3", "3.m4s"}, []string{"2.m4s"}},
		{"event", rep2s(1, 2, 3, 4, 5), 0, false,
			[]string{"#EXT-X-MEDIA-SEQUENCE:1", "#EXT-X-PLAYLIST-TYPE:EVENT", "1.m4s"}, []string{"#EXT-X-ENDLIST"}},
		{"ended", rep2s(1, 2, 3), 0, true,
			[]string{"#EXT-X-PLAYLIST-TYPE:VOD", "3.m4s", "#EXT-X-ENDLIST"}, nil},
		{"gap", rep2s(1, 2, 4), 0, false,
			[]string{"2.m4s", "#EXTINF:2.000000,", "#EXT-X-GAP", "3.m4s", "4.m4s"}, nil},
	}
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := &State{User: "u", Name: "n", Start: start, Ended: tc.ended, Reps: []*Rep{tc.rep}}
			got := string(mediaPlaylist(st, tc.rep, tc.dvr))
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
	b, err := mpd(st, 0, time.Unix(100, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`type="dynamic"`, `startNumber="1"`, `<S t="0" d="2000" r="5"/>`, `availabilityStartTime="1970-01-01T00:00:00.000Z"`} {
		if !strings.Contains(string(b), w) {
			t.Errorf("no %s in\n%s", w, b)
		}
	}
	st.Ended = true
	b, _ = mpd(st, 30, time.Unix(100, 0))
	if !strings.Contains(string(b), `type="static" mediaPresentationDuration="PT12.000S"`) {
		t.Errorf("ended MPD:\n%s", b)
	}
}
