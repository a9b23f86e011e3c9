package live

import (
	"encoding/xml"
	"fmt"
)

// manifest is what a pushed MPD tells: whether the stream ended (static)
// and, when its segment timelines say it, the fragments of each
// representation.
type manifest struct {
	static bool
	// fragments maps a representation ("stream" + its id, the name of
	// its files) to its fragments' numbers; nil when the MPD has no
	// segment timeline that counts them.
	fragments map[string][]int
}

type mpdXML struct {
	Type    string `xml:"type,attr"`
	Periods []struct {
		Sets []struct {
			Template *templateXML `xml:"SegmentTemplate"`
			Reps     []struct {
				ID       string       `xml:"id,attr"`
				Template *templateXML `xml:"SegmentTemplate"`
			} `xml:"Representation"`
		} `xml:"AdaptationSet"`
	} `xml:"Period"`
}

type templateXML struct {
	StartNumber *int `xml:"startNumber,attr"`
	Timeline    *struct {
		S []struct {
			R int `xml:"r,attr"`
		} `xml:"S"`
	} `xml:"SegmentTimeline"`
}

// maxListed bounds the fragments a manifest may list (days of 2 s
// fragments).
const maxListed = 1 << 20

// parseManifest reads a pushed MPD.
func parseManifest(b []byte) (manifest, error) {
	var x mpdXML
	if err := xml.Unmarshal(b, &x); err != nil {
		return manifest{}, fmt.Errorf("live: manifest: %w", err)
	}
	m := manifest{static: x.Type == "static", fragments: map[string][]int{}}
	total := 0
	for _, p := range x.Periods {
		for _, set := range p.Sets {
			for _, rep := range set.Reps {
				t := rep.Template
				if t == nil {
					t = set.Template
				}
				if t == nil || t.Timeline == nil {
					return manifest{static: m.static}, nil
				}
				first := 1
				if t.StartNumber != nil {
					first = *t.StartNumber
				}
				n := 0
				for _, s := range t.Timeline.S {
					if s.R < 0 || s.R > maxListed {
						return manifest{static: m.static}, nil // repeated to the end: not counted
					}
					n += 1 + s.R
				}
				if total += n; total > maxListed {
					return manifest{static: m.static}, nil
				}
				name := "stream" + rep.ID
				for seq := first; seq < first+n; seq++ {
					m.fragments[name] = append(m.fragments[name], seq)
				}
			}
		}
	}
	return m, nil
}
