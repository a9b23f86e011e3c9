package mediatest

import (
	"time"

	"github.com/jitstream/jitstream/internal/media"
)

// Synth returns the index of a synthetic recording: video at fps frames per
// second (timescale 90000, key frame every gop frames, B-frame-like
// composition offsets, MediaTime of two frames) and, unless noAudio, AAC
// at 48 kHz (1024-sample frames). Sample bytes are laid out back to back in
// one object; they are never read.
func Synth(seconds, fps, gop int, noAudio bool) *media.Index {
	const vts = 90000
	frame := uint32(vts / fps)
	video := &media.Track{
		ID: 1, Kind: media.KindVideo, Handler: "vide", Format: "avc1", Codec: "avc1.640028",
		Timescale: vts, Language: "und", Width: 1920, Height: 1080,
		SampleEntries: [][]byte{[]byte("avc1")}, MediaTime: 2 * int64(frame),
	}
	audio := &media.Track{
		ID: 2, Kind: media.KindAudio, Handler: "soun", Format: "mp4a", Codec: "mp4a.40.2",
		Timescale: 48000, Language: "eng", SampleRate: 48000, Channels: 2,
		SampleEntries: [][]byte{[]byte("mp4a")}, MediaTime: 1024,
	}
	ix := &media.Index{Created: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)}
	var off int64
	vs, as := &video.Samples, &audio.Samples
	nv := seconds * fps
	var audioTime int64
	for i := range nv {
		size := uint32(4000 + (i*7919)%3000)
		if i%gop == 0 {
			size = 40000 + uint32(i%13)*100
		}
		vs.Offset = append(vs.Offset, off)
		vs.Size = append(vs.Size, size)
		vs.Dur = append(vs.Dur, frame)
		vs.Sync = append(vs.Sync, i%gop == 0)
		cto := int32(2 * frame)
		if i%gop != 0 && i%3 == 1 {
			cto = int32(3 * frame)
		} else if i%gop != 0 {
			cto = 0
		}
		vs.CTO = append(vs.CTO, cto)
		off += int64(size)
		for until := int64(i+1) * 48000 / int64(fps); !noAudio && audioTime < until; audioTime += 1024 {
			as.Offset = append(as.Offset, off)
			as.Size = append(as.Size, uint32(350+(len(as.Size)*31)%100))
			as.Dur = append(as.Dur, 1024)
			off += int64(as.Size[len(as.Size)-1])
		}
	}
	ix.Chapters = []media.Chapter{{Object: "synthetic", Name: "SYNTH.MP4", Size: off, Duration: time.Duration(seconds) * time.Second}}
	vs.ChapterStart, vs.ChapterDesc = []int{0, vs.Len()}, []uint32{1}
	as.ChapterStart, as.ChapterDesc = []int{0, as.Len()}, []uint32{1}
	vs.Derive()
	as.Derive()
	ix.Tracks = []*media.Track{video}
	if !noAudio {
		ix.Tracks = append(ix.Tracks, audio)
	}
	if err := ix.Validate(); err != nil {
		panic(err)
	}
	return ix
}

// SynthAudioOnly is Synth's audio track alone (as track 1).
func SynthAudioOnly(seconds int) *media.Index {
	ix := Synth(seconds, 30, 60, false)
	a := ix.Tracks[1]
	a.ID = 1
	ix.Tracks = []*media.Track{a}
	return ix
}

// AddUnalignedVideo appends to ix (from Synth) a copy of its video track,
// as track 3, whose key frames are every gop frames from frame 15: like a
// second camera angle with its own GOP phase, its segments do not start
// with key frames. It returns the new track.
func AddUnalignedVideo(ix *media.Index, gop int) *media.Track {
	v2 := *ix.Tracks[0]
	v2.ID = 3
	v2.Samples.Sync = make([]bool, len(v2.Samples.Sync))
	for i := range v2.Samples.Sync {
		v2.Samples.Sync[i] = i%gop == 15
	}
	ix.Tracks = append(ix.Tracks, &v2)
	return &v2
}
