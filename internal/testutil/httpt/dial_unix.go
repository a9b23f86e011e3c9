//go:build unix

package httpt

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// DialRecvBuffer connects to addr with a TCP receive buffer of size bytes,
// so that a client that stops reading stalls the server's writes after
// little data; the connection is closed when the test ends.
func DialRecvBuffer(tb testing.TB, addr string, size int) net.Conn {
	tb.Helper()
	d := net.Dialer{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
		})
		return errors.Join(err, serr)
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}
