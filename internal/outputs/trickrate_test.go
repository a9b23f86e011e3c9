package outputs_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	mp4build "github.com/jitstream/jitstream/internal/build/mp4"
	"github.com/jitstream/jitstream/internal/outputs"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/jitserver"
)

func TestParseTrick(t *testing.T) {
	for _, tc := range []struct {
		query string
		rate  int
		pos   time.Duration
		ok    bool
	}{
		{"rate=8", 8, 0, true},
		{"rate=-4&pos=12.5", -4, 12500 * time.Millisecond, true},
		{"rate=2&pos=2.0004", 2, 2 * time.Second, true}, // rounded to the ms
		{"rate=3", 3, 0, true},                          // TrickRate says no
		{"rate=", 0, 0, false},
		{"rate=abc", 0, 0, false},
		{"rate=2.5", 0, 0, false},
		{"rate=2&pos=-1", 0, 0, false},
		{"rate=2&pos=NaN", 0, 0, false},
		{"rate=2&pos=x", 0, 0, false},
		{"rate=2&start=1", 0, 0, false},
		{"rate=2&end=5", 0, 0, false},
		{"rate=" + strings.Repeat("0", 31) + "2", 2, 0, true},  // 32 characters
		{"rate=" + strings.Repeat("0", 32) + "2", 0, 0, false}, // 33
		{"rate=2&pos=" + strings.Repeat("0", 32) + "1", 0, 0, false},
	} {
		q, _ := url.ParseQuery(tc.query)
		rate, pos, err := outputs.ParseTrick(q)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, outputs.ErrBadQuery)) {
			t.Errorf("ParseTrick(%q) error = %v, want ok=%v", tc.query, err, tc.ok)
			continue
		}
		if tc.ok && (rate != tc.rate || pos != tc.pos) {
			t.Errorf("ParseTrick(%q) = %d, %v, want %d, %v", tc.query, rate, pos, tc.rate, tc.pos)
		}
	}
}

// asset is the part of the API's asset JSON the tests read.
type asset struct {
	ID string `json:"id"`
}

func TestOpenDelivery(t *testing.T) {
	e := jitserver.New(t)
	dense := jitserver.Ingest[asset](t, e, fixtures.TwoChapters(t)...).ID
	sparse := jitserver.Ingest[asset](t, e, fixtures.SparseKeyframes(t)).ID
	o := outputs.New(e.Library, 0)
	ctx := context.Background()
	user := jitserver.User
	open := func(name, query string) (*outputs.Delivery, string) {
		t.Helper()
		q, err := url.ParseQuery(query)
		if err != nil {
			t.Fatal(err)
		}
		f, d, err := o.OpenDelivery(ctx, user, name, q)
		if err != nil {
			t.Fatalf("OpenDelivery(%s?%s): %v", name, query, err)
		}
		g, err := o.Open(ctx, user, name, q)
		if err != nil || g != f {
			t.Fatalf("Open(%s?%s) = %p, %v; OpenDelivery gave %p", name, query, g, err, f)
		}
		if f.ContentType != "video/mp4" {
			t.Errorf("%s?%s: content type %q", name, query, f.ContentType)
		}
		return &d, f.ETag
	}
	etag := func(name, query string) string {
		t.Helper()
		_, tag := open(name, query)
		return tag
	}
	for _, tc := range []struct {
		name, query string
		want        outputs.Delivery
		fallback    bool   // the ordinary file of query sameAs
		sameAs      string // query of that file
	}{
		{dense + ".mp4", "", outputs.Delivery{Speed: 1}, false, ""},
		{dense + ".mp4", "start=2", outputs.Delivery{Speed: 1}, false, ""},
		{dense + ".mp4", "rate=8&pos=2", outputs.Delivery{Speed: 1, Trick: true, Rate: 8}, false, ""},
		{dense + ".frag.mp4", "rate=-16&pos=5", outputs.Delivery{Speed: 1, Trick: true, Rate: -16}, false, ""},
		{dense + "/" + fixtures.Chapter1Name, "rate=8", outputs.Delivery{Speed: 1}, false, ""}, // originals ignore it
		// Sparse key frames: the ordinary clip from pos, 4 times faster;
		// rewinding 20 s or more from a 20 s recording restarts it.
		{sparse + ".mp4", "rate=4&pos=3", outputs.Delivery{Speed: 4, Rate: 4}, true, "start=3"},
		{sparse + ".frag.mp4", "rate=8&pos=3", outputs.Delivery{Speed: 8, Rate: 8}, true, "start=3"},
		{sparse + ".mp4", "rate=-2&pos=15", outputs.Delivery{Speed: 1, Rate: -2}, true, ""},
		{sparse + ".mp4", "rate=16&pos=0", outputs.Delivery{Speed: 1, Trick: true, Rate: 16}, false, ""},
	} {
		d, tag := open(tc.name, tc.query)
		if *d != tc.want {
			t.Errorf("%s?%s: delivery %+v, want %+v", tc.name, tc.query, *d, tc.want)
		}
		if tc.fallback {
			if want := etag(tc.name, tc.sameAs); tag != want {
				t.Errorf("%s?%s: ETag %s, want the ordinary file's (?%s) %s", tc.name, tc.query, tag, tc.sameAs, want)
			}
		}
	}

	// Trick files are cached by rate and position in ms.
	q1, q2 := url.Values{"rate": {"8"}, "pos": {"2"}}, url.Values{"rate": {"8"}, "pos": {"2.0003"}}
	f1, _ := o.Open(ctx, user, dense+".mp4", q1)
	f2, _ := o.Open(ctx, user, dense+".mp4", q2)
	if f1 == nil || f1 != f2 || f1.Name != dense+".mp4" || len(f1.Timeline) == 0 {
		t.Errorf("trick file %p (%+v) and %p: want the same cached file, named, with a timeline", f1, f1, f2)
	}

	for _, tc := range []struct {
		query string
		want  error
	}{
		{"rate=3", mp4build.ErrTrickRate},
		{"rate=8&pos=99", mp4build.ErrTrickRate},
		{"rate=8&pos=7.9", mp4build.ErrTrickRate}, // no key frame after it
		{"rate=x", outputs.ErrBadQuery},
		{"rate=2&start=1", outputs.ErrBadQuery},
	} {
		q, _ := url.ParseQuery(tc.query)
		if _, _, err := o.OpenDelivery(ctx, user, dense+".mp4", q); !errors.Is(err, tc.want) {
			t.Errorf("?%s: error %v, want %v", tc.query, err, tc.want)
		}
	}
}
