package dav

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/outputs"
	"github.com/jitstream/jitstream/internal/vfile"
)

// maxPropfindBody bounds the XML body of a PROPFIND.
const maxPropfindBody = 1 << 20

// depthInfinity is Depth: infinity.
const depthInfinity = -1

// errBadRequest marks PROPFIND requests that cannot be understood.
var errBadRequest = errors.New("bad request")

// propfind answers PROPFIND with a 207 multistatus.
func (h *Handler) propfind(w http.ResponseWriter, r *http.Request, user string, t target) {
	depth, err := parseDepth(r.Header.Get("Depth"))
	if err != nil {
		httpserve.Error(w, http.StatusBadRequest, "bad PROPFIND request", err.Error())
		return
	}
	req, err := readPropfind(r.Body)
	switch {
	case errors.Is(err, errBadRequest):
		httpserve.Error(w, http.StatusBadRequest, "bad PROPFIND request", err.Error())
		return
	case err != nil:
		h.opt.Fail(w, r, err)
		return
	case t.kind == missing:
		h.notFound(w, r, t)
		return
	}
	res, err := h.resources(r.Context(), user, r.PathValue("path"), t, depth)
	if err != nil {
		h.opt.Fail(w, r, err)
		return
	}
	writeMultistatus(w, user, req, res)
}

// parseDepth reads a Depth header: 0, 1 or infinity (depthInfinity), which
// is also what no Depth means (RFC 4918 section 9.1).
func parseDepth(v string) (int, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "0":
		return 0, nil
	case "1":
		return 1, nil
	case "", "infinity":
		return depthInfinity, nil
	}
	return 0, fmt.Errorf("%w: Depth %q is not 0, 1 or infinity", errBadRequest, v)
}

// propfindRequest is the body of a PROPFIND (RFC 4918 section 14.20).
// Neither allprop nor propname nor prop (an empty body) means allprop.
type propfindRequest struct {
	XMLName  xml.Name  `xml:"DAV: propfind"`
	AllProp  *struct{} `xml:"DAV: allprop"`
	PropName *struct{} `xml:"DAV: propname"`
	Prop     *struct {
		Names []struct {
			XMLName xml.Name
		} `xml:",any"`
	} `xml:"DAV: prop"`
}

// readPropfind reads the body of a PROPFIND; nil means allprop.
func readPropfind(body io.Reader) (*propfindRequest, error) {
	b, err := io.ReadAll(io.LimitReader(body, maxPropfindBody+1))
	if err != nil {
		return nil, fmt.Errorf("dav: read PROPFIND body: %w", err)
	}
	if len(b) > maxPropfindBody {
		return nil, fmt.Errorf("%w: PROPFIND body over %d bytes", errBadRequest, maxPropfindBody)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	var req propfindRequest
	if err := xml.Unmarshal(b, &req); err != nil {
		return nil, fmt.Errorf("%w: PROPFIND body is not a DAV:propfind element: %w", errBadRequest, err)
	}
	if req.PropName == nil && req.Prop == nil {
		return nil, nil // allprop (its DAV:include asks for nothing more here)
	}
	return &req, nil
}

// resource is one response of a multistatus.
type resource struct {
	name    string // path relative to the user's root; a collection's ends with "/"
	display string
	dir     bool
	size    int64
	mod     time.Time
	etag    string
	ctype   string
}

// fileResource describes file f at name, as a GET of it answers.
func fileResource(name string, f *vfile.File) resource {
	ctype := f.ContentType
	if ctype == "" {
		ctype = "application/octet-stream" // as httpserve sends it
	}
	return resource{name: name, display: path.Base(name), size: f.Size, mod: f.ModTime, etag: f.ETag, ctype: ctype}
}

// resources lists the target (reached by the path reqName) and, by depth,
// its members.
func (h *Handler) resources(ctx context.Context, user, reqName string, t target, depth int) ([]resource, error) {
	switch t.kind {
	case file:
		// An alias answers under the name it was asked by.
		return []resource{fileResource(reqName, t.f)}, nil
	case assetDir:
		res := []resource{{name: t.name, display: t.asset.ID, dir: true, mod: t.asset.Ingested}}
		if depth != 0 {
			res = append(res, h.originals(ctx, t.asset)...)
		}
		return res, nil
	}
	assets, err := h.lib.Assets(ctx, user)
	if err != nil {
		return nil, err
	}
	top := resource{name: "", display: user, dir: true}
	for _, a := range assets {
		if a.Ingested.After(top.mod) {
			top.mod = a.Ingested
		}
	}
	res := []resource{top}
	if depth == 0 {
		return res, nil
	}
	for _, a := range assets {
		var files []resource
		for _, suffix := range []string{outputs.SuffixConsolidated, outputs.SuffixFMP4} {
			f, err := h.out.Open(ctx, user, a.ID+suffix, nil)
			if err != nil {
				break
			}
			files = append(files, fileResource(a.ID+suffix, f))
		}
		if len(files) < 2 {
			// As the /files listing, which fails as a whole then, the
			// asset is unusable; here the rest of the library is listed.
			h.log.Warn("dav: asset left out of the listing: its files cannot be built", "user", user, "asset", a.ID)
			continue
		}
		res = append(res, files...)
		res = append(res, resource{name: a.ID + "/", display: a.ID, dir: true, mod: a.Ingested})
		if depth == depthInfinity {
			res = append(res, h.originals(ctx, a)...)
		}
	}
	return res, nil
}

// originals lists the original chapters of a.
func (h *Handler) originals(ctx context.Context, a *library.Asset) []resource {
	var res []resource
	for _, c := range a.Chapters {
		name := a.ID + "/" + c.Name
		f, err := h.out.Open(ctx, a.User, name, nil)
		if err != nil {
			h.log.Warn("dav: original left out of the listing", "user", a.User, "file", name, "err", err)
			continue
		}
		res = append(res, fileResource(name, f))
	}
	return res
}

// A property of a resource: its element in DAV: and its value as XML
// content.
type property struct {
	local string
	value string
}

// properties are the live properties of res that it has, in DAV:.
func (res resource) properties() []property {
	ps := []property{{"displayname", escape(res.display)}}
	if res.dir {
		ps = append(ps, property{"resourcetype", "<D:collection/>"})
	} else {
		ps = append(ps, property{"resourcetype", ""},
			property{"getcontentlength", strconv.FormatInt(res.size, 10)},
			property{"getcontenttype", escape(res.ctype)})
		if res.etag != "" {
			ps = append(ps, property{"getetag", escape(res.etag)})
		}
	}
	if !res.mod.IsZero() {
		// As httpserve's Last-Modified; creationdate is RFC 3339.
		ps = append(ps, property{"getlastmodified", res.mod.UTC().Format(http.TimeFormat)},
			property{"creationdate", res.mod.UTC().Format(time.RFC3339)})
	}
	return ps
}

// writeMultistatus answers 207 with one response per resource: every
// property it has for allprop (req nil), their names for propname, or the
// properties asked for, those it lacks in a 404 propstat.
func writeMultistatus(w http.ResponseWriter, user string, req *propfindRequest, res []resource) {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n" + `<D:multistatus xmlns:D="DAV:">`)
	for _, r := range res {
		b.WriteString("\n<D:response><D:href>")
		b.WriteString(escape(href(user, r.name)))
		b.WriteString("</D:href>")
		have := r.properties()
		switch {
		case req == nil:
			propstat(&b, http.StatusOK, func() {
				for _, p := range have {
					writeProp(&b, p.local, p.value)
				}
			})
		case req.PropName != nil:
			propstat(&b, http.StatusOK, func() {
				for _, p := range have {
					writeProp(&b, p.local, "")
				}
			})
		default:
			var found []property
			var lacking []xml.Name
		names:
			for _, n := range req.Prop.Names {
				if n.XMLName.Space == "DAV:" {
					for _, p := range have {
						if p.local == n.XMLName.Local {
							found = append(found, p)
							continue names
						}
					}
				}
				lacking = append(lacking, n.XMLName)
			}
			if len(found) > 0 {
				propstat(&b, http.StatusOK, func() {
					for _, p := range found {
						writeProp(&b, p.local, p.value)
					}
				})
			}
			if len(lacking) > 0 {
				propstat(&b, http.StatusNotFound, func() {
					for i, n := range lacking {
						writeForeign(&b, i, n)
					}
				})
			}
		}
		b.WriteString("</D:response>")
	}
	b.WriteString("\n</D:multistatus>\n")
	hd := w.Header()
	hd.Set("Content-Type", "application/xml; charset=utf-8")
	hd.Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(http.StatusMultiStatus)
	w.Write(b.Bytes())
}

// propstat writes a propstat of the given status whose prop element
// content props writes.
func propstat(b *bytes.Buffer, status int, props func()) {
	b.WriteString("<D:propstat><D:prop>")
	props()
	b.WriteString("</D:prop><D:status>HTTP/1.1 ")
	b.WriteString(strconv.Itoa(status))
	b.WriteByte(' ')
	b.WriteString(http.StatusText(status))
	b.WriteString("</D:status></D:propstat>")
}

// writeProp writes the DAV: element local with the XML content value.
func writeProp(b *bytes.Buffer, local, value string) {
	if value == "" {
		fmt.Fprintf(b, "<D:%s/>", local)
		return
	}
	fmt.Fprintf(b, "<D:%s>%s</D:%s>", local, value, local)
}

// writeForeign writes an empty element named n, of any namespace, with a
// prefix of its own (the i-th of its propstat).
func writeForeign(b *bytes.Buffer, i int, n xml.Name) {
	switch n.Space {
	case "DAV:":
		writeProp(b, n.Local, "")
	case "":
		fmt.Fprintf(b, `<%s xmlns=""/>`, n.Local)
	default:
		fmt.Fprintf(b, `<P%d:%s xmlns:P%d="%s"/>`, i, n.Local, i, escape(n.Space))
	}
}

// escape escapes s for XML content and attribute values.
func escape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s)) // writes to a strings.Builder never fail
	return b.String()
}
