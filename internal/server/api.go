package server

import (
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"

	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/internal/library"
)

func (s *Server) apiList(w http.ResponseWriter, r *http.Request) {
	assets, err := s.lib.Assets(r.Context(), r.PathValue("user"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]any, 0, len(assets))
	for _, a := range assets {
		d, err := s.out.Describe(r.Context(), a)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out = append(out, d)
	}
	httpserve.WriteJSON(w, http.StatusOK, map[string]any{"assets": out})
}

func (s *Server) apiAsset(w http.ResponseWriter, r *http.Request) {
	a, err := s.lib.Asset(r.Context(), r.PathValue("user"), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.out.Describe(r.Context(), a)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpserve.WriteJSON(w, http.StatusOK, d)
}

func (s *Server) apiDelete(w http.ResponseWriter, r *http.Request) {
	user, id := r.PathValue("user"), r.PathValue("id")
	if err := s.lib.Delete(r.Context(), user, id); err != nil {
		s.fail(w, r, err)
		return
	}
	s.out.Forget(user, id)
	w.WriteHeader(http.StatusNoContent)
}

// maxUploadParts bounds the parts of a multipart upload: its files are
// the asset's chapters (at most library.MaxChapters), plus a few fields.
const maxUploadParts = library.MaxChapters + 16

// apiUpload ingests an upload: either multipart/form-data whose file parts
// are the chapters in order (a "title" field may precede them), or a raw body
// named by ?name= or Content-Disposition. Bytes stream to the store.
func (s *Server) apiUpload(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	user := r.PathValue("user")
	if err := s.lib.HasUser(ctx, user); err != nil {
		s.fail(w, r, err)
		return
	}
	if r.ContentLength > 0 {
		// Refused before a byte is stored when the size is known (a
		// multipart body's few hundred bytes of framing count too).
		if err := s.lib.CheckQuota(ctx, user, r.ContentLength); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if s.opt.MaxUploadBytes > 0 {
		r.Body = http.MaxBytesReader(w, r.Body, s.opt.MaxUploadBytes)
	}
	title := r.URL.Query().Get("title")
	var next func() (*library.Upload, error)
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		if params["boundary"] == "" {
			s.fail(w, r, fmt.Errorf("%w: multipart body without boundary", errBadUpload))
			return
		}
		mr := multipart.NewReader(r.Body, params["boundary"])
		parts := 0
		next = func() (*library.Upload, error) {
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					return nil, nil
				}
				if err != nil {
					return nil, fmt.Errorf("%w: reading multipart body: %w", errBadUpload, err)
				}
				// The files are chapters (library.MaxChapters at most,
				// which Ingest checks); a few other fields are allowed.
				if parts++; parts > maxUploadParts {
					return nil, fmt.Errorf("%w: more than %d parts in a multipart upload", errBadUpload, maxUploadParts)
				}
				if p.FileName() == "" {
					if p.FormName() == "title" && title == "" {
						b, _ := io.ReadAll(io.LimitReader(p, 256))
						title = string(b)
					}
					continue
				}
				return &library.Upload{Name: p.FileName(), R: p}, nil
			}
		}
	} else {
		name := r.URL.Query().Get("name")
		if name == "" {
			if _, p, err := mime.ParseMediaType(r.Header.Get("Content-Disposition")); err == nil {
				name = p["filename"]
			}
		}
		if name == "" {
			name = "upload.mp4"
		}
		done := false
		next = func() (*library.Upload, error) {
			if done {
				return nil, nil
			}
			done = true
			return &library.Upload{Name: name, R: r.Body}, nil
		}
	}
	a, err := s.lib.Ingest(ctx, user, title, next)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.out.Describe(ctx, a)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/users/"+url.PathEscape(user)+"/assets/"+url.PathEscape(a.ID))
	httpserve.WriteJSON(w, http.StatusCreated, d)
}
