package live

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
)

// HLS push (ffmpeg -f hls -method PUT -hls_segment_type fmp4): one
// representation, HLSRep, whose init segment is init.mp4 and whose
// fragments are {playlist}N.m4s (stream0.m4s, stream1.m4s, ... for
// stream.m3u8), fragment number N; every track (video and audio) in each
// fragment (a muxed representation). The playlist ends the stream when it
// has #EXT-X-ENDLIST, once the segments it lists have arrived.
//
// ffmpeg sends a segment before the init segment (it writes init.mp4 once
// the first segment is complete), and does so again after a reconnect: a
// segment that arrives before its init segment (or that conflicts with one
// of the current epoch, the first of a new session) is held in memory,
// up to maxPending of them, and added when the next init segment arrives.
// Held segments are in memory only: a node that restarts meanwhile loses
// them (the stream itself resumes, see Service.open).

// HLSRep is the representation of an HLS push.
const HLSRep = "hls"

// maxPending bounds the segments of an HLS push held until an init
// segment arrives.
const maxPending = 4

type pendingFrag struct {
	seq int
	b   []byte
}

// hlsInit adds an HLS push's init segment, then the segments held for it.
func (s *Service) hlsInit(ctx context.Context, rec *Recorder, b []byte) error {
	st := s.lookupRec(rec)
	if st == nil {
		return rec.AddInit(ctx, HLSRep, b)
	}
	st.hlsMu.Lock()
	defer st.hlsMu.Unlock()
	if err := rec.AddInit(ctx, HLSRep, b); err != nil {
		return err
	}
	held := st.pending
	st.pending = nil
	slices.SortFunc(held, func(a, b pendingFrag) int { return a.seq - b.seq })
	for _, p := range held {
		if err := rec.AddFragment(ctx, HLSRep, p.seq, p.b); err != nil {
			s.log.Warn("held HLS segment refused", "user", rec.user, "stream", rec.name, "seq", p.seq, "err", err)
		}
	}
	return nil
}

// hlsFragment adds segment seq of an HLS push, or holds it until the next
// init segment.
func (s *Service) hlsFragment(ctx context.Context, rec *Recorder, seq int, b []byte) error {
	st := s.lookupRec(rec)
	if st == nil {
		return rec.AddFragment(ctx, HLSRep, seq, b)
	}
	st.hlsMu.Lock()
	defer st.hlsMu.Unlock()
	err := rec.AddFragment(ctx, HLSRep, seq, b)
	if (errors.Is(err, ErrNoInit) || errors.Is(err, ErrConflict)) && len(st.pending) < maxPending {
		st.pending = append(st.pending, pendingFrag{seq: seq, b: bytes.Clone(b)})
		return nil
	}
	return err
}

// lookupRec returns the stream in progress whose Recorder is rec.
func (s *Service) lookupRec(rec *Recorder) *stream {
	st := s.lookup(rec.user, rec.name)
	if st == nil || st.rec != rec {
		return nil
	}
	return st
}

// parsePlaylist reads a pushed HLS media playlist: ended with
// #EXT-X-ENDLIST, and the numbers of the segments it lists.
func parsePlaylist(b []byte) manifest {
	m := manifest{fragments: map[string][]int{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "#EXT-X-ENDLIST":
			m.static = true
		case line == "" || strings.HasPrefix(line, "#"):
		default:
			uri := line[strings.LastIndexByte(line, '/')+1:]
			if i := strings.IndexAny(uri, "?#"); i >= 0 {
				uri = uri[:i]
			}
			if sm := hlsSegRE.FindStringSubmatch(uri); sm != nil && len(m.fragments[HLSRep]) < maxListed {
				n, _ := strconv.Atoi(sm[1])
				m.fragments[HLSRep] = append(m.fragments[HLSRep], n)
			}
		}
	}
	return m
}
