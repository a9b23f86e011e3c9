package server

import (
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/internal/outputs"
)

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"size": humanSize,
	"path": url.PathEscape,
}).Parse(`
{{define "head"}}<!doctype html><html><head><meta charset="utf-8"><title>{{.}} · jitstream</title>
<style>body{font:15px system-ui,sans-serif;margin:2rem;max-width:70rem}table{border-collapse:collapse}
td,th{padding:.3rem .8rem;text-align:left;border-bottom:1px solid #ddd}td.n{text-align:right;font-variant-numeric:tabular-nums}
video{max-width:100%;background:#000}code{background:#f4f4f4;padding:0 .2rem}</style></head><body>{{end}}
{{define "home"}}{{template "head" "Libraries"}}<h1>jitstream</h1><p>Libraries on this server:</p><ul>
{{range .}}<li><a href="/files/{{path .}}/">{{.}}</a></li>{{else}}<li>none yet: <code>jitstream ingest --user alice FILE.MP4</code></li>{{end}}</ul></body></html>{{end}}
{{define "listing"}}{{template "head" .Title}}<h1>{{.Title}}</h1>
<table><tr><th>Name</th><th>Kind</th><th>Size</th><th>Modified</th><th></th></tr>
{{range .Entries}}<tr><td><a href="{{.URL}}">{{.Name}}</a></td><td>{{.Kind}}</td><td class="n">{{size .Size}}</td>
<td>{{.ModTime.Format "2006-01-02 15:04"}}</td><td>{{if eq .Kind "consolidated"}}<a href="/watch/{{path $.User}}/{{path .Asset}}">▶ watch</a>{{end}}</td></tr>
{{else}}<tr><td colspan="5">No files yet.</td></tr>{{end}}</table>
<p>Clips: add <code>?start=SECONDS&amp;end=SECONDS</code> to a <code>.mp4</code> URL.</p></body></html>{{end}}
{{define "watch"}}{{template "head" .ID}}<h1>{{.Title}}</h1>
<video id="v" controls preload="metadata" src="{{.Src}}"></video>
<p><a href="{{.Src}}" download>Download</a> · <a href="/files/{{path .User}}/">Library</a></p></body></html>{{end}}
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

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	users, err := s.lib.Users(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if wantsJSON(r) {
		httpserve.WriteJSON(w, http.StatusOK, map[string]any{"users": users})
		return
	}
	s.render(w, "home", users)
}

func (s *Server) listing(w http.ResponseWriter, r *http.Request, user string) {
	entries, err := s.out.List(r.Context(), user)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeListing(w, r, user, "/files/"+user+"/", entries)
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
	if wantsJSON(r) {
		httpserve.WriteJSON(w, http.StatusOK, map[string]any{"user": user, "files": entries})
		return
	}
	s.render(w, "listing", map[string]any{"Title": title, "User": user, "Entries": entries})
}

func (s *Server) watch(w http.ResponseWriter, r *http.Request) {
	a, err := s.lib.Asset(r.Context(), r.PathValue("user"), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, "watch", map[string]any{"ID": a.ID, "Title": a.Title, "User": a.User,
		"Src": outputs.FilesURL(a.User, a.ID+outputs.SuffixConsolidated)})
}

func formatInt(n int64) string     { return strconv.FormatInt(n, 10) }
func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }
