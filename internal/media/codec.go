package media

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/Eyevinn/mp4ff/aac"
	"github.com/Eyevinn/mp4ff/hevc"
	"github.com/Eyevinn/mp4ff/mp4"
)

// Sample entry formats that jitstream serves for video and audio tracks.
// Tracks of other kinds are carried along whatever their format.
const (
	supportedVideo = "avc1, avc3, hvc1, hev1, av01, vp09"
	supportedAudio = "mp4a, Opus, ac-3, ec-3, fLaC"
)

func isSupportedVideo(format string) bool {
	switch format {
	case "avc1", "avc3", "hvc1", "hev1", "av01", "vp09":
		return true
	}
	return false
}

func isSupportedAudio(format string) bool {
	switch format {
	case "mp4a", "Opus", "ac-3", "ec-3", "fLaC":
		return true
	}
	return false
}

// checkCodec rejects video and audio tracks in a codec that cannot be
// served.
func (p *fileParser) checkCodec(t *fileTrack) error {
	format := entryFormat(t.entry())
	what := format
	if format == "encv" || format == "enca" {
		what = format + " (encrypted)"
	}
	switch t.kind {
	case KindVideo:
		if !isSupportedVideo(format) {
			return p.unsupported("unsupported video codec %s in track %d; supported: %s", what, t.pos, supportedVideo)
		}
	case KindAudio:
		if !isSupportedAudio(format) {
			return p.unsupported("unsupported audio codec %s in track %d; supported: %s", what, t.pos, supportedAudio)
		}
	}
	return nil
}

// entryFormat is the four-character type of a raw sample entry.
func entryFormat(e []byte) string {
	if len(e) < 8 {
		return ""
	}
	return fourCC(string(e[4:8]))
}

// entryInfo is what the index keeps of a sample entry.
type entryInfo struct {
	format        string
	codec         string
	width, height uint32
	sampleRate    uint32
	channels      uint16
}

// describeEntry reads format, codec string and picture or sound parameters
// from a raw sample entry. It never fails: what cannot be read stays zero
// and the codec string falls back to the format.
func describeEntry(kind Kind, e []byte) entryInfo {
	info := entryInfo{format: entryFormat(e)}
	info.codec = info.format
	switch kind {
	case KindVideo:
		if len(e) >= VisualEntrySize {
			info.width = uint32(binary.BigEndian.Uint16(e[32:]))
			info.height = uint32(binary.BigEndian.Uint16(e[34:]))
			for _, c := range ChildBoxes(e[VisualEntrySize:]) {
				if s := videoCodec(info.format, c); s != "" {
					info.codec = s
					break
				}
			}
		}
	case KindAudio:
		if len(e) >= AudioEntrySize {
			info.channels = binary.BigEndian.Uint16(e[24:])
			info.sampleRate = uint32(binary.BigEndian.Uint16(e[32:])) // 16.16
		}
		audioInfo(&info, e)
	}
	return info
}

// videoCodec returns the RFC 6381 codec string from a codec configuration
// box of a visual sample entry, or "" if c is not one.
func videoCodec(format string, c []byte) string {
	switch string(c[4:8]) {
	case "avcC":
		// AVCDecoderConfigurationRecord: version, profile, compatibility, level.
		if len(c) < 12 {
			return ""
		}
		return fmt.Sprintf("%s.%02x%02x%02x", format, c[9], c[10], c[11])
	case "hvcC":
		b, err := decodeMP4(c, 0)
		if err != nil {
			return ""
		}
		h, ok := b.(*mp4.HvcCBox)
		if !ok {
			return ""
		}
		sps := &hevc.SPS{ProfileTierLevel: hevc.ProfileTierLevel{
			GeneralProfileSpace:              h.GeneralProfileSpace,
			GeneralTierFlag:                  h.GeneralTierFlag,
			GeneralProfileIDC:                h.GeneralProfileIDC,
			GeneralProfileCompatibilityFlags: h.GeneralProfileCompatibilityFlags,
			GeneralConstraintIndicatorFlags:  h.GeneralConstraintIndicatorFlags,
			GeneralLevelIDC:                  h.GeneralLevelIDC,
		}}
		return hevc.CodecString(format, sps)
	case "av1C":
		b, err := decodeMP4(c, 0)
		if err != nil {
			return ""
		}
		if a, ok := b.(*mp4.Av1CBox); ok {
			return a.CodecString(format)
		}
	case "vpcC":
		b, err := decodeMP4(c, 0)
		if err != nil {
			return ""
		}
		if v, ok := b.(*mp4.VppCBox); ok {
			return fmt.Sprintf("%s.%02d.%02d.%02d", format, v.Profile, v.Level, v.BitDepth)
		}
	}
	return ""
}

// AACChannels maps an AAC channelConfiguration to a channel count, 0 when
// the configuration is elsewhere (program config element) or reserved.
func AACChannels(cfg byte) uint16 {
	switch {
	case cfg >= 1 && cfg <= 6:
		return uint16(cfg)
	case cfg == 7:
		return 8
	}
	return 0
}

// audioInfo fills the codec string and sound parameters of an audio
// sample entry with mp4ff, which knows the QuickTime sound description
// versions.
func audioInfo(info *entryInfo, e []byte) {
	b, err := decodeMP4(e, 0)
	if err != nil {
		return
	}
	a, ok := b.(*mp4.AudioSampleEntryBox)
	if !ok {
		return
	}
	if a.QuickTimeV2 != nil {
		if r := a.QuickTimeV2.AudioSampleRate; r > 0 && r < 1<<31 {
			info.sampleRate = uint32(r)
		}
		if c := a.QuickTimeV2.NumAudioChannels; c > 0 && c < 1<<16 {
			info.channels = uint16(c)
		}
	}
	switch info.format {
	case "mp4a":
		dcd := decoderConfig(a)
		if dcd == nil {
			return
		}
		if dcd.ObjectType != 0x40 {
			info.codec = fmt.Sprintf("mp4a.%02x", dcd.ObjectType)
			return
		}
		info.codec = "mp4a.40"
		if dcd.DecSpecificInfo == nil {
			return
		}
		asc, err := aac.DecodeAudioSpecificConfigHeader(bytes.NewReader(dcd.DecSpecificInfo.DecConfig))
		if err != nil {
			return
		}
		info.codec = fmt.Sprintf("mp4a.40.%d", asc.ObjectType)
		if c := AACChannels(asc.ChannelConfiguration); c > 0 {
			info.channels = c
		}
		if info.sampleRate == 0 && asc.SamplingFrequency > 0 {
			info.sampleRate = uint32(asc.SamplingFrequency)
		}
	case "Opus":
		info.codec = "opus"
	case "fLaC":
		info.codec = "flac"
	}
}
