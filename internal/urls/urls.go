// Package urls names the URL of every output of an asset, in one place.
package urls

import (
	"net/url"
	"strings"
)

// Suffixes of the generated files after the asset id in the file view.
const (
	SuffixConsolidated = ".mp4"
	SuffixFMP4         = ".frag.mp4"
)

// File is the URL path of a file in user's file-system view.
func File(user, name string) string {
	return "/files/" + url.PathEscape(user) + "/" + escapePath(name)
}

// Stream is the URL path of a stream resource of an asset.
func Stream(user, id, path string) string {
	return "/streams/" + url.PathEscape(user) + "/" + url.PathEscape(id) + "/" + path
}

// Play is the asset's entry URL, which picks a delivery for the client.
func Play(user, id string) string {
	return "/play/" + url.PathEscape(user) + "/" + url.PathEscape(id)
}

// Watch is the asset's player page.
func Watch(user, id string) string {
	return "/watch/" + url.PathEscape(user) + "/" + url.PathEscape(id)
}

// Asset names every output of an asset by kind, as the API returns it.
func Asset(user, id string, chapters []string) map[string]any {
	orig := make([]string, len(chapters))
	for i, c := range chapters {
		orig[i] = File(user, id+"/"+c)
	}
	return map[string]any{
		"original":     orig,
		"consolidated": File(user, id+SuffixConsolidated),
		"fmp4":         File(user, id+SuffixFMP4),
		"clip":         File(user, id+SuffixConsolidated) + "?start={start}&end={end}",
		"hls":          Stream(user, id, "hls/master.m3u8"),
		"hls_ts":       Stream(user, id, "hls/ts/master.m3u8"),
		"hls_iframes":  Stream(user, id, "hls/ts/iframes.m3u8"),
		"dash":         Stream(user, id, "dash/manifest.mpd"),
		"smooth":       Stream(user, id, "smooth/Manifest"),
		"stream_clip":  "/streams/" + url.PathEscape(user) + "/" + url.PathEscape(id) + ",{start}-{end}/hls/master.m3u8",
		"play":         Play(user, id),
		"watch":        Watch(user, id),
	}
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}
