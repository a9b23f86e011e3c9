//go:build !linux

package httpserve

import "net"

// setCork does nothing but on Linux.
func setCork(c *net.TCPConn, on bool) bool { return false }
