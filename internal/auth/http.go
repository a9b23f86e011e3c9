package auth

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// CookieName is the cookie that carries a token for browsers (set when a
// page is opened with ?token=).
const CookieName = "jitstream_token"

// QueryParam is the query parameter that hands a token to a browser.
const QueryParam = "token"

// cookieLifetime bounds the cookie of a token that does not expire.
const cookieLifetime = 30 * 24 * time.Hour

// Credentials returns the token a request presents, and how: an
// Authorization header, Bearer TOKEN or Basic USER:TOKEN (WebDAV clients,
// where USER must be the token's user), or for GET and HEAD the cookie
// CookieName. basicUser is the user of Basic credentials, "" otherwise. It
// is ErrNoCredentials when there is none, ErrInvalidToken when the header
// is malformed.
func Credentials(r *http.Request) (token, basicUser string, err error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, _ := strings.Cut(h, " ")
		rest = strings.TrimSpace(rest)
		switch {
		case strings.EqualFold(scheme, "Bearer") && rest != "":
			return rest, "", nil
		case strings.EqualFold(scheme, "Basic"):
			user, pass, ok := r.BasicAuth()
			if !ok || user == "" || pass == "" {
				return "", "", fmt.Errorf("%w: malformed Basic credentials", ErrInvalidToken)
			}
			return pass, user, nil
		}
		return "", "", fmt.Errorf("%w: Authorization is neither Bearer nor Basic", ErrInvalidToken)
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
			return c.Value, "", nil
		}
	}
	return "", "", ErrNoCredentials
}

// Authenticate checks the credentials of a request (see Credentials) and
// returns the token's record. Errors wrap ErrNoCredentials,
// ErrInvalidToken, or the store's error.
func (a *Auth) Authenticate(r *http.Request) (*Token, error) {
	token, basicUser, err := Credentials(r)
	if err != nil {
		return nil, err
	}
	t, err := a.Verify(r.Context(), token)
	if err != nil {
		return nil, err
	}
	if basicUser != "" && basicUser != t.User {
		return nil, fmt.Errorf("%w: Basic user %q is not the token's", ErrInvalidToken, basicUser)
	}
	return t, nil
}

// Cookie is the cookie that keeps token t for a browser: HttpOnly,
// SameSite=Lax, for the whole site, Secure when the request came over
// TLS, expiring with the token (or after 30 days).
func (a *Auth) Cookie(r *http.Request, token string, t *Token) *http.Cookie {
	exp := a.now().Add(cookieLifetime)
	if !t.Expires.IsZero() && t.Expires.Before(exp) {
		exp = t.Expires
	}
	return &http.Cookie{Name: CookieName, Value: token, Path: "/", Expires: exp,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil}
}

type tokenCtxKey struct{}
type linkCtxKey struct{}

// WithToken is ctx carrying the token a request was authenticated with.
func WithToken(ctx context.Context, t *Token) context.Context {
	return context.WithValue(ctx, tokenCtxKey{}, t)
}

// TokenFrom is the token of WithToken, or nil.
func TokenFrom(ctx context.Context) *Token {
	t, _ := ctx.Value(tokenCtxKey{}).(*Token)
	return t
}

// WithLink is ctx carrying the link a request came through.
func WithLink(ctx context.Context, l *Link) context.Context {
	return context.WithValue(ctx, linkCtxKey{}, l)
}

// LinkFrom is the link of WithLink, or nil.
func LinkFrom(ctx context.Context) *Link {
	l, _ := ctx.Value(linkCtxKey{}).(*Link)
	return l
}

// LinkURL is the URL to put in a page or a redirect for path (escaped,
// from the server root, may have a query): path itself, or path below
// the link the request came through when that link grants it, so that a
// viewer of a link stays within it.
func LinkURL(ctx context.Context, path string) string {
	if l := LinkFrom(ctx); l != nil && l.Covers(path) {
		return l.URL(path)
	}
	return path
}
