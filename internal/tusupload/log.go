package tusupload

import (
	"context"
	"log/slog"

	xslog "golang.org/x/exp/slog"
)

// logHandler hands tusd's logs (golang.org/x/exp/slog) to a log/slog
// handler, one level lower: tusd logs every request at info level (debug
// here), and a dropped connection, which resumable uploads expect, at
// error level (warning here).
type logHandler struct{ h slog.Handler }

func level(l xslog.Level) slog.Level {
	switch {
	case l >= xslog.LevelError:
		return slog.LevelWarn
	case l >= xslog.LevelWarn:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

// Enabled implements xslog.Handler.
func (l logHandler) Enabled(ctx context.Context, lv xslog.Level) bool {
	return l.h.Enabled(ctx, level(lv))
}

// Handle implements xslog.Handler.
func (l logHandler) Handle(ctx context.Context, r xslog.Record) error {
	rec := slog.NewRecord(r.Time, level(r.Level), "tusd: "+r.Message, r.PC)
	r.Attrs(func(a xslog.Attr) bool {
		rec.AddAttrs(attr(a))
		return true
	})
	return l.h.Handle(ctx, rec)
}

// WithAttrs implements xslog.Handler.
func (l logHandler) WithAttrs(as []xslog.Attr) xslog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = attr(a)
	}
	return logHandler{l.h.WithAttrs(out)}
}

// WithGroup implements xslog.Handler.
func (l logHandler) WithGroup(name string) xslog.Handler { return logHandler{l.h.WithGroup(name)} }

// attr converts an attribute.
func attr(a xslog.Attr) slog.Attr {
	v := a.Value.Resolve()
	if v.Kind() == xslog.KindGroup {
		g := v.Group()
		as := make([]any, len(g))
		for i, a := range g {
			as[i] = attr(a)
		}
		return slog.Group(a.Key, as...)
	}
	return slog.Any(a.Key, v.Any())
}
