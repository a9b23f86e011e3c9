package mp4build

import "encoding/binary"

// This file writes the sample tables of the progressive output. A counting
// pass (stats) finds the entry counts and the chunks, which sizes the moov
// buffer exactly; then every table is written straight into the writer's
// slice, one pass over the samples each, with no per-entry allocation.

// tableStats counts what sizes a track's sample tables.
type tableStats struct {
	sttsRuns, cttsRuns, syncs, stscRuns int
	constSize                           bool
	// chunks are the track's chunks in the output.
	chunks []chunk
}

// chunk is a run of consecutive samples of a track that are contiguous in
// the output and share a sample description.
type chunk struct {
	n    uint32 // samples
	desc uint32 // sample description index
	off  int64  // offset in the mdat payload
}

// size is the size in bytes of the sample tables (stts to stco/co64).
func (st *tableStats) size(tp *trackPlan, co64 bool) int {
	s := &tp.t.Samples
	n := 16 + 8*st.sttsRuns + 16 + 12*st.stscRuns + 20
	if s.CTO != nil {
		n += 16 + 8*st.cttsRuns
	}
	if s.Sync != nil {
		n += 16 + 4*st.syncs
	}
	if !st.constSize {
		n += 4 * tp.len()
	}
	if co64 {
		return n + 16 + 8*len(st.chunks)
	}
	return n + 16 + 4*len(st.chunks)
}

// stats counts the runs and sync samples of the selected samples and finds
// their chunks; off holds their offsets in the output's mdat payload.
func stats(tp *trackPlan, off []int64) tableStats {
	s := &tp.t.Samples
	st := tableStats{constSize: true}
	if tp.len() == 0 {
		return st
	}
	first, end := tp.first, tp.end
	st.sttsRuns = runs(s.Dur[first:end])
	if s.CTO != nil {
		st.cttsRuns = runs(s.CTO[first:end])
	}
	if s.Sync != nil {
		for _, sync := range s.Sync[first:end] {
			if sync {
				st.syncs++
			}
		}
	}
	size0 := s.Size[first]
	for _, z := range s.Size[first:end] {
		if z != size0 {
			st.constSize = false
			break
		}
	}
	st.chunks = chunks(tp, off)
	for k, c := range st.chunks {
		if k == 0 || c.n != st.chunks[k-1].n || c.desc != st.chunks[k-1].desc {
			st.stscRuns++
		}
	}
	return st
}

// runs counts the runs of equal values.
func runs[T comparable](v []T) int {
	n := 0
	for i := range v {
		if i == 0 || v[i] != v[i-1] {
			n++
		}
	}
	return n
}

// chunks splits a track's selected samples into chunks.
func chunks(tp *trackPlan, off []int64) []chunk {
	s := &tp.t.Samples
	// Interleaved originals (ffmpeg writes one sample per chunk) have about
	// as many chunks as samples: size for that at once rather than grow.
	out := make([]chunk, 0, tp.end-tp.first)
	c := chapterOf(s, tp.first, 0)
	for i := tp.first; i < tp.end; {
		// Chapters [c, ...] sharing c's sample description.
		c = chapterOf(s, i, c)
		desc := s.ChapterDesc[c]
		stop := min(s.ChapterStart[c+1], tp.end)
		for stop < tp.end && s.ChapterDesc[chapterOf(s, stop, c)] == desc {
			c = chapterOf(s, stop, c)
			stop = min(s.ChapterStart[c+1], tp.end)
		}
		// Contiguous runs within [i, stop).
		o := off[i-tp.first : stop-tp.first]
		size := s.Size[i:stop]
		for j := 0; j < len(o); {
			next := o[j] + int64(size[j])
			k := j + 1
			for k < len(o) && o[k] == next {
				next += int64(size[k])
				k++
			}
			out = append(out, chunk{n: uint32(k - j), desc: desc, off: o[j]})
			j = k
		}
		i = stop
	}
	return out
}

// The table writers below append to a local slice in their loops and
// store it back once: appending through w.b would store the slice header
// into the heap on every entry (with GC write barriers).

// writeStts writes the decode durations, run-length coded.
func writeStts(w *writer, tp *trackPlan, runs int) {
	s := &tp.t.Samples
	pos := w.fullBox("stts", 0, 0)
	w.u32(uint32(runs))
	b := w.b
	for i := tp.first; i < tp.end; {
		d := s.Dur[i]
		j := i + 1
		for j < tp.end && s.Dur[j] == d {
			j++
		}
		b = binary.BigEndian.AppendUint32(b, uint32(j-i))
		b = binary.BigEndian.AppendUint32(b, d)
		i = j
	}
	w.b = b
	w.end(pos)
}

// writeCtts writes the composition offsets, run-length coded; version 1
// (signed offsets) when any is negative. Nothing when the track has none.
func writeCtts(w *writer, tp *trackPlan, runs int) {
	s := &tp.t.Samples
	if s.CTO == nil {
		return
	}
	var version uint8
	for _, c := range s.CTO[tp.first:tp.end] {
		if c < 0 {
			version = 1
			break
		}
	}
	pos := w.fullBox("ctts", version, 0)
	w.u32(uint32(runs))
	b := w.b
	for i := tp.first; i < tp.end; {
		c := s.CTO[i]
		j := i + 1
		for j < tp.end && s.CTO[j] == c {
			j++
		}
		b = binary.BigEndian.AppendUint32(b, uint32(j-i))
		b = binary.BigEndian.AppendUint32(b, uint32(c))
		i = j
	}
	w.b = b
	w.end(pos)
}

// writeStss writes the 1-based numbers of the sync samples; nothing when
// every sample is a sync sample.
func writeStss(w *writer, tp *trackPlan, syncs int) {
	s := &tp.t.Samples
	if s.Sync == nil {
		return
	}
	pos := w.fullBox("stss", 0, 0)
	w.u32(uint32(syncs))
	b := w.b
	for i, sync := range s.Sync[tp.first:tp.end] {
		if sync {
			b = binary.BigEndian.AppendUint32(b, uint32(i+1))
		}
	}
	w.b = b
	w.end(pos)
}

// writeStsz writes the sample sizes, as one constant when they are all
// equal.
func writeStsz(w *writer, tp *trackPlan, constSize bool) {
	s := &tp.t.Samples
	pos := w.fullBox("stsz", 0, 0)
	if constSize && tp.len() > 0 {
		w.u32(s.Size[tp.first])
		w.u32(uint32(tp.len()))
	} else {
		w.u32(0)
		w.u32(uint32(tp.len()))
		b := w.b
		for _, sz := range s.Size[tp.first:tp.end] {
			b = binary.BigEndian.AppendUint32(b, sz)
		}
		w.b = b
	}
	w.end(pos)
}

// writeStsc writes the sample-to-chunk table: an entry wherever the number
// of samples per chunk or the sample description changes.
func writeStsc(w *writer, chunks []chunk, entries int) {
	pos := w.fullBox("stsc", 0, 0)
	w.u32(uint32(entries))
	b := w.b
	for k, c := range chunks {
		if k == 0 || c.n != chunks[k-1].n || c.desc != chunks[k-1].desc {
			b = binary.BigEndian.AppendUint32(b, uint32(k+1))
			b = binary.BigEndian.AppendUint32(b, c.n)
			b = binary.BigEndian.AppendUint32(b, c.desc)
		}
	}
	w.b = b
	w.end(pos)
}

// offsetTable locates a chunk offset table in the moov buffer, so that the
// offsets, written relative to the mdat payload, can be made absolute once
// the moov's size is known.
type offsetTable struct {
	pos, n int // first entry, number of entries
	wide   bool
}

// writeChunkOffsets writes stco (or co64 when wide) with the chunks'
// offsets relative to the mdat payload.
func writeChunkOffsets(w *writer, chunks []chunk, wide bool) offsetTable {
	typ := "stco"
	if wide {
		typ = "co64"
	}
	pos := w.fullBox(typ, 0, 0)
	w.u32(uint32(len(chunks)))
	tab := offsetTable{pos: len(w.b), n: len(chunks), wide: wide}
	b := w.b
	for _, c := range chunks {
		if wide {
			b = binary.BigEndian.AppendUint64(b, uint64(c.off))
		} else {
			b = binary.BigEndian.AppendUint32(b, uint32(c.off))
		}
	}
	w.b = b
	w.end(pos)
	return tab
}

// rebase adds base to every offset of the table.
func (tab offsetTable) rebase(b []byte, base int64) {
	if tab.wide {
		for k := range tab.n {
			p := b[tab.pos+8*k:]
			binary.BigEndian.PutUint64(p, binary.BigEndian.Uint64(p)+uint64(base))
		}
		return
	}
	for k := range tab.n {
		p := b[tab.pos+4*k:]
		binary.BigEndian.PutUint32(p, binary.BigEndian.Uint32(p)+uint32(base))
	}
}
