package dash

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ThumbnailScheme is the scheme of the EssentialProperty that marks a
// Representation of tiled thumbnail images (DASH-IF IOP 4.3, 6.2.6); its
// value is the grid of a sheet, "COLSxROWS".
const ThumbnailScheme = "http://dashif.org/thumbnail_tile"

// ThumbnailSet describes the thumbnail sheets of an asset, for an image
// AdaptationSet (Options.Thumbnails): sheet n, named by MediaTemplate with
// $Number$ = n (from 0), is a JPEG grid of Cols x Rows tiles of
// TileWidth x TileHeight pixels covering [n*SheetDuration,
// (n+1)*SheetDuration) in equal shares, row by row: the tile shown at time
// t is number floor((t mod SheetDuration) / (SheetDuration/(Cols*Rows)))
// of sheet floor(t / SheetDuration), which is how players (dash.js
// provideThumbnail) pick it. Sheets must cover the whole presentation.
type ThumbnailSet struct {
	Cols, Rows            int
	TileWidth, TileHeight int
	SheetDuration         time.Duration
	// Sheets is the number of sheets, at least
	// ceil(duration / SheetDuration).
	Sheets int
	// MediaTemplate is the sheets' SegmentTemplate@media, relative to the
	// MPD: "../thumbs/sprite-$Number$.jpg".
	MediaTemplate string
	// ID is the Representation@id: "thumbnails" when empty.
	ID string
	// Bandwidth is the Representation@bandwidth in bit/s: when 0, a
	// nominal 0.75 bit per pixel of a sheet per SheetDuration.
	Bandwidth int64
}

// check reports whether ts is usable for a presentation lasting dur.
func (ts *ThumbnailSet) check(dur time.Duration) error {
	switch {
	case ts.Cols < 1 || ts.Rows < 1 || ts.TileWidth < 1 || ts.TileHeight < 1:
		return fmt.Errorf("dash: thumbnails of %dx%d tiles of %dx%d", ts.Cols, ts.Rows, ts.TileWidth, ts.TileHeight)
	case ts.SheetDuration < time.Millisecond:
		return fmt.Errorf("dash: thumbnail sheets of %v", ts.SheetDuration)
	case time.Duration(ts.Sheets)*ts.SheetDuration < dur:
		return fmt.Errorf("dash: %d thumbnail sheets of %v do not cover %v", ts.Sheets, ts.SheetDuration, dur)
	case ts.MediaTemplate == "":
		return errors.New("dash: thumbnails without a media template")
	}
	return nil
}

// thumbnailSet returns the image AdaptationSet of ts with the given id:
// contentType image, mimeType image/jpeg, one Representation of the
// sheet's size with the thumbnail_tile EssentialProperty (where dash.js
// looks for it: on the Representation) and a SegmentTemplate of
// SheetDuration per sheet, in milliseconds rounded up (so that the sheets
// still cover the presentation), $Number$ from 0.
func thumbnailSet(ts *ThumbnailSet, id int) adaptationSetXML {
	w, h := ts.Cols*ts.TileWidth, ts.Rows*ts.TileHeight
	bw := ts.Bandwidth
	if bw <= 0 {
		bw = max(1, int64(float64(w*h)*0.75/ts.SheetDuration.Seconds()))
	}
	repID := ts.ID
	if repID == "" {
		repID = "thumbnails"
	}
	return adaptationSetXML{
		ID: id, ContentType: "image", MimeType: "image/jpeg",
		Representations: []representationXML{{
			ID: repID, Bandwidth: bw, Width: uint32(w), Height: uint32(h),
			Essential: []descriptorXML{{SchemeIDURI: ThumbnailScheme,
				Value: strconv.Itoa(ts.Cols) + "x" + strconv.Itoa(ts.Rows)}},
			SegmentTemplate: segmentTemplateXML{
				Timescale: 1000,
				Duration:  int64((ts.SheetDuration + time.Millisecond - 1) / time.Millisecond),
				Media:     ts.MediaTemplate,
			},
		}},
	}
}
