package httpserve

import (
	"context"
	"net"
	"net/http"
)

// Corking: net/http writes a response's header and the first few KiB of
// its body in one system call and the rest of the body in another, and
// with TCP_NODELAY (Go's default) the two leave as separate segments, so
// that the client wakes up twice for a playlist of a few tens of KiB.
// With the connection corked while the response is written, the whole
// response leaves as one train of full segments when it is uncorked, as
// nginx's tcp_nopush does. Only small unpaced responses are corked: large
// ones gain nothing (the kernel sends full segments anyway) and paced ones
// must leave chunk by chunk.
const (
	corkMin = 2 << 10  // body bytes: below, the header and body are one write anyway
	corkMax = 64 << 10 // body bytes: above, corking slows large responses down
)

type connKey struct{}

// WithConn returns ctx carrying c, the connection its requests arrive on:
// set it with http.Server.ConnContext, and ServeFileWith corks TCP
// connections while it writes small responses (see corkMin and corkMax).
func WithConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// corkResponse corks the connection of r, if it is a TCP connection known
// from WithConn, for a body of n bytes; it returns the func that flushes
// w and uncorks it, or nil if it did not cork.
func corkResponse(w http.ResponseWriter, r *http.Request, n int64) func() {
	if n < corkMin || n > corkMax {
		return nil
	}
	c, ok := r.Context().Value(connKey{}).(*net.TCPConn)
	if !ok || !setCork(c, true) {
		return nil
	}
	return func() {
		http.NewResponseController(w).Flush()
		setCork(c, false)
	}
}
