package auth

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
)

// Redacted replaces what Redact removes.
const Redacted = "[REDACTED]"

var (
	redactHint  = regexp.MustCompile(`(?i)jst_|/s/|token|bearer|basic`)
	redactRules = []struct {
		re   *regexp.Regexp
		repl string
	}{
		{regexp.MustCompile(`jst_[A-Za-z0-9_-]+`), TokenPrefix + Redacted},
		{regexp.MustCompile(`/s/[0-9]{1,12}(?:\.[0-9]{1,2})?\.[A-Za-z0-9_-]+`), LinkPrefix + Redacted},
		{regexp.MustCompile(`(?i)(token(?:=|%3D))[^&\s"'<>]*`), "${1}" + Redacted},
		{regexp.MustCompile(`(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/-]{8,}=*`), "${1}${2}" + Redacted},
	}
)

// Redact removes secrets from s: tokens (jst_...), the signature element
// of links (/s/{exp}.{sig}), ?token= values and the credentials of
// Authorization values (Bearer X, Basic X).
func Redact(s string) string {
	if !redactHint.MatchString(s) {
		return s
	}
	for _, r := range redactRules {
		s = r.re.ReplaceAllString(s, r.repl)
	}
	return s
}

// NewRedactingHandler wraps h so that nothing it logs carries a secret:
// the message and every attribute (strings, errors, anything printed) go
// through Redact, and an attribute named Authorization or Cookie is
// replaced whole.
func NewRedactingHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(redactingHandler); ok {
		return h
	}
	return redactingHandler{h}
}

type redactingHandler struct{ h slog.Handler }

// Enabled implements slog.Handler.
func (r redactingHandler) Enabled(ctx context.Context, l slog.Level) bool { return r.h.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (r redactingHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, Redact(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return r.h.Handle(ctx, out)
}

// WithAttrs implements slog.Handler.
func (r redactingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = redactAttr(a)
	}
	return redactingHandler{r.h.WithAttrs(red)}
}

// WithGroup implements slog.Handler.
func (r redactingHandler) WithGroup(name string) slog.Handler {
	return redactingHandler{r.h.WithGroup(name)}
}

func redactAttr(a slog.Attr) slog.Attr {
	if k := strings.ToLower(a.Key); k == "authorization" || k == "cookie" || k == "token" {
		return slog.String(a.Key, Redacted)
	}
	a.Value = a.Value.Resolve()
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); redactHint.MatchString(s) {
			return slog.String(a.Key, Redact(s))
		}
	case slog.KindGroup:
		g := a.Value.Group()
		red := make([]slog.Attr, len(g))
		for i, x := range g {
			red[i] = redactAttr(x)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(red...)}
	case slog.KindAny:
		s := fmt.Sprint(a.Value.Any())
		if r := Redact(s); r != s {
			return slog.String(a.Key, r)
		}
	}
	return a
}
