package server

import (
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/jitstream/jitstream/internal/auth"
	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/internal/outputs"
	"github.com/jitstream/jitstream/internal/urls"
)

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"size": humanSize,
	"path": url.PathEscape,
}).Parse(`
{{define "head"}}<!doctype html><html><head><meta charset="utf-8"><title>{{.}} · jitstream</title>
<style>body{font:15px system-ui,sans-serif;margin:2rem;max-width:70rem}table{border-collapse:collapse}
td,th{padding:.3rem .8rem;text-align:left;border-bottom:1px solid #ddd}td.n{text-align:right;font-variant-numeric:tabular-nums}
video{max-width:100%;background:#000}code{background:#f4f4f4;padding:0 .2rem}</style></head><body>{{end}}
{{define "home"}}{{template "head" "Libraries"}}<h1>jitstream</h1>{{if .SignIn}}<p>This server asks for a token.
Open the link that <code>jitstream tokens create --user NAME</code> prints once, or any page of your library with
<code>?token=TOKEN</code>.</p>{{else}}<p>Libraries on this server:</p><ul>
{{range .Users}}<li><a href="/files/{{path .}}/">{{.}}</a></li>{{else}}<li>none yet: <code>jitstream ingest --user alice FILE.MP4</code></li>{{end}}</ul>{{end}}</body></html>{{end}}
{{define "listing"}}{{template "head" .Title}}<h1>{{.Title}}</h1>
<table><tr><th>Name</th><th>Kind</th><th>Size</th><th>Modified</th><th></th></tr>
{{range .Entries}}<tr><td><a href="{{.URL}}">{{.Name}}</a></td><td>{{.Kind}}</td><td class="n">{{if .Note}}<span title="{{.Note}}">transcoding</span>{{else}}{{size .Size}}{{end}}</td>
<td>{{.ModTime.Format "2006-01-02 15:04"}}</td><td>{{if eq .Kind "consolidated"}}<a href="{{.Watch}}">▶ watch</a>{{end}}</td></tr>
{{else}}<tr><td colspan="5">No files yet.</td></tr>{{end}}</table>
<p>Clips: add <code>?start=SECONDS&amp;end=SECONDS</code> to a <code>.mp4</code> URL.</p></body></html>{{end}}
{{define "watch"}}{{template "head" .ID}}<h1>{{.Title}}</h1>
<video id="v" controls preload="metadata" src="{{.Src}}"></video>
<p><a href="{{.Src}}" download>Download</a>{{if .Library}} · <a href="{{.Library}}">Library</a>{{end}}</p></body></html>{{end}}
`))

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return strings.TrimSpace(formatInt(n) + " B")
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return formatFloat(float64(n)/float64(div)) + " " + string("KMGTPE"[exp]) + "iB"
}

func (s *Server) render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pages.ExecuteTemplate(w, name, data); err != nil {
		s.log.Warn("render", "page", name, "err", err)
	}
}

// home lists the libraries: every user's on an open server, only the
// token's user's with access control.
func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	var users []string
	signIn := false
	if s.opt.Auth == nil {
		var err error
		if users, err = s.lib.Users(r.Context()); err != nil {
			s.fail(w, r, err)
			return
		}
	} else if t := s.userToken(r); t != nil {
		users = []string{t.User}
		w.Header().Set("Cache-Control", "private, no-cache")
	} else {
		signIn = true
		w.Header().Set("Cache-Control", "no-cache")
	}
	if wantsJSON(r) {
		if users == nil {
			users = []string{}
		}
		httpserve.WriteJSON(w, http.StatusOK, map[string]any{"users": users})
		return
	}
	s.render(w, "home", map[string]any{"Users": users, "SignIn": signIn})
}

func (s *Server) listing(w http.ResponseWriter, r *http.Request, user string) {
	entries, err := s.out.List(r.Context(), user)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeListing(w, r, user, "/files/"+user+"/", entries)
}

// listRow is an entry of a listing page, with its player page.
type listRow struct {
	outputs.Entry
	Watch string
}

func (s *Server) assetListing(w http.ResponseWriter, r *http.Request, user, id string) {
	a, err := s.lib.Asset(r.Context(), user, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	entries, err := s.out.Entries(r.Context(), a)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeListing(w, r, user, "/files/"+user+"/"+id+"/", entries)
}

func (s *Server) writeListing(w http.ResponseWriter, r *http.Request, user, title string, entries []outputs.Entry) {
	if entries == nil {
		entries = []outputs.Entry{}
	}
	// Through a link, the URLs it grants stay below it.
	ctx := r.Context()
	if l := auth.LinkFrom(ctx); l != nil {
		entries = slices.Clone(entries)
		for i := range entries {
			entries[i].URL = auth.LinkURL(ctx, entries[i].URL)
		}
	}
	if wantsJSON(r) {
		httpserve.WriteJSON(w, http.StatusOK, map[string]any{"user": user, "files": entries})
		return
	}
	rows := make([]listRow, len(entries))
	for i, e := range entries {
		rows[i] = listRow{Entry: e, Watch: auth.LinkURL(ctx, urls.Watch(user, e.Asset))}
	}
	s.render(w, "listing", map[string]any{"Title": title, "User": user, "Entries": rows})
}

func (s *Server) watch(w http.ResponseWriter, r *http.Request) {
	a, err := s.lib.Asset(r.Context(), r.PathValue("user"), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	lib := auth.LinkURL(ctx, urls.File(a.User, ""))
	if auth.LinkFrom(ctx) != nil && !strings.HasPrefix(lib, auth.LinkPrefix) {
		lib = "" // a link to one asset does not open the library
	}
	s.render(w, "watch", map[string]any{"ID": a.ID, "Title": a.Title, "User": a.User, "Library": lib,
		"Src": auth.LinkURL(ctx, outputs.FilesURL(a.User, a.ID+outputs.SuffixConsolidated))})
}

func formatInt(n int64) string     { return strconv.FormatInt(n, 10) }
func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }
