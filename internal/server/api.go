package server

import (
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"time"

	"github.com/jitstream/jitstream/internal/auth"
	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/internal/library"
)

// whoami is the answer of GET /api/v1/whoami.
type whoami struct {
	// Auth tells whether the server asks for tokens.
	Auth bool `json:"auth"`
	// User is the user of the token the request presented (with Auth).
	User string `json:"user,omitempty"`
	// Token describes that token, never its secret.
	Token *whoamiToken `json:"token,omitempty"`
	// Users lists every user's library (without Auth: the server is
	// open, and anyone may browse every library).
	Users []string `json:"users,omitempty"`
}

// whoamiToken is what whoami tells of a token.
type whoamiToken struct {
	ID      string    `json:"id"`
	Name    string    `json:"name,omitempty"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"`
}

// apiWhoami answers GET /api/v1/whoami: whose token the request presents
// (a Bearer header, Basic credentials or the cookie; behind the guard, so
// no or a bad token is a 401 with the usual JSON error), for clients that
// hold a token but not the user's name, such as the web app. On an open
// server (no Auth) it lists the users instead.
func (s *Server) apiWhoami(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if s.opt.Auth == nil {
		users, err := s.lib.Users(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		httpserve.WriteJSON(w, http.StatusOK, whoami{Users: users})
		return
	}
	t := auth.TokenFrom(r.Context())
	if t == nil { // the guard lets no request without a token through
		s.unauthorized(w, r, auth.ErrNoCredentials)
		return
	}
	httpserve.WriteJSON(w, http.StatusOK, whoami{Auth: true, User: t.User,
		Token: &whoamiToken{ID: t.ID, Name: t.Name, Created: t.Created, Expires: t.Expires}})
}

// apiSignout answers POST /api/v1/signout: it expires the token cookie
// (auth.CookieName, set by ?token=) of the browser that asks, which
// scripts cannot do themselves (the cookie is HttpOnly). It needs no
// token: forgetting one's own cookie is harmless; a browser's cross-site
// request (Sec-Fetch-Site) is refused, so that another site cannot sign
// its visitors out.
func (s *Server) apiSignout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		httpserve.Error(w, http.StatusForbidden, "forbidden", "sign out from this server's own pages")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: auth.CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	w.WriteHeader(http.StatusNoContent)
}

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
