package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jitstream/jitstream/internal/library"
)

// Link errors, wrapped by CheckLink.
var (
	// ErrLinkInvalid: a malformed link, a signature that does not match
	// the path (tampered, or made for another asset or user), or a link
	// used for something it does not grant (another method, a route links
	// never reach).
	ErrLinkInvalid = errors.New("invalid link")
	// ErrLinkExpired: a genuine link past its expiry.
	ErrLinkExpired = errors.New("link expired")
)

// LinkPrefix starts the path of every signed link.
const LinkPrefix = "/s/"

// LinkRoutes are the first path elements a link can grant: the file view,
// the streams, the player page and the entry URL. The API, uploads and
// WebDAV are never reachable with a link.
var LinkRoutes = []string{"files", "streams", "watch", "play"}

// LinkExpiryStep is what link expiries are rounded up to: links made for
// the same asset within one step get the same URLs, so that HTTP caches
// keep one copy of each segment per step rather than per link.
const LinkExpiryStep = time.Hour

// MaxLinkTTL bounds a link's lifetime.
const MaxLinkTTL = 10 * 366 * 24 * time.Hour

// sigLen is the number of HMAC-SHA256 bytes kept in a link (128 bits).
const sigLen = 16

// Scope is what a link grants: every format of one asset of a user
// (Asset), or every path below a prefix (Prefix) such as
// "/files/alice/GX010042/" or "/streams/alice/GX010042,10-20/". Exactly one
// of Asset and Prefix is set.
type Scope struct {
	User   string
	Asset  string
	Prefix string // cleaned: "/" + elements joined by "/", no trailing slash
}

// Link is a signed link.
type Link struct {
	Scope
	Expires time.Time
	// Elem is the path element after /s/: "{exp}.{sig}" for an asset,
	// "{exp}.{n}.{sig}" for a prefix of n path elements.
	Elem string
}

// Path is the link's path prefix, "/s/{elem}", to put before the path of
// any resource the link grants.
func (l *Link) Path() string { return LinkPrefix + l.Elem }

// URL is the link's path for the resource at path (which starts with "/").
func (l *Link) URL(path string) string { return l.Path() + path }

var elemRE = regexp.MustCompile(`^([0-9]{1,12})(?:\.([0-9]{1,2}))?\.([A-Za-z0-9_-]{22})$`)

// linkElemRE matches an element of a prefix: what URLs of the file view
// and streams are made of, never "." nor "..".
var linkElemRE = regexp.MustCompile(`^[A-Za-z0-9_,=()-][A-Za-z0-9._,=()-]*$`)

// CleanPrefix checks a link prefix and returns it cleaned: it must name a
// route links can grant (LinkRoutes) and user's part of it, e.g.
// "/files/alice/" or "streams/alice/GX010042".
func CleanPrefix(user, prefix string) (string, error) {
	var els []string
	for _, e := range strings.Split(prefix, "/") {
		if e == "" {
			continue
		}
		if !linkElemRE.MatchString(e) || e == "." || e == ".." {
			return "", fmt.Errorf("auth: link prefix %q: bad path element %q", prefix, e)
		}
		els = append(els, e)
	}
	if len(els) < 2 || !isLinkRoute(els[0]) || els[1] != user {
		return "", fmt.Errorf("auth: link prefix %q must start with /ROUTE/%s/ where ROUTE is one of %s",
			prefix, user, strings.Join(LinkRoutes, ", "))
	}
	if len(els) > 32 {
		return "", fmt.Errorf("auth: link prefix %q has more than 32 elements", prefix)
	}
	return "/" + strings.Join(els, "/"), nil
}

func isLinkRoute(r string) bool {
	for _, x := range LinkRoutes {
		if r == x {
			return true
		}
	}
	return false
}

// ExpiryFor is the expiry of a link made at now for ttl: now+ttl rounded up
// to LinkExpiryStep.
func ExpiryFor(now time.Time, ttl time.Duration) time.Time {
	step := int64(LinkExpiryStep / time.Second)
	t := now.Add(ttl).Unix()
	return time.Unix((t+step-1)/step*step, 0).UTC()
}

// SignLink makes a link granting sc for at least ttl (the expiry is
// rounded up, see ExpiryFor).
func (a *Auth) SignLink(sc Scope, ttl time.Duration) (*Link, error) {
	if err := library.CheckUser(sc.User); err != nil {
		return nil, err
	}
	if ttl <= 0 || ttl > MaxLinkTTL {
		return nil, fmt.Errorf("auth: link lifetime %v: want more than 0 and at most %v", ttl, MaxLinkTTL)
	}
	switch {
	case sc.Asset != "" && sc.Prefix != "":
		return nil, errors.New("auth: a link is for an asset or a prefix, not both")
	case sc.Asset != "":
		if err := library.CheckUser(sc.Asset); err != nil { // asset ids follow the same rule
			return nil, fmt.Errorf("auth: link asset %q: not an asset id", sc.Asset)
		}
	case sc.Prefix != "":
		p, err := CleanPrefix(sc.User, sc.Prefix)
		if err != nil {
			return nil, err
		}
		sc.Prefix = p
	default:
		return nil, errors.New("auth: a link needs an asset or a prefix")
	}
	exp := ExpiryFor(a.now(), ttl)
	l := &Link{Scope: sc, Expires: exp}
	sig := base64.RawURLEncoding.EncodeToString(a.mac(sc, exp.Unix()))
	if sc.Prefix != "" {
		l.Elem = fmt.Sprintf("%d.%d.%s", exp.Unix(), strings.Count(sc.Prefix, "/"), sig)
	} else {
		l.Elem = fmt.Sprintf("%d.%s", exp.Unix(), sig)
	}
	return l, nil
}

// mac is the truncated HMAC of a scope and an expiry.
func (a *Auth) mac(sc Scope, exp int64) []byte {
	m := hmac.New(sha256.New, a.secret)
	if sc.Prefix != "" {
		fmt.Fprintf(m, "jitstream-link-v1\x00prefix\x00%s\x00%d", sc.Prefix, exp)
	} else {
		fmt.Fprintf(m, "jitstream-link-v1\x00asset\x00%s\x00%s\x00%d", sc.User, sc.Asset, exp)
	}
	return m.Sum(nil)[:sigLen]
}

// ParsedLink is a link element read from a request path, not yet checked.
type ParsedLink struct {
	Elem    string
	exp     int64
	n       int // elements of the prefix; 0 for an asset link
	sig     []byte
	checked *Link
}

// ParseLinkPath splits a request's escaped path of the form /s/{elem}/rest
// into the link element and /rest. ok is false when the path is not a link
// path at all; err is set (ErrLinkInvalid) when it is one, malformed. The
// rest must be a clean path: no empty, "." or ".." elements, escaped or
// not, so that what the signature is checked against is what is served.
func ParseLinkPath(escaped string) (pl *ParsedLink, rest string, ok bool, err error) {
	after, ok := strings.CutPrefix(escaped, LinkPrefix)
	if !ok {
		return nil, "", false, nil
	}
	elem, rest, found := strings.Cut(after, "/")
	if !found {
		return nil, "", true, fmt.Errorf("%w: nothing after the link", ErrLinkInvalid)
	}
	rest = "/" + rest
	m := elemRE.FindStringSubmatch(elem)
	if m == nil {
		return nil, "", true, fmt.Errorf("%w: malformed", ErrLinkInvalid)
	}
	segs := strings.Split(rest[1:], "/")
	if !isLinkRoute(segs[0]) {
		return nil, "", true, fmt.Errorf("%w: links reach only %s", ErrLinkInvalid, strings.Join(LinkRoutes, ", "))
	}
	for i, s := range segs {
		u, err := url.PathUnescape(s)
		if err != nil || u == "." || u == ".." || (s == "" && i != len(segs)-1) || strings.ContainsAny(u, "/\\") {
			return nil, "", true, fmt.Errorf("%w: the path is not clean", ErrLinkInvalid)
		}
	}
	exp, _ := strconv.ParseInt(m[1], 10, 64)
	n := 0
	if m[2] != "" {
		if n, _ = strconv.Atoi(m[2]); n < 2 {
			return nil, "", true, fmt.Errorf("%w: malformed", ErrLinkInvalid)
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(m[3])
	if err != nil || len(sig) != sigLen {
		return nil, "", true, fmt.Errorf("%w: malformed", ErrLinkInvalid)
	}
	return &ParsedLink{Elem: elem, exp: exp, n: n, sig: sig}, rest, true, nil
}

// Target is what a request asks for, as the router understood it: the
// user of the path, the asset it belongs to ("" when none, e.g. a library
// listing) and the escaped path (below the link).
type Target struct {
	User, Asset string
	Path        string
}

// CheckLink checks a parsed link against the target of the request: the
// signature must be the server's for the target's asset (an asset link) or
// for the first n elements of its path (a prefix link), and the link must
// not have expired. It returns the link, or an error wrapping
// ErrLinkInvalid or ErrLinkExpired. Nothing about the target is looked up:
// the answer is the same whether the asset exists or not.
func (a *Auth) CheckLink(pl *ParsedLink, t Target) (*Link, error) {
	sc := Scope{User: t.User}
	if pl.n > 0 {
		els := strings.Split(strings.TrimPrefix(t.Path, "/"), "/")
		if len(els) < pl.n {
			return nil, fmt.Errorf("%w: the path is shorter than the link's prefix", ErrLinkInvalid)
		}
		for i := range pl.n {
			u, err := url.PathUnescape(els[i])
			if err != nil || !linkElemRE.MatchString(u) {
				return nil, fmt.Errorf("%w: not the link's prefix", ErrLinkInvalid)
			}
			els[i] = u
		}
		if els[1] != t.User || !isLinkRoute(els[0]) {
			return nil, fmt.Errorf("%w: not the link's prefix", ErrLinkInvalid)
		}
		sc.Prefix = "/" + strings.Join(els[:pl.n], "/")
	} else {
		if t.Asset == "" {
			return nil, fmt.Errorf("%w: not an asset's resource", ErrLinkInvalid)
		}
		sc.Asset = t.Asset
	}
	if !hmac.Equal(a.mac(sc, pl.exp), pl.sig) {
		return nil, fmt.Errorf("%w: signature mismatch", ErrLinkInvalid)
	}
	exp := time.Unix(pl.exp, 0).UTC()
	if !a.now().Before(exp) {
		return nil, fmt.Errorf("%w: at %s", ErrLinkExpired, exp.Format(time.RFC3339))
	}
	return &Link{Scope: sc, Expires: exp, Elem: pl.Elem}, nil
}

// Covers reports whether the link grants path (escaped, from the server
// root; a query is ignored), for links to the pages and files it names.
func (l *Link) Covers(path string) bool {
	path, _, _ = strings.Cut(path, "?")
	els := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if l.Prefix != "" {
		pre := strings.Split(strings.TrimPrefix(l.Prefix, "/"), "/")
		if len(els) < len(pre) {
			return false
		}
		for i, p := range pre {
			if u, err := url.PathUnescape(els[i]); err != nil || u != p {
				return false
			}
		}
		return true
	}
	if len(els) < 3 || els[1] != l.User || !isLinkRoute(els[0]) {
		return false
	}
	name, err := url.PathUnescape(strings.Join(els[2:], "/"))
	if err != nil {
		return false
	}
	return AssetOf(els[0], name) == l.Asset
}

// AssetOf is the asset a path of a route belongs to, given what follows
// the user in the path (unescaped): for "files" the asset of a file name
// ("ID.mp4", "ID.frag.mp4", "ID/CHAPTER", "ID/"), for "streams" the asset
// of the {asset} element ("ID" or a clip "ID,START-END", and what
// follows), for "watch" and "play" the id. It is "" when there is none.
func AssetOf(route, name string) string {
	var id string
	switch route {
	case "files":
		i := strings.IndexAny(name, "/.")
		if i <= 0 {
			return ""
		}
		id = name[:i]
	case "streams":
		id, _, _ = strings.Cut(name, "/")
		id, _, _ = strings.Cut(id, ",")
	case "watch", "play":
		id = name
	default:
		return ""
	}
	if library.CheckUser(id) != nil { // asset ids follow the user-name rule
		return ""
	}
	return id
}
