package bench

// Tests of the bench's pure helpers; they run on the host (the guest runs
// only TestGuestBench).

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestParseProcTable(t *testing.T) {
	in := `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
TCP  0A600001:01BB rr
  -> 0A000264:192B      Masq    1      0          0
TCP  0A60000A:0050 rr
  -> 0AF40001:1F90      Masq    1      0          0
  -> 0AF40002:1F90      Masq    0      3          0
FWM  00000001 rr
  -> 0AF40003:1F90      Masq    1      0          0
UDP  [fd00:0010:0096:0000:0000:0000:0000:000a]:0035 rr
  -> [fd00:0244:0000:0000:0000:0000:0000:0001]:0035      Masq    1      0          0
`
	got, err := parseProcTable([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort
	want := table{
		{"TCP", ap("10.96.0.1:443")}:      {ap("10.0.2.100:6443"): 1},
		{"TCP", ap("10.96.0.10:80")}:      {ap("10.244.0.1:8080"): 1, ap("10.244.0.2:8080"): 0},
		{"UDP", ap("[fd00:10:96::a]:53")}: {ap("[fd00:244::1]:53"): 1},
	}
	if d := want.diff(got, 10); d != "" {
		t.Fatal(d)
	}
	if w := got[vsKey{"TCP", ap("10.96.0.10:80")}][ap("10.244.0.2:8080")]; w != 0 {
		t.Errorf("weight of the draining real server: %d, want 0", w)
	}
	if _, err := parseProcTable([]byte(strings.Repeat("x\n", 3) + "TCP 0A60:zz rr\n")); err == nil {
		t.Error("a bad address was accepted")
	}
}

func TestTableDiff(t *testing.T) {
	ap := netip.MustParseAddrPort
	k := vsKey{"TCP", ap("10.96.0.10:80")}
	want := table{k: {ap("10.244.0.1:8080"): 1}}
	got := table{k: {ap("10.244.0.2:8080"): 1}, {"TCP", ap("10.96.0.11:80")}: {}}
	d := want.diff(got, 10)
	for _, s := range []string{"3 differences", "missing real server 10.244.0.1:8080", "unexpected real server 10.244.0.2:8080",
		"unexpected virtual server TCP 10.96.0.11:80"} {
		if !strings.Contains(d, s) {
			t.Errorf("diff lacks %q:\n%s", s, d)
		}
	}
}

func TestEndpointAddr(t *testing.T) {
	for _, c := range []struct {
		i, j int
		want string
	}{{0, 0, "10.244.0.0"}, {0, 9, "10.244.0.9"}, {25, 6, "10.244.1.0"}, {6553, 5, "10.244.255.255"}} {
		if got := endpointAddr(c.i, c.j); got != c.want {
			t.Errorf("endpointAddr(%d, %d) = %s, want %s", c.i, c.j, got, c.want)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader(`# HELP x y
ipvs_proxy_kernel_operations_total{object="destination",op="add"} 3
ipvs_proxy_kernel_operations_total{object="destination",op="delete"} 2
kubeproxy_sync_proxy_rules_last_timestamp_seconds 1.7e+09
`))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := m.sum(kernelOps); !ok || v != 5 {
		t.Errorf("sum = %v, %v; want 5", v, ok)
	}
	if v, ok := m.sum(lastSyncMetric); !ok || v != 1.7e9 {
		t.Errorf("last sync = %v, %v", v, ok)
	}
	if _, ok := m.sum("kubeproxy_sync"); ok {
		t.Error("a prefix of a name matched")
	}
}

func TestQuantile(t *testing.T) {
	var cs []Change
	for i := 1; i <= 20; i++ {
		cs = append(cs, Change{Seconds: float64(i)})
	}
	if s, capped, _ := quantile(cs, 0.5); s != 10 || capped {
		t.Errorf("median = %v %v, want 10", s, capped)
	}
	if s, _, _ := quantile(cs, 0.99); s != 20 {
		t.Errorf("p99 = %v, want 20", s)
	}
	cs[0] = Change{Seconds: 120, Capped: true}
	if _, capped, _ := quantile(cs, 0.99); !capped {
		t.Error("a capped change is not the p99")
	}
	three := []Change{{Seconds: 1, Capped: true}, {Seconds: 1, Capped: true}, {Seconds: 5}}
	if _, capped, _ := quantile(three, 0.5); !capped {
		t.Error("median of two capped changes of three is not capped")
	}
}

func TestClassify(t *testing.T) {
	const fam = 0x1c
	genl := func(cmd byte) []byte { b := make([]byte, 20); b[16] = cmd; return b }
	for _, c := range []struct {
		proto int
		typ   uint16
		msg   []byte
		want  string
	}{
		{unix.NETLINK_GENERIC, fam, genl(5), kindIPVS},     // NEW_DEST
		{unix.NETLINK_GENERIC, fam, genl(7), kindIPVS},     // DEL_DEST
		{unix.NETLINK_GENERIC, fam, genl(8), ""},           // GET_DEST
		{unix.NETLINK_GENERIC, 0x10, genl(5), ""},          // another family
		{unix.NETLINK_NETFILTER, 6<<8 | 9, nil, kindIPSet}, // IPSET_CMD_ADD
		{unix.NETLINK_NETFILTER, 6<<8 | 7, nil, ""},        // IPSET_CMD_LIST
		{unix.NETLINK_NETFILTER, 10<<8 | 6, nil, kindNFT},  // NFT_MSG_NEWRULE
		{unix.NETLINK_NETFILTER, 10<<8 | 7, nil, ""},       // NFT_MSG_GETRULE
		{unix.NETLINK_NETFILTER, 16, nil, ""},              // batch begin
		{unix.NETLINK_ROUTE, unix.RTM_NEWADDR, nil, kindRTNL},
		{unix.NETLINK_ROUTE, unix.RTM_GETADDR, nil, ""},
		{unix.NETLINK_ROUTE, unix.RTM_SETLINK, nil, kindRTNL},
	} {
		if got := classify(c.proto, c.typ, c.msg, fam); got != c.want {
			t.Errorf("classify(%d, %#x) = %q, want %q", c.proto, c.typ, got, c.want)
		}
	}
}

func TestWantedTable(t *testing.T) {
	svc := func(ns, name, ip string) v1.Service {
		return v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1.ServiceSpec{
			ClusterIPs: []string{ip}, Ports: []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80}}}}
	}
	sl := discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: benchNS, Name: "s-00000-1", Labels: map[string]string{discovery.LabelServiceName: "s-00000"}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
		Endpoints: []discovery.Endpoint{
			{Addresses: []string{"10.244.0.1"}},
			{Addresses: []string{"10.244.0.2"}, Conditions: discovery.EndpointConditions{Ready: ptr.To(false)}},
		},
	}
	keys := map[string]vsKey{}
	got := wantedTable([]v1.Service{svc(benchNS, "s-00000", "10.96.0.10"), svc("other", "s-00000", "10.96.0.11"),
		svc(benchNS, "headless", "None")}, []discovery.EndpointSlice{sl}, keys)
	ap := netip.MustParseAddrPort
	want := table{{"TCP", ap("10.96.0.10:80")}: {ap("10.244.0.1:8080"): 1}, {"TCP", ap("10.96.0.11:80")}: {}}
	if d := want.diff(got, 10); d != "" {
		t.Error(d)
	}
	if keys["s-00000"] != (vsKey{"TCP", ap("10.96.0.10:80")}) || len(keys) != 1 {
		t.Errorf("keys = %v", keys)
	}
}

func TestPlanFromEnv(t *testing.T) {
	t.Setenv(envSizes, "")
	p, err := planFromEnv()
	if err != nil || !p.Smoke || len(p.Sizes) != 1 || p.Sizes[0] != smokeSize {
		t.Fatalf("smoke plan: %+v, %v", p, err)
	}
	t.Setenv(envSizes, "5000,100,1000,100")
	t.Setenv(envCap, "90s")
	p, err = planFromEnv()
	if err != nil || p.Smoke || len(p.Sizes) != 3 || p.Sizes[0] != 100 || p.Sizes[2] != 5000 ||
		p.ChangeCap != 90*time.Second || p.Memory != "6G" {
		t.Fatalf("full plan: %+v, %v", p, err)
	}
	if q, err := decodePlan(p.encode()); err != nil || q.ChangeCap != p.ChangeCap || len(q.Sizes) != 3 {
		t.Errorf("plan round trip: %+v, %v", q, err)
	}
	t.Setenv(envSizes, "100,x")
	if _, err := planFromEnv(); err == nil {
		t.Error("a bad size was accepted")
	}
}

// TestRender checks the table's shape and the goals' verdicts on made-up
// figures: ratios, "> cap" for capped kube-proxy changes, n/a where a
// figure cannot be had.
func TestRender(t *testing.T) {
	p := plan{Sizes: []int{100, 5000}, Changes: 3, MinKubeProxyChanges: 3, KubeProxyBudget: time.Minute,
		ChangeCap: 2 * time.Minute, ColdCap: time.Minute, Memory: "6G"}
	own := func(n int) *int { return &n }
	ch := func(s float64, w int) Change {
		return Change{Seconds: s, OwnWrites: own(w), Netlink: map[string]int{kindIPVS: w}}
	}
	runs := []Run{
		{N: 100, Proxy: floorName, ColdS: 0.1, Changes: []Change{{Seconds: 0.001, Netlink: map[string]int{kindIPVS: 2}}}},
		{N: 100, Proxy: kubeProxyName, ColdS: 9, TotalCPUS: 5, PeakRSSKiB: 51200, IPTablesRules: 40, CapS: 120, Syncs: 4, SyncS: 20,
			Changes: []Change{{Seconds: 0.08, Netlink: map[string]int{kindIPVS: 2, kindNFT: 30}}}},
		{N: 100, Proxy: ipvsProxyName, ColdS: 1, TotalCPUS: 1, PeakRSSKiB: 20480, IPTablesRules: 12, CapS: 120, Syncs: 4, SyncS: 1,
			Changes: []Change{ch(0.02, 2), ch(0.03, 2), ch(0.02, 2)}},
		{N: 5000, Proxy: kubeProxyName, ColdS: 100, TotalCPUS: 500, PeakRSSKiB: 409600, IPTablesRules: 40, CapS: 120,
			Changes: []Change{{Seconds: 120, Capped: true}, {Seconds: 120, Capped: true}, {Seconds: 90}}},
		{N: 5000, Proxy: ipvsProxyName, ColdS: 10, TotalCPUS: 20, PeakRSSKiB: 102400, IPTablesRules: 12, CapS: 120, Syncs: 4, SyncS: 12,
			Changes: []Change{ch(0.03, 2), ch(0.03, 2), ch(0.04, 3)}},
	}
	md := render(p, runs, calibration{ExecS: 0.05}, 42*time.Minute)
	for _, s := range []string{
		"| 100 | cold convergence | 9.00 s | 1.00 s | 0.11 | 100 ms |",
		"| 5000 | endpoint change, median | > 120 s | 30.0 ms | < 0.00025 | n/a |",
		"| 5000 | changes measured | 3 (2 capped) | 3 |  | n/a |",
		"| 100 | netlink writes per change (tap) | 32 (ipvs 2, nftables 30) | 2 (ipvs 2) | 0.06 | 2 (ipvs 2) |",
		"| 5000 | kernel writes per change (own counter) | n/a | 2 | n/a |  |",
		// kube-proxy at 5000 finished no sync: a lower bound, a snapshot.
		"| 5000 | peak RSS | ≥ 400 MiB (no sync finished) | 100 MiB | < 0.25 |  |",
		"| 5000 | iptables rules | 40 (mid-sync) | 12 | n/a |  |",
		"| 100 | syncs until the end of the changes (mean duration) | 4 (5.00 s) | 4 (250 ms) | 0.05 |  |",
		"| 100 | CPU in the change phase (share of a core) |",
		"Cold convergence at 5000 Services ≤ 0.2 × kube-proxy's: **met**",
		"(median) ≤ 0.05 × kube-proxy's: **met** (30.0 ms vs > 120 s, ratio < 0.00025)",
		"≤ 2 × ipvs-proxy's own at 100: **met**",
		"≤ 2 at every size: **missed** (largest over every change: 3 by ipvs-proxy's counter, 3 seen",
		"Peak RSS at 5000 Services ≤ 0.5 × kube-proxy's: **met** (100 MiB vs ≥ 400 MiB (no sync finished), ratio < 0.25)",
		"the same count at 100 and at 5000 Services: **met** (12 and 12)",
		"wall time 42m0s. Software emulation makes absolute times slow: the ratio is the result. One exec (`ipset version`) takes 50.0 ms here.",
	} {
		if !strings.Contains(md, s) {
			t.Errorf("the report lacks %q:\n%s", s, md)
		}
	}
}
