package mp4build

import "github.com/jitstream/jitstream/internal/media"

// ChapterPayload tells where each chapter's bytes lie in the progressive
// MP4 of the whole of ix (Progressive(ix, Selection{})), whose mdat payload
// holds the chapters' samples chapter after chapter: chapter c's are the
// payload bytes [off[c], off[c+1]), and off[len(ix.Chapters)] is the
// payload's size. The payload ends the file, so in a file f built from ix
// chapter c starts at f.Size - off[len(ix.Chapters)] + off[c]. A chapter
// without samples gets an empty span.
func ChapterPayload(ix *media.Index) ([]int64, error) {
	p, err := newPlan(ix, tracksOf(ix), Selection{})
	if err != nil {
		return nil, err
	}
	lay := p.layout()
	n := len(ix.Chapters)
	off := make([]int64, n+1)
	for c := range n {
		off[c] = -1
	}
	// A chapter's bytes begin with its first run, which begins with one
	// of its samples: the smallest payload offset of its samples.
	for k := range p.tracks {
		tp := &p.tracks[k]
		s := &tp.t.Samples
		for c := range n {
			lo, hi := max(tp.first, s.ChapterStart[c]), min(tp.end, s.ChapterStart[c+1])
			for i := lo; i < hi; i++ {
				if o := lay.off[k][i-tp.first]; off[c] < 0 || o < off[c] {
					off[c] = o
				}
			}
		}
	}
	off[n] = lay.size
	for c := n - 1; c >= 0; c-- {
		if off[c] < 0 {
			off[c] = off[c+1]
		}
	}
	return off, nil
}
