package transcode

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/Eyevinn/mp4ff/aac"
	"github.com/Eyevinn/mp4ff/mp4"
	mp4build "github.com/jitstream/jitstream/internal/build/mp4"
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/vfile"
)

// The AAC audio rendition (issue 9): for a source whose audio browsers
// cannot play (see BrowserAudio), an AAC-LC rendition of its first audio
// track, made segment by segment like the video renditions.
//
// Its frames lie on a global grid: frame k covers the samples
// [k*1024, (k+1)*1024) at 48 kHz from the asset's presentation time 0
// (the source audio track's presentation time: its decode time minus its
// edit list's MediaTime). Segment n holds the frames decoded in the
// source's segment n, by the rule of hls.TrackSegments and
// mp4build.MediaSegment applied to AudioTrack: k from
// ceil(S_n*48000/1024) to ceil(E_n*48000/1024), the last segment every
// remaining frame up to the end of the source audio.
//
// Each segment is encoded by one ffmpeg run from a pre-roll of
// AudioPreroll samples before its first frame to two frames after its
// last one; the run's encoder input sample 0 is a grid sample, so the
// encoded frames are grid frames, and the frames before and after the
// kept ones make the MDCT overlap at every join the same as in a
// continuous encode: decoding segment n then n+1 has no gap, overlap or
// click.
const (
	// AudioRendition names the AAC rendition (media.Track.Rendition).
	AudioRendition = "aac"
	// AudioCodec is its RFC 6381 codec.
	AudioCodec = "mp4a.40.2"
	// AudioRate, AudioChannels and AudioBitrate describe the encoding.
	AudioRate     = 48000
	AudioChannels = 2
	AudioBitrate  = 128000
	// AudioFrame is the number of samples of an AAC frame.
	AudioFrame = 1024
	// AudioPreroll is how many samples each run encodes before its first
	// kept frame (clamped at the start of the asset).
	AudioPreroll = 2 * AudioFrame
	// audioTail is how many samples each run encodes after its last kept
	// frame.
	audioTail = 2 * AudioFrame
	// audioVersion names the encoder settings in cache keys.
	audioVersion = "aac-lc-48k-2ch-128k-v1"
)

// BrowserAudio reports whether browsers play the audio track t as it is:
// AAC (mp4a.40.*) or MP3 (mp4a.69, mp4a.6B).
func BrowserAudio(t *media.Track) bool {
	c := t.Codec
	return strings.HasPrefix(c, "mp4a.40.") || strings.EqualFold(c, "mp4a.69") || strings.EqualFold(c, "mp4a.6B")
}

// AudioSource is the source of an AAC rendition: Source with Track the
// audio track to encode (its Segments are the asset's, in the reference
// track's timescale), and the ID of the rendition's track in its init and
// media segments.
type AudioSource struct {
	Source
	TrackID uint32
}

func (src *AudioSource) check(n int) error {
	t := src.Track
	if src.Index == nil || t == nil || t.Kind != media.KindAudio || t.Samples.Len() == 0 || t.Timescale == 0 {
		return fmt.Errorf("transcode: %s: no audio track to encode", src.Key)
	}
	if src.Index.Reference() == nil {
		return fmt.Errorf("transcode: %s: no reference track", src.Key)
	}
	if src.TrackID == 0 {
		return fmt.Errorf("transcode: %s: audio rendition without a track ID", src.Key)
	}
	if n < 0 || n >= len(src.Segments) {
		return fmt.Errorf("transcode: %s: audio segment %d out of range [0, %d): %w", src.Key, n, len(src.Segments), ErrNoSegment)
	}
	return nil
}

// audioEnd returns the end of the source audio in samples at AudioRate
// from presentation time 0.
func (src *AudioSource) audioEnd() int64 {
	t := src.Track
	return max(media.Rescale(t.Duration()-t.MediaTime, t.Timescale, AudioRate), 0)
}

// audioFrames is the number of frames of the rendition.
func (src *AudioSource) audioFrames() int64 {
	return (src.audioEnd() + AudioFrame - 1) / AudioFrame
}

// audioSpan returns the grid frames [k0, k1) of segment n: those of
// AudioTrack that hls.TrackSegments puts in it.
func (src *AudioSource) audioSpan(n int) (k0, k1 int64) {
	ref := src.Index.Reference()
	K := src.audioFrames()
	find := func(t int64) int64 {
		at := media.Rescale(t, ref.Timescale, AudioRate)
		if at <= 0 {
			return 0
		}
		return min((at+AudioFrame-1)/AudioFrame, K)
	}
	seg := src.Segments[n]
	k0 = find(seg.Start)
	k1 = K
	if seg.End < ref.Duration() {
		k1 = find(seg.End)
	}
	return k0, max(k0, k1)
}

// AudioTrack returns the track that stands for the AAC rendition of
// src.Track in manifests: ID src.TrackID, one sample per grid frame of
// AudioFrame ticks at timescale AudioRate, nominal sizes making
// AudioBitrate, and an mp4a sample entry of AAC-LC 48 kHz stereo. It has
// no stored bytes.
func AudioTrack(src AudioSource) *media.Track {
	a := src.Track
	t := &media.Track{
		ID: src.TrackID, Kind: media.KindAudio, Handler: "soun", Name: "jitstream aac",
		Format: "mp4a", Codec: AudioCodec, Timescale: AudioRate, Language: a.Language,
		SampleRate: AudioRate, Channels: AudioChannels, Volume: 0x100, AlternateGroup: a.AlternateGroup,
		Flags: a.Flags, Rendition: AudioRendition,
	}
	if se, err := defaultAudioEntry(); err == nil {
		t.SampleEntries = [][]byte{se}
	}
	K := int(src.audioFrames())
	// One chapter entry per chapter of the index, all samples in the first.
	nc := max(len(src.Index.Chapters), 1)
	s := media.Samples{Offset: make([]int64, K), Size: make([]uint32, K), Dur: make([]uint32, K),
		ChapterStart: make([]int, nc+1), ChapterDesc: make([]uint32, nc)}
	for c := range nc {
		s.ChapterStart[c+1], s.ChapterDesc[c] = K, 1
	}
	size := uint32(AudioBitrate * AudioFrame / AudioRate / 8)
	for i := range K {
		s.Size[i], s.Dur[i] = size, AudioFrame
	}
	t.Samples = s
	t.Samples.Derive()
	return t
}

// defaultAudioEntry returns an mp4a sample entry of AAC-LC 48 kHz stereo.
func defaultAudioEntry() ([]byte, error) {
	init := mp4.CreateEmptyInit()
	trak := init.AddEmptyTrack(AudioRate, "audio", "und")
	if err := trak.SetAACDescriptor(aac.AAClc, AudioRate); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := trak.Mdia.Minf.Stbl.Stsd.Mp4a.Encode(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// audioHash identifies src's AAC rendition in cache keys.
func audioHash(src *AudioSource) string {
	h := sha256.New()
	h.Write([]byte(sourceHash(&src.Source)))
	h.Write([]byte{0})
	h.Write([]byte(audioVersion))
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], src.TrackID)
	h.Write(b[:])
	return hex.EncodeToString(h.Sum(nil))[:32]
}

func audioSegmentKey(sh string, n int) string {
	return CachePrefix + sh + "/" + AudioRendition + "/" + strconv.Itoa(n)
}

func audioInitKey(sh string) string { return CachePrefix + sh + "/" + AudioRendition + "/init" }

// audioSegment is one encoded segment of the AAC rendition.
type audioSegment struct {
	media []byte
	entry *mp4.AudioSampleEntryBox
	diag  string
}

// AudioSegment returns segment n of the AAC rendition of src: one CMAF
// fragment (sequence number n+1, track src.TrackID, tfdt k0*1024) of the
// grid frames of segment n, to be played after AudioInit. It is cached,
// shared and limited like Transcoder.Segment, with its errors.
func (t *Transcoder) AudioSegment(ctx context.Context, src AudioSource, n int) ([]byte, error) {
	if err := src.check(n); err != nil {
		return nil, err
	}
	sh := audioHash(&src)
	key := audioSegmentKey(sh, n)
	if b, ok := t.cached(ctx, key); ok {
		return b, nil
	}
	if n > 0 {
		// The init segment comes from segment 0: make it first.
		if _, err := t.AudioInit(ctx, src); err != nil {
			return nil, err
		}
	}
	res, err := t.run(ctx, key, func(ctx context.Context) (result, error) {
		return t.produceAudio(ctx, &src, n, sh)
	})
	return res.media, err
}

// AudioInit returns the init segment of the AAC rendition of src (ftyp and
// moov: track src.TrackID, timescale 48000, the encoder's mp4a sample
// entry, no edit list), made from segment 0's encode.
func (t *Transcoder) AudioInit(ctx context.Context, src AudioSource) ([]byte, error) {
	if err := src.check(0); err != nil {
		return nil, err
	}
	sh := audioHash(&src)
	if b, ok := t.cached(ctx, audioInitKey(sh)); ok {
		return b, nil
	}
	res, err := t.run(ctx, audioSegmentKey(sh, 0), func(ctx context.Context) (result, error) {
		return t.produceAudio(ctx, &src, 0, sh)
	})
	if err == nil && res.init == nil {
		err = fmt.Errorf("transcode %s: no audio init segment", src.Key)
	}
	return res.init, err
}

// produceAudio makes segment n of src's AAC rendition (and for n == 0 its
// init segment), as produce does for the video renditions.
func (t *Transcoder) produceAudio(ctx context.Context, src *AudioSource, n int, sh string) (result, error) {
	key := audioSegmentKey(sh, n)
	cachedRes := func() (result, bool) {
		m, ok := t.cached(ctx, key)
		if !ok {
			return result{}, false
		}
		if n > 0 {
			return result{media: m}, true
		}
		init, ok := t.cached(ctx, audioInitKey(sh))
		return result{media: m, init: init}, ok
	}
	var seg *audioSegment
	res, took, ran, err := t.exclusive(ctx, key, cachedRes, func(ctx context.Context) (result, error) {
		var err error
		seg, err = transcodeAudio(ctx, t.o.FFmpeg, t.o.Threads, src, n)
		return result{}, err
	})
	if !ran {
		return res, err
	}
	if err == nil {
		t.observe(took)
		t.runTime.Add(int64(took))
		if n == 0 {
			res.init, err = buildAudioInit(src, seg.entry)
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			t.log.Warn("transcode: audio segment failed", "source", src.Key, "segment", n, "err", err)
		}
		return result{}, err
	}
	res.media = seg.media
	if seg.diag != "" {
		t.log.Warn("transcode: ffmpeg reported errors but made the audio segment", "source", src.Key,
			"segment", n, "stderr", seg.diag)
	}
	t.log.Info("transcode: audio segment made", "source", src.Key, "segment", n,
		"bytes", len(seg.media), "took", took.Round(time.Millisecond))
	t.keep(ctx, "audio segment", key, res.media)
	if n == 0 {
		t.keep(ctx, "audio init segment", audioInitKey(sh), res.init)
	}
	return res, nil
}

// TranscodeAudioSegment encodes segment n of src's AAC rendition without
// cache or sharing, returning the fragment and the init segment that goes
// with it (for tests and tools).
func TranscodeAudioSegment(ctx context.Context, ffmpeg string, src AudioSource, n int) (media, init []byte, err error) {
	if err := src.check(n); err != nil {
		return nil, nil, err
	}
	if ffmpeg == "" {
		ffmpeg = "ffmpeg"
	}
	seg, err := transcodeAudio(ctx, ffmpeg, 0, &src, n)
	if err != nil {
		return nil, nil, err
	}
	init, err = buildAudioInit(&src, seg.entry)
	return seg.media, init, err
}

// transcodeAudio encodes the grid frames of segment n (see the comment at
// the top of this file).
func transcodeAudio(ctx context.Context, bin string, threads int, src *AudioSource, n int) (*audioSegment, error) {
	fail := func(err error) error {
		var fe *FFmpegError
		if !errors.As(err, &fe) {
			fe = &FFmpegError{Err: err}
		}
		fe.Key, fe.Rendition, fe.Segment = src.Key, AudioRendition, n
		return fe
	}
	k0, k1 := src.audioSpan(n)
	if k0 >= k1 {
		if n == 0 {
			// The init segment needs the encoder's sample entry.
			return nil, fail(errors.New("segment 0 holds no audio frame"))
		}
		// A segment after the end of the audio (shorter than the video):
		// a fragment without samples, as mp4build makes for the original.
		frag, err := audioFragment(src.TrackID, n, k0, nil)
		if err != nil {
			return nil, fail(err)
		}
		return &audioSegment{media: frag}, nil
	}
	g0 := max(k0*AudioFrame-AudioPreroll, 0) // the grid sample of the encoder's input sample 0
	gEnd := k1*AudioFrame + audioTail        // and the end of its input
	last := k1 == src.audioFrames()
	input, first, err := sourceAudio(ctx, src, g0, gEnd)
	if err != nil {
		return nil, err
	}
	// The decoded source sample 0 is at first (presentation time, at
	// AudioRate); trim the resampled audio to start at grid sample g0.
	skip := g0 - first
	var pre string
	if skip < 0 { // the source audio starts after g0: pad with silence
		pre = fmt.Sprintf("adelay=delays=%dS:all=1,", -skip)
		skip = 0
	}
	filter := fmt.Sprintf("asetpts=N/SR/TB,aresample=%d,asetpts=N/SR/TB,%satrim=start_sample=%d", AudioRate, pre, skip)
	if !last {
		filter += fmt.Sprintf(":end_sample=%d", skip+gEnd-g0)
	} else {
		// To the end of the source audio.
		filter += fmt.Sprintf(":end_sample=%d", skip+src.audioEnd()-g0)
	}
	filter += ",asetpts=N/SR/TB"
	args := []string{
		"-nostdin", "-hide_banner", "-nostats", "-v", "error",
		"-ignore_editlist", "1", "-f", "mp4", "-i", "pipe:0",
		"-map", "0:a:0", "-vn", "-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1",
		"-af", filter,
		"-c:a", "aac", "-b:a", strconv.Itoa(AudioBitrate), "-ac", strconv.Itoa(AudioChannels), "-ar", strconv.Itoa(AudioRate),
	}
	if threads > 0 {
		args = append(args, "-threads", strconv.Itoa(threads))
	}
	args = append(args, "-f", "mp4", "-movflags", "frag_keyframe+empty_moov+default_base_moof", "pipe:1")
	out, diag, err := runFFmpeg(ctx, bin, args, input)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("transcode %s to %s, segment %d: %w", src.Key, AudioRendition, n, err)
		}
		return nil, fail(err)
	}
	samples, entry, err := parseAudioOutput(out)
	if err != nil {
		return nil, fail(err)
	}
	// Packet i covers the input samples [(i-1)*1024, i*1024): grid frame
	// k is packet k - g0/1024 + 1.
	p0 := k0 - g0/AudioFrame + 1
	p1 := k1 - g0/AudioFrame + 1
	if int64(len(samples)) < p1 {
		return nil, fail(fmt.Errorf("wrote %d AAC frames, want at least %d", len(samples), p1))
	}
	frag, err := audioFragment(src.TrackID, n, k0, samples[p0:p1])
	if err != nil {
		return nil, fail(err)
	}
	return &audioSegment{media: frag, entry: entry, diag: diag}, nil
}

// audioFragment returns the CMAF fragment of segment n: the frames
// samples from grid frame k0 on, in track trackID.
func audioFragment(trackID uint32, n int, k0 int64, samples []mp4.FullSample) ([]byte, error) {
	if len(samples) == 0 {
		return emptyFragment(trackID, uint32(n+1), uint64(k0)*AudioFrame), nil
	}
	frag, err := mp4.CreateFragment(uint32(n+1), trackID)
	if err != nil {
		return nil, err
	}
	frag.EncOptimize = mp4.OptimizeTrun
	for i, s := range samples {
		frag.AddFullSample(mp4.FullSample{
			Sample:     mp4.Sample{Flags: mp4.SyncSampleFlags, Dur: AudioFrame, Size: uint32(len(s.Data))},
			DecodeTime: uint64(k0+int64(i)) * AudioFrame,
			Data:       s.Data,
		})
	}
	frag.Moof.Traf.Tfdt.Version = 1
	var b bytes.Buffer
	if err := frag.Encode(&b); err != nil {
		return nil, fmt.Errorf("writing the fragment: %w", err)
	}
	return b.Bytes(), nil
}

// emptyFragment returns a moof without samples (mfhd, and a traf of
// tfhd with default-base-is-moof and a version 1 tfdt) and an empty mdat,
// which mp4ff does not write.
func emptyFragment(trackID, seq uint32, tfdt uint64) []byte {
	b := make([]byte, 0, 80)
	box := func(typ string, body []byte) []byte {
		out := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
		return append(append(out, typ...), body...)
	}
	mfhd := box("mfhd", binary.BigEndian.AppendUint32([]byte{0, 0, 0, 0}, seq))
	tfhd := box("tfhd", binary.BigEndian.AppendUint32([]byte{0, 0x02, 0, 0}, trackID))
	tfdtBox := box("tfdt", binary.BigEndian.AppendUint64([]byte{1, 0, 0, 0}, tfdt))
	traf := box("traf", append(tfhd, tfdtBox...))
	b = append(b, box("moof", append(mfhd, traf...))...)
	return append(b, box("mdat", nil)...)
}

// sourceAudio returns, as a fragmented MP4 of the source audio track
// alone, source samples covering the presentation span [g0, gEnd) (in
// samples at AudioRate) with two samples more on each side, and the
// presentation time (at AudioRate) of its first sample.
func sourceAudio(ctx context.Context, src *AudioSource, g0, gEnd int64) ([]byte, int64, error) {
	t, ref := src.Track, src.Index.Reference()
	toSrc := func(g int64) int64 { return media.Rescale(g, AudioRate, t.Timescale) + t.MediaTime }
	first := t.Find(toSrc(g0)) - 3
	first = max(first, 0)
	end := t.Find(toSrc(gEnd)) + 2
	// mp4build.MediaSegment selects by a segment in the reference track's
	// timescale: round its start down and its end up, then see which
	// samples it takes.
	seg := media.Segment{Start: media.Rescale(t.Samples.DTS[first], t.Timescale, ref.Timescale)}
	if end >= t.Samples.Len() {
		seg.End = max(ref.Duration(), seg.Start)
	} else {
		seg.End = media.Rescale(t.Samples.DTS[end], t.Timescale, ref.Timescale) + 1
	}
	first = t.Find(media.Rescale(seg.Start, ref.Timescale, t.Timescale))
	tracks := []*media.Track{t}
	init, err := mp4build.InitSegment(src.Index, tracks)
	if err != nil {
		return nil, 0, fmt.Errorf("transcode %s: %w", src.Key, err)
	}
	var b vfile.Builder
	b.Add(init)
	if err := mp4build.MediaSegment(&b, src.Index, tracks, seg, 1); err != nil {
		return nil, 0, fmt.Errorf("transcode %s: audio: %w", src.Key, err)
	}
	data, err := readFile(ctx, src.Store, b.File("", "", time.Time{}, ""))
	if err != nil {
		return nil, 0, fmt.Errorf("transcode %s: reading the audio: %w", src.Key, err)
	}
	pt := t.Samples.DTS[first] - t.MediaTime
	var at int64
	if pt >= 0 {
		at = media.Rescale(pt, t.Timescale, AudioRate)
	} else {
		at = -media.Rescale(-pt, t.Timescale, AudioRate)
	}
	return data, at, nil
}

// parseAudioOutput returns the samples of ffmpeg's fragmented MP4 output
// and its mp4a sample entry.
func parseAudioOutput(out []byte) ([]mp4.FullSample, *mp4.AudioSampleEntryBox, error) {
	samples, trak, err := outputSamples(out)
	if err != nil {
		return nil, nil, err
	}
	stsd := trak.Mdia.Minf.Stbl.Stsd
	if stsd == nil || stsd.Mp4a == nil || stsd.Mp4a.Esds == nil {
		return nil, nil, errors.New("its output has no mp4a sample entry")
	}
	if ts := trak.Mdia.Mdhd.Timescale; ts != AudioRate {
		return nil, nil, fmt.Errorf("its output has timescale %d, want %d", ts, AudioRate)
	}
	for i, s := range samples {
		if s.Dur != AudioFrame {
			if i == len(samples)-1 {
				continue // the last frame may be announced shorter
			}
			return nil, nil, fmt.Errorf("its frame %d lasts %d samples, want %d", i, s.Dur, AudioFrame)
		}
	}
	return samples, stsd.Mp4a, nil
}

// buildAudioInit returns the AAC rendition's init segment with the
// encoder's sample entry se.
func buildAudioInit(src *AudioSource, se *mp4.AudioSampleEntryBox) ([]byte, error) {
	init := mp4.CreateEmptyInit()
	lang := src.Track.Language
	if len(lang) != 3 {
		lang = "und"
	}
	trak := init.AddEmptyTrack(AudioRate, "audio", lang)
	trak.Tkhd.TrackID = src.TrackID
	init.Moov.Mvhd.NextTrackID = src.TrackID + 1
	init.Moov.Mvex.Trex.TrackID = src.TrackID
	trak.Mdia.Minf.Stbl.Stsd.AddChild(se)
	var b bytes.Buffer
	if err := init.Encode(&b); err != nil {
		return nil, fmt.Errorf("transcode %s: writing the audio init segment: %w", src.Key, err)
	}
	return b.Bytes(), nil
}
