package live

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/jitstream/jitstream/internal/media"
)

// Smooth Streaming push (ffmpeg -f ismv to .../Streams(NAME)): one long
// POST whose body is a fragmented MP4 stream, read box by box as it
// arrives: ftyp, moov (every track), then moof+mdat pairs, each of one
// track (a moof of several is refused), perhaps an mfra at the end. Each
// track is a representation of its own, "streamN" for the moov's Nth
// track (N from 0), whose init segment is the ftyp and a moov of that
// track alone (track IDs kept, so the moofs need no rewriting); its
// fragments are numbered from 1 in arrival order. The stream is archived
// when the body ends.

// smoothPushRE matches the file of a Smooth Streaming push.
var smoothPushRE = regexp.MustCompile(`^Streams\([A-Za-z0-9_.-]*\)$`)

// smoothPush reads a Smooth Streaming push to its end.
func (s *Service) smoothPush(w http.ResponseWriter, r *http.Request, user, name string) {
	ctx := context.WithoutCancel(r.Context())
	err := s.readPush(ctx, r.Body, user, name)
	st := s.lookup(user, name)
	if err != nil {
		s.fail(w, r, err) // what was stored stays, archived when idle
		return
	}
	if st == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.finishPush(w, r, user, name, st)
}

// readBox reads the next top-level box of body (nil, io.EOF at its end).
func readBox(body io.Reader, limit int64) (string, []byte, error) {
	hdr := make([]byte, 8, 16)
	if _, err := io.ReadFull(body, hdr); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return "", nil, fmt.Errorf("live: smooth push: truncated box header: %w", media.ErrInvalid)
		}
		return "", nil, err
	}
	size := int64(binary.BigEndian.Uint32(hdr))
	typ := string(hdr[4:8])
	if size == 1 {
		hdr = hdr[:16]
		if _, err := io.ReadFull(body, hdr[8:]); err != nil {
			return "", nil, fmt.Errorf("live: smooth push: truncated box header: %w", media.ErrInvalid)
		}
		size = int64(binary.BigEndian.Uint64(hdr[8:]))
	}
	if size < int64(len(hdr)) || size > limit {
		return "", nil, fmt.Errorf("live: smooth push: %q box of %d bytes: %w", typ, size, media.ErrInvalid)
	}
	b := make([]byte, size)
	copy(b, hdr)
	if _, err := io.ReadFull(body, b[len(hdr):]); err != nil {
		return "", nil, fmt.Errorf("live: smooth push: truncated %q box: %w", typ, media.ErrInvalid)
	}
	return typ, b, nil
}

// readPush stores the init segments and fragments of a push's body.
func (s *Service) readPush(ctx context.Context, body io.Reader, user, name string) error {
	var ftyp, moof []byte
	reps := map[uint32]string{} // by track ID
	seqs := map[string]int{}
	var rec *Recorder
	for {
		typ, b, err := readBox(body, s.opt.MaxFragmentBytes)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		s.touch(user, name)
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		switch typ {
		case "ftyp":
			ftyp = b
		case "moov":
			if rec == nil {
				if rec, err = s.recorder(sctx, user, name); err != nil {
					cancel()
					return err
				}
			}
			err = s.pushInits(sctx, rec, ftyp, b, reps)
		case "moof":
			moof = b
		case "mdat":
			if moof == nil || rec == nil {
				err = fmt.Errorf("live: smooth push: mdat without moov or moof: %w", media.ErrInvalid)
				break
			}
			var rep string
			if rep, err = moofRep(moof, reps); err == nil {
				seqs[rep]++
				err = rec.AddFragment(sctx, rep, seqs[rep], append(moof, b...))
			}
			moof = nil
		}
		cancel()
		if err != nil {
			return err
		}
	}
}

// pushInits adds an init segment per track of moov, recording each
// track's representation in reps.
func (s *Service) pushInits(ctx context.Context, rec *Recorder, ftyp, moovB []byte, reps map[uint32]string) error {
	box, err := mp4.DecodeBox(0, bytes.NewReader(moovB))
	if err != nil {
		return fmt.Errorf("live: smooth push: moov: %v: %w", err, media.ErrInvalid)
	}
	moov, ok := box.(*mp4.MoovBox)
	if !ok || moov.Mvhd == nil || moov.Mvex == nil {
		return fmt.Errorf("live: smooth push: moov without mvhd or mvex: %w", media.ErrInvalid)
	}
	for i, trak := range moov.Traks {
		if trak.Tkhd == nil {
			return fmt.Errorf("live: smooth push: trak without tkhd: %w", media.ErrInvalid)
		}
		id := trak.Tkhd.TrackID
		m := mp4.NewMoovBox()
		m.AddChild(moov.Mvhd)
		m.AddChild(trak)
		mvex := mp4.NewMvexBox()
		for _, trex := range moov.Mvex.Trexs {
			if trex.TrackID == id {
				mvex.AddChild(trex)
			}
		}
		m.AddChild(mvex)
		var buf bytes.Buffer
		buf.Write(ftyp)
		if err := m.Encode(&buf); err != nil {
			return fmt.Errorf("live: smooth push: init segment of track %d: %v: %w", id, err, media.ErrInvalid)
		}
		rep := "stream" + strconv.Itoa(i)
		if err := rec.AddInit(ctx, rep, buf.Bytes()); err != nil {
			return err
		}
		reps[id] = rep
	}
	return nil
}

// moofRep is the representation of the one track of a moof.
func moofRep(moofB []byte, reps map[uint32]string) (string, error) {
	box, err := mp4.DecodeBox(0, bytes.NewReader(moofB))
	if err != nil {
		return "", fmt.Errorf("live: smooth push: moof: %v: %w", err, media.ErrInvalid)
	}
	moof, ok := box.(*mp4.MoofBox)
	if !ok || len(moof.Trafs) != 1 || moof.Traf.Tfhd == nil {
		return "", fmt.Errorf("live: smooth push: a moof of one track is expected: %w", media.ErrUnsupported)
	}
	rep, ok := reps[moof.Traf.Tfhd.TrackID]
	if !ok {
		return "", fmt.Errorf("live: smooth push: moof of unknown track %d: %w", moof.Traf.Tfhd.TrackID, media.ErrInvalid)
	}
	return rep, nil
}
