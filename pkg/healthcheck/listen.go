package healthcheck

import (
	"context"
	"net"
)

// ListenFunc opens a TCP listener on addr ("host:port", or ":port" for all
// addresses). Tests inject one that maps the requested port to an
// ephemeral port on loopback.
type ListenFunc func(addr string) (net.Listener, error)

// listenTCP is the default ListenFunc. "tcp" rather than "tcp4"/"tcp6":
// for ":port" Go then opens one dual-stack socket, which serves IPv4 and
// IPv6 clients alike.
func listenTCP(addr string) (net.Listener, error) {
	var lc net.ListenConfig
	return lc.Listen(context.Background(), "tcp", addr)
}
