package mp4build

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jitstream/jitstream/internal/media"
)

// Sample entries taken from the H264AAC fixture (x264 320x240 High, AAC-LC
// 48 kHz stereo), so that mp4ff and ffmpeg can decode synthetic moovs.
var (
	avc1Entry = mustHex("000000b061766331000000000000000100000000000000000000000000000000014000f00048000000480000000000000001154c61766335392e33372e313030206c696278323634000000000000000000000018ffff00000036617663430164000dffe100196764000dacd94141fb0110000003001000000303c0f142996001000668ebe3cb22c0fdf8f800000000107061737000000001000000010000001462747274000000000004d5620004d562")
	mp4aEntry = mustHex("0000006e6d703461000000000000000100000000000000000002001000000000bb8000000000003665736473000000000380808025000200048080801740150000000000faff0000faff0580808005119056e5000680808001020000001462747274000000000000faff0000faff")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// synthOpts describes a synthetic recording.
type synthOpts struct {
	seconds   int
	fps       int   // video frame rate (timescale fps*1000, durations 1000)
	gop       int   // frames per GOP
	frameSize int   // average size of a non-key video frame
	keySize   int   // size of a key frame
	chunk     int   // video frames per interleaved chunk
	chapters  int   // number of chapters (objects), 1 if 0
	negCTO    bool  // composition offsets around zero (ctts version 1), no edit list
	secondSE  bool  // chapters after the first use a second sample entry
	base      int64 // offset of the first sample in each object
	reverse   bool  // video samples of a chunk are stored in reverse order
	dup       int   // every dup-th video sample repeats the previous one's bytes
	gap       int64 // unused bytes after every chunk
}

// synth builds the index of a synthetic H.264+AAC recording laid out like a
// camera file: video chunks of opts.chunk frames, each followed by the audio
// samples up to the same time, contiguous in one object per chapter. Video
// has B-frame-like composition offsets and a sync sample every opts.gop.
func synth(opts synthOpts) *media.Index {
	if opts.chapters == 0 {
		opts.chapters = 1
	}
	if opts.base == 0 {
		opts.base = 48
	}
	rng := rand.New(rand.NewPCG(1, 2))
	vts := uint32(opts.fps * 1000)
	video := &media.Track{
		ID: 1, Kind: media.KindVideo, Handler: "vide", Name: "VideoHandler", Format: "avc1", Codec: "avc1.64000d",
		Timescale: vts, Language: "und", Width: 320, Height: 240, TkhdWidth: 320 << 16, TkhdHeight: 240 << 16,
		Flags: 3, SampleEntries: [][]byte{avc1Entry},
	}
	audio := &media.Track{
		ID: 2, Kind: media.KindAudio, Handler: "soun", Name: "SoundHandler", Format: "mp4a", Codec: "mp4a.40.2",
		Timescale: 48000, Language: "eng", SampleRate: 48000, Channels: 2, Volume: 0x100, Flags: 3,
		SampleEntries: [][]byte{mp4aEntry}, MediaTime: 1024,
	}
	if opts.secondSE {
		// A second, different entry (as chapters of some cameras have).
		e2 := append([]byte(nil), avc1Entry...)
		e2[len(e2)-1] ^= 1 // btrt avgBitrate
		video.SampleEntries = append(video.SampleEntries, e2)
	}
	if !opts.negCTO {
		video.MediaTime = 2000
	}
	nv := opts.seconds * opts.fps
	perChapter := (nv + opts.chapters - 1) / opts.chapters
	perChapter = (perChapter + opts.gop - 1) / opts.gop * opts.gop // chapters start at key frames
	vs, as := &video.Samples, &audio.Samples
	vs.CTO = make([]int32, 0, nv)
	vs.Sync = make([]bool, 0, nv)
	ix := &media.Index{Created: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)}
	var off int64
	var audioTime int64 // in 48 kHz
	chunkStart := 0     // first video sample of the current chunk
	for i := 0; i < nv; i++ {
		if i%perChapter == 0 {
			if c := len(ix.Chapters); c > 0 {
				ix.Chapters[c-1].Size = off + 100_000
			}
			c := len(ix.Chapters)
			ix.Chapters = append(ix.Chapters, media.Chapter{Object: fmt.Sprintf("synthetic/chapter%d", c+1), Name: fmt.Sprintf("GX%02d0001.MP4", c+1)})
			vs.ChapterStart = append(vs.ChapterStart, i)
			as.ChapterStart = append(as.ChapterStart, as.Len())
			desc := uint32(1)
			if opts.secondSE && c > 0 {
				desc = 2
			}
			vs.ChapterDesc = append(vs.ChapterDesc, desc)
			as.ChapterDesc = append(as.ChapterDesc, 1)
			off = opts.base
		}
		size := opts.keySize
		sync := i%opts.gop == 0
		if !sync {
			size = opts.frameSize/2 + rng.IntN(opts.frameSize)
		}
		// Decode order I P B B P B B ...: offsets in frames of 1000 ticks.
		var cto int32
		switch {
		case sync:
			cto = 2000
		case i%opts.gop%3 == 1:
			cto = 3000
		default:
			cto = 0
		}
		if opts.negCTO {
			cto -= 1000
		}
		if opts.dup > 0 && i%opts.dup == opts.dup-1 && !sync {
			// The same bytes as the previous frame.
			vs.Offset = append(vs.Offset, vs.Offset[i-1])
			vs.Size = append(vs.Size, vs.Size[i-1])
		} else {
			vs.Offset = append(vs.Offset, off)
			vs.Size = append(vs.Size, uint32(size))
			off += int64(size)
		}
		vs.Dur = append(vs.Dur, 1000)
		vs.CTO = append(vs.CTO, cto)
		vs.Sync = append(vs.Sync, sync)
		// After each video chunk, the audio up to the same time.
		if (i+1)%opts.chunk == 0 || i == nv-1 || (i+1)%perChapter == 0 {
			if opts.reverse {
				// Store the chunk's frames last to first.
				start := vs.Offset[chunkStart]
				for k := i; k >= chunkStart; k-- {
					vs.Offset[k] = start
					start += int64(vs.Size[k])
				}
			}
			chunkStart = i + 1
			until := int64(i+1) * 48000 / int64(opts.fps)
			for audioTime < until {
				size := 300 + rng.IntN(200)
				as.Offset = append(as.Offset, off)
				as.Size = append(as.Size, uint32(size))
				as.Dur = append(as.Dur, 1024)
				off += int64(size)
				audioTime += 1024
			}
			off += opts.gap
		}
	}
	ix.Chapters[len(ix.Chapters)-1].Size = off + 100_000
	vs.ChapterStart = append(vs.ChapterStart, vs.Len())
	as.ChapterStart = append(as.ChapterStart, as.Len())
	var start time.Duration
	for c := range ix.Chapters {
		d := time.Duration(vs.ChapterStart[c+1]-vs.ChapterStart[c]) * time.Second / time.Duration(opts.fps)
		ix.Chapters[c].Start, ix.Chapters[c].Duration = start, d
		start += d
	}
	vs.Derive()
	as.Derive()
	ix.Tracks = []*media.Track{video, audio}
	if err := ix.Validate(); err != nil {
		panic(err)
	}
	return ix
}

// sixtyMinutes is the benchmark recording: 60 minutes of 60 fps video (GOP
// 60, ~20 KB frames) and AAC, interleaved every half second.
var sixtyMinutes = synthOpts{seconds: 3600, fps: 60, gop: 60, frameSize: 20_000, keySize: 100_000, chunk: 30}
