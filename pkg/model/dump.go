package model

import (
	"fmt"
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// Dump prints the state as `status` would show it: the virtual servers in
// ipvsadm layout labelled with their Service port, then the VIPs, then
// anything that was skipped.
func (s ServiceState) Dump() string {
	var b strings.Builder
	vss := make([]ipvs.VirtualServer, len(s.Entries))
	owners := map[ipvs.ServiceKey]string{}
	for i, e := range s.Entries {
		vss[i] = e.VirtualServer
		owners[e.ServiceKey] = e.Owner.String()
	}
	b.WriteString(ipvs.Format(vss, func(k ipvs.ServiceKey) string { return owners[k] }, false))
	for _, v := range s.VIPs {
		fmt.Fprintf(&b, "vip %s\n", v)
	}
	for _, v := range s.ExternalVIPs {
		fmt.Fprintf(&b, "external-vip %s\n", v)
	}
	for _, m := range s.Hairpin {
		fmt.Fprintf(&b, "hairpin %s\n", m)
	}
	for _, m := range s.KeepSource {
		fmt.Fprintf(&b, "keep-source %s\n", m)
	}
	for _, m := range s.ServicePorts {
		fmt.Fprintf(&b, "service-port %s\n", m)
	}
	for _, m := range s.NoLocalEndpoints {
		fmt.Fprintf(&b, "no-local-endpoints %s\n", m)
	}
	for _, m := range s.Firewall {
		fmt.Fprintf(&b, "firewall %s\n", m)
	}
	for _, m := range s.SourceRanges {
		fmt.Fprintf(&b, "source-range %s\n", m)
	}
	for _, m := range s.ShortCircuit {
		fmt.Fprintf(&b, "short-circuit %s\n", m)
	}
	if h := s.HealthCheck; h != nil {
		fmt.Fprintf(&b, "health-check-node-port %d local-endpoints %d,%d\n", h.NodePort, h.LocalEndpoints[0], h.LocalEndpoints[1])
	}
	for _, p := range s.Problems {
		fmt.Fprintf(&b, "problem: %s\n", p)
	}
	return b.String()
}
