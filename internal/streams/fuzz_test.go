package streams

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitstream/jitstream/internal/media"
)

// FuzzParseClip checks parseClip (the "START-END" of /streams/{user}/
// {id},START-END/) on any input: it refuses with ErrBadClip and a short
// message, or returns times from 0 to 1e7 s, the end (0: to the end) after
// the start, read from the two numbers around the first "-".
func FuzzParseClip(f *testing.F) {
	for _, s := range []string{"1.5-4", "0-", "3-", "abc", "4-2", "-1-2", "x-2", "1-NaN", "-", "1e7-", "0x10-0x20",
		"12.5-40", "1-1", "-5", strings.Repeat("1", 40) + "-", strings.Repeat("\x00", 32) + "-", strings.Repeat("\x00", 100),
		strings.Repeat("\x00", 46)} { // found by the fuzzer: a clip without "-" is quoted whole
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, end, err := parseClip(s)
		if err != nil {
			// A clip is quoted back only up to 2*maxClipNumber+1 bytes
			// (each at most 4 characters quoted, as \x00).
			if !errors.Is(err, ErrBadClip) || len(err.Error()) > 4*(2*maxClipNumber+1)+100 {
				t.Fatalf("parseClip(%q): %v", s, err)
			}
			return
		}
		const most = 1e7 * time.Second
		if start < 0 || start > most || end < 0 || end > most || end != 0 && end <= start {
			t.Fatalf("parseClip(%q) = %v, %v", s, start, end)
		}
		a, b, _ := strings.Cut(s, "-")
		for _, p := range []struct {
			v   string
			got time.Duration
		}{{a, start}, {b, end}} {
			if p.v == "" {
				if p.got != 0 {
					t.Fatalf("parseClip(%q): %v from nothing", s, p.got)
				}
				continue
			}
			f, err := strconv.ParseFloat(p.v, 64)
			if err != nil || len(p.v) > maxClipNumber || time.Duration(f*float64(time.Second)) != p.got {
				t.Fatalf("parseClip(%q): %v from %q", s, p.got, p.v)
			}
		}
	})
}

// fuzzIndex has a video, an audio and a data track, with IDs 1 to 3.
var fuzzIndex = &media.Index{Tracks: []*media.Track{
	{ID: 1, Kind: media.KindVideo}, {ID: 2, Kind: media.KindAudio}, {ID: 3, Kind: media.Kind("data")},
}}

// FuzzTrackByName checks trackByName on any name: it finds only audio and
// video tracks, by their exact URL name, and fails with ErrNotFound
// otherwise.
func FuzzTrackByName(f *testing.F) {
	for _, s := range []string{"v1", "a2", "x3", "v2", "a1", "v01", "v+1", "v", "", "v4294967297", "v1 ", "V1"} {
		f.Add(s)
	}
	for _, tr := range fuzzIndex.Tracks {
		got, err := trackByName(fuzzIndex, trackName(tr))
		if ok := tr.Kind == media.KindVideo || tr.Kind == media.KindAudio; ok != (err == nil) || ok && got != tr {
			f.Fatalf("trackByName(%q) = %v, %v", trackName(tr), got, err)
		}
	}
	f.Fuzz(func(t *testing.T, name string) {
		tr, err := trackByName(fuzzIndex, name)
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("trackByName(%q): %v", name, err)
			}
			return
		}
		if trackName(tr) != name || tr.Kind != media.KindVideo && tr.Kind != media.KindAudio {
			t.Fatalf("trackByName(%q) = track %d (%s)", name, tr.ID, tr.Kind)
		}
	})
}

// FuzzSegmentNumber checks segmentNumber on any file name and number of
// segments: it accepts exactly the canonical "{n}{ext}" of an existing
// segment, and fails with ErrNotFound otherwise.
func FuzzSegmentNumber(f *testing.F) {
	for _, s := range []string{"0.m4s", "7.m4s", "07.m4s", "-1.m4s", "+1.m4s", "1.ts", "12.ts", "x.m4s", ".m4s",
		"9223372036854775807.m4s", "1.m4s.m4s", "1 .m4s"} {
		f.Add(s, uint16(10))
	}
	f.Fuzz(func(t *testing.T, file string, nsegs uint16) {
		a := &asset{segs: make([]media.Segment, nsegs%2000)}
		for _, ext := range []string{".m4s", ".ts"} {
			n, err := segmentNumber(a, file, ext)
			if err != nil {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("segmentNumber(%q, %q): %v", file, ext, err)
				}
				continue
			}
			if n < 0 || n >= len(a.segs) || strconv.Itoa(n)+ext != file {
				t.Fatalf("segmentNumber(%q, %q) = %d of %d segments", file, ext, n, len(a.segs))
			}
		}
		if k := len(a.segs); k > 0 {
			want := int(nsegs) % k
			if n, err := segmentNumber(a, strconv.Itoa(want)+".m4s", ".m4s"); err != nil || n != want {
				t.Fatalf("segment %d of %d: %d, %v", want, k, n, err)
			}
		}
	})
}
