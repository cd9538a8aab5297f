// Package model turns Kubernetes Services and EndpointSlices into the IPVS
// state this node should have. It is pure: no I/O, no clock, no globals, so
// every decision can be tested as a table of inputs and expected dumps.
package model

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"k8s.io/apimachinery/pkg/types"
)

// SchedulerAnnotation lets one Service choose its IPVS scheduler.
const SchedulerAnnotation = "ipvs-proxy.io/scheduler"

// readAnnotations are the Service annotations the model reads, the only
// ones ServiceFrom keeps.
var readAnnotations = []string{SchedulerAnnotation, SchedulerFlagsAnnotation, SourceRangesAnnotation}

// DefaultAffinityTimeout is Kubernetes' default for ClientIP affinity (3h).
const DefaultAffinityTimeout = 10800

// Options are the node-wide facts and settings the model needs.
type Options struct {
	NodeName string
	// Zone is this node's topology.kubernetes.io/zone label, for the
	// endpoints' zone hints.
	Zone string
	// NodeIPs are the host's addresses outside the dummy interface, from
	// which NodePort addresses are chosen.
	NodeIPs []netip.Addr
	// NodePortAddresses restricts NodePorts to addresses in these prefixes
	// (kube-proxy's --nodeport-addresses); empty means every usable one.
	NodePortAddresses []netip.Prefix
	// Scheduler is the global default; it must be valid (see ValidScheduler).
	Scheduler string
	// DenyExternalIPs is kube-proxy's feature gate AllowServiceExternalIPs
	// set to false: spec.externalIPs are skipped (CVE-2020-8554).
	DenyExternalIPs bool
	// ClusterCIDRs and ServiceCIDRs are the pod and Service ranges: an
	// externalIP or LoadBalancer IP inside them that is not the Service's
	// own clusterIP would take a pod's or another Service's address.
	ClusterCIDRs, ServiceCIDRs []netip.Prefix
	// Unavailable are the IPVS schedulers this node's kernel lacks (checked
	// once at start): an annotation naming one falls back to Scheduler,
	// with a problem, rather than failing every write of the Service.
	Unavailable map[string]bool
	// MaxVirtualServers caps one Service's virtual servers (0: no cap), so
	// that one Service with many ports and many addresses cannot make the
	// node's IPVS table huge.
	MaxVirtualServers int
	// ReservedNodePorts are TCP ports the node serves itself on its own
	// addresses (ipvs-proxy's health and metrics ports, kubelet's): an
	// externalIP or LoadBalancer IP that is a node address may not take
	// them, or one Service would answer the kubelet's liveness probes of
	// every ipvs-proxy, or the API server's calls to kubelet.
	ReservedNodePorts []uint16
	// NoIPv6 is kube-proxy's single-stack when the host lacks ip6tables:
	// kube-proxy then runs a proxier for IPv4 alone, and ipvs-proxy, whose
	// VIP filter, source-range firewall and masquerading are iptables
	// rules, cannot enforce them for IPv6 either. Every IPv6 entry of
	// every Service is left out (clusterIPs, externalIPs, LoadBalancer IPs,
	// NodePorts on IPv6 node addresses, endpoints, health-check counts,
	// VIPs and set members): a dual-stack Service keeps its IPv4 side, an
	// IPv6-only one gets nothing. The proxy says so once at start, as
	// kube-proxy does, not per Service (see Builder.clusterIPs).
	NoIPv6 bool
}

// ServiceInput is one Service and every EndpointSlice labelled with its name.
type ServiceInput struct {
	Service *Service
	Slices  []*Slice
}

// Entry is one virtual server and the Service port it was built for.
type Entry struct {
	ipvs.VirtualServer
	Owner PortName
	// Chosen says the address was written by a user or a controller (an
	// externalIP or a LoadBalancer ingress IP) rather than allocated by the
	// API server (a clusterIP, or a node port): see Precedence.
	Chosen bool
	// LoadBalancer says a chosen address is a LoadBalancer ingress IP,
	// written into the status by the cloud's or the LB's controller,
	// rather than an externalIP, which anyone who may edit a Service can
	// write into its spec: see Wins.
	LoadBalancer bool
}

// PortName names a Service port for logs, events and `status`.
type PortName struct {
	types.NamespacedName
	Port string
}

func (p PortName) String() string {
	if p.Port == "" {
		return p.NamespacedName.String()
	}
	return p.NamespacedName.String() + ":" + p.Port
}

// ServiceState is what one Service wants in the kernel.
type ServiceState struct {
	Entries []Entry
	// VIPs are the addresses that must be on the dummy interface.
	VIPs []netip.Addr
	// ExternalVIPs are the VIPs that are externalIPs or LoadBalancer IPs:
	// traffic to them is masqueraded whatever its source, as kube-proxy
	// does (externalTrafficPolicy Local keeps the source by its own mark).
	ExternalVIPs []netip.Addr
	// Hairpin are this node's endpoints: a pod may be chosen as the real
	// server of its own request, which must then be masqueraded.
	Hairpin []SetMember
	// KeepSource are the externalTrafficPolicy Local external virtual
	// servers (address, protocol, port) that have local real servers: their
	// clients' addresses must be kept.
	KeepSource []SetMember
	// ServicePorts are the (VIP, protocol, port) that have real servers:
	// the only ports on a VIP that traffic may reach. Everything else sent
	// to a VIP is rejected before IPVS or a host socket sees it.
	ServicePorts []SetMember
	// NoLocalEndpoints are the externalTrafficPolicy Local external
	// virtual servers with no real server on this node: their traffic is
	// dropped quietly, so load balancers time out and pick another node
	// (IPVS itself would answer with ICMP and log "no destination
	// available" for every packet).
	NoLocalEndpoints []SetMember
	// Firewall are the LoadBalancer virtual servers (ingress IP, protocol,
	// port) of a Service with loadBalancerSourceRanges: only the sources in
	// SourceRanges may reach them.
	Firewall []SetMember
	// SourceRanges are the (LoadBalancer virtual server, source CIDR) pairs
	// that Firewall lets through.
	SourceRanges []RangeMember
	// ShortCircuit are the externalTrafficPolicy Local external virtual
	// servers, each with the firewall mark of a virtual server that holds
	// its Service port's cluster-wide endpoints (see ShortCircuitMark):
	// traffic from this node and its pods gets the mark, and so every
	// endpoint, as kube-proxy's iptables mode does for in-cluster clients.
	ShortCircuit []MarkMember
	// NoLocal counts the Service's ports whose Local traffic policy finds
	// endpoints in the cluster but none on this node, by policy.
	NoLocal NoLocalCounts
	// HealthCheck is set for a LoadBalancer Service with
	// externalTrafficPolicy Local and a healthCheckNodePort.
	HealthCheck *HealthCheck
	// Problems are inputs that were skipped, worded for a log line or an
	// Event; the rest of the Service is still built.
	Problems []string
	// Precedence decides which Service gets an address:port that two want.
	Precedence Precedence
}

// NoLocalCounts are ports with a Local policy and no local endpoint, by
// family: index 0 IPv4, 1 IPv6 (see FamilyIndex).
type NoLocalCounts struct{ Internal, External [2]int }

// Add adds by times o's counts to c.
func (c *NoLocalCounts) Add(o NoLocalCounts, by int) {
	for f := range c.Internal {
		c.Internal[f] += by * o.Internal[f]
		c.External[f] += by * o.External[f]
	}
}

// FamilyIndex is an address's index in NoLocalCounts and every other
// by-family pair: 0 for IPv4, 1 for IPv6.
func FamilyIndex(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

// Precedence is what decides, between two Services that want the same
// address:port, which one gets it (see Wins).
type Precedence struct {
	Created time.Time
	UID     types.UID
	Name    types.NamespacedName
}

// HealthCheck is what the Service's health-check node port answers.
type HealthCheck struct {
	NodePort uint16
	// LocalEndpoints counts this node's ready endpoints by address (one
	// pod serving two ports counts once), per family: [0] the IPv4 slices',
	// [1] the IPv6 ones', as kube-proxy's proxier of each family counts its
	// own family's. A probe is answered with its own family's count.
	// Terminating endpoints do not count (the load balancer should stop
	// sending), but for publishNotReadyAddresses, whose controller writes
	// ready=true.
	LocalEndpoints [2]int
	// Families are the Service's families, [0] IPv4 and [1] IPv6: those
	// of the clusterIPs the Builder keeps (Builder.clusterIPs). The port
	// listens in these alone: kube-proxy's proxier of each family serves
	// only its own family's Services, on a "tcp4" or a "tcp6" socket
	// (pkg/proxy/healthcheck's newServiceHealthServer), so a probe of a
	// family the Service lacks is refused.
	Families [2]bool
}

// SetMember is a real server as a kernel set holds it.
type SetMember struct {
	Addr  netip.Addr
	Proto ipvs.Protocol
	Port  uint16
}

func (m SetMember) String() string {
	return fmt.Sprintf("%s,%s:%d", m.Addr, strings.ToLower(string(m.Proto)), m.Port)
}

// Key is the virtual server the member stands for.
func (m SetMember) Key() ipvs.ServiceKey {
	return ipvs.ServiceKey{Addr: m.Addr, Proto: m.Proto, Port: m.Port}
}

// MarkMember is a virtual server and the packet mark its in-cluster
// traffic gets.
type MarkMember struct {
	SetMember
	Mark uint32
}

func (m MarkMember) String() string { return fmt.Sprintf("%s skbmark 0x%x", m.SetMember, m.Mark) }

// RangeMember is a source CIDR allowed to reach a LoadBalancer virtual server.
type RangeMember struct {
	SetMember
	Source netip.Prefix
}

func (m RangeMember) String() string { return m.SetMember.String() + "," + m.Source.String() }

func compareMembers(a, b SetMember) int {
	if c := a.Addr.Compare(b.Addr); c != 0 {
		return c
	}
	if a.Proto != b.Proto {
		return strings.Compare(string(a.Proto), string(b.Proto))
	}
	return int(a.Port) - int(b.Port)
}
