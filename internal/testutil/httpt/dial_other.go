//go:build !unix

package httpt

import (
	"net"
	"testing"
)

// DialRecvBuffer connects to addr (the receive buffer size is left to the
// system here); the connection is closed when the test ends.
func DialRecvBuffer(tb testing.TB, addr string, size int) net.Conn {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}
