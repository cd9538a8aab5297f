package healthcheck

import (
	"context"
	"net"
	"strconv"
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

// listenAddrs are the "host:port" strings to listen on for port: every
// address for nil ips, none for an empty list.
func listenAddrs(ips []net.IP, port uint16) []string {
	p := strconv.Itoa(int(port))
	if ips == nil {
		return []string{":" + p}
	}
	addrs := make([]string, 0, len(ips))
	for _, ip := range ips {
		addrs = append(addrs, net.JoinHostPort(ip.String(), p))
	}
	return addrs
}
