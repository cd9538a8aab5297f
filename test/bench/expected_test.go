package bench

import (
	"context"
	"fmt"
	"net/netip"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// expected lists every Service and EndpointSlice and returns the IPVS
// table both proxies must build from them: default/kubernetes and the
// bench's Services, one virtual server per ClusterIP and port, one real
// server per ready endpoint. It also records each bench Service's virtual
// server for the changes.
func (g *guest) expected(ctx context.Context) (table, error) {
	var svcs []v1.Service
	var slices []discovery.EndpointSlice
	for opts := (metav1.ListOptions{Limit: 500}); ; {
		l, err := g.client.CoreV1().Services("").List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list Services: %w", err)
		}
		svcs = append(svcs, l.Items...)
		if opts.Continue = l.Continue; opts.Continue == "" {
			break
		}
	}
	for opts := (metav1.ListOptions{Limit: 500}); ; {
		l, err := g.client.DiscoveryV1().EndpointSlices("").List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list EndpointSlices: %w", err)
		}
		slices = append(slices, l.Items...)
		if opts.Continue = l.Continue; opts.Continue == "" {
			break
		}
	}
	return wantedTable(svcs, slices, g.svcKeys), nil
}

// wantedTable is the pure part of expected. keys receives the virtual
// server of each bench Service's first port.
func wantedTable(svcs []v1.Service, slices []discovery.EndpointSlice, keys map[string]vsKey) table {
	bySvc := map[string][]*discovery.EndpointSlice{}
	for i := range slices {
		s := &slices[i]
		id := s.Namespace + "/" + s.Labels[discovery.LabelServiceName]
		bySvc[id] = append(bySvc[id], s)
	}
	t := table{}
	for _, svc := range svcs {
		for _, ip := range svc.Spec.ClusterIPs {
			addr, err := netip.ParseAddr(ip)
			if err != nil {
				continue // headless ("None") or none
			}
			for pi, port := range svc.Spec.Ports {
				k := vsKey{Proto: string(port.Protocol), Addr: netip.AddrPortFrom(addr, uint16(port.Port))}
				rs := map[netip.AddrPort]int{}
				for _, sl := range bySvc[svc.Namespace+"/"+svc.Name] {
					addEndpoints(rs, sl, port.Name, addr.Is4())
				}
				t[k] = rs
				if svc.Namespace == benchNS && pi == 0 {
					keys[svc.Name] = k
				}
			}
		}
	}
	return t
}

// addEndpoints adds the ready endpoints of sl's port named name (the
// first address of each, as both proxies use it).
func addEndpoints(rs map[netip.AddrPort]int, sl *discovery.EndpointSlice, name string, v4 bool) {
	if (sl.AddressType == discovery.AddressTypeIPv4) != v4 {
		return
	}
	for _, p := range sl.Ports {
		if p.Port == nil || (p.Name == nil && name != "") || (p.Name != nil && *p.Name != name) {
			continue
		}
		for _, ep := range sl.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready || len(ep.Addresses) == 0 {
				continue
			}
			a, err := netip.ParseAddr(ep.Addresses[0])
			if err != nil {
				continue
			}
			rs[netip.AddrPortFrom(a, uint16(*p.Port))] = 1
		}
	}
}
