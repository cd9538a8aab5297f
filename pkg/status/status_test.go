package status

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata from what the tests see")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to make it): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

func key(proto ipvs.Protocol, addrPort string) ipvs.ServiceKey {
	ap := netip.MustParseAddrPort(addrPort)
	return ipvs.ServiceKey{Addr: ap.Addr(), Proto: proto, Port: ap.Port()}
}

func rs(addrPort string, weight int32, active, inactive uint32) ipvs.Destination {
	ap := netip.MustParseAddrPort(addrPort)
	return ipvs.Destination{Addr: ap.Addr(), Port: ap.Port(), Weight: weight, ActiveConns: active, InactiveConns: inactive}
}

var (
	web    = key(ipvs.TCP, "10.96.0.10:80")
	webNP  = key(ipvs.TCP, "192.168.1.10:30080")
	dns6   = key(ipvs.UDP, "[fd00:10:96::a]:53")
	orphan = key(ipvs.TCP, "10.96.0.99:443")

	// table is what the kernel holds, deliberately out of order: status
	// sorts it. orphan is owned by no Service the API knows.
	table = []ipvs.VirtualServer{
		{Service: ipvs.Service{ServiceKey: dns6, Scheduler: "rr", Persistent: true, Timeout: 10800},
			Destinations: []ipvs.Destination{rs("[fd00:244::7]:53", 1, 0, 12), rs("[fd00:244::3]:53", 1, 0, 40)}},
		{Service: ipvs.Service{ServiceKey: orphan, Scheduler: "lc"}},
		{Service: ipvs.Service{ServiceKey: webNP, Scheduler: "rr"},
			Destinations: []ipvs.Destination{rs("10.244.1.2:8080", 1, 2, 5)}},
		{Service: ipvs.Service{ServiceKey: web, Scheduler: "rr"},
			Destinations: []ipvs.Destination{rs("10.244.2.2:8080", 1, 0, 1), rs("10.244.1.2:8080", 1, 3, 9)}},
	}
	labels = Labels{web: "ns/web:http", webNP: "ns/web:http", dns6: "kube-system/kube-dns:dns"}

	// routed is another tool's virtual server, whose real servers forward
	// by direct routing and tunnelling: status shows their methods.
	routed = []ipvs.VirtualServer{
		{Service: ipvs.Service{ServiceKey: key(ipvs.TCP, "192.168.1.10:80"), Scheduler: "wlc"},
			Destinations: []ipvs.Destination{forward(rs("192.168.1.21:80", 1, 0, 0), ipvs.ForwardTunnel), forward(rs("192.168.1.20:80", 2, 4, 1), ipvs.ForwardRoute)}},
	}
)

func forward(d ipvs.Destination, f ipvs.Forward) ipvs.Destination {
	d.Forward = f
	return d
}

func TestText(t *testing.T) {
	const header = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight\n"
	const headerCounters = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
	cases := []struct {
		name     string
		vss      []ipvs.VirtualServer
		labels   Labels
		counters bool
		want     string
	}{{
		name: "empty table",
		want: header,
	}, {
		name:   "labelled with the Service port; a virtual server no Service owns has no label",
		vss:    table,
		labels: labels,
		want: header + `TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
TCP  10.96.0.99:443 lc
TCP  192.168.1.10:30080 rr                # ns/web:http
  -> 10.244.1.2:8080              Masq    1
UDP  [fd00:10:96::a]:53 rr persistent 10800 # kube-system/kube-dns:dns
  -> [fd00:244::3]:53             Masq    1
  -> [fd00:244::7]:53             Masq    1
`,
	}, {
		name: "nil labels (API unreachable): the bare table",
		vss:  table,
		want: header + `TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
TCP  10.96.0.99:443 lc
TCP  192.168.1.10:30080 rr
  -> 10.244.1.2:8080              Masq    1
UDP  [fd00:10:96::a]:53 rr persistent 10800
  -> [fd00:244::3]:53             Masq    1
  -> [fd00:244::7]:53             Masq    1
`,
	}, {
		name:     "counters, labelled",
		vss:      table,
		labels:   labels,
		counters: true,
		want: headerCounters + `TCP  10.96.0.10:80 rr                     # ns/web:http
  -> 10.244.1.2:8080              Masq    1      3          9
  -> 10.244.2.2:8080              Masq    1      0          1
TCP  10.96.0.99:443 lc
TCP  192.168.1.10:30080 rr                # ns/web:http
  -> 10.244.1.2:8080              Masq    1      2          5
UDP  [fd00:10:96::a]:53 rr persistent 10800 # kube-system/kube-dns:dns
  -> [fd00:244::3]:53             Masq    1      0          40
  -> [fd00:244::7]:53             Masq    1      0          12
`,
	}, {
		name:     "another tool's real servers with their forwarding methods",
		vss:      routed,
		labels:   labels,
		counters: true,
		want: headerCounters + `TCP  192.168.1.10:80 wlc
  -> 192.168.1.20:80              Route   2      4          1
  -> 192.168.1.21:80              Tunnel  1      0          0
`,
	}, {
		name:     "counters, nil labels",
		vss:      table[1:2],
		counters: true,
		want:     headerCounters + "TCP  10.96.0.99:443 lc\n",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Text(tc.vss, tc.labels, tc.counters); got != tc.want {
				t.Errorf("Text:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestJSON(t *testing.T) {
	cases := []struct {
		golden string
		vss    []ipvs.VirtualServer
		labels Labels
	}{
		{golden: "empty.json"},
		{golden: "labelled.json", vss: table, labels: labels},
		{golden: "unlabelled.json", vss: table},
		{golden: "forward.json", vss: routed, labels: labels},
	}
	for _, tc := range cases {
		t.Run(tc.golden, func(t *testing.T) {
			got, err := JSON(tc.vss, tc.labels)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.golden, got)
		})
	}
}
