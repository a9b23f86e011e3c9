package streams

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jitstream/jitstream/internal/build/hls"
	mp4build "github.com/jitstream/jitstream/internal/build/mp4"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/vfile"
)

// Content types.
const (
	typeM3U8   = "application/vnd.apple.mpegurl"
	typeMPD    = "application/dash+xml"
	typeSmooth = "application/vnd.ms-sstr+xml"
	typeMP4    = "video/mp4"
	typeAudio  = "audio/mp4"
	typeTS     = "video/mp2t"
)

// build makes the file at path (relative to the asset's stream root).
func (h *Handler) build(ctx context.Context, a *asset, path string) (*vfile.File, error) {
	format, rest, _ := strings.Cut(path, "/")
	switch format {
	case "hls":
		if rest == "master.m3u8" {
			return h.hlsMaster(a, nil)
		}
		if tsPath, ok := strings.CutPrefix(rest, "ts/"); ok {
			return h.hlsTS(ctx, a, tsPath)
		}
		if rest == "images.m3u8" {
			tr := h.hlsImages(a)
			if tr == nil {
				return nil, fmt.Errorf("%w: thumbnails need a video track and a server with a transcoder", ErrUnsupportedFormat)
			}
			return textFile("images.m3u8", typeM3U8, hls.ImagePlaylist(*tr)), nil
		}
		t, file, err := trackFile(a.mix, path, rest)
		if err != nil {
			return nil, err
		}
		switch file {
		case "index.m3u8":
			return h.hlsMedia(a, t)
		case "iframes.m3u8":
			return h.hlsIFrames(a, t)
		}
		if t.Rendition != "" {
			return h.transcodedFile(ctx, a, t, file)
		}
		return cmafFile(a, t, file)
	case "dash":
		if rest == "manifest.mpd" {
			return h.dashMPD(a, nil)
		}
		trick := false
		if r, ok := strings.CutPrefix(rest, "trick/"); ok {
			trick, rest = true, r
		}
		t, file, err := trackFile(a.mix, path, rest)
		if err != nil {
			return nil, err
		}
		if t.Rendition != "" {
			if trick {
				return nil, notFound("no trick-mode stream for rendition %s", t.Rendition)
			}
			return h.transcodedFile(ctx, a, t, file)
		}
		if trick {
			if t.Kind != media.KindVideo {
				return nil, notFound("no trick-mode stream for %s track %s", t.Kind, trackName(t))
			}
			t = a.keyframes(t)
		}
		return cmafFile(a, t, file)
	case "smooth":
		return h.smooth(ctx, a, rest)
	case "thumbs":
		return h.thumbs(ctx, a, path, rest)
	}
	return nil, noResource(path)
}

// noResource is the error for a path that names nothing a stream has.
func noResource(path string) error { return notFound("%q names no stream resource", path) }

// trackFile splits rest, the part of path after the format, into a track
// name and a file name ("v1/0.m4s") and finds the track.
func trackFile(ix *media.Index, path, rest string) (*media.Track, string, error) {
	track, file, ok := strings.Cut(rest, "/")
	if !ok {
		return nil, "", noResource(path)
	}
	t, err := trackByName(ix, track)
	return t, file, err
}

// trackByName finds the track named like "v1" or "a2", or the track of
// the rendition named name (see withRenditions).
func trackByName(ix *media.Index, name string) (*media.Track, error) {
	for _, t := range ix.Tracks {
		if t.Rendition != "" && t.Rendition == name {
			return t, nil
		}
	}
	if len(name) < 2 {
		return nil, notFound("no track %q", name)
	}
	id, err := strconv.ParseUint(name[1:], 10, 32)
	if err != nil || id == 0 || int(id) > len(ix.Tracks) || name[1] == '0' {
		return nil, notFound("no track %q", name)
	}
	t := ix.Tracks[id-1]
	if trackName(t) != name {
		return nil, notFound("no track %q", name)
	}
	switch t.Kind {
	case media.KindVideo, media.KindAudio:
		return t, nil
	}
	return nil, notFound("track %q is %s, not audio or video", name, t.Kind)
}

// trackName is the URL name of a track: kind letter and ID.
func trackName(t *media.Track) string {
	letter := "x"
	switch t.Kind {
	case media.KindVideo:
		letter = "v"
	case media.KindAudio:
		letter = "a"
	}
	return letter + strconv.FormatUint(uint64(t.ID), 10)
}

// segmentNumber parses "{n}{ext}" and checks n against the segments.
func segmentNumber(a *asset, file, ext string) (int, error) {
	s, ok := strings.CutSuffix(file, ext)
	if !ok {
		return 0, notFound("%q is not a %s segment", file, ext)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n >= len(a.segs) || strconv.Itoa(n) != s {
		return 0, notFound("no segment %q: the stream has segments 0 to %d", s, len(a.segs)-1)
	}
	return n, nil
}

// cmafFile builds init.mp4 or {n}.m4s of one track.
func cmafFile(a *asset, t *media.Track, file string) (*vfile.File, error) {
	ctype := typeMP4
	if t.Kind == media.KindAudio {
		ctype = typeAudio
	}
	if file == "init.mp4" {
		b, err := mp4build.InitSegment(a.ix, []*media.Track{t})
		if err != nil {
			return nil, err
		}
		return vfile.New(file, ctype, time.Time{}, "", []vfile.Piece{vfile.Bytes(b)}), nil
	}
	n, err := segmentNumber(a, file, ".m4s")
	if err != nil {
		return nil, err
	}
	var b vfile.Builder
	if err := mp4build.MediaSegment(&b, a.ix, []*media.Track{t}, a.segs[n], uint32(n+1)); err != nil {
		return nil, fmt.Errorf("streams: segment %d of track %d: %w", n, t.ID, err)
	}
	f := b.File(file, ctype, time.Time{}, "")
	segmentTimeline(a, n, f)
	return f, nil
}

func textFile(name, ctype string, b []byte) *vfile.File {
	return vfile.New(name, ctype, time.Time{}, "", []vfile.Piece{vfile.Bytes(b)})
}
