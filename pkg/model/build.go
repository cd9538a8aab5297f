package model

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

// Builder builds desired state. It precomputes what is the same for every
// Service (the NodePort addresses) so that building one Service is cheap.
//
// A Builder is for one goroutine at a time: it keeps a scratch list.
type Builder struct {
	opts        Options
	nodePortIPs []netip.Addr
	nodeIPs     map[netip.Addr]bool
	endpoints   []endpoint // collectEndpoints' scratch
}

func NewBuilder(o Options) *Builder {
	b := &Builder{opts: o, nodePortIPs: NodePortIPs(o.NodeIPs, o.NodePortAddresses), nodeIPs: map[netip.Addr]bool{}}
	for _, ip := range o.NodeIPs {
		b.nodeIPs[ip.Unmap()] = true
	}
	return b
}

// Service returns the virtual servers and VIPs one Service wants. Headless
// and ExternalName Services want nothing.
func (b *Builder) Service(in ServiceInput) ServiceState {
	svc := in.Service
	if svc == nil || svc.Type == v1.ServiceTypeExternalName || svc.ClusterIP == v1.ClusterIPNone || svc.ClusterIP == "" {
		return ServiceState{}
	}
	clusterIPs, clusterIPProblems, none := b.clusterIPs(svc)
	if none {
		return ServiceState{}
	}
	var st ServiceState
	sched, schedFlags, problem := schedulerFor(svc.Annotations, b.opts.Scheduler, b.opts.Unavailable)
	if problem != "" {
		st.Problems = append(st.Problems, problem)
	}
	persistent, timeout := affinity(svc)
	name := svc.NamespacedName

	st.Problems = append(st.Problems, clusterIPProblems...)
	chosen := b.chosenAddrs(svc, clusterIPs, &st.Problems)
	lbIPs := map[netip.Addr]bool{}
	for _, c := range chosen {
		if c.lb {
			lbIPs[c.addr] = true
		}
	}
	ranges, p := sourceRanges(svc)
	st.Problems = append(st.Problems, p...)
	st.Problems = append(st.Problems, rangeFamilyProblems(ranges, lbIPs)...)

	internalLocal := svc.InternalTrafficPolicy == v1.ServiceInternalTrafficPolicyLocal
	externalLocal := svc.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal
	for _, sp := range svc.Ports {
		proto, ok := protocols[sp.Protocol]
		if !ok {
			st.Problems = append(st.Problems, fmt.Sprintf("port %q: protocol %q is not supported; skipped", sp.Name, sp.Protocol))
			continue
		}
		owner := PortName{NamespacedName: name, Port: sp.Name}
		sets := map[discovery.AddressType]endpointSets{}
		endpointsOf := func(addr netip.Addr) endpointSets {
			fam := family(addr)
			if s, ok := sets[fam]; ok {
				return s
			}
			s, p := collectEndpoints(sp, in.Slices, fam, where{b.opts.NodeName, b.opts.Zone}, &b.endpoints)
			st.Problems = append(st.Problems, p...)
			sets[fam] = s
			// Once per port and family, however many virtual servers
			// (clusterIP, externalIPs, NodePorts) share these endpoints.
			st.Hairpin = slices.Grow(st.Hairpin, len(s.local))
			for _, d := range s.local {
				st.Hairpin = append(st.Hairpin, SetMember{Addr: d.Addr, Proto: proto, Port: d.Port})
			}
			return s
		}
		add := func(addr netip.Addr, port int32, local, external, vip, chosen bool) {
			eps := endpointsOf(addr)
			dsts := eps.cluster
			if local {
				dsts = eps.local
			}
			// Only virtual servers that have real servers need the mark: the
			// others drop their traffic. So the set grows with this node's
			// endpoints, not with the number of Services.
			m := SetMember{Addr: addr, Proto: proto, Port: uint16(port)}
			if local && external && len(dsts) > 0 {
				st.KeepSource = append(st.KeepSource, m)
			}
			if local && external && len(dsts) == 0 {
				st.NoLocalEndpoints = append(st.NoLocalEndpoints, m)
			}
			if vip && len(dsts) > 0 {
				st.ServicePorts = append(st.ServicePorts, m)
			}
			if lbIPs[addr] && ranges != nil {
				st.Firewall = append(st.Firewall, m)
				st.SourceRanges = append(st.SourceRanges, b.allowed(m, ranges)...)
			}
			if local && external {
				// In-cluster clients get what a clusterIP gives them.
				mark := ShortCircuitMark(owner, proto)
				st.ShortCircuit = append(st.ShortCircuit, MarkMember{SetMember: m, Mark: mark})
				internal := eps.cluster
				if internalLocal {
					internal = eps.local
				}
				st.Entries = append(st.Entries, Entry{Owner: owner, VirtualServer: ipvs.VirtualServer{
					Service: ipvs.Service{
						ServiceKey: ipvs.FWMarkKey(mark, addr.Is6()),
						Scheduler:  sched, SchedFlags: schedFlags, Persistent: persistent, Timeout: timeout,
					},
					Destinations: internal,
				}})
			}
			st.Entries = append(st.Entries, Entry{Owner: owner, Chosen: chosen, LoadBalancer: chosen && lbIPs[addr], VirtualServer: ipvs.VirtualServer{
				Service: ipvs.Service{
					ServiceKey: ipvs.ServiceKey{Addr: addr, Proto: proto, Port: uint16(port)},
					Scheduler:  sched, SchedFlags: schedFlags, Persistent: persistent, Timeout: timeout,
				},
				Destinations: dsts, // shared with other entries; never changed
			}})
		}
		if sp.Port <= 0 || sp.Port > 65535 {
			st.Problems = append(st.Problems, fmt.Sprintf("port %q: %d is not a valid port; skipped", sp.Name, sp.Port))
			continue
		}
		for _, ip := range clusterIPs {
			add(ip, sp.Port, internalLocal, false, true, false)
		}
		for _, c := range chosen {
			if b.nodeIPs[c.addr] && proto == ipvs.TCP && slices.Contains(b.opts.ReservedNodePorts, uint16(sp.Port)) {
				st.Problems = append(st.Problems, fmt.Sprintf("%s TCP %s: the %s is a node address and the port one the node serves itself "+
					"(ipvs-proxy's health or metrics port, or kubelet's); skipped", sp.Name, netip.AddrPortFrom(c.addr, uint16(sp.Port)), c.kind()))
				continue
			}
			add(c.addr, sp.Port, externalLocal, true, !b.nodeIPs[c.addr], true)
		}
		nodePort := sp.NodePort > 0 && sp.NodePort <= 65535 && (svc.Type == v1.ServiceTypeNodePort || svc.Type == v1.ServiceTypeLoadBalancer)
		if nodePort {
			for _, ip := range b.nodePortIPs {
				if hasFamily(clusterIPs, ip) {
					add(ip, sp.NodePort, externalLocal, true, false, false)
				}
			}
		}
		// kube-proxy's no_local_endpoints metric, per family as its
		// proxier for each family counts: a Local policy on a port that
		// has endpoints in the cluster but none on this node.
		for _, ip := range clusterIPs {
			if eps := endpointsOf(ip); len(eps.cluster) > 0 && len(eps.local) == 0 {
				f := FamilyIndex(ip)
				if internalLocal {
					st.NoLocal.Internal[f]++
				}
				if externalLocal && (nodePort || len(chosen) > 0) {
					st.NoLocal.External[f]++
				}
			}
		}
	}
	st.Entries = dedupEntries(st.Entries)
	// A VIP goes on the dummy interface only with a virtual server on it:
	// a bare local address would hand its traffic to host sockets. An
	// address the node already has needs no second home there, and
	// removing it later would break the node.
	for _, e := range st.Entries {
		if !b.nodeIPs[e.Addr] && (slices.Contains(clusterIPs, e.Addr) || e.Chosen) {
			st.VIPs = append(st.VIPs, e.Addr)
		}
		if !b.nodeIPs[e.Addr] && e.Chosen {
			st.ExternalVIPs = append(st.ExternalVIPs, e.Addr)
		}
	}
	st.Hairpin = sortedMembers(st.Hairpin)
	st.KeepSource = sortedMembers(st.KeepSource)
	st.ServicePorts = sortedMembers(st.ServicePorts)
	st.NoLocalEndpoints = sortedMembers(st.NoLocalEndpoints)
	st.Firewall = sortedMembers(st.Firewall)
	st.SourceRanges = sortedRanges(st.SourceRanges)
	slices.SortFunc(st.ShortCircuit, func(a, b MarkMember) int { return compareMembers(a.SetMember, b.SetMember) })
	st.ShortCircuit = slices.Compact(st.ShortCircuit)
	st.HealthCheck = healthCheck(svc, clusterIPs, in.Slices, b.opts.NodeName)
	slices.SortFunc(st.VIPs, netip.Addr.Compare)
	st.VIPs = slices.Compact(st.VIPs)
	slices.SortFunc(st.ExternalVIPs, netip.Addr.Compare)
	st.ExternalVIPs = slices.Compact(st.ExternalVIPs)
	st.Precedence = Precedence{Created: svc.Created, UID: svc.UID, Name: name}
	// A chosen address that is one of the node's, on the Service's own
	// health-check node port, would take its own checks in LOCAL_IN, before
	// the health-check server's socket (Allocated refuses other Services').
	if hc := st.HealthCheck; hc != nil {
		var lost map[ipvs.ServiceKey]string
		for _, e := range st.Entries {
			if e.Chosen && e.Proto == ipvs.TCP && e.Port == hc.NodePort && b.nodeIPs[e.Addr] {
				if lost == nil {
					lost = map[ipvs.ServiceKey]string{}
				}
				lost[e.ServiceKey] = healthCheckProblem(e)
			}
		}
		st = st.Without(lost)
	}
	return b.capped(st)
}

var protocols = map[v1.Protocol]ipvs.Protocol{v1.ProtocolTCP: ipvs.TCP, v1.ProtocolUDP: ipvs.UDP, v1.ProtocolSCTP: ipvs.SCTP}

func affinity(svc *Service) (bool, uint32) {
	if !svc.ClientIPAffinity {
		return false, 0
	}
	if svc.AffinityTimeout > 0 {
		return true, uint32(svc.AffinityTimeout)
	}
	return true, DefaultAffinityTimeout
}

func family(a netip.Addr) discovery.AddressType {
	if a.Is4() {
		return discovery.AddressTypeIPv4
	}
	return discovery.AddressTypeIPv6
}

// clusterIPs parses the Service's clusterIPs, less those of a family this
// node does not program (Options.NoIPv6). It is where a Service's families
// are decided: externalIPs, LoadBalancer IPs and NodePorts are kept only
// in a family it has a clusterIP of (hasFamily), and endpoints are taken
// only for the families of the addresses kept, so leaving out the IPv6
// clusterIPs leaves out every IPv6 entry. none says the Service has valid
// clusterIPs and all were left out: it is not programmed at all, as
// kube-proxy's single-stack proxier skips a Service without a clusterIP
// of its family.
//
// What is left out is not a problem of the Service: problems become
// Warning Events on it, from every node, and count as invalid input, but
// the Service asked for nothing wrong, its owner cannot fix the node, and
// a dual-stack cluster would get one Event per dual-stack Service per node
// without ip6tables. The proxy says it once at start instead, as
// kube-proxy does ("IPv6 Services are not programmed: the host has no
// ip6tables"), and `status --service` explains each IPv6 endpoint so.
func (b *Builder) clusterIPs(svc *Service) (ips []netip.Addr, problems []string, none bool) {
	ips, problems = parseAddrs("clusterIP", svc.clusterIPStrings())
	if b.opts.NoIPv6 && len(ips) > 0 {
		ips = slices.DeleteFunc(ips, netip.Addr.Is6)
		none = len(ips) == 0
	}
	return ips, problems, none
}

// hasFamily reports whether the Service has a clusterIP of ip's family: a
// single-stack Service gets NodePorts on that family's node addresses only.
func hasFamily(clusterIPs []netip.Addr, ip netip.Addr) bool {
	for _, c := range clusterIPs {
		if c.Is4() == ip.Is4() {
			return true
		}
	}
	return false
}

func parseAddrs(what string, in []string) ([]netip.Addr, []string) {
	var out []netip.Addr
	var problems []string
	for _, s := range in {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" || a.IsUnspecified() {
			problems = append(problems, fmt.Sprintf("%s %q is not a valid IP address; skipped", what, s))
			continue
		}
		out = append(out, a.Unmap())
	}
	return out, problems
}

// dedupEntries keeps the first entry for each key: an externalIP equal to a
// clusterIP, or a LoadBalancer IP listed twice, must not become two writes.
func dedupEntries(in []Entry) []Entry {
	slices.SortStableFunc(in, func(a, b Entry) int { return ipvs.CompareKeys(a.ServiceKey, b.ServiceKey) })
	return slices.CompactFunc(in, func(a, b Entry) bool { return a.ServiceKey == b.ServiceKey })
}

func sortedMembers(ms []SetMember) []SetMember {
	slices.SortFunc(ms, compareMembers)
	return slices.Compact(ms)
}
