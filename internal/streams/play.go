package streams

import (
	"mime"
	"net/http"
	"strings"

	"github.com/jitstream/jitstream/internal/auth"
	"github.com/jitstream/jitstream/internal/urls"
)

// Deliveries the entry URL can choose, by ?format= name.
var deliveries = map[string]func(user, id string) string{
	"hls":    func(u, id string) string { return urls.Stream(u, id, "hls/master.m3u8") },
	"hls_ts": func(u, id string) string { return urls.Stream(u, id, "hls/ts/master.m3u8") },
	"dash":   func(u, id string) string { return urls.Stream(u, id, "dash/manifest.mpd") },
	"smooth": func(u, id string) string { return urls.Stream(u, id, "smooth/Manifest") },
	"mp4":    func(u, id string) string { return urls.File(u, id+urls.SuffixConsolidated) },
	"fmp4":   func(u, id string) string { return urls.File(u, id+urls.SuffixFMP4) },
	"page":   urls.Watch,
}

// Choose picks the delivery for a client from an explicit format, its
// Accept header and its User-Agent:
//
//   - ?format= always wins (hls, hls_ts, dash, smooth, mp4, fmp4, page);
//   - a client that accepts a manifest type gets that format (HLS
//     application/vnd.apple.mpegurl, DASH application/dash+xml, Smooth
//     application/vnd.ms-sstr+xml);
//   - Apple players that play HLS natively (AppleCoreMedia, iOS, Safari,
//     tvOS) get HLS;
//   - a browser asking for a page gets the player page (MSE browsers play
//     DASH or HLS there);
//   - everything else, such as curl or a download manager, gets the
//     consolidated MP4.
func Choose(format, accept, userAgent string) (string, bool) {
	if format != "" {
		_, ok := deliveries[format]
		return format, ok
	}
	html := false
	for _, part := range strings.Split(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "application/vnd.apple.mpegurl", "application/x-mpegurl", "audio/mpegurl":
			return "hls", true
		case "application/dash+xml":
			return "dash", true
		case "application/vnd.ms-sstr+xml":
			return "smooth", true
		case "text/html":
			html = true
		}
	}
	if nativeHLS(userAgent) {
		return "hls", true
	}
	if html {
		return "page", true
	}
	return "mp4", true
}

// nativeHLS reports whether the user agent plays HLS without MSE.
func nativeHLS(ua string) bool {
	switch {
	case strings.Contains(ua, "AppleCoreMedia"), strings.Contains(ua, "iPhone"), strings.Contains(ua, "iPad"),
		strings.Contains(ua, "AppleTV"), strings.Contains(ua, "Apple TV"):
		return true
	case strings.Contains(ua, "Safari/") && strings.Contains(ua, "Macintosh") &&
		!strings.Contains(ua, "Chrome/") && !strings.Contains(ua, "Chromium/") && !strings.Contains(ua, "Edg/"):
		return true
	}
	return false
}

// play redirects to the delivery chosen for the client.
func (h *Handler) play(w http.ResponseWriter, r *http.Request) {
	user, id := r.PathValue("user"), r.PathValue("id")
	if _, err := h.lib.Asset(r.Context(), user, id); err != nil {
		h.fail(w, r, err)
		return
	}
	format, ok := Choose(r.URL.Query().Get("format"), r.Header.Get("Accept"), r.Header.Get("User-Agent"))
	if !ok {
		h.fail(w, r, notFound("unknown format %q (use hls, hls_ts, dash, smooth, mp4, fmp4 or page)", format))
		return
	}
	w.Header().Set("Vary", "Accept, User-Agent")
	w.Header().Set("Cache-Control", "private, max-age=60")
	// Through a signed link, to the same format through the link.
	http.Redirect(w, r, auth.LinkURL(r.Context(), deliveries[format](user, id)), http.StatusFound)
}
