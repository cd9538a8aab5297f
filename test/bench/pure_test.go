package bench

// Tests of the bench's pure helpers; they run on the host (the guest runs
// only TestGuestBench).

import (
	"encoding/binary"
	"errors"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink/nl"
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
	}{{0, 0, "10.244.0.0"}, {0, 9, "10.244.0.9"}, {25, 6, "10.244.1.0"}, {6553, 5, "10.244.255.255"}, {10000, 0, "10.245.134.160"}} {
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
		// The floor's changes carry no writes: nothing taps them.
		{N: 100, Proxy: floorName, ColdS: 0.1, Changes: []Change{{Seconds: 0.001}}},
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
	reportHas(t, md,
		"| 100 | cold convergence | 9.00 s | 1.00 s | 0.11 | 100 ms |",
		"| 5000 | endpoint change, median | > 120 s | 30.0 ms | < 0.00025 | n/a |",
		"| 5000 | changes measured | 3 (2 capped) | 3 |  | n/a |",
		"| 100 | netlink writes per change (tap) | 32 (ipvs 2, nftables 30) | 2 (ipvs 2) | 0.06 | 2 (by construction) |",
		"| 5000 | netlink writes per change (tap) | n/a | 2 (ipvs 2) | n/a | n/a |",
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
	)
}

// TestRenderCases checks the churn table and its goals on made-up figures:
// quantiles, the ratio to the informer floor, "> cap", a kube-proxy that
// did not keep up, n/a where a case is missing, a periodic resync that
// fell in a churn case, and the API server's answer times.
func TestRenderCases(t *testing.T) {
	p := plan{Sizes: []int{1000, 5000}, IPVSOnlySizes: []int{10000}, ChangeCap: time.Minute}
	lat := func(ms ...float64) []float64 {
		out := make([]float64, len(ms))
		for i, v := range ms {
			out[i] = v / 1000
		}
		return out
	}
	runs := []Run{
		{N: 1000, Proxy: informerName, Cases: []CaseResult{{Name: "back-to-back", Latencies: lat(100, 100, 120)}}},
		{N: 1000, Proxy: ipvsProxyName, Cases: []CaseResult{{Name: "back-to-back", Latencies: lat(150, 160, 170), WallS: 10, CPUS: 1, SysS: 0.4, Syncs: 3}}},
		{N: 5000, Proxy: informerName, Cases: []CaseResult{{Name: "back-to-back", Latencies: lat(100)}, {Name: "churn 50/s", Latencies: lat(100, 200), WallS: 10, CPUS: 0.8, SysS: 0.2, Answers: lat(12, 40), ServerS: 0.003, AfterAnswer: lat(-8, 160)}}},
		{N: 5000, Proxy: ipvsProxyName, Cases: []CaseResult{{Name: "back-to-back", Latencies: lat(200), WallS: 1, CPUS: 0.1, Syncs: 1},
			// A resync from 0.6 to 0.9 s overlaps the second change only.
			{Name: "churn 50/s", Latencies: lat(150, 300, 120), Starts: []float64{0, 0.5, 1}, Resyncs: [][2]float64{{0.6, 0.9}},
				WallS: 10, CPUS: 0.5, Syncs: 40, LoopS: 0.2},
			// Changes at t = 0, 1, 2, 3 s; a resync from 2.05 to 2.5 s overlaps the third.
			{Name: resyncCaseName, Latencies: lat(100, 110, 150, 120), Starts: []float64{0, 1, 2, 3}, Resyncs: [][2]float64{{2.05, 2.5}},
				PartialSyncS: 0.05, WallS: 40, CPUS: 4, Syncs: 300}}},
		{N: 10000, Proxy: ipvsProxyName, Cases: []CaseResult{
			{Name: resyncCaseName, Latencies: lat(100, 110, 120), Starts: []float64{0, 1, 2}, Resyncs: [][2]float64{{0.5, 1.05}}, PartialSyncS: 0.005}}},
		{N: 5000, Proxy: kubeProxyName, Changes: []Change{{Seconds: 60, Capped: true}},
			Cases: []CaseResult{{Name: "churn 50/s", Latencies: lat(30000), Capped: 2, Unissued: 100, WallS: 100, CPUS: 90, SysS: 30, Syncs: 2}}},
	}
	var b strings.Builder
	renderCases(&b, p, runs)
	md := b.String() + strings.Join(caseGoals(p, runs), "\n")
	reportHas(t, md,
		"| 1000 | back-to-back | 100 ms / 120 ms / 120 ms (3 changes) | n/a | n/a | 160 ms / 170 ms / 170 ms (3 changes); CPU 10 % (system 4 %), 3 syncs | 1.60 / 1.42 |",
		"| 5000 | back-to-back | 100 ms / 100 ms / 100 ms (1 changes) | not run: no spaced change seen within the cap, so only churn 50/s | n/a |",
		"| 5000 | churn 50/s | 100 ms / 200 ms / 200 ms (2 changes); CPU 8 % (system 2 %); API server answered the writes in 12.0 ms / 40.0 ms (of that, its own handling: 3.00 ms mean); seen after the answer: -8.00 ms / 160 ms | > 60.0 s / > 60.0 s / > 60.0 s (3 changes, 2 capped, 100 never issued: budget spent); CPU 90 % (system 30 %), 2 syncs | n/a | 150 ms / 300 ms / 300 ms (3 changes); CPU 5 % (system 0 %; sync loop 2 %), 40 syncs; periodic resyncs in it: 1, overlapped by 1 of its changes; the other 2: p99 150 ms | 1.50 / 1.50 |",
		"ipvs-proxy: flags only: --ipvs-min-sync-period 0 and --sync-cpu-share 0.5",
		"median ≤ 1.5 × the informer floor's + 10 ms, at every size: **missed** (1000: 160 ms vs bound 160 ms; 5000: 200 ms vs bound 160 ms; 10000: not measured)",
		"at 5000 Services: ipvs-proxy's p99 ≤ 3 × the informer floor's p99: **met** (300 ms vs 200 ms, ratio 1.50; periodic resyncs in it: 1, overlapped by 1 of its changes; the other 2: p99 150 ms)",
		"ipvs-proxy's CPU share ≤ 0.1 × kube-proxy's: **met** (5.0 % vs 90.0 %, ratio 0.06; of ipvs-proxy's, its sync loop used 2.0 %, ratio 0.02; kube-proxy did not keep up: 2 changes capped, 100 never issued, so its share is that of a proxy behind; the informer floor used 8.0 %)",
		"ipvs-proxy's CPU share ≤ 0.1 × kube-proxy-kubeadm's: not measured",
		"at 5000 Services (the changes overlapping a resync against those overlapping none, plus the proxy's mean change-by-change sync: median ≤ their median + it, largest ≤ their largest + it): **met** (1 resyncs, 1 changes overlapped one: median 150 ms against 160 ms = 110 ms + 50.0 ms, largest 150 ms against 170 ms = 120 ms + 50.0 ms)",
		"at 10000 Services (the changes overlapping a resync against those overlapping none, plus the proxy's mean change-by-change sync: median ≤ their median + it, largest ≤ their largest + it): **missed** (1 resyncs, 1 changes overlapped one: median 110 ms against 105 ms = 100 ms + 5.00 ms, largest 110 ms against 125 ms = 120 ms + 5.00 ms)",
	)
}

func reportHas(t *testing.T, md string, want ...string) {
	t.Helper()
	for _, s := range want {
		if !strings.Contains(md, s) {
			t.Errorf("the report lacks %q:\n%s", s, md)
		}
	}
}

// TestCaseTextCapped: a case whose p99 and max were capped says so with
// the cap, in the guest's log line as in the table.
func TestCaseTextCapped(t *testing.T) {
	c := CaseResult{Name: "churn 200/s", Latencies: []float64{73.3}, Capped: 66, WallS: 100, CPUS: 72, SysS: 11, Syncs: 2}
	got := caseText(c, 90, true)
	want := "churn 200/s: > 90.0 s / > 90.0 s / > 90.0 s (67 changes, 66 capped, 0 never issued: budget spent); CPU 72 % (system 11 %), 2 syncs"
	if got != want {
		t.Errorf("caseText:\n got %s\nwant %s", got, want)
	}
}

// TestParseResyncLine reads ipvs-proxy's "Resync done" line: its end from
// the klog header, its span from took; other lines are not resyncs.
func TestParseResyncLine(t *testing.T) {
	line := `I1202 05:13:33.098358     253 resync.go:101] "Resync done" services=5001 steps=134 errors=0 read="2.5s" took="4.90592779s"`
	end, took, ok, err := parseResyncLine(line, 2026)
	if err != nil || !ok {
		t.Fatalf("parseResyncLine: ok %v, err %v", ok, err)
	}
	if want := time.Date(2026, 12, 2, 5, 13, 33, 98358000, time.Local); !end.Equal(want) || took != 4905927790*time.Nanosecond {
		t.Errorf("got end %s, took %s; want %s, 4.90592779s", end, took, want)
	}
	if _, _, ok, _ := parseResyncLine(`I1202 05:13:33.098358     253 sync.go:172] "Synced" full=true took="12ms"`, 2026); ok {
		t.Error("a sync line was read as a resync")
	}
}

// TestAllCapped: a proxy is behind only when it made changes and showed
// none of them within the cap.
func TestAllCapped(t *testing.T) {
	for _, c := range []struct {
		cs   []Change
		want bool
	}{
		{nil, false},
		{[]Change{{Seconds: 90, Capped: true}, {Seconds: 90, Capped: true}}, true},
		{[]Change{{Seconds: 90, Capped: true}, {Seconds: 40}}, false},
	} {
		if got := allCapped(c.cs); got != c.want {
			t.Errorf("allCapped(%v) = %v, want %v", c.cs, got, c.want)
		}
	}
}

// TestDestWrites reads IPVS real-server requests as the tap shows them: a
// real server added with a weight, one deleted, one set to weight 0, and
// requests that are not real-server writes.
func TestDestWrites(t *testing.T) {
	req := func(cmd byte, addr string, port uint16, weight int) []byte {
		dest := nl.NewRtAttr(ipvsAttrDest, nil)
		dest.AddRtAttr(ipvsDestAddr, netip.MustParseAddr(addr).AsSlice())
		dest.AddRtAttr(ipvsDestPort, binary.BigEndian.AppendUint16(nil, port))
		if weight >= 0 {
			dest.AddRtAttr(ipvsDestWeight, binary.NativeEndian.AppendUint32(nil, uint32(weight)))
		}
		return append([]byte{cmd, 1, 0, 0}, dest.Serialize()...)
	}
	at := func(s int) time.Time { return time.Unix(1000+int64(s), 0) }
	d := newDestWrites()
	d.note(req(ipvsNewDest, "10.247.0.1", 8080, 1), at(1))
	d.note(req(ipvsDelDest, "10.244.0.1", 8080, -1), at(2))
	d.note(req(ipvsSetDest, "10.244.0.2", 8080, 0), at(3))
	d.note(req(8, "10.244.0.3", 8080, 1), at(4)) // GET_DEST: a read
	d.note([]byte{ipvsNewDest}, at(5))           // too short
	for _, c := range []struct {
		addr string
		want destWrite
	}{
		{"10.247.0.1:8080", destWrite{added: at(1)}},
		{"10.244.0.1:8080", destWrite{removed: at(2)}},
		{"10.244.0.2:8080", destWrite{removed: at(3)}},
		{"10.244.0.3:8080", destWrite{}},
	} {
		if got := d.get(netip.MustParseAddrPort(c.addr)); got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.addr, got, c.want)
		}
	}
}

// TestResyncEffect: the changes across a resync are compared with the
// quiet ones median to median and largest to largest, so a resync that
// holds one change up beyond the quiet changes' worst misses the goal
// even when the typical change is unharmed, and quiet-like spread does
// not.
func TestResyncEffect(t *testing.T) {
	ms := func(v ...float64) []float64 {
		for i := range v {
			v[i] /= 1000
		}
		return v
	}
	// Changes 1 s apart; a resync from 4.5 to 7.05 s overlaps those
	// written at 5, 6 and 7 s.
	starts := []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	for _, tc := range []struct {
		name string
		lat  []float64
		met  bool
	}{
		{"spread like the quiet changes", ms(50, 60, 90, 55, 52, 58, 85, 53, 51, 54), true},
		{"one change held up beyond the quiet worst", ms(50, 60, 90, 55, 52, 58, 140, 53, 51, 54), false},
		{"every overlapping change slower by more than a sync", ms(50, 60, 90, 55, 52, 70, 72, 74, 51, 54), false},
	} {
		c := &CaseResult{Latencies: tc.lat, Starts: starts, Resyncs: [][2]float64{{4.5, 7.05}}, PartialSyncS: 0.01}
		e := resyncEffectOf(c)
		if !e.ok || len(e.overlapping) != 3 {
			t.Fatalf("%s: %d overlapping, ok %v; want 3", tc.name, len(e.overlapping), e.ok)
		}
		if e.met() != tc.met {
			t.Errorf("%s: met %v, want %v (%s)", tc.name, e.met(), tc.met, e.text(c, 60))
		}
	}
}

// TestSliceUpdates reads the API server's handling time of EndpointSlice
// updates and of nothing else: other verbs and resources, and the
// histogram's buckets, do not count.
func TestSliceUpdates(t *testing.T) {
	text := `# TYPE apiserver_request_duration_seconds histogram
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="discovery.k8s.io",resource="endpointslices",scope="resource",subresource="",verb="PUT",version="v1",le="0.05"} 7
apiserver_request_duration_seconds_sum{component="apiserver",dry_run="",group="discovery.k8s.io",resource="endpointslices",scope="resource",subresource="",verb="PUT",version="v1"} 1.5
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="discovery.k8s.io",resource="endpointslices",scope="resource",subresource="",verb="PUT",version="v1"} 10
apiserver_request_duration_seconds_sum{component="apiserver",dry_run="",group="discovery.k8s.io",resource="endpointslices",scope="resource",subresource="",verb="GET",version="v1"} 9
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="discovery.k8s.io",resource="endpointslices",scope="resource",subresource="",verb="GET",version="v1"} 90
apiserver_request_duration_seconds_sum{component="apiserver",dry_run="",group="",resource="services",scope="resource",subresource="",verb="PUT",version="v1"} 4
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="",resource="services",scope="resource",subresource="",verb="PUT",version="v1"} 2
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	got := m.sliceUpdates()
	if want := (syncTotals{count: 10, sum: 1.5}); got != want {
		t.Errorf("sliceUpdates() = %+v, want %+v", got, want)
	}
	if mean := got.meanSince(syncTotals{count: 6, sum: 1.1}); math.Abs(mean-0.1) > 1e-9 {
		t.Errorf("mean of the four updates since = %v, want 0.1", mean)
	}
}

func TestWatcher(t *testing.T) {
	ap := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	want := table{}
	for i := range 40 {
		want[vsKey{"TCP", netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 96, 0, byte(i)}), 80)}] =
			map[netip.AddrPort]int{ap("10.244.0.1:8080"): 1, ap("10.244.0.2:8080"): 1}
	}
	right := map[netip.AddrPort]int{ap("10.244.0.2:8080"): 1, ap("10.244.0.1:8080"): 0}
	kernel := map[vsKey]map[netip.AddrPort]int{}
	dests := func(k vsKey) (map[netip.AddrPort]int, error) {
		d, ok := kernel[k]
		if !ok {
			return nil, errors.New("no such service")
		}
		return d, nil
	}
	w := newWatcher(want, 1)
	if len(w.keys) != watchSample {
		t.Fatalf("watching %d, want a sample of %d", len(w.keys), watchSample)
	}
	if n, ready := w.ready(dests); ready || n != 1 {
		t.Errorf("empty kernel: %d probes, ready %v; want 1 probe (it stops at the first wrong one), not ready", n, ready)
	}
	// Every watched one there, one with a real server short.
	watched := slices.Clone(w.keys)
	for _, k := range watched {
		kernel[k] = right
	}
	kernel[watched[5]] = map[netip.AddrPort]int{ap("10.244.0.2:8080"): 1}
	if n, ready := w.ready(dests); ready || n != 6 {
		t.Errorf("one short: %d probes, ready %v; want 6 (five right, dropped), not ready", n, ready)
	}
	if len(w.keys) != watchSample-5 || w.keys[0] != watched[5] {
		t.Errorf("still watched: %v, want the last %d from %v", w.keys, watchSample-5, watched[5])
	}
	kernel[watched[5]] = right
	if n, ready := w.ready(dests); !ready || n != watchSample-5 {
		t.Errorf("all right: %d probes, ready %v; want %d, ready", n, ready, watchSample-5)
	}

	// A whole read that lacks three virtual servers and has one with a
	// wrong real server: those four are watched, and nothing else.
	got := want.clone()
	var wrong []vsKey
	for _, k := range sortedKeys(want)[:3] {
		delete(got, k)
		wrong = append(wrong, k)
	}
	k := sortedKeys(want)[10]
	got[k] = map[netip.AddrPort]int{ap("10.244.0.1:8080"): 1, ap("10.244.9.9:8080"): 1}
	wrong = append(wrong, k)
	got[vsKey{"TCP", ap("10.96.9.9:80")}] = map[netip.AddrPort]int{} // not wanted: not watched
	w.reset(got)
	gotKeys := slices.Clone(w.keys)
	slices.SortFunc(gotKeys, func(a, b vsKey) int { return a.Addr.Compare(b.Addr) })
	if !slices.Equal(gotKeys, wrong) {
		t.Errorf("after the read, watching %v, want %v", gotKeys, wrong)
	}
	// More wrong than the sample: a sample of them.
	w.reset(table{})
	if len(w.keys) != watchSample {
		t.Errorf("after an empty read, watching %d, want %d", len(w.keys), watchSample)
	}
}

// TestNum guards the report's figures either side of zero: a negative one
// (a change seen before its write's answer) is printed as its magnitude
// would be, never in scientific notation.
func TestNum(t *testing.T) {
	for _, tc := range []struct {
		v       float64
		num     string
		seconds string // duration(v)
	}{
		{0, "0.00", "0.00 ms"},
		{0.00025, "0.00025", "0.25 ms"},
		{0.15, "0.15", "150 ms"},
		{12.345, "12.3", "12.3 s"},
		{150, "150", "150 s"},
		{-0.008, "-0.008", "-8.00 ms"},
		{-0.15, "-0.15", "-150 ms"},
		{-12.345, "-12.3", "-12.3 s"},
		{-150, "-150", "-150 s"},
		{-2500, "-2500", "-2500 s"},
	} {
		if got := num(tc.v); got != tc.num {
			t.Errorf("num(%v) = %q, want %q", tc.v, got, tc.num)
		}
		if got := duration(tc.v); got != tc.seconds {
			t.Errorf("duration(%v) = %q, want %q", tc.v, got, tc.seconds)
		}
	}
}

// TestPollWait guards the spaced changes' polling and the report's note
// on it, which says how late a change can be seen: every pollInterval at
// first, then every 1 % of the wait so far.
func TestPollWait(t *testing.T) {
	for _, tc := range []struct{ elapsed, want time.Duration }{
		{0, 5 * time.Millisecond},
		{100 * time.Millisecond, 5 * time.Millisecond},
		{time.Second, 10 * time.Millisecond},
		{time.Minute, 600 * time.Millisecond},
	} {
		if got := pollWait(tc.elapsed); got != tc.want {
			t.Errorf("pollWait(%s) = %s, want %s", tc.elapsed, got, tc.want)
		}
	}
	reportHas(t, notes, "polled every 5 ms, and once the wait passes 0.5 s every 1 % of it")
}

// TestSyncMadeAfter guards the spaced change's write window: it closes on
// a sync that ended after the change's last IPVS write as the tap timed
// it, not merely after the last read that missed the change, which a sync
// begun before the write can end after. Writes from before the change's
// API write (t0) are another change's.
func TestSyncMadeAfter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	lastMiss := at(200)
	for _, tc := range []struct {
		name       string
		moved, old destWrite
		want       time.Time
	}{
		{"both writes after the last miss", destWrite{added: at(250)}, destWrite{removed: at(260)}, at(260)},
		{"the add last", destWrite{added: at(270)}, destWrite{removed: at(260)}, at(270)},
		{"nothing on the tap", destWrite{}, destWrite{}, lastMiss},
		{"an earlier change's writes", destWrite{added: at(-50)}, destWrite{removed: at(-40)}, lastMiss},
		{"writes read before the last miss", destWrite{added: at(150)}, destWrite{removed: at(160)}, lastMiss},
	} {
		if got := syncMadeAfter(lastMiss, tc.moved, tc.old); !got.Equal(tc.want) {
			t.Errorf("%s: %s after the write, want %s", tc.name, got.Sub(t0), tc.want.Sub(t0))
		}
	}
}
