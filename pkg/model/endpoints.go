package model

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

// endpoint is one address:port from the slices, with its conditions merged
// across slices (the same endpoint may sit in two slices during an update).
type endpoint struct {
	dst                  netip.AddrPort
	ready                bool
	serving              bool
	terminating          bool
	local                bool
	zoneHints, nodeHints []string
}

// endpointSets are the real servers for one Service port and address family.
type endpointSets struct {
	cluster []ipvs.Destination // every usable endpoint, after topology
	local   []ipvs.Destination // only this node's
	// topology is the mode the hints chose for cluster ("" for none,
	// v1.ServiceTrafficDistributionPreferSameZone or PreferSameNode).
	topology string
}

// where is this node, as topology sees it.
type where struct{ node, zone string }

// collectEndpoints reads every slice of the given family for one Service
// port. The slice port is matched by name (the Service's targetPort may be a
// name, so numbers can differ) and protocol.
//
// A full sync and every periodic resync run this for every Service port,
// so it allocates little: the two exact-size results. The endpoints are
// gathered and merged in place in *scratch, which the next call reuses (at
// 10,000 Services of ten endpoints a fresh list each time was 10 MB of
// garbage per resync).
func collectEndpoints(sp ServicePort, slices []*Slice, family discovery.AddressType, at where, scratch *[]endpoint) (endpointSets, []string) {
	var problems []string
	portsSeen, matched, total := false, false, 0
	for _, slice := range slices {
		if slice != nil && slice.AddressType == family {
			total += len(slice.Endpoints)
		}
	}
	all := growEndpoints((*scratch)[:0], total)
	defer func() {
		clear(all) // keeps no slice's hints alive
		*scratch = all[:0]
	}()
	for _, slice := range slices {
		if slice == nil || slice.AddressType != family {
			continue
		}
		port, seen, ok := slicePort(slice, sp)
		portsSeen = portsSeen || seen
		if !ok {
			continue
		}
		matched = true
		for _, ep := range slice.Endpoints {
			addr, err := ep.parsed()
			if !realServerAddr(addr, err, family == discovery.AddressTypeIPv4) {
				problems = append(problems, fmt.Sprintf("EndpointSlice %s/%s: endpoint address %q is not a valid %s address; skipped", slice.Namespace, slice.Name, ep.Address(), family))
				continue
			}
			zoneHints, nodeHints := ep.Hints()
			all = append(all, endpoint{
				dst:         netip.AddrPortFrom(addr, port),
				ready:       ep.Ready != False,
				serving:     ep.Serving != False,
				terminating: ep.Terminating == True,
				local:       ep.Node != "" && ep.Node == at.node,
				zoneHints:   zoneHints,
				nodeHints:   nodeHints,
			})
		}
	}
	if portsSeen && !matched {
		problems = append(problems, fmt.Sprintf("port %q/%s matches no port of the Service's %s EndpointSlices; it has no real servers", sp.Name, sp.Protocol, family))
	}
	all = mergeDuplicates(all)
	mode := topologyMode(all, at)
	local := func(e endpoint) bool { return e.local }
	return endpointSets{
		cluster:  usable(all, func(e endpoint) bool { return availableForTopology(e, mode, at) }, func(endpoint) bool { return true }),
		local:    usable(all, local, local),
		topology: mode,
	}, problems
}

// growEndpoints is eps with room for n more.
func growEndpoints(eps []endpoint, n int) []endpoint {
	if cap(eps)-len(eps) < n {
		return append(make([]endpoint, 0, len(eps)+n), eps...)
	}
	return eps
}

// mergeDuplicates sorts eps by address:port and merges each run of one
// endpoint (the same endpoint may sit in two slices during an update) into
// one, with the conditions combined.
func mergeDuplicates(eps []endpoint) []endpoint {
	slices.SortFunc(eps, func(a, b endpoint) int { return a.dst.Compare(b.dst) })
	out := eps[:0]
	for _, e := range eps {
		if n := len(out); n > 0 && out[n-1].dst == e.dst {
			prev := &out[n-1]
			prev.ready = prev.ready || e.ready
			prev.serving = prev.serving || e.serving
			prev.terminating = prev.terminating && e.terminating
			prev.local = prev.local || e.local
			continue
		}
		out = append(out, e)
	}
	return out
}

// slicePort finds the slice's port for sp. seen reports whether the slice
// lists any port at all: a slice of a Service with no pods has none, which
// is not a mismatch.
func slicePort(slice *Slice, sp ServicePort) (port uint16, seen, ok bool) {
	for _, p := range slice.Ports {
		seen = true
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		proto := v1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		if name == sp.Name && proto == sp.Protocol && p.Port != nil && *p.Port > 0 && *p.Port <= 65535 {
			return uint16(*p.Port), true, true
		}
	}
	return 0, seen, false
}

// usable picks the ready endpoints that ready accepts (this node's, or
// those topology leaves); when there are none, the ones still serving while
// terminating that fallback accepts (this node's, or all: kube-proxy drops
// topology then), so that a Service whose every pod is shutting down keeps
// answering until they are gone. eps are sorted, so the result is too; it
// is exact-size and never changed afterwards, so virtual servers that want
// the same real servers share it.
func usable(eps []endpoint, ready, fallback func(endpoint) bool) []ipvs.Destination {
	pick := func(e endpoint) bool { return isReady(e) && ready(e) }
	n := count(eps, pick)
	if n == 0 {
		pick = func(e endpoint) bool { return e.serving && e.terminating && fallback(e) }
		n = count(eps, pick)
	}
	if n == 0 {
		return nil
	}
	out := make([]ipvs.Destination, 0, n)
	for _, e := range eps {
		if pick(e) {
			out = append(out, ipvs.Destination{Addr: e.dst.Addr(), Port: e.dst.Port(), Weight: 1})
		}
	}
	return out
}

func count(eps []endpoint, pick func(endpoint) bool) int {
	n := 0
	for _, e := range eps {
		if pick(e) {
			n++
		}
	}
	return n
}

// isReady is kube-proxy's IsReady: the Ready condition alone (nil counts
// as true), whatever terminating says. The EndpointSlice controller writes
// ready=false for a terminating pod, except for a Service with
// publishNotReadyAddresses, where it writes ready=true for every pod, and
// such an endpoint must stay a real server as it does under kube-proxy.
func isReady(e endpoint) bool { return e.ready }

// realServerAddr reports whether an endpoint's address (as parsed, with
// its error) can be a real server of the family v4 says: unzoned, not
// IPv4-mapped, and unicast. The kernel refuses a multicast, broadcast or
// "this network" (0.0.0.0/8) real server with EINVAL, which would fail
// the Service's writes at every retry instead of skipping one endpoint.
func realServerAddr(addr netip.Addr, err error, v4 bool) bool {
	switch {
	case err != nil, addr.Zone() != "", addr.Is4In6(), addr.Is4() != v4:
		return false
	case addr.IsUnspecified(), addr.IsMulticast():
		return false
	case v4 && (addr.As4()[0] == 0 || addr == netip.AddrFrom4([4]byte{255, 255, 255, 255})):
		return false
	}
	return true
}
