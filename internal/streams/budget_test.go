package streams

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/delivery"
	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/testutil/mediatest"
	"github.com/jitstream/jitstream/internal/vfile"
)

// TestBudgetShort checks which variants of the master manifests are left
// out when the budget is short: an asset with a light and a heavy video
// track (twice the bytes) and an audio track.
func TestBudgetShort(t *testing.T) {
	ix := mediatest.Synth(20, 30, 30, false)
	heavy := mediatest.AddUnalignedVideo(ix, 30)
	heavy.Samples.Size = slices.Clone(heavy.Samples.Size)
	for i := range heavy.Samples.Size {
		heavy.Samples.Size[i] *= 2
	}
	light, audio := ix.Tracks[0], ix.Tracks[1]
	a := &asset{meta: &library.Asset{ID: "rec"}, ix: ix, mix: ix, segs: ix.Segments(4 * time.Second)}

	// Reserve 1 Mbit/s of the budget with a session; the budget leaves
	// room for free more.
	reserve := func(free int64) (*Handler, func()) {
		d, err := delivery.New(delivery.Config{MaxEgress: 1_000_000 + free})
		if err != nil {
			t.Fatal(err)
		}
		f := vfile.New("x", "video/mp4", time.Time{}, "", []vfile.Piece{vfile.Bytes(make([]byte, 125_000))})
		f.Timeline = vfile.Timeline{{Off: 0, Time: 0}, {Off: 125_000, Time: 1}}
		s, err := d.Start(f, delivery.Params{Kind: delivery.Progressive, Pace: false})
		if err != nil {
			t.Fatal(err)
		}
		return New(nil, Options{Delivery: d}), s.Close
	}
	lr, hr, ar := light.Bitrate(), heavy.Bitrate(), audio.Bitrate()
	t.Logf("light video %d bit/s, heavy %d, audio %d", lr, hr, ar)
	for _, tc := range []struct {
		name    string
		free    int64
		exclude []uint32
		busy    bool
	}{
		{"everything fits", hr + ar, nil, false},
		{"the heavy variant does not", (lr+hr)/2 + ar, []uint32{heavy.ID}, false},
		{"nothing fits", lr + ar - 1, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, done := reserve(tc.free)
			defer done()
			for _, path := range []string{pathHLSMaster, pathDASH} {
				ex, err := h.budgetShort(a, path)
				if !slices.Equal(ex, tc.exclude) || (err != nil) != tc.busy || (err != nil && !errors.Is(err, delivery.ErrBusy)) {
					t.Fatalf("%s: exclude %v, err %v; want %v, busy %v", path, ex, err, tc.exclude, tc.busy)
				}
				if ex == nil {
					continue
				}
				f, err := h.buildMaster(a, path, ex)
				if err != nil {
					t.Fatal(err)
				}
				body := string(f.Pieces[0].Data)
				if strings.Contains(body, "v3") || !strings.Contains(body, "v1") {
					t.Errorf("%s without track 3:\n%s", path, body)
				}
			}
			// The TS and Smooth masters offer the first video and audio.
			for _, path := range []string{pathHLSTSMaster, pathSmooth} {
				if _, err := h.budgetShort(a, path); (err != nil) != tc.busy {
					t.Errorf("%s: err %v, want busy %v", path, err, tc.busy)
				}
			}
		})
	}
	if ex, err := New(nil, Options{}).budgetShort(a, pathHLSMaster); ex != nil || err != nil {
		t.Errorf("without budget: %v %v", ex, err)
	}
}
