package transcode

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mp4build "github.com/jitstream/jitstream/internal/build/mp4"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/store"
	"github.com/jitstream/jitstream/internal/vfile"
)

// newSource stores the file at path in a new local store and indexes it.
func newSource(tb testing.TB, path, key string) Source {
	tb.Helper()
	st, err := store.NewFS(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	return sourceIn(tb, st, path, key)
}

// sourceIn stores the file at path in st (under originals/) and indexes it.
func sourceIn(tb testing.TB, st store.Store, path, key string) Source {
	tb.Helper()
	ctx := context.Background()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	obj := "originals/" + strings.ReplaceAll(key, "/", "_") + ".mp4"
	info, err := st.Put(ctx, obj, f)
	if err != nil {
		tb.Fatal(err)
	}
	ix, err := media.Parse(ctx, []media.Source{{Object: obj, Name: filepath.Base(path), Size: info.Size,
		R: store.NewReaderAt(ctx, st, obj, info.Size)}})
	if err != nil {
		tb.Fatalf("indexing %s: %v", path, err)
	}
	return Source{Key: key, Index: ix, Track: ix.Video(), Segments: ix.Segments(media.DefaultSegmentDuration), Store: st}
}

// rendition returns the rendition of src named name from ladder.
func rendition(tb testing.TB, ladder []Rung, src Source, name string) Rendition {
	tb.Helper()
	for _, r := range Renditions(ladder, src.Track) {
		if r.Name == name {
			return r
		}
	}
	tb.Fatalf("no rendition %s of %dx%d in %v", name, src.Track.Width, src.Track.Height, ladder)
	return Rendition{}
}

// originalSegment returns the original rendition's init segment and
// segment n (the source's video track alone), built with mp4build.
func originalSegment(tb testing.TB, src Source, n int) []byte {
	tb.Helper()
	tracks := []*media.Track{src.Track}
	init, err := mp4build.InitSegment(src.Index, tracks)
	if err != nil {
		tb.Fatal(err)
	}
	var b vfile.Builder
	b.Add(init)
	if err := mp4build.MediaSegment(&b, src.Index, tracks, src.Segments[n], uint32(n+1)); err != nil {
		tb.Fatal(err)
	}
	data, err := readFile(context.Background(), src.Store, b.File("", "", time.Time{}, ""))
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// writeTemp writes the concatenation of parts to a new file in dir.
func writeTemp(tb testing.TB, dir, name string, parts ...[]byte) string {
	tb.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, bytes.Join(parts, nil), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// probed is what ffprobe reads of a file's first video stream.
type probed struct {
	Codec, Profile string
	Width, Height  int
	TimeBase       string
	Packets        []packet
}

type packet struct {
	PTS, DTS, Dur int64
	Key           bool
}

// start and end are the first presentation time and the end of the last
// presented packet, in the stream's time base.
func (p probed) start() int64 {
	s := p.Packets[0].PTS
	for _, k := range p.Packets {
		s = min(s, k.PTS)
	}
	return s
}

func (p probed) end() int64 {
	var e int64
	for _, k := range p.Packets {
		e = max(e, k.PTS+k.Dur)
	}
	return e
}

// ffprobe reads the first stream of path and its packets with ffprobe.
func ffprobe(tb testing.TB, path string) probed {
	tb.Helper()
	cmd := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_streams", "-show_packets",
		"-of", "json", path)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("ffprobe %s: %v: %s", path, err, stderr.String())
	}
	var out struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			Profile   string `json:"profile"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
			TimeBase  string `json:"time_base"`
		} `json:"streams"`
		Packets []struct {
			PTS      *int64 `json:"pts"`
			DTS      *int64 `json:"dts"`
			Duration *int64 `json:"duration"`
			Flags    string `json:"flags"`
		} `json:"packets"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		tb.Fatalf("ffprobe %s: %v", path, err)
	}
	if len(out.Streams) != 1 || len(out.Packets) == 0 {
		tb.Fatalf("ffprobe %s: %d video streams, %d packets", path, len(out.Streams), len(out.Packets))
	}
	s := out.Streams[0]
	p := probed{Codec: s.CodecName, Profile: s.Profile, Width: s.Width, Height: s.Height, TimeBase: s.TimeBase}
	for _, k := range out.Packets {
		if k.PTS == nil || k.DTS == nil || k.Duration == nil {
			tb.Fatalf("ffprobe %s: packet without pts, dts or duration: %+v", path, k)
		}
		p.Packets = append(p.Packets, packet{PTS: *k.PTS, DTS: *k.DTS, Dur: *k.Duration, Key: strings.Contains(k.Flags, "K")})
	}
	return p
}

// decodeClean decodes every frame of path with ffmpeg and fails on any
// error message; it returns the number of decoded frames.
func decodeClean(tb testing.TB, path string) int {
	tb.Helper()
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0:v:0", "-f", "framemd5", "-")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		tb.Fatalf("decoding %s: %v: %s", path, err, stderr.String())
	}
	n := 0
	for _, l := range strings.Split(stdout.String(), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			n++
		}
	}
	return n
}

// cacheObjects lists the cache's objects in st.
func cacheObjects(tb testing.TB, st store.Store) []store.Info {
	tb.Helper()
	infos, err := st.List(context.Background(), CachePrefix)
	if err != nil {
		tb.Fatal(err)
	}
	return infos
}
