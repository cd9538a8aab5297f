package ipvs

import (
	"net/netip"
	"slices"
	"testing"
)

const (
	header         = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight\n"
	headerCounters = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
)

func key(proto Protocol, addrPort string) ServiceKey {
	ap := netip.MustParseAddrPort(addrPort)
	return ServiceKey{Addr: ap.Addr(), Proto: proto, Port: ap.Port()}
}

func dst(addrPort string, weight int32) Destination {
	ap := netip.MustParseAddrPort(addrPort)
	return Destination{Addr: ap.Addr(), Port: ap.Port(), Weight: weight}
}

func vs(k ServiceKey, sched string, dsts ...Destination) VirtualServer {
	return VirtualServer{Service: Service{ServiceKey: k, Scheduler: sched}, Destinations: dsts}
}

func persistent(v VirtualServer, timeout uint32) VirtualServer {
	v.Persistent, v.Timeout = true, timeout
	return v
}

func counted(d Destination, active, inactive uint32) Destination {
	d.ActiveConns, d.InactiveConns = active, inactive
	return d
}

func forwarding(d Destination, f Forward) Destination {
	d.Forward = f
	return d
}

func TestFormat(t *testing.T) {
	web := key(TCP, "10.96.0.10:80")
	labels := map[ServiceKey]string{
		web:                            "ns/web:http",
		key(UDP, "[fd00:10:96::a]:53"): "kube-system/kube-dns:dns",
	}
	byMap := func(k ServiceKey) string { return labels[k] }
	cases := []struct {
		name     string
		vss      []VirtualServer
		label    func(ServiceKey) string
		counters bool
		want     string
	}{{
		name: "nothing",
		want: header,
	}, {
		name:     "nothing, with counters",
		counters: true,
		want:     headerCounters,
	}, {
		name: "IPv4 virtual server with its real servers",
		vss:  []VirtualServer{vs(web, "rr", dst("10.244.1.2:8080", 1), dst("10.244.2.2:8080", 1))},
		want: header + `TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
`,
	}, {
		name: "IPv6 addresses in brackets, for the virtual and the real servers",
		vss:  []VirtualServer{vs(key(UDP, "[fd00:10:96::a]:53"), "lc", dst("[fd00:244::5]:5353", 1))},
		want: header + `UDP  [fd00:10:96::a]:53 lc
  -> [fd00:244::5]:5353           Masq    1
`,
	}, {
		name: "SCTP fills the protocol column; a server without real servers is one line",
		vss:  []VirtualServer{vs(key(SCTP, "10.96.0.11:3868"), "sh")},
		want: header + "SCTP 10.96.0.11:3868 sh\n",
	}, {
		name: "persistence shows its timeout",
		vss:  []VirtualServer{persistent(vs(web, "sh", dst("10.244.1.2:8080", 1)), 10800)},
		want: header + `TCP  10.96.0.10:80 sh persistent 10800
  -> 10.244.1.2:8080              Masq    1
`,
	}, {
		name: "a timeout without persistence is not shown",
		vss:  []VirtualServer{{Service: Service{ServiceKey: web, Scheduler: "rr", Timeout: 60}}},
		want: header + "TCP  10.96.0.10:80 rr\n",
	}, {
		name:  "labels name the owner; a key without a label has no comment",
		vss:   []VirtualServer{vs(web, "rr", dst("10.244.1.2:8080", 1)), vs(key(TCP, "10.96.0.99:443"), "rr"), persistent(vs(key(UDP, "[fd00:10:96::a]:53"), "rr"), 60)},
		label: byMap,
		want: header + `TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.2:8080              Masq    1
TCP  10.96.0.99:443 rr
UDP  [fd00:10:96::a]:53 rr persistent 60  # kube-system/kube-dns:dns
`,
	}, {
		name:  "a line longer than the label column still gets its comment",
		vss:   []VirtualServer{persistent(vs(key(TCP, "[2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff]:65535"), "wrr"), 86400)},
		label: func(ServiceKey) string { return "a-namespace/a-service:a-port" },
		want:  header + "TCP  [2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff]:65535 wrr persistent 86400 # a-namespace/a-service:a-port\n",
	}, {
		name: "weights are printed as given",
		vss:  []VirtualServer{vs(web, "wrr", dst("10.244.1.2:8080", 0), dst("10.244.1.3:8080", 100))},
		want: header + `TCP  10.96.0.10:80 wrr
  -> 10.244.1.2:8080              Masq    0
  -> 10.244.1.3:8080              Masq    100
`,
	}, {
		name: "each real server's forwarding method, as the kernel holds it (another tool's)",
		vss: []VirtualServer{vs(key(TCP, "192.168.1.10:80"), "wlc",
			forwarding(dst("192.168.1.20:80", 1), ForwardRoute),
			forwarding(dst("192.168.1.21:80", 1), ForwardTunnel),
			forwarding(dst("192.168.1.22:80", 1), ForwardLocal),
			dst("192.168.1.23:80", 1),
		)},
		want: header + `TCP  192.168.1.10:80 wlc
  -> 192.168.1.20:80              Route   1
  -> 192.168.1.21:80              Tunnel  1
  -> 192.168.1.22:80              Local   1
  -> 192.168.1.23:80              Masq    1
`,
	}, {
		name:     "forwarding method with counters",
		vss:      []VirtualServer{vs(key(TCP, "192.168.1.10:80"), "wlc", counted(forwarding(dst("192.168.1.20:80", 1), ForwardRoute), 4, 2))},
		counters: true,
		want: headerCounters + `TCP  192.168.1.10:80 wlc
  -> 192.168.1.20:80              Route   1      4          2
`,
	}, {
		name:     "counters on",
		vss:      []VirtualServer{vs(web, "rr", counted(dst("10.244.1.2:8080", 1), 3, 17), counted(dst("[fd00::1]:8080", 1), 0, 0))},
		counters: true,
		want: headerCounters + `TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1      3          17
  -> [fd00::1]:8080               Masq    1      0          0
`,
	}, {
		name: "counters off hides them",
		vss:  []VirtualServer{vs(web, "rr", counted(dst("10.244.1.2:8080", 1), 3, 17))},
		want: header + `TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1
`,
	}, {
		name: "virtual servers sorted by address (numerically, IPv4 first), then protocol, then port (numerically)",
		vss: []VirtualServer{
			vs(key(TCP, "[fd00::1]:80"), "rr"),
			vs(key(UDP, "10.96.0.10:53"), "rr"),
			vs(key(TCP, "10.96.0.10:443"), "rr"),
			vs(key(TCP, "10.96.0.10:80"), "rr"),
			vs(key(TCP, "10.96.0.9:80"), "rr"),
			vs(key(SCTP, "10.96.0.10:9999"), "rr"),
		},
		want: header + `TCP  10.96.0.9:80 rr
SCTP 10.96.0.10:9999 rr
TCP  10.96.0.10:80 rr
TCP  10.96.0.10:443 rr
UDP  10.96.0.10:53 rr
TCP  [fd00::1]:80 rr
`,
	}, {
		name: "real servers sorted by address, then port",
		vss: []VirtualServer{vs(web, "rr",
			dst("[fd00::2]:80", 1),
			dst("10.244.1.10:80", 1),
			dst("10.244.1.9:8080", 1),
			dst("10.244.1.9:443", 1),
		)},
		want: header + `TCP  10.96.0.10:80 rr
  -> 10.244.1.9:443               Masq    1
  -> 10.244.1.9:8080              Masq    1
  -> 10.244.1.10:80               Masq    1
  -> [fd00::2]:80                 Masq    1
`,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := cloneAll(tc.vss)
			got := Format(tc.vss, tc.label, tc.counters)
			if got != tc.want {
				t.Errorf("Format:\n%s\nwant:\n%s", got, tc.want)
			}
			// Format sorts a copy: the caller's slices keep their order.
			if !equalAll(tc.vss, before) {
				t.Errorf("Format reordered its input:\n%v\nwas:\n%v", tc.vss, before)
			}
		})
	}
}

func cloneAll(vss []VirtualServer) []VirtualServer {
	out := slices.Clone(vss)
	for i := range out {
		out[i].Destinations = slices.Clone(out[i].Destinations)
	}
	return out
}

func equalAll(a, b []VirtualServer) bool {
	return slices.EqualFunc(a, b, func(x, y VirtualServer) bool {
		return x.Service == y.Service && slices.Equal(x.Destinations, y.Destinations)
	})
}

func TestServiceKeyString(t *testing.T) {
	cases := []struct {
		key  ServiceKey
		want string
	}{
		{key(TCP, "10.96.0.10:80"), "TCP 10.96.0.10:80"},
		{key(UDP, "[fd00:10:96::a]:53"), "UDP [fd00:10:96::a]:53"},
		{key(SCTP, "192.0.2.1:3868"), "SCTP 192.0.2.1:3868"},
	}
	for _, tc := range cases {
		if got := tc.key.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func TestServiceKeyLess(t *testing.T) {
	cases := []struct {
		name string
		a, b ServiceKey
		want bool // a.Less(b); b.Less(a) must then be false
	}{
		{"lower address first", key(TCP, "10.0.0.1:80"), key(TCP, "10.0.0.2:80"), true},
		{"higher address after", key(TCP, "10.0.0.2:80"), key(TCP, "10.0.0.1:80"), false},
		{"addresses compare as numbers, not text", key(TCP, "10.0.0.9:80"), key(TCP, "10.0.0.10:80"), true},
		{"IPv4 before IPv6", key(TCP, "255.255.255.255:80"), key(TCP, "[::1]:80"), true},
		{"IPv6 after IPv4", key(TCP, "[::1]:80"), key(TCP, "1.1.1.1:80"), false},
		{"address decides before protocol and port", key(UDP, "10.0.0.1:9999"), key(TCP, "10.0.0.2:1"), true},
		{"same address: protocol by name, SCTP < TCP", key(SCTP, "10.0.0.1:80"), key(TCP, "10.0.0.1:80"), true},
		{"same address: protocol by name, TCP < UDP", key(TCP, "10.0.0.1:80"), key(UDP, "10.0.0.1:80"), true},
		{"protocol decides before port", key(TCP, "10.0.0.1:9999"), key(UDP, "10.0.0.1:1"), true},
		{"same address and protocol: lower port first", key(TCP, "10.0.0.1:80"), key(TCP, "10.0.0.1:443"), true},
		{"same address and protocol: higher port after", key(TCP, "10.0.0.1:443"), key(TCP, "10.0.0.1:80"), false},
		{"equal keys are not less", key(TCP, "10.0.0.1:80"), key(TCP, "10.0.0.1:80"), false},
		{"the zero address sorts first", ServiceKey{Proto: TCP, Port: 80}, key(TCP, "0.0.0.1:80"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.Less(tc.b); got != tc.want {
				t.Errorf("%s Less %s = %v, want %v", tc.a, tc.b, got, tc.want)
			}
			if tc.want && tc.b.Less(tc.a) {
				t.Errorf("%s Less %s is also true: not a strict order", tc.b, tc.a)
			}
		})
	}
}

func TestSameSettings(t *testing.T) {
	base := Service{ServiceKey: key(TCP, "10.96.0.10:80"), Scheduler: "rr"}
	with := func(f func(*Service)) Service { s := base; f(&s); return s }
	cases := []struct {
		name string
		a, b Service
		want bool
	}{
		{"identical", base, base, true},
		{"scheduler differs", base, with(func(s *Service) { s.Scheduler = "sh" }), false},
		{"persistence turned on", base, with(func(s *Service) { s.Persistent, s.Timeout = true, 60 }), false},
		{"both persistent, timeout differs", with(func(s *Service) { s.Persistent, s.Timeout = true, 60 }), with(func(s *Service) { s.Persistent, s.Timeout = true, 120 }), false},
		{"both persistent, same timeout", with(func(s *Service) { s.Persistent, s.Timeout = true, 60 }), with(func(s *Service) { s.Persistent, s.Timeout = true, 60 }), true},
		{"timeout differs without persistence: the kernel ignores it", with(func(s *Service) { s.Timeout = 60 }), base, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.SameSettings(tc.b); got != tc.want {
				t.Errorf("SameSettings = %v, want %v", got, tc.want)
			}
			if got := tc.b.SameSettings(tc.a); got != tc.want {
				t.Errorf("reversed SameSettings = %v, want %v", got, tc.want)
			}
		})
	}
}
