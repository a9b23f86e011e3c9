package media

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"time"
)

// Concat returns one index that plays the parts one after the other, for a
// single file stitched from several (a server-side playlist's items as one
// progressive MP4). The parts are typically what Clip returns: decode
// times from 0, MediaTime where presentation starts.
//
// The result has a video track, the parts' first video tracks end to end,
// if every part has a video track, and an audio track, their first audio
// tracks, if every part has an audio track; other tracks are left out. Its
// chapters are the parts' chapters in order (the same stored object may
// appear in several: each part keeps its own entries, so the samples of a
// part never mix with another's); a part's chapters keep their Duration and
// their Start moves by the part's start on the result's timeline. Each
// track's sample entries are those of its parts, identical ones shared,
// each chapter pointing at its own. Track metadata (timescale, codec,
// language, picture size, tkhd fields) is the first part's; samples of a
// part with another timescale are rescaled to it. Track references are
// dropped (they named the parts' track IDs).
//
// Timing. The reference track (video, else audio) is concatenated as is:
// part k starts at decode time V(k), the sum of the earlier parts'
// reference durations, which is where a playlist places item k. The
// result's MediaTime (its single edit) is the first part's, so a later part
// k, whose own MediaTime m(k) an edit can no longer skip, gets its
// composition offsets shifted by MediaTime - m(k): its sample at m(k) is
// presented at V(k), as if it had its own edit. A shift that would make a
// composition offset negative (m(k) exceeds MediaTime by more than the
// part's smallest offset: a part cut off a keyframe, showing frames
// decoded before its start, after a first part that is not) is reduced so
// that the smallest offset becomes 0: the part then shows those frames
// from V(k) on and its MediaTime a little later, which is all a single edit
// allows.
//
// The other track (audio beside video) is placed on the reference track's
// clock rather than end to end, so that the parts' audio and video never
// drift apart however their lengths differ (AAC priming and padding add up
// to a few tens of milliseconds per part): its part k is placed so that its
// MediaTime is presented where the reference part's is, its composition
// offsets unchanged. Samples placed before (of part k-1) that would start
// at or after that point are left out (the tail of an audio track longer
// than its video, usually one AAC frame of encoder padding), and the last
// sample kept lasts up to it (filling the gap where the audio is
// shorter). A later part's own skipped media (AAC priming) is presented,
// just before its place.
//
// The result passes Validate. Concat fails on no parts, a part without
// chapters or tracks, parts without a video or an audio track in common,
// and durations that do not fit the index's 32-bit columns.
func Concat(parts []*Index) (*Index, error) {
	if len(parts) == 0 {
		return nil, errors.New("media: concat: no parts")
	}
	video, audio := true, true
	for k, p := range parts {
		if p == nil || len(p.Chapters) == 0 || len(p.Tracks) == 0 {
			return nil, fmt.Errorf("media: concat: part %d has no chapters or no tracks: %w", k, ErrInvalid)
		}
		video = video && p.Video() != nil
		audio = audio && p.Audio() != nil
	}
	var kinds []Kind
	if video {
		kinds = append(kinds, KindVideo)
	}
	if audio {
		kinds = append(kinds, KindAudio)
	}
	if len(kinds) == 0 {
		return nil, fmt.Errorf("media: concat: the %d parts have neither a video track in common nor an audio track: %w", len(parts), ErrUnsupported)
	}

	out := &Index{Created: parts[0].Created}
	// chapterBase[k] is the result chapter of part k's first chapter.
	chapterBase := make([]int, len(parts)+1)
	for k, p := range parts {
		chapterBase[k] = len(out.Chapters)
		out.Chapters = append(out.Chapters, p.Chapters...)
	}
	chapterBase[len(parts)] = len(out.Chapters)

	// The reference track first: it fixes where the parts start (V) and
	// how late each is presented after its place (late, in its ticks).
	var ref *concatClock
	for i, kind := range kinds {
		tracks := make([]*Track, len(parts))
		for k, p := range parts {
			tracks[k] = p.first(kind)
		}
		t, clock, err := concatTrack(tracks, chapterBase, ref)
		if err != nil {
			return nil, fmt.Errorf("media: concat: %s tracks: %w", kind, err)
		}
		t.ID = uint32(i + 1)
		if ref == nil {
			ref = clock
		}
		out.Tracks = append(out.Tracks, t)
	}
	// Chapters move with their part.
	for k := range parts {
		start := time.Duration(float64(ref.start[k]) / float64(ref.timescale) * float64(time.Second))
		for c := chapterBase[k]; c < chapterBase[k+1]; c++ {
			out.Chapters[c].Start += start
		}
	}
	if err := out.Validate(); err != nil {
		return nil, fmt.Errorf("media: concat: %w", err)
	}
	return out, nil
}

// concatClock is where the parts of the reference track start.
type concatClock struct {
	timescale uint32
	// start[k] is part k's first decode time; late[k] is how much later
	// than start[k] its MediaTime is presented (0 unless its composition
	// offset shift was reduced), in timescale.
	start, late []int64
}

// concatTrack concatenates tracks (one per part) into one track whose
// chapters are numbered from chapterBase[k] for part k. With ref nil the
// track is the reference: end to end, and it returns its clock; otherwise
// each part is placed on ref's clock (see Concat).
func concatTrack(tracks []*Track, chapterBase []int, ref *concatClock) (*Track, *concatClock, error) {
	first := tracks[0]
	ts := first.Timescale
	for k, t := range tracks {
		if t.Timescale == 0 {
			return nil, nil, fmt.Errorf("part %d: zero timescale: %w", k, ErrInvalid)
		}
	}
	out := *first
	out.References = nil
	out.SampleEntries = nil
	mt0 := first.MediaTime

	total := 0
	for _, t := range tracks {
		total += t.Samples.Len()
	}
	var (
		dts    = make([]int64, 0, total) // decode times on the result's timeline
		offset = make([]int64, 0, total)
		size   = make([]uint32, 0, total)
		cto    = make([]int32, 0, total)
		sync   = make([]bool, 0, total)
		chap   = make([]int, 0, total) // result chapter of each sample
		hasCTO bool
		noSync bool
		end    int64 // decode end of what is placed so far
	)
	clock := &concatClock{timescale: ts, start: make([]int64, len(tracks)), late: make([]int64, len(tracks))}
	nch := chapterBase[len(chapterBase)-1]
	desc := make([]uint32, nch)

	for k, t := range tracks {
		s := &t.Samples
		n := s.Len()
		if len(s.DTS) != n+1 {
			return nil, nil, fmt.Errorf("part %d: decode times not derived: %w", k, ErrInvalid)
		}
		conv := func(x int64) int64 { return Rescale(x, t.Timescale, ts) }
		mt := conv(t.MediaTime)
		minCTO := int64(math.MaxInt64)
		for i := range n {
			minCTO = min(minCTO, conv(int64(s.CompOffset(i))))
		}
		if n == 0 {
			minCTO = 0
		}
		// The reference's composition offset shift (see Concat); none for
		// the first part, whose MediaTime is the result's, nor for the
		// other track, which is placed instead (below).
		var shift int64
		if ref == nil && k > 0 {
			want := mt0 - mt
			shift = want
			if want < 0 && minCTO+want < 0 {
				shift = max(want, min(0, -minCTO))
			}
			clock.late[k] = shift - want
		}
		if ref != nil && k > 0 {
			// On the reference's clock: the part's MediaTime presented
			// where the reference part's is.
			target := Rescale(ref.start[k]+ref.late[k], ref.timescale, ts) + mt0 - mt
			for len(dts) > 0 && dts[len(dts)-1] >= target {
				dts, offset, size = dts[:len(dts)-1], offset[:len(offset)-1], size[:len(size)-1]
				cto, sync, chap = cto[:len(cto)-1], sync[:len(sync)-1], chap[:len(chap)-1]
			}
			if len(dts) == 0 {
				end = 0 // nothing before to stretch: start at the beginning
			} else {
				end = target
			}
		}
		clock.start[k] = end

		// Sample entries: the part's, identical ones shared.
		remap := make([]uint32, len(t.SampleEntries)+1)
		for j, e := range t.SampleEntries {
			found := 0
			for x, have := range out.SampleEntries {
				if bytes.Equal(have, e) {
					found = x + 1
					break
				}
			}
			if found == 0 {
				out.SampleEntries = append(out.SampleEntries, e)
				found = len(out.SampleEntries)
			}
			remap[j+1] = uint32(found)
		}
		nc := chapterBase[k+1] - chapterBase[k]
		if len(s.ChapterStart) != nc+1 || len(s.ChapterDesc) != nc {
			return nil, nil, fmt.Errorf("part %d: chapter table does not match its %d chapters: %w", k, nc, ErrInvalid)
		}
		for c := range nc {
			d := s.ChapterDesc[c]
			if d == 0 || int(d) >= len(remap) {
				return nil, nil, fmt.Errorf("part %d: chapter %d uses sample entry %d of %d: %w", k, c, d, len(t.SampleEntries), ErrInvalid)
			}
			desc[chapterBase[k]+c] = remap[d]
			for i := s.ChapterStart[c]; i < s.ChapterStart[c+1]; i++ {
				dts = append(dts, end+conv(s.DTS[i]))
				offset = append(offset, s.Offset[i])
				size = append(size, s.Size[i])
				c32 := conv(int64(s.CompOffset(i))) + shift
				if c32 < math.MinInt32 || c32 > math.MaxInt32 {
					return nil, nil, fmt.Errorf("part %d: composition offset %d out of range", k, c32)
				}
				cto = append(cto, int32(c32))
				hasCTO = hasCTO || c32 != 0
				sync = append(sync, s.IsSync(i))
				noSync = noSync || !s.IsSync(i)
				chap = append(chap, chapterBase[k]+c)
			}
		}
		end += conv(s.DTS[n])
	}

	m := len(dts)
	ns := Samples{Offset: offset, Size: size, Dur: make([]uint32, m), ChapterDesc: desc}
	for i := range m {
		next := end
		if i+1 < m {
			next = dts[i+1]
		}
		d := next - dts[i]
		if d < 0 || d > math.MaxUint32 {
			return nil, nil, fmt.Errorf("sample %d lasts %d ticks, out of range", i, d)
		}
		ns.Dur[i] = uint32(d)
	}
	if hasCTO {
		ns.CTO = cto
	}
	if noSync {
		ns.Sync = sync
	}
	// Every chapter of every part has an entry (a sample entry of its own
	// part, also when it holds no sample of this track).
	for c, d := range desc {
		if d == 0 {
			return nil, nil, fmt.Errorf("chapter %d has no sample entry: %w", c, ErrInvalid)
		}
	}
	ns.ChapterStart = make([]int, nch+1)
	for _, c := range chap {
		ns.ChapterStart[c+1]++
	}
	for c := range nch {
		ns.ChapterStart[c+1] += ns.ChapterStart[c]
	}
	ns.Derive()
	out.Samples = ns
	out.MediaTime = mt0
	return &out, clock, nil
}
