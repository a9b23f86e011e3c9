package hls

import (
	"strings"
	"testing"
	"time"
)

func TestImagePlaylist(t *testing.T) {
	tests := []struct {
		name string
		tr   ImageTrack
		want []string // lines, in order
	}{
		{"one short sheet", ImageTrack{TileWidth: 160, TileHeight: 90, Cols: 7, Rows: 1, Interval: 2 * time.Second,
			Sheets: []string{"s0.jpg"}, Tiles: 7, Duration: 12021 * time.Millisecond}, []string{
			"#EXTM3U", "#EXT-X-TARGETDURATION:13", "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-IMAGES-ONLY",
			"#EXTINF:12.021,", "#EXT-X-TILES:RESOLUTION=160x90,LAYOUT=7x1,DURATION=2.000", "s0.jpg", "#EXT-X-ENDLIST"}},
		{"full sheets and a last one", ImageTrack{TileWidth: 160, TileHeight: 90, Cols: 10, Rows: 10, Interval: 8 * time.Second,
			Sheets: []string{"a.jpg", "b.jpg"}, Tiles: 150, Duration: 1195 * time.Second}, []string{
			"#EXT-X-TARGETDURATION:800", "#EXTINF:800.000,", "#EXT-X-TILES:RESOLUTION=160x90,LAYOUT=10x10,DURATION=8.000", "a.jpg",
			"#EXTINF:395.000,", "#EXT-X-TILES:RESOLUTION=160x90,LAYOUT=10x10,DURATION=8.000", "b.jpg", "#EXT-X-ENDLIST"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(ImagePlaylist(tc.tr))
			pos := 0
			for _, w := range tc.want {
				i := strings.Index(got[pos:], w+"\n")
				if i < 0 {
					t.Fatalf("no %q (in order) in\n%s", w, got)
				}
				pos += i
			}
		})
	}
	b := string(appendImageStream(nil, &ImageTrack{URI: "images.m3u8", TileWidth: 160, TileHeight: 90, Bandwidth: 5000}))
	if b != "#EXT-X-IMAGE-STREAM-INF:BANDWIDTH=5000,RESOLUTION=160x90,CODECS=\"jpeg\",URI=\"images.m3u8\"\n" {
		t.Errorf("image stream tag %q", b)
	}
}
