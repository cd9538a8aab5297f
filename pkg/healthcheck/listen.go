package healthcheck

import (
	"context"
	"net"
	"strconv"
	"strings"
)

// ListenFunc opens a TCP listener on addr ("host:port") in network ("tcp4"
// or "tcp6"). Tests inject one that maps the requested port to an
// ephemeral port on loopback.
type ListenFunc func(network, addr string) (net.Listener, error)

// listenTCP is the default ListenFunc. Go makes a "tcp6" socket IPv6-only,
// so an IPv4 probe never reaches a port served in IPv6 alone.
func listenTCP(network, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	return lc.Listen(context.Background(), network, addr)
}

// listenAddr is one socket to listen on.
type listenAddr struct{ network, addr string }

// listenAddrs are the sockets to listen on for port in family f (0 IPv4,
// 1 IPv6): the family's wildcard address for nil ips, as kube-proxy's
// health server of that family listens; else those of ips in the family,
// and none for an empty list.
func listenAddrs(ips []net.IP, f int, port uint16) []listenAddr {
	p := strconv.Itoa(int(port))
	if ips == nil {
		ips = []net.IP{net.IPv4zero, net.IPv6zero}
	}
	var addrs []listenAddr
	for _, ip := range ips {
		network, of := "tcp4", 0
		if ip.To4() == nil {
			network, of = "tcp6", 1
		}
		if of == f {
			addrs = append(addrs, listenAddr{network, net.JoinHostPort(ip.String(), p)})
		}
	}
	return addrs
}

// oneFamily is the families value of family f alone.
func oneFamily(f int) [2]bool {
	var fams [2]bool
	fams[f] = true
	return fams
}

// familyNames names families for a log line: "IPv4", "IPv6" or both.
func familyNames(families [2]bool) string {
	var names []string
	for f, name := range []string{"IPv4", "IPv6"} {
		if families[f] {
			names = append(names, name)
		}
	}
	return strings.Join(names, ",")
}

// onlyIn is what Dump adds for a port served in one family only.
func onlyIn(families [2]bool) string {
	if families[0] && families[1] {
		return ""
	}
	return " " + familyNames(families) + " only"
}
