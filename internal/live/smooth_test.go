package live_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/jitstream/jitstream/internal/live"
	"github.com/jitstream/jitstream/internal/testutil/browser"
	"github.com/jitstream/jitstream/internal/testutil/fixtures"
	"github.com/jitstream/jitstream/internal/testutil/httpt"
	"github.com/jitstream/jitstream/internal/testutil/players"
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

// smoothSegment is the segment duration, in seconds, of the push of
// TestLiveSmooth. dash.js plays Smooth about two fragments behind the live
// edge (see TestLiveSmooth), plus its own reaction time: with 4 s segments
// that stays well within three segment durations on a busy machine.
const smoothSegment = 4

// smoothPush is the length of that push, in seconds.
const smoothPush = 28

// TestLiveSmooth: while ffmpeg pushes 28 s in real time, the live Smooth
// manifest lists the stored fragments with IsLive, LookaheadCount and
// DVRWindowLength; its fragments carry a tfxd with their own time and a
// tfrf naming exactly the fragments that follow them, around the stored
// samples and mdat; dash.js (MSS) plays it within three segment durations
// of the live edge; after the end the manifest is an on-demand one.
//
// It does not run in parallel with the other tests, and pushes 4 s
// segments (the bound is three segment durations): dash.js can only play
// about two fragment durations behind the live edge (it learns of a
// fragment from the tfrf of the one before, which names it only once it
// is stored), and with 2 s segments the margin to the bound was under a
// second, which the parallel live tests' encoders and browsers, on a
// 2-core machine, ate (6.1 s measured against 6 s).
func TestLiveSmooth(t *testing.T) {
	fixtures.RequireTools(t)
	e := newEnv(t, 0)
	key := live.Key(e.secret, "alice", "mss")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration="+strconv.Itoa(smoothPush),
		"-f", "lavfi", "-i", "sine=frequency=440:duration="+strconv.Itoa(smoothPush),
		"-c:v", "libx264", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-c:a", "aac",
		"-f", "dash", "-method", "PUT", "-seg_duration", strconv.Itoa(smoothSegment), "-use_timeline", "1", "-use_template", "1",
		e.url+"/live/alice/"+key+"/stream.mpd")
	var pushOut []byte
	var pushErr error
	var wg sync.WaitGroup
	wg.Go(func() { pushOut, pushErr = cmd.CombinedOutput() })
	defer wg.Wait()

	base := e.url + "/live/alice/mss/smooth/"
	// Wait for three video fragments.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, b := httpt.Get(t, base+"Manifest")
		if resp.StatusCode == http.StatusOK {
			var m smoothInfo
			if err := xml.Unmarshal(b, &m); err == nil && len(m.Streams) == 2 && len(m.Streams[0].C) >= 3 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Smooth manifest with three fragments within 30 s: %d %s", resp.StatusCode, b)
		}
		time.Sleep(100 * time.Millisecond) // polling interval, with a deadline
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
		st, err := live.LoadState(context.Background(), e.Store, "alice", "mss")
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []struct{ typ, fourCC string }{{"video", "H264"}, {"audio", "AACL"}} {
			s := m.Streams[i]
			if s.Type != want.typ || len(s.Levels) != 1 || s.Levels[0].FourCC != want.fourCC || s.Levels[0].CodecPrivateData == "" ||
				s.URL != "QualityLevels({bitrate})/Fragments("+want.typ+"={start time})" || s.Chunks != len(s.C) {
				t.Errorf("StreamIndex %d: %+v", i, s)
			}
			if want.typ == "audio" && (s.Levels[0].SamplingRate != 48000 && s.Levels[0].SamplingRate != 44100 || s.Levels[0].Channels == 0) {
				t.Errorf("audio level %+v", s.Levels[0])
			}
			// The c elements are the stored fragments, shifted by the
			// stream's start since the Unix epoch.
			rep := st.Reps[i]
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
		st, err := live.LoadState(context.Background(), e.Store, "alice", "mss")
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
			rc, err := e.Store.Get(context.Background(), st.Reps[i].Frags[0].Key, 0, -1)
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

	t.Run("dash.js", func(t *testing.T) {
		tab := browser.New(t)
		res := players.PlayLiveSmooth(t, tab, base+"Manifest")
		t.Logf("%s: latency %.2f s, played %.2f-%.2f, startup %v, warnings %v", res.Player, res.Latency, res.StartTime, res.EndTime, res.Startup, res.Warnings)
		if limit := 3.0 * smoothSegment; res.Latency > limit {
			t.Errorf("%s plays %.2f s behind the live edge, want at most %.0f s (three segment durations)", res.Player, res.Latency, limit)
		}
	})

	wg.Wait()
	checkPush(t, pushOut, pushErr)
	deadline = time.Now().Add(10 * time.Second)
	for {
		m := smoothManifest(t, base+"Manifest")
		if m.IsLive == "" && m.Duration > 0 {
			if m.LookaheadCount != "" || m.DVRWindowLength != "" || len(m.Streams) != 2 || len(m.Streams[0].C) < smoothPush/smoothSegment {
				t.Errorf("manifest after the end: %+v", m)
			}
			d := float64(m.Duration) / 1e7
			if d < smoothPush-1 || d > smoothPush+1 {
				t.Errorf("Duration %.3f s after the end, want %d", d, smoothPush)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("manifest still live 10 s after the end: IsLive %q Duration %d", m.IsLive, m.Duration)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, with a deadline
	}
}
