package hls

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// ImageTrack is a thumbnail track of sprite sheets, for an image media
// playlist (ImagePlaylist) and its EXT-X-IMAGE-STREAM-INF in a master
// playlist (MasterOptions.Images): the HLS image playlists of Roku and
// Apple, whose players show the tiles while scrubbing.
type ImageTrack struct {
	// URI is the image media playlist's, relative to the master.
	URI string
	// TileWidth and TileHeight are a tile's size; Cols and Rows the grid
	// of a sheet.
	TileWidth, TileHeight int
	Cols, Rows            int
	// Interval is the time each tile covers.
	Interval time.Duration
	// Sheets are the sheets' URIs, relative to the image playlist, and
	// Tiles the number of tiles in all (the last sheet may have fewer).
	Sheets []string
	Tiles  int
	// Duration is the presentation's, which the last tile may pass: the
	// last sheet's segment ends with it.
	Duration time.Duration
	// Bandwidth is the BANDWIDTH of the image stream (bit/s).
	Bandwidth int64
}

// ImagePlaylist returns the image media playlist of tr: a VOD playlist
// with EXT-X-IMAGES-ONLY, one segment per sheet lasting its tiles (the
// last one up to tr.Duration), each with an EXT-X-TILES tag (RESOLUTION of
// a tile, LAYOUT of the sheet, DURATION of a tile).
func ImagePlaylist(tr ImageTrack) []byte {
	per := tr.Cols * tr.Rows
	sheet := func(k int) time.Duration {
		n := min(per, tr.Tiles-k*per)
		d := time.Duration(max(n, 0)) * tr.Interval
		if rest := tr.Duration - time.Duration(k*per)*tr.Interval; tr.Duration > 0 && rest < d {
			d = max(rest, 0)
		}
		return d
	}
	target := int(math.Ceil(sheet(0).Seconds()))
	b := make([]byte, 0, 256+64*len(tr.Sheets))
	b = fmt.Appendf(b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-IMAGES-ONLY\n",
		max(target, 1))
	for k, uri := range tr.Sheets {
		b = append(b, "#EXTINF:"...)
		b = strconv.AppendFloat(b, sheet(k).Seconds(), 'f', 3, 64)
		b = fmt.Appendf(b, ",\n#EXT-X-TILES:RESOLUTION=%dx%d,LAYOUT=%dx%d,DURATION=%s\n%s\n",
			tr.TileWidth, tr.TileHeight, tr.Cols, tr.Rows, strconv.FormatFloat(tr.Interval.Seconds(), 'f', 3, 64), uri)
	}
	return append(b, "#EXT-X-ENDLIST\n"...)
}

// appendImageStream appends the EXT-X-IMAGE-STREAM-INF of tr.
func appendImageStream(b []byte, tr *ImageTrack) []byte {
	b = append(b, "#EXT-X-IMAGE-STREAM-INF:BANDWIDTH="...)
	b = strconv.AppendInt(b, max(tr.Bandwidth, 1), 10)
	b = fmt.Appendf(b, ",RESOLUTION=%dx%d,CODECS=\"jpeg\",URI=", tr.TileWidth, tr.TileHeight)
	b = appendQuoted(b, tr.URI)
	return append(b, '\n')
}
