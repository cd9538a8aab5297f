package ipvs

import (
	"net/netip"
	"testing"
)

// answer is a generic-netlink payload as the kernel sends it to a read:
// the 4-byte genlmsghdr, then attrs. Only the payload matters to the
// parsers, so the encoder's nlmsghdr is cut off.
func answer(attrs func(msg) msg) []byte {
	m := msg(nil).header(0, 0)
	m = append(m, cmdNewService, 1, 0, 0)
	return attrs(m)[16:]
}

// TestParseReadsWhatTheEncoderWrites reads back, through the parsers a
// get uses, the attributes the write encoder sends for the same service
// and real server: every field a diff compares survives.
func TestParseReadsWhatTheEncoderWrites(t *testing.T) {
	v4 := netip.MustParseAddr("10.96.0.10")
	v6 := netip.MustParseAddr("fd00:10:96::a")
	for _, tc := range []struct {
		name string
		svc  Service
		dest Destination
	}{
		{"ipv4 rr", Service{ServiceKey: ServiceKey{Addr: v4, Proto: TCP, Port: 80}, Scheduler: "rr"},
			Destination{Addr: netip.MustParseAddr("10.244.1.5"), Port: 8080, Weight: 1}},
		{"ipv6 sh with flags, persistent", Service{ServiceKey: ServiceKey{Addr: v6, Proto: UDP, Port: 53}, Scheduler: "sh",
			SchedFlags: SchedFlag1 | SchedFlag2, Persistent: true, Timeout: 10800},
			Destination{Addr: netip.MustParseAddr("fd00:244::5"), Port: 5353, Weight: 0}},
		{"firewall mark", Service{ServiceKey: FWMarkKey(0x4000_0001, false), Scheduler: "lc"},
			Destination{Addr: netip.MustParseAddr("10.244.1.6"), Port: 443, Weight: 1}},
		{"a scheduler ipvs-proxy does not know", Service{ServiceKey: ServiceKey{Addr: v4, Proto: SCTP, Port: 9}, Scheduler: "xyz"},
			Destination{Addr: netip.MustParseAddr("10.244.1.7"), Port: 9, Weight: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, af, err := parseService(answer(func(m msg) msg { return m.service(tc.svc, true) }))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.svc {
				t.Errorf("service:\n parsed  %s %+v\n encoded %s %+v", got, got, tc.svc, tc.svc)
			}
			d, err := parseDest(answer(func(m msg) msg { return m.dest(tc.dest) }), af)
			if err != nil {
				t.Fatal(err)
			}
			if d != tc.dest {
				t.Errorf("real server:\n parsed  %+v\n encoded %+v", d, tc.dest)
			}
		})
	}
}

// TestReadPathAllocations: reading a virtual server back is what every
// change-by-change sync does for each changed Service, and in the
// emulated test VM each allocation on that path showed in the proxy's
// CPU. Encoding the requests and parsing the answers allocate nothing
// (get's one copy of the real servers aside).
func TestReadPathAllocations(t *testing.T) {
	b := &batcher{family: 30}
	key := ServiceKey{Addr: netip.MustParseAddr("10.96.0.10"), Proto: TCP, Port: 80}
	svc := answer(func(m msg) msg { return m.service(Service{ServiceKey: key, Scheduler: "rr"}, true) })
	dest := answer(func(m msg) msg {
		return m.dest(Destination{Addr: netip.MustParseAddr("10.244.1.5"), Port: 8080, Weight: 1})
	})
	for name, f := range map[string]func(){
		"request":       func() { b.request(cmdGetService, 0, key) },
		"parse service": func() { _, _, _ = parseService(svc) },
		"parse dest":    func() { _, _ = parseDest(dest, 2) },
	} {
		f() // the request buffer's first growth
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %.1f allocations, want 0", name, n)
		}
	}
}

// TestParseDestForward: a real server read over netlink keeps the
// forwarding method of IPVS_DEST_ATTR_FWD_METHOD's IP_VS_CONN_F_FWD_MASK
// bits, read as /proc/net/ip_vs prints it, so Get and List agree.
func TestParseDestForward(t *testing.T) {
	for _, tc := range []struct {
		name string
		attr uint32
		want Forward
	}{
		{"masq", 0, ForwardMasq},
		{"local node", 1, ForwardLocal},
		{"tunnel", 2, ForwardTunnel},
		{"direct routing", 3, ForwardRoute},
		{"bypass reads as Masq, as the file prints it", 4, ForwardMasq},
		{"flags above the mask are not the method", 0x0100 | 3, ForwardRoute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := answer(func(m msg) msg {
				return m.nest(attrDest, func(m msg) msg {
					m = m.attr(destAddr, netip.MustParseAddr("192.168.1.20").AsSlice())
					m = m.be16(destPort, 80)
					m = m.u32(destFwdMethod, tc.attr)
					return m.u32(destWeight, 1)
				})
			})
			d, err := parseDest(p, 2)
			if err != nil {
				t.Fatal(err)
			}
			if d.Forward != tc.want || d.AddrPort() != netip.MustParseAddrPort("192.168.1.20:80") || d.Weight != 1 {
				t.Errorf("parsed %+v, want 192.168.1.20:80 weight 1 forwarding by %s", d, tc.want)
			}
		})
	}
}
