package playback

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/internal/playlist"
	"github.com/jitstream/jitstream/internal/streams"
)

// Cache-Control of session responses: they are one viewer's.
const cachePrivate = "private, no-store"

// typeM3U8 is the media type of HLS playlists.
const typeM3U8 = "application/vnd.apple.mpegurl"

// loaded is a session with what streams know of its items.
type loaded struct {
	s     *playlist.Session
	infos []*streams.Info
}

// load reads session sid and describes its items.
func (h *Handler) load(ctx context.Context, sid string) (*loaded, error) {
	s, err := h.opt.Sessions.Get(ctx, sid)
	if err != nil {
		return nil, err
	}
	l := &loaded{s: s, infos: make([]*streams.Info, len(s.Timeline.Items))}
	for i, it := range s.Timeline.Items {
		if l.infos[i], err = h.st.Info(ctx, s.User, clipName(it.Asset, it.Start, it.End)); err != nil {
			return nil, fmt.Errorf("playback: item %d of session %s: %w", i, sid, err)
		}
	}
	return l, nil
}

// track returns the track of item i that the session's rendition name
// stands for, nil if it has none: "v" and "a" are the first video and
// audio tracks (fMP4), "ts" the MPEG-TS segments that mux them.
func (l *loaded) track(i int, name string) *streams.TrackInfo {
	in := l.infos[i]
	switch name {
	case "v":
		return in.Video
	case "a":
		return in.Audio
	case "ts":
		return &streams.TrackInfo{Name: "ts", Segments: in.Segments}
	}
	return nil
}

// renditions reports whether every item has a video and an audio track.
func (l *loaded) renditions() (video, audio bool) {
	video, audio = true, true
	for _, in := range l.infos {
		video = video && in.Video != nil
		audio = audio && in.Audio != nil
	}
	return video, audio
}

// loadManifest loads the session of a manifest request and tells which
// renditions its items have in common; it answers the request and returns
// false when it cannot be made.
func (h *Handler) loadManifest(w http.ResponseWriter, r *http.Request) (l *loaded, video, audio, ok bool) {
	l, err := h.load(r.Context(), r.PathValue("sid"))
	if err != nil {
		h.fail(w, r, err)
		return nil, false, false, false
	}
	video, audio = l.renditions()
	if !video && !audio {
		h.fail(w, r, fmt.Errorf("%w: the items of the playlist have neither a video track in common nor an audio track", errBadPath))
		return nil, false, false, false
	}
	return l, video, audio, true
}

// master is the session's master playlist: one variant of the items' first
// video tracks, with their first audio tracks as its audio rendition.
func (h *Handler) master(w http.ResponseWriter, r *http.Request) {
	l, video, audio, ok := h.loadManifest(w, r)
	if !ok {
		return
	}
	var bw int64
	var width, height uint32
	codecs := []string{}
	for _, in := range l.infos {
		bw = max(bw, in.Bandwidth)
		if video {
			width, height = max(width, in.Video.Width), max(height, in.Video.Height)
		}
	}
	first := l.infos[0]
	if video {
		codecs = append(codecs, first.Video.Codec)
	}
	if audio {
		codecs = append(codecs, first.Audio.Codec)
	}
	var b bytes.Buffer
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	main := "v/index.m3u8"
	if video && audio {
		b.WriteString(`#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,URI="a/index.m3u8"` + "\n")
	} else if !video {
		main = "a/index.m3u8"
	}
	fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,CODECS=\"%s\"", bw, strings.Join(codecs, ","))
	if video && width > 0 && height > 0 {
		fmt.Fprintf(&b, ",RESOLUTION=%dx%d", width, height)
	}
	if video && audio {
		b.WriteString(`,AUDIO="audio"`)
	}
	b.WriteString("\n" + main + "\n")
	writeText(w, r, typeM3U8, b.Bytes())
}

// media is the session's media playlist of the rendition "v" or "a": the
// items' segments in order, each item after a discontinuity with its own
// init segment.
func (h *Handler) media(w http.ResponseWriter, r *http.Request) {
	l, err := h.load(r.Context(), r.PathValue("sid"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	name := r.PathValue("track")
	for i := range l.infos {
		if l.track(i, name) == nil {
			h.fail(w, r, fmt.Errorf("%w: item %d has no %q track", errBadPath, i, name))
			return
		}
	}
	var longest float64
	for i := range l.infos {
		for _, sg := range l.track(i, name).Segments {
			longest = max(longest, sg[1]-sg[0])
		}
	}
	ts := name == "ts"
	version, ext := 7, ".m4s"
	if ts {
		version, ext = 3, ".ts"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:%d\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n",
		version, max(1, int64(math.Round(longest))))
	for i := range l.infos {
		if i > 0 {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if !ts {
			fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"%d/init.mp4\"\n", i)
		}
		for n, sg := range l.track(i, name).Segments {
			fmt.Fprintf(&b, "#EXTINF:%.5f,\n%d/%d%s\n", sg[1]-sg[0], i, n, ext)
		}
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	writeText(w, r, typeM3U8, b.Bytes())
}

// writeText answers a session playlist or manifest of the given type.
func writeText(w http.ResponseWriter, r *http.Request, contentType string, body []byte) {
	hd := w.Header()
	hd.Set("Content-Type", contentType)
	hd.Set("Cache-Control", cachePrivate)
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// segment serves an init or media segment of an item, once the session's
// rules allow it: an ad from here (its delivery recorded), content by a
// redirect to its shared URL.
func (h *Handler) segment(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sid, name, file := r.PathValue("sid"), r.PathValue("track"), r.PathValue("file")
	l, err := h.load(ctx, sid)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	i, err := strconv.Atoi(r.PathValue("item"))
	if err != nil || i < 0 || i >= len(l.infos) || strconv.Itoa(i) != r.PathValue("item") {
		h.fail(w, r, fmt.Errorf("%w: no item %q", errBadPath, r.PathValue("item")))
		return
	}
	t := l.track(i, name)
	if t == nil {
		h.fail(w, r, fmt.Errorf("%w: item %d has no %q track", errBadPath, i, name))
		return
	}
	path := "hls/" + t.Name + "/" + file
	ext := ".m4s"
	if name == "ts" {
		ext = ".ts"
	} else if file == "init.mp4" {
		// No media: nothing to check or to count.
		h.serveItem(w, r, l, i, path, nil)
		return
	}
	ns, ok := strings.CutSuffix(file, ext)
	n, err := strconv.Atoi(ns)
	if !ok || err != nil || n < 0 || n >= len(l.infos[i].Segments) || strconv.Itoa(n) != ns {
		h.fail(w, r, fmt.Errorf("%w: item %d has no segment %q", errBadPath, i, file))
		return
	}
	sg := l.infos[i].Segments[n]
	// Video (or TS, which muxes it) is what counts as watching; audio
	// too when the item has no video.
	req := playlist.Request{Item: i, Start: sg[0], End: sg[1], Primary: name != "a" || l.infos[i].Video == nil}
	if !h.allowed(w, r, sid, req) {
		return
	}
	h.serveItem(w, r, l, i, path, &req)
}

// allowed checks req against the session's rules (see admit), and answers
// the request and returns false when it is refused or the check fails.
func (h *Handler) allowed(w http.ResponseWriter, r *http.Request, sid string, req playlist.Request) bool {
	err := h.admit(r.Context(), sid, req)
	var rf *refusal
	switch {
	case err == nil:
		return true
	case errors.As(err, &rf):
		h.refuse(w, rf.reason, rf.retry)
	case r.Context().Err() == nil:
		h.fail(w, r, err)
	}
	return false
}

// refusal is the error of a request that the playlist's rules refuse; it
// wraps errRefused.
type refusal struct {
	sid    string
	item   int
	reason string        // for the viewer
	retry  time.Duration // when not 0: when it may be allowed
}

func (e *refusal) Error() string {
	return fmt.Sprintf("playback: session %s item %d: %v: %s", e.sid, e.item, errRefused, e.reason)
}

func (e *refusal) Unwrap() error { return errRefused }

// admit checks req against the session's rules, waiting for the release
// of an ad while that takes at most MaxWait. It returns nil when req may be
// served, a *refusal when the rules refuse it, ctx's error when ctx is
// done first, or the error of the check.
func (h *Handler) admit(ctx context.Context, sid string, req playlist.Request) error {
	var grace time.Time // see below
	for {
		d, err := h.opt.Sessions.Check(ctx, sid, req)
		if err != nil {
			return err
		}
		if d.Allow {
			return nil
		}
		now := h.opt.Now()
		pause := refusalPoll
		if d.Wait.IsZero() {
			// A delivery is recorded once its response was written
			// whole, so the client may ask for what follows (on another
			// connection, or another node) before it is: a refusal is
			// given only once it has held for refusalGrace. Audio beside
			// video (not primary) waits up to MaxWait: players load it
			// alongside the video, which moves the session on.
			if grace.IsZero() {
				grace = now.Add(refusalGrace)
				if !req.Primary {
					grace = now.Add(h.opt.MaxWait)
				}
			}
			if !now.Before(grace) {
				return &refusal{sid: sid, item: req.Item, reason: d.Reason}
			}
		} else {
			wait := d.Wait.Sub(now)
			if wait > h.opt.MaxWait {
				return &refusal{sid: sid, item: req.Item, reason: d.Reason, retry: wait}
			}
			pause = max(wait, refusalPoll)
		}
		if !sleep(ctx, pause) {
			return ctx.Err()
		}
	}
}

// refusalGrace is how long a refusal must hold before it is answered,
// polled every refusalPoll (see allowed).
const (
	refusalGrace = time.Second
	refusalPoll  = 50 * time.Millisecond
)

// sleep waits for d or until ctx is done, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// refuse answers 403 with the rule that refused the request; retry, when
// not zero, says when it may be allowed.
func (h *Handler) refuse(w http.ResponseWriter, reason string, retry time.Duration) {
	w.Header().Set("Cache-Control", "no-store")
	if retry > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(retry.Seconds())), 10))
	}
	httpserve.Error(w, http.StatusForbidden, "forbidden by the playlist", reason)
}

// serveItem serves path of item i: an ad here, privately, recording its
// delivery (req, nil for an init segment); content by a redirect to its
// shared URL, which counts as delivered.
func (h *Handler) serveItem(w http.ResponseWriter, r *http.Request, l *loaded, i int, path string, req *playlist.Request) {
	ctx := r.Context()
	it := l.s.Timeline.Items[i]
	name := clipName(it.Asset, it.Start, it.End)
	if it.Kind == playlist.Ad {
		o := streams.ResourceOptions{CacheControl: cachePrivate}
		if req != nil {
			o.Delivered = func() {
				// The response is over: its context may be done.
				if err := h.opt.Sessions.Delivered(context.WithoutCancel(ctx), l.s.ID, *req); err != nil {
					h.log.Warn("playback: record a delivery", "session", l.s.ID, "item", i, "err", err)
				}
			}
		}
		h.st.ServeResource(w, r, l.s.User, name, path, o)
		return
	}
	sl, err := h.sealer(ctx)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if req != nil {
		if err := h.opt.Sessions.Delivered(ctx, l.s.ID, *req); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/c/"+sl.seal(l.s.User, name, h.opt.Now())+"/"+path, http.StatusFound)
}

// content serves content by its shared URL, cacheable by everyone.
func (h *Handler) content(w http.ResponseWriter, r *http.Request) {
	sl, err := h.sealer(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	user, name, err := sl.open(r.PathValue("token"), h.opt.Now())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	path := r.PathValue("path")
	if !strings.HasPrefix(path, "hls/") {
		h.fail(w, r, fmt.Errorf("%w: %q", errBadPath, path))
		return
	}
	h.st.ServeResource(w, r, user, name, path, streams.ResourceOptions{})
}
