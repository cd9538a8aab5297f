package model

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// FuzzBuildService builds a Service and its EndpointSlices from the fuzz
// bytes, with values the API would reject as well as ones it accepts, and
// checks what the model hands to the kernel: whatever the input, every
// entry must be something IPVS can be asked to hold, and the answer must
// not depend on anything but the input.
//
//	go test ./pkg/model -run XXX -fuzz FuzzBuildService -fuzztime 60s
func FuzzBuildService(f *testing.F) {
	// Each seed is a list of choices in the order fuzzInput reads them;
	// see the comments there.
	seeds := [][]byte{
		{}, // all zero: a ClusterIP Service with no ports and no slices
		// ClusterIP 10.96.0.10, TCP "http" 80; one IPv4 slice "http" 8080 with
		// a ready local endpoint and a not-ready remote one.
		{0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0,
			1, 0, 1, 1, 1, 1, 3, 2, 1, 2, 1, 1, 2, 1, 1, 5, 2, 2, 2, 2},
		// NodePort, dual-stack clusterIPs, ClientIP affinity 10800s,
		// externalTrafficPolicy Local, an externalIP that is a node address,
		// slices of both families, one endpoint terminating.
		{0, 1, 0, 0, 2, 0, 1, 1, 4, 0, 1, 6, 0, 0, 1, 1, 0, 0, 1, 8,
			2, 0, 1, 1, 1, 1, 3, 2, 1, 2, 1, 1, 2, 1, 1, 5, 1, 1, 2, 2,
			1, 1, 1, 1, 1, 3, 2, 1, 3, 1, 1, 2, 1, 1, 6, 2, 1, 1, 1},
		// LoadBalancer with two ingress IPs, one of them ipMode Proxy; an
		// unknown scheduler annotation; a bogus protocol; ports out of range.
		{2, 2, 0, 0, 0, 0, 2, 11, 1, 9, 2, 0, 0, 9, 0, 0, 3, 0, 0, 1, 8, 3, 4, 1, 0, 2, 1, 6, 11, 7,
			1, 0, 1, 1, 1, 1, 3, 1, 1, 2, 0, 0, 0, 3},
		// Unspecified, zoned, IPv4-mapped and malformed addresses as
		// clusterIPs, externalIPs and endpoints.
		{0, 0, 0, 12, 3, 12, 10, 8, 3, 13, 19, 18, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0,
			2, 0, 1, 1, 1, 1, 3, 3, 2, 2, 12, 0, 0, 0, 1, 1, 16, 0, 0, 0, 1, 1, 2, 0, 0, 0, 1,
			1, 1, 1, 1, 1, 3, 3, 1, 17, 0, 0, 0, 1, 1, 16, 0, 0, 0, 1, 1, 6, 0, 0, 0, 1},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		opts, in := fuzzInput(data)
		b := NewBuilder(opts)
		st := b.Service(in)
		checkState(t, opts, in, st)
		again := NewBuilder(opts).Service(in)
		if st.Dump() != again.Dump() {
			t.Errorf("two builds differ:\n%s\nthen:\n%s", st.Dump(), again.Dump())
		}
		e1, e2 := fmt.Sprint(b.Explain(in)), fmt.Sprint(NewBuilder(opts).Explain(in))
		if e1 != e2 {
			t.Errorf("two explanations differ:\n%s\nthen:\n%s", e1, e2)
		}
		if t.Failed() {
			t.Logf("input:\n%s", describeInput(opts, in))
		}
	})
}

func checkState(t *testing.T, opts Options, in ServiceInput, st ServiceState) {
	t.Helper()
	vips := map[netip.Addr]bool{}
	for _, v := range st.VIPs {
		vips[v] = true
	}
	nodeIPs := map[netip.Addr]bool{}
	for _, ip := range opts.NodeIPs {
		nodeIPs[ip.Unmap()] = true
	}
	entryAddrs := map[netip.Addr]bool{}
	marks := map[ipvs.ServiceKey]bool{}
	for _, m := range st.ShortCircuit {
		marks[ipvs.FWMarkKey(m.Mark, m.Addr.Is6())] = true
		if !ipvs.OwnedMark(m.Mark) {
			t.Errorf("short-circuit %s: a mark ipvs-proxy does not own", m)
		}
	}
	defer func() {
		for k := range marks {
			t.Errorf("short-circuit mark %s without its virtual server", k)
		}
	}()
	for i, e := range st.Entries {
		k := e.ServiceKey
		if k.FWMark != 0 {
			// Only with an address that leads to it, and named as an
			// IPVS firewall-mark service is: the family's unspecified
			// address, no protocol or port.
			if !marks[k] || k != ipvs.FWMarkKey(k.FWMark, k.Addr.Is6()) {
				t.Errorf("entry %s: a firewall-mark virtual server no short-circuit member names", k)
			}
			delete(marks, k)
			continue
		}
		entryAddrs[k.Addr] = true
		if !validAddr(k.Addr) {
			t.Errorf("entry %s: invalid virtual address %q", k, k.Addr)
		}
		if k.Addr.Is4In6() {
			t.Errorf("entry %s: IPv4-mapped virtual address", k)
		}
		if !vips[k.Addr] && !nodeIPs[k.Addr] {
			t.Errorf("entry %s: address is neither a VIP nor a node address", k)
		}
		if k.Port == 0 {
			t.Errorf("entry %s: port 0", k)
		}
		if k.Proto != ipvs.TCP && k.Proto != ipvs.UDP && k.Proto != ipvs.SCTP {
			t.Errorf("entry %s: protocol %q", k, k.Proto)
		}
		if ValidScheduler(e.Scheduler) != nil {
			t.Errorf("entry %s: scheduler %q", k, e.Scheduler)
		}
		if e.Persistent != (e.Timeout > 0) {
			t.Errorf("entry %s: persistent %v with timeout %d", k, e.Persistent, e.Timeout)
		}
		if i > 0 && !st.Entries[i-1].ServiceKey.Less(k) {
			t.Errorf("entries not sorted and unique: %s then %s", st.Entries[i-1].ServiceKey, k)
		}
		seen := map[netip.AddrPort]bool{}
		for _, d := range e.Destinations {
			if !validAddr(d.Addr) {
				t.Errorf("entry %s: invalid real server address %q", k, d.Addr)
			}
			if d.Addr.Is4() != k.Addr.Is4() || d.Addr.Is4In6() {
				t.Errorf("entry %s: real server %s of another family", k, d.AddrPort())
			}
			if d.Port == 0 {
				t.Errorf("entry %s: real server %s with port 0", k, d.AddrPort())
			}
			if d.Weight != 1 {
				t.Errorf("entry %s: real server %s with weight %d", k, d.AddrPort(), d.Weight)
			}
			if seen[d.AddrPort()] {
				t.Errorf("entry %s: real server %s twice", k, d.AddrPort())
			}
			seen[d.AddrPort()] = true
		}
	}
	clusterIPs := map[netip.Addr]bool{}
	if in.Service != nil {
		for _, s := range in.Service.clusterIPStrings() {
			if a, err := netip.ParseAddr(s); err == nil {
				clusterIPs[a.Unmap()] = true
			}
		}
	}
	for i, v := range st.VIPs {
		if !validAddr(v) || v.Is4In6() {
			t.Errorf("invalid VIP %q", v)
		}
		if !entryAddrs[v] && !clusterIPs[v] {
			t.Errorf("VIP %s is neither the address of an entry nor a clusterIP", v)
		}
		if i > 0 && st.VIPs[i-1].Compare(v) >= 0 {
			t.Errorf("VIPs not sorted and unique: %s then %s", st.VIPs[i-1], v)
		}
	}
}

func validAddr(a netip.Addr) bool {
	return a.IsValid() && a.Zone() == "" && !a.IsUnspecified()
}

// fuzzDecoder reads choices from the fuzz bytes; past the end every choice
// is 0, so any input decodes and short inputs make small Services.
type fuzzDecoder struct {
	b []byte
	i int
}

func (d *fuzzDecoder) byte() byte {
	if d.i >= len(d.b) {
		return 0
	}
	c := d.b[d.i]
	d.i++
	return c
}

func (d *fuzzDecoder) n(k int) int { return int(d.byte()) % k }

func pick[T any](d *fuzzDecoder, options ...T) T { return options[d.n(len(options))] }

// tri is an optional bool: nil, true or false.
func (d *fuzzDecoder) tri() *bool { return pick(d, nil, ptr.To(true), ptr.To(false)) }

var fuzzIPs = []string{
	"10.96.0.10", "fd00:10:96::a", "10.244.1.2", "fd00:244::2", "192.168.1.10", // 0-4
	"10.244.2.3", "fd00:244::3", "2001:db8::10", "::ffff:10.96.0.12", "10.96.0.11", // 5-9
	"fd00:10:96::b", "203.0.113.7", "0.0.0.0", "::", "", // 10-14
	"None", "not-an-ip", "fe80::1%eth0", "fd00::1%eth0", "10.96.0", // 15-19
	"010.096.000.010", " 10.96.0.10", "127.0.0.1", "::1", "fe80::1", // 20-24
	"255.255.255.255", "::ffff:fd00:244::2", // 25-26
}

// ip is one of fuzzIPs, or a generated one: many different endpoints, and
// duplicates between slices.
func (d *fuzzDecoder) ip() string {
	c := d.n(len(fuzzIPs) + 2)
	switch {
	case c < len(fuzzIPs):
		return fuzzIPs[c]
	case c == len(fuzzIPs):
		return fmt.Sprintf("10.244.%d.%d", d.byte()%4, d.byte()%8)
	}
	return fmt.Sprintf("fd00:244::%x", d.byte()%8)
}

func (d *fuzzDecoder) port() int32 {
	switch c := d.n(12); c {
	case 10:
		return int32(d.byte())<<8 | int32(d.byte())
	case 11:
		return -int32(d.byte())
	default:
		return []int32{0, 80, 53, 8080, 443, 65535, 65536, 70000, 30080, math.MaxInt32}[c]
	}
}

var fuzzOptions = []Options{{
	NodeName:  "node-a",
	NodeIPs:   []netip.Addr{netip.MustParseAddr("192.168.1.10"), netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("fe80::1"), netip.MustParseAddr("2001:db8::10"), netip.MustParseAddr("::ffff:192.168.1.11")},
	Scheduler: "rr",
}, {
	Scheduler: "sh",
}, {
	NodeName:          "node-b",
	NodeIPs:           []netip.Addr{netip.MustParseAddr("192.168.1.10"), netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("2001:db8::10"), netip.MustParseAddr("::")},
	NodePortAddresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/64")},
	Scheduler:         "mh",
}}

var (
	fuzzPortNames = []string{"http", "", "dns", "metrics", "HTTP"}
	fuzzProtocols = []v1.Protocol{v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP, "", "ICMP", "tcp"}
	fuzzNodes     = []*string{nil, ptr.To("node-a"), ptr.To("node-b"), ptr.To("")}
)

// fuzzInput reads, in order: the options; the Service's type, name,
// clusterIP, clusterIPs, externalIPs, LoadBalancer ingress, affinity,
// scheduler annotation, traffic policies and ports; then the slices, each
// with its address type, name, ports and endpoints.
func fuzzInput(data []byte) (Options, ServiceInput) {
	d := &fuzzDecoder{b: data}
	opts := pick(d, fuzzOptions...)
	svc := &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns"}}
	svc.Spec.Type = pick(d, v1.ServiceTypeClusterIP, v1.ServiceTypeNodePort, v1.ServiceTypeLoadBalancer, v1.ServiceTypeExternalName, "", "Bogus")
	svc.Name = pick(d, "web", "dns", "")
	svc.Spec.ClusterIP = d.ip()
	for range d.n(4) {
		svc.Spec.ClusterIPs = append(svc.Spec.ClusterIPs, d.ip())
	}
	for range d.n(4) {
		svc.Spec.ExternalIPs = append(svc.Spec.ExternalIPs, d.ip())
	}
	for range d.n(4) {
		ing := v1.LoadBalancerIngress{IP: d.ip()}
		ing.IPMode = pick(d, nil, ptr.To(v1.LoadBalancerIPModeVIP), ptr.To(v1.LoadBalancerIPModeProxy), ptr.To(v1.LoadBalancerIPMode("Bogus")))
		svc.Status.LoadBalancer.Ingress = append(svc.Status.LoadBalancer.Ingress, ing)
	}
	svc.Spec.SessionAffinity = pick(d, v1.ServiceAffinityNone, v1.ServiceAffinityClientIP, "", "Bogus")
	switch c := d.n(9); c {
	case 0:
	case 1:
		svc.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{}
	case 2:
		svc.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{}}
	default:
		timeout := []int32{-5, 0, 1, 10800, 86400, math.MaxInt32}[c-3]
		svc.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: &timeout}}
	}
	if c := d.n(10); c > 0 {
		svc.Annotations = map[string]string{SchedulerAnnotation: []string{"rr", "lc", "sh", "wrr", "mh", "", "RR", "dh", "bogus"}[c-1]}
	}
	svc.Spec.InternalTrafficPolicy = pick(d, nil, ptr.To(v1.ServiceInternalTrafficPolicyLocal), ptr.To(v1.ServiceInternalTrafficPolicyCluster), ptr.To(v1.ServiceInternalTrafficPolicy("Bogus")))
	svc.Spec.ExternalTrafficPolicy = pick(d, "", v1.ServiceExternalTrafficPolicyLocal, v1.ServiceExternalTrafficPolicyCluster, "Bogus")
	for range d.n(5) {
		svc.Spec.Ports = append(svc.Spec.Ports, v1.ServicePort{
			Name: pick(d, fuzzPortNames...), Protocol: pick(d, fuzzProtocols...), Port: d.port(), NodePort: d.port(),
		})
	}

	in := ServiceInput{Service: ServiceFrom(svc)}
	for i := range d.n(5) {
		s := &discovery.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("%s-%d", svc.Name, i)},
			AddressType: pick(d, discovery.AddressTypeIPv4, discovery.AddressTypeIPv6, discovery.AddressTypeFQDN, ""),
		}
		for range d.n(4) {
			var p discovery.EndpointPort
			if c := d.n(len(fuzzPortNames) + 1); c > 0 {
				p.Name = ptr.To(fuzzPortNames[c-1])
			}
			if c := d.n(len(fuzzProtocols) + 1); c > 0 {
				p.Protocol = ptr.To(fuzzProtocols[c-1])
			}
			if d.n(4) > 0 {
				p.Port = ptr.To(d.port())
			}
			s.Ports = append(s.Ports, p)
		}
		for range d.n(6) {
			var ep discovery.Endpoint
			for range d.n(3) {
				ep.Addresses = append(ep.Addresses, d.ip())
			}
			ep.Conditions = discovery.EndpointConditions{Ready: d.tri(), Serving: d.tri(), Terminating: d.tri()}
			ep.NodeName = pick(d, fuzzNodes...)
			s.Endpoints = append(s.Endpoints, ep)
		}
		in.Slices = append(in.Slices, SliceFrom(s))
	}
	return opts, in
}

// describeInput prints a failing input readably.
func describeInput(opts Options, in ServiceInput) string {
	var b strings.Builder
	fmt.Fprintf(&b, "options: node %q, node IPs %v, nodeport-addresses %v, scheduler %q\n", opts.NodeName, opts.NodeIPs, opts.NodePortAddresses, opts.Scheduler)
	s := in.Service
	fmt.Fprintf(&b, "service %s type %q clusterIP %q clusterIPs %q externalIPs %q annotations %v\n",
		s.NamespacedName, s.Type, s.ClusterIP, s.ClusterIPs, s.ExternalIPs, s.Annotations)
	fmt.Fprintf(&b, "  ingress IPs %q\n", s.IngressIPs)
	fmt.Fprintf(&b, "  affinity %v timeout %d itp %q etp %q\n", s.ClientIPAffinity, s.AffinityTimeout, s.InternalTrafficPolicy, s.ExternalTrafficPolicy)
	for _, p := range s.Ports {
		fmt.Fprintf(&b, "  port %q %q %d nodePort %d\n", p.Name, p.Protocol, p.Port, p.NodePort)
	}
	for _, sl := range in.Slices {
		fmt.Fprintf(&b, "slice %s %q\n", sl.Name, sl.AddressType)
		for _, p := range sl.Ports {
			fmt.Fprintf(&b, "  port %v %v %v\n", deref(p.Name), deref(p.Protocol), deref(p.Port))
		}
		for _, ep := range sl.Endpoints {
			fmt.Fprintf(&b, "  endpoint %q ready %v serving %v terminating %v node %q\n", ep.Address(), ep.Ready, ep.Serving, ep.Terminating, ep.Node)
		}
	}
	return b.String()
}

func deref[T any](p *T) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}
