package reconcile

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// server reads a virtual server written the way Plan.String describes one:
// "TCP 10.96.0.10:80 rr" or "TCP 10.96.0.10:80 sh persistent 10800", with
// real servers as "10.244.1.2:8080" (weight 1) or "10.244.1.2:8080 weight 5".
func server(spec string, dests ...string) ipvs.VirtualServer {
	f := strings.Fields(spec)
	if len(f) != 3 && len(f) != 5 {
		panic("bad server spec " + spec)
	}
	ap := netip.MustParseAddrPort(f[1])
	vs := ipvs.VirtualServer{Service: ipvs.Service{
		ServiceKey: ipvs.ServiceKey{Addr: ap.Addr(), Proto: ipvs.Protocol(f[0]), Port: ap.Port()},
		Scheduler:  f[2],
	}}
	if len(f) == 5 {
		if f[3] != "persistent" && f[3] != "timeout" {
			panic("bad server spec " + spec)
		}
		// "timeout N" sets a timeout without persistence, which the kernel ignores.
		vs.Persistent = f[3] == "persistent"
		vs.Timeout = uint32(atoi(f[4]))
	}
	for _, d := range dests {
		vs.Destinations = append(vs.Destinations, dest(d))
	}
	return vs
}

// dest reads "10.244.1.2:8080", optionally followed by "weight N" and
// "conns ACTIVE/INACTIVE" (the kernel's connection counters).
func dest(spec string) ipvs.Destination {
	f := strings.Fields(spec)
	ap := netip.MustParseAddrPort(f[0])
	d := ipvs.Destination{Addr: ap.Addr(), Port: ap.Port(), Weight: 1}
	for rest := f[1:]; len(rest) > 0; rest = rest[2:] {
		if len(rest) < 2 {
			panic("bad destination spec " + spec)
		}
		switch rest[0] {
		case "weight":
			d.Weight = int32(atoi(rest[1]))
		case "conns":
			a, i, ok := strings.Cut(rest[1], "/")
			if !ok {
				panic("bad destination spec " + spec)
			}
			d.ActiveConns, d.InactiveConns = uint32(atoi(a)), uint32(atoi(i))
		default:
			panic("bad destination spec " + spec)
		}
	}
	return d
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

func servers(vss ...ipvs.VirtualServer) map[ipvs.ServiceKey]ipvs.VirtualServer {
	m := map[ipvs.ServiceKey]ipvs.VirtualServer{}
	for _, vs := range vss {
		if _, dup := m[vs.ServiceKey]; dup {
			panic(fmt.Sprintf("duplicate key %s", vs.ServiceKey))
		}
		m[vs.ServiceKey] = vs
	}
	return m
}

func addrSet(ss ...string) map[netip.Addr]bool {
	m := map[netip.Addr]bool{}
	for _, s := range ss {
		m[netip.MustParseAddr(s)] = true
	}
	return m
}
