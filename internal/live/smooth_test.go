package live_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/jitstream/jitstream/internal/live"
)

// smoothInfo is what a test reads of a Smooth client manifest.
type smoothInfo struct {
	IsLive          string `xml:"IsLive,attr"`
	LookaheadCount  string `xml:"LookaheadCount,attr"`
	DVRWindowLength string `xml:"DVRWindowLength,attr"`
	Duration        int64  `xml:"Duration,attr"`
	TimeScale       int64  `xml:"TimeScale,attr"`
	Streams         []struct {
		Type      string `xml:"Type,attr"`
		TimeScale uint32 `xml:"TimeScale,attr"`
		Chunks    int    `xml:"Chunks,attr"`
		URL       string `xml:"Url,attr"`
		Levels    []struct {
			Bitrate          int64  `xml:"Bitrate,attr"`
			FourCC           string `xml:"FourCC,attr"`
			CodecPrivateData string `xml:"CodecPrivateData,attr"`
			SamplingRate     uint32 `xml:"SamplingRate,attr"`
			Channels         uint16 `xml:"Channels,attr"`
		} `xml:"QualityLevel"`
		C []struct {
			T int64 `xml:"t,attr"`
			D int64 `xml:"d,attr"`
		} `xml:"c"`
	} `xml:"StreamIndex"`
}

// smoothManifest fetches and parses the Smooth manifest at url.
func smoothManifest(t *testing.T, url string) smoothInfo {
	t.Helper()
	_, b := get(t, url, http.StatusOK)
	var m smoothInfo
	if err := xml.Unmarshal(b, &m); err != nil {
		t.Fatalf("Smooth manifest: %v\n%s", err, b)
	}
	return m
}

// fragmentURL is the URL of chunk c of stream i of m, relative to base.
func fragmentURL(base string, m smoothInfo, i int, t int64) string {
	s := m.Streams[i]
	return fmt.Sprintf("%sQualityLevels(%d)/Fragments(%s=%d)", base, s.Levels[0].Bitrate, s.Type, t)
}

// smoothBoxes is what a test reads of a Smooth fragment.
type smoothBoxes struct {
	tfdt       uint64
	tfxd       *mp4.TfxdData
	tfrf       *mp4.TfrfData
	sizes      []uint32 // trun sample sizes
	mdat       []byte
	moofs      int
	dataOffset int32
	moofSize   uint64
}

// decodeFragment decodes a fragment (moof and mdat) with mp4ff.
func decodeFragment(t *testing.T, b []byte) smoothBoxes {
	t.Helper()
	f, err := mp4.DecodeFile(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("mp4ff: %v", err)
	}
	var out smoothBoxes
	for _, seg := range f.Segments {
		for _, fr := range seg.Fragments {
			out.moofs++
			traf := fr.Moof.Traf
			out.moofSize = fr.Moof.Size()
			if traf.Tfdt != nil {
				out.tfdt = traf.Tfdt.BaseMediaDecodeTime()
			}
			for _, tr := range traf.Truns {
				for _, s := range tr.Samples {
					out.sizes = append(out.sizes, s.Size)
				}
			}
			out.dataOffset = traf.Trun.DataOffset
			for _, c := range traf.Children {
				if u, ok := c.(*mp4.UUIDBox); ok {
					switch u.SubType() {
					case "tfxd":
						out.tfxd = u.Tfxd
					case "tfrf":
						out.tfrf = u.Tfrf
					}
				}
			}
			if fr.Mdat != nil {
				out.mdat = fr.Mdat.Data
			}
		}
	}
	if out.moofs != 1 {
		t.Fatalf("fragment with %d moofs", out.moofs)
	}
	return out
}

// checkLiveSmooth checks, while the stream "show" of e is pushed with a
// video and an audio StreamIndex, that the live Smooth manifest at base
// (ending in smooth/) lists the stored fragments with IsLive,
// LookaheadCount and DVRWindowLength, and that its fragments carry a
// tfxd with their own time and a tfrf naming exactly the fragments that
// follow them, around the stored samples and mdat.
func checkLiveSmooth(t *testing.T, e *env, base string, videoLevels int) {
	// The first representation of a kind in the state.
	firstRep := func(st *live.State, kind string) *live.Rep {
		for _, r := range st.Reps {
			if r.Kind == kind {
				return r
			}
		}
		t.Fatalf("no %s representation in the state", kind)
		return nil
	}
	t.Run("manifest", func(t *testing.T) {
		tests := []struct {
			query, dvr string
		}{
			{"", "300000000"},
			{"?dvr=16", "160000000"},
			{"?dvr=0", "0"},
			{"?type=event", "0"},
		}
		for _, tc := range tests {
			m := smoothManifest(t, base+"Manifest"+tc.query)
			if m.IsLive != "TRUE" || m.LookaheadCount != "2" || m.DVRWindowLength != tc.dvr || m.Duration != 0 || m.TimeScale != 10_000_000 {
				t.Errorf("Manifest%s: IsLive %q LookaheadCount %q DVRWindowLength %q (want %s) Duration %d TimeScale %d",
					tc.query, m.IsLive, m.LookaheadCount, m.DVRWindowLength, tc.dvr, m.Duration, m.TimeScale)
			}
		}
		get(t, base+"Manifest?dvr=x", http.StatusBadRequest)

		m := smoothManifest(t, base+"Manifest")
		st, err := live.LoadState(context.Background(), e.Store, "alice", "show")
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []struct {
			typ, fourCC string
			levels      int
		}{{"video", "H264", videoLevels}, {"audio", "AACL", 1}} {
			s := m.Streams[i]
			if s.Type != want.typ || len(s.Levels) != want.levels || s.Levels[0].FourCC != want.fourCC || s.Levels[0].CodecPrivateData == "" ||
				s.URL != "QualityLevels({bitrate})/Fragments("+want.typ+"={start time})" || s.Chunks != len(s.C) {
				t.Errorf("StreamIndex %d: %+v", i, s)
			}
			if want.typ == "audio" && (s.Levels[0].SamplingRate != 48000 && s.Levels[0].SamplingRate != 44100 || s.Levels[0].Channels == 0) {
				t.Errorf("audio level %+v", s.Levels[0])
			}
			// The c elements are the stored fragments, shifted by the
			// stream's start since the Unix epoch.
			rep := firstRep(st, want.typ)
			off := st.Start.Unix()*int64(s.TimeScale) + int64(st.Start.Nanosecond())*int64(s.TimeScale)/1e9
			if rep.Timescale != s.TimeScale {
				t.Fatalf("%s: TimeScale %d, representation %d", want.typ, s.TimeScale, rep.Timescale)
			}
			for j, c := range s.C {
				if j >= len(rep.Frags) || rep.Frags[j].Time+off != c.T || rep.Frags[j].Dur != c.D {
					t.Errorf("%s c[%d] = %+v; stored fragments %+v (offset %d)", want.typ, j, c, rep.Frags, off)
					break
				}
			}
		}
	})

	t.Run("fragments", func(t *testing.T) {
		m := smoothManifest(t, base+"Manifest?dvr=0")
		st, err := live.LoadState(context.Background(), e.Store, "alice", "show")
		if err != nil {
			t.Fatal(err)
		}
		for i := range m.Streams {
			s := m.Streams[i]
			c := s.C[0]
			resp, b := get(t, fragmentURL(base, m, i, c.T), http.StatusOK)
			if cc := resp.Header.Get("Cache-Control"); cc != live.CacheSegment {
				t.Errorf("%s: Cache-Control %q of a fragment with its lookahead", s.Type, cc)
			}
			got := decodeFragment(t, b)
			if got.tfxd == nil || got.tfrf == nil {
				t.Fatalf("%s: no tfxd or tfrf", s.Type)
			}
			if got.tfxd.FragmentAbsoluteTime != uint64(c.T) || got.tfxd.FragmentAbsoluteDuration != uint64(c.D) || got.tfdt != uint64(c.T) {
				t.Errorf("%s: tfxd %+v tfdt %d, want t=%d d=%d", s.Type, got.tfxd, got.tfdt, c.T, c.D)
			}
			// The tfrf names exactly the next two fragments of the manifest.
			if int(got.tfrf.FragmentCount) != 2 || len(got.tfrf.FragmentAbsoluteTimes) != 2 {
				t.Fatalf("%s: tfrf %+v, want 2 entries", s.Type, got.tfrf)
			}
			for k := range 2 {
				next := s.C[1+k]
				if got.tfrf.FragmentAbsoluteTimes[k] != uint64(next.T) || got.tfrf.FragmentAbsoluteDurations[k] != uint64(next.D) {
					t.Errorf("%s: tfrf entry %d = %d+%d, want c %+v", s.Type, k, got.tfrf.FragmentAbsoluteTimes[k], got.tfrf.FragmentAbsoluteDurations[k], next)
				}
			}
			if got.dataOffset != int32(got.moofSize)+8 {
				t.Errorf("%s: trun data offset %d, moof %d", s.Type, got.dataOffset, got.moofSize)
			}
			// The samples and mdat are the stored fragment's.
			rc, err := e.Store.Get(context.Background(), firstRep(st, s.Type).Frags[0].Key, 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			want := decodeFragment(t, stored)
			if !slices.Equal(got.sizes, want.sizes) || len(got.sizes) == 0 {
				t.Errorf("%s: trun sizes %v, stored %v", s.Type, got.sizes, want.sizes)
			}
			if !bytes.Equal(got.mdat, want.mdat) {
				t.Errorf("%s: mdat differs from the stored one", s.Type)
			}
			// FragmentInfo is the moof alone.
			_, info := get(t, fmt.Sprintf("%sQualityLevels(%d)/FragmentInfo(%s=%d)", base, s.Levels[0].Bitrate, s.Type, c.T), http.StatusOK)
			if uint64(len(info)) != got.moofSize || !bytes.Equal(info, b[:len(info)]) {
				t.Errorf("%s: FragmentInfo of %d bytes, moof %d", s.Type, len(info), got.moofSize)
			}
		}

		// At the live edge: the tfrf names only fragments that followed
		// when it was answered, and the answer is not cached for long.
		m = smoothManifest(t, base+"Manifest")
		last := m.Streams[0].C[len(m.Streams[0].C)-1]
		resp, b := get(t, fragmentURL(base, m, 0, last.T), http.StatusOK)
		edge := decodeFragment(t, b)
		after := smoothManifest(t, base+"Manifest?dvr=0")
		if edge.tfrf == nil || edge.tfrf.FragmentCount > 2 {
			t.Fatalf("edge tfrf %+v", edge.tfrf)
		}
		cs := after.Streams[0].C
		k := 0
		for k < len(cs) && cs[k].T != last.T {
			k++
		}
		for j, tm := range edge.tfrf.FragmentAbsoluteTimes {
			if k+1+j >= len(cs) || uint64(cs[k+1+j].T) != tm || uint64(cs[k+1+j].D) != edge.tfrf.FragmentAbsoluteDurations[j] {
				t.Errorf("edge tfrf entry %d (%d) is not the fragment that follows: %+v", j, tm, cs[k:])
			}
		}
		if cc := resp.Header.Get("Cache-Control"); edge.tfrf.FragmentCount < 2 && cc != live.SmoothCacheEdge {
			t.Errorf("edge fragment with %d tfrf entries: Cache-Control %q", edge.tfrf.FragmentCount, cc)
		}

		tests := []struct{ name, path string }{
			{"unknown bit rate", fmt.Sprintf("QualityLevels(7)/Fragments(video=%d)", m.Streams[0].C[0].T)},
			{"unknown time", fmt.Sprintf("QualityLevels(%d)/Fragments(video=%d)", m.Streams[0].Levels[0].Bitrate, m.Streams[0].C[0].T+1)},
			{"wrong type", fmt.Sprintf("QualityLevels(%d)/Fragments(text=%d)", m.Streams[0].Levels[0].Bitrate, m.Streams[0].C[0].T)},
			{"garbage", "nope"},
		}
		for _, tc := range tests {
			_, body := get(t, base+tc.path, http.StatusNotFound)
			if !json.Valid(body) {
				t.Errorf("%s: 404 body is not JSON: %s", tc.name, body)
			}
		}
	})

}

// checkEndedSmooth checks that the Smooth manifest at base (ending in
// smooth/) turns into an on-demand one, of about seconds, within 10 s.
func checkEndedSmooth(t *testing.T, base string, seconds, segment int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := smoothManifest(t, base+"Manifest")
		if m.IsLive == "" && m.Duration > 0 {
			if m.LookaheadCount != "" || m.DVRWindowLength != "" || len(m.Streams) != 2 || len(m.Streams[0].C) < seconds/segment {
				t.Errorf("manifest after the end: %+v", m)
			}
			d := float64(m.Duration) / 1e7
			if d < float64(seconds)-1 || d > float64(seconds)+1 {
				t.Errorf("Duration %.3f s after the end, want %d", d, seconds)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("manifest still live 10 s after the end: IsLive %q Duration %d", m.IsLive, m.Duration)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, with a deadline
	}
}
