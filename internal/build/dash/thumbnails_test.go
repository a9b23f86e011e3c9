package dash

import (
	"bytes"
	"encoding/xml"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/testutil/mediatest"
)

// tImageSet is an image AdaptationSet as the tests read it.
type tImageSet struct {
	ID               int     `xml:"id,attr"`
	ContentType      string  `xml:"contentType,attr"`
	MimeType         string  `xml:"mimeType,attr"`
	SegmentAlignment *string `xml:"segmentAlignment,attr"`
	StartWithSAP     *string `xml:"startWithSAP,attr"`
	Essential        []tDesc `xml:"EssentialProperty"`
	Reps             []struct {
		ID        string  `xml:"id,attr"`
		Bandwidth int64   `xml:"bandwidth,attr"`
		Codecs    *string `xml:"codecs,attr"`
		Width     int     `xml:"width,attr"`
		Height    int     `xml:"height,attr"`
		Essential []tDesc `xml:"EssentialProperty"`
		Template  struct {
			Timescale      int       `xml:"timescale,attr"`
			Duration       int64     `xml:"duration,attr"`
			Initialization *string   `xml:"initialization,attr"`
			Media          string    `xml:"media,attr"`
			StartNumber    *int      `xml:"startNumber,attr"`
			Timeline       *struct{} `xml:"SegmentTimeline"`
		} `xml:"SegmentTemplate"`
	} `xml:"Representation"`
}

var imageSetXML = regexp.MustCompile(`(?s)\n\s*<AdaptationSet[^>]*contentType="image".*?</AdaptationSet>`)

func TestThumbnailSet(t *testing.T) {
	ix := mediatest.Synth(60, 30, 60, false) // 60 s (and a few ms of audio)
	segs := ix.Segments(0)
	plain, err := MPD(ix, segs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		set         ThumbnailSet
		repID       string
		bandwidth   int64
		w, h        int
		grid        string
		durationMS  int64
		exclude     []uint32
		noTrickMode bool
	}{
		{"one sheet", ThumbnailSet{Cols: 10, Rows: 7, TileWidth: 160, TileHeight: 90, SheetDuration: 70 * time.Second,
			Sheets: 1, MediaTemplate: "../thumbs/sprite-$Number$.jpg"},
			"thumbnails", 10800, 1600, 630, "10x7", 70000, nil, false},
		{"sheets of 1.0005 s tiles, own id and bandwidth, no trick mode", ThumbnailSet{Cols: 5, Rows: 2, TileWidth: 320, TileHeight: 180,
			SheetDuration: 10005 * time.Millisecond, Sheets: 6, MediaTemplate: "img/$Number$.jpg", ID: "tiles", Bandwidth: 5000},
			"tiles", 5000, 1600, 360, "5x2", 10005, nil, true},
		{"sub-millisecond sheet duration rounds up", ThumbnailSet{Cols: 1, Rows: 1, TileWidth: 160, TileHeight: 120,
			SheetDuration: 60*time.Second + 10*time.Millisecond + 700*time.Microsecond, Sheets: 1, MediaTemplate: "t/$Number$.jpg"},
			"thumbnails", 239, 160, 120, "1x1", 60011, nil, false}, // 160*120*0.75 bits per 60.0107 s
		{"audio only", ThumbnailSet{Cols: 10, Rows: 10, TileWidth: 160, TileHeight: 90, SheetDuration: 100 * time.Second,
			Sheets: 1, MediaTemplate: "../thumbs/sprite-$Number$.jpg"},
			"thumbnails", 10800, 1600, 900, "10x10", 100000, []uint32{1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set := tc.set
			opt := Options{Exclude: tc.exclude, NoTrickMode: tc.noTrickMode}
			without, err := MPD(ix, segs, opt)
			if err != nil {
				t.Fatal(err)
			}
			opt.Thumbnails = &set
			b, err := MPD(ix, segs, opt)
			if err != nil {
				t.Fatal(err)
			}
			if set != tc.set {
				t.Error("MPD changed the thumbnail set")
			}
			// The rest of the MPD is unchanged.
			if loc := imageSetXML.FindIndex(b); loc == nil ||
				!bytes.Equal(append(append([]byte{}, b[:loc[0]]...), b[loc[1]:]...), without) {
				t.Fatalf("MPD with thumbnails is not the one without and an image set:\n%s", b)
			}
			var m struct {
				Sets []tImageSet `xml:"Period>AdaptationSet"`
			}
			if err := xml.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			last := m.Sets[len(m.Sets)-1]
			if last.ID != len(m.Sets) || last.ContentType != "image" || last.MimeType != "image/jpeg" ||
				last.SegmentAlignment != nil || last.StartWithSAP != nil || len(last.Essential) != 0 || len(last.Reps) != 1 {
				t.Fatalf("image set %+v", last)
			}
			r := last.Reps[0]
			st := r.Template
			if r.ID != tc.repID || r.Bandwidth != tc.bandwidth || r.Codecs != nil || r.Width != tc.w || r.Height != tc.h {
				t.Errorf("representation %s bandwidth %d %dx%d, want %s %d %dx%d", r.ID, r.Bandwidth, r.Width, r.Height,
					tc.repID, tc.bandwidth, tc.w, tc.h)
			}
			if len(r.Essential) != 1 || r.Essential[0].Scheme != "http://dashif.org/thumbnail_tile" ||
				r.Essential[0].Value != tc.grid {
				t.Errorf("EssentialProperty %+v, want thumbnail_tile %s", r.Essential, tc.grid)
			}
			if st.Timescale != 1000 || st.Duration != tc.durationMS || st.Media != set.MediaTemplate || st.StartNumber == nil ||
				*st.StartNumber != 0 || st.Initialization != nil || st.Timeline != nil {
				t.Errorf("SegmentTemplate %+v, want timescale 1000, duration %d, media %s, startNumber 0", st, tc.durationMS, set.MediaTemplate)
			}
		})
	}
	if !bytes.Contains(plain, []byte(`segmentAlignment="true" startWithSAP="1"`)) || bytes.Contains(plain, []byte(`contentType="image"`)) {
		t.Errorf("MPD without thumbnails:\n%s", plain)
	}

	// Sets that do not fit.
	good := ThumbnailSet{Cols: 10, Rows: 10, TileWidth: 160, TileHeight: 90, SheetDuration: 60 * time.Second, Sheets: 2, MediaTemplate: "x/$Number$.jpg"}
	for _, bad := range []struct {
		name string
		edit func(*ThumbnailSet)
		want string
	}{
		{"no columns", func(s *ThumbnailSet) { s.Cols = 0 }, "tiles"},
		{"no tile height", func(s *ThumbnailSet) { s.TileHeight = 0 }, "tiles"},
		{"no duration", func(s *ThumbnailSet) { s.SheetDuration = 0 }, "sheets of"},
		{"too few sheets", func(s *ThumbnailSet) { s.Sheets = 1 }, "do not cover"},
		{"no template", func(s *ThumbnailSet) { s.MediaTemplate = "" }, "template"},
	} {
		s := good
		bad.edit(&s)
		if _, err := MPD(ix, segs, Options{Thumbnails: &s}); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want an error about %q", bad.name, err, bad.want)
		}
	}
	if _, err := MPD(ix, segs, Options{Thumbnails: &good}); err != nil {
		t.Errorf("good set: %v", err)
	}
}
