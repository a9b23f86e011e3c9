package streams

import (
	"github.com/jitstream/jitstream/internal/media"
	"github.com/jitstream/jitstream/internal/vfile"
)

func (h *Handler) hlsMaster(a *asset) (*vfile.File, error) { return nil, ErrUnsupportedFormat }
func (h *Handler) hlsMedia(a *asset, t *media.Track) (*vfile.File, error) {
	return nil, ErrUnsupportedFormat
}
func (h *Handler) hlsIFrames(a *asset, t *media.Track) (*vfile.File, error) {
	return nil, ErrUnsupportedFormat
}
func (h *Handler) dashMPD(a *asset) (*vfile.File, error)      { return nil, ErrUnsupportedFormat }
func keyframes(t *media.Track) *media.Track                   { return t }
func (h *Handler) hlsTSMaster(a *asset) (*vfile.File, error)  { return nil, ErrUnsupportedFormat }
func (h *Handler) hlsTSMedia(a *asset) (*vfile.File, error)   { return nil, ErrUnsupportedFormat }
func (h *Handler) hlsTSIFrames(a *asset) (*vfile.File, error) { return nil, ErrUnsupportedFormat }
