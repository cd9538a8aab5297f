package e2e

import (
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/proxier"
	"k8s.io/apimachinery/pkg/types"
)

// node is one implementation of the kernel surfaces with a proxier over it.
type node struct {
	ipvs interface {
		ipvs.Interface
	}
	link netif.Interface
	p    *proxier.Proxier
}

func (n node) dump(t *testing.T) string {
	t.Helper()
	vss, err := n.ipvs.List()
	if err != nil {
		t.Fatal(err)
	}
	l, err := n.link.Dump()
	if err != nil {
		t.Fatal(err)
	}
	return ipvs.Format(vss, nil, false) + l
}

// TestKernelMatchesFakes applies the same Services through the Linux
// implementations (moby/ipvs, netlink, iptables) and through the fakes, and
// requires the real kernel's dump to equal the fake's, text for text. A fake
// that guessed wrong about the kernel (address family of real servers, the
// hashed flag, netmasks, prefix lengths, rule spelling) fails here.
func TestGuestKernelMatchesFakes(t *testing.T) {
	guest(t)
	t.Cleanup(func() {
		run(t, "ipvs-proxy-cleanup", "sh", "-c", "ipvsadm -C; ip link del kube-ipvs0 2>/dev/null; true")
	})
	kipvs, err := ipvs.NewLinux()
	if err != nil {
		t.Fatal(err)
	}
	defer kipvs.Close()
	link := netif.NewLinux("kube-ipvs0")
	owned, err := proxier.LoadOwned(filepath.Join(t.TempDir(), "owned"))
	if err != nil {
		t.Fatal(err)
	}
	hostAddrs, err := link.HostAddresses()
	if err != nil {
		t.Fatal(err)
	}
	opts := model.Options{NodeName: "vm", Scheduler: "rr"}
	real := node{ipvs: kipvs, link: link, p: proxier.New(opts, kipvs, link, ipset.NewLinux(), owned)}
	fipvs, flink := ipvs.NewFake(), netif.NewFake("kube-ipvs0")
	flink.SetHostAddresses(hostAddrs)
	fowned, _ := proxier.LoadOwned("")
	fake := node{ipvs: fipvs, link: flink, p: proxier.New(opts, fipvs, flink, ipset.NewFake(), fowned)}

	// Foreign state that must survive: one virtual server on an unrelated
	// address, one on the node IP inside the NodePort range.
	run(t, "foreign", "sh", "-c", "ipvsadm -A -t 172.17.0.1:8080 -s wlc && ipvsadm -a -t 172.17.0.1:8080 -r 172.17.0.2:80 -m -w 3 && ipvsadm -A -u 10.0.2.15:30999 -s rr")
	for _, s := range []ipvs.Service{
		{ServiceKey: ipvs.ServiceKey{Addr: netip.MustParseAddr("172.17.0.1"), Proto: ipvs.TCP, Port: 8080}, Scheduler: "wlc"},
		{ServiceKey: ipvs.ServiceKey{Addr: netip.MustParseAddr("10.0.2.15"), Proto: ipvs.UDP, Port: 30999}, Scheduler: "rr"},
	} {
		if err := fipvs.AddService(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := fipvs.AddDestination(ipvs.ServiceKey{Addr: netip.MustParseAddr("172.17.0.1"), Proto: ipvs.TCP, Port: 8080},
		ipvs.Destination{Addr: netip.MustParseAddr("172.17.0.2"), Port: 80, Weight: 3}); err != nil {
		t.Fatal(err)
	}

	inputs := sampleServices()
	resReal := real.p.SyncAll(inputs)
	resFake := fake.p.SyncAll(inputs)
	for _, err := range resReal.Errors {
		t.Errorf("kernel: %v", err)
	}
	t.Logf("first sync: %+v", resReal.Counts)
	if resReal.Counts != resFake.Counts {
		t.Errorf("write counts differ: kernel %+v, fake %+v", resReal.Counts, resFake.Counts)
	}
	compare(t, "after the first sync", real.dump(t), fake.dump(t))
	compareIpvsadm(t, kipvs)
	compareGets(t, kipvs)

	// The world is unchanged: a full resync makes no kernel write.
	res := real.p.SyncAll(inputs)
	if w := res.Counts.Writes(); w != 0 || len(res.Errors) > 0 {
		t.Errorf("second sync made %d writes (%+v), errors %v; want 0", w, res.Counts, res.Errors)
	}

	// One endpoint added to one Service: one real-server write.
	changed := sampleWeb("10.244.0.2", "10.244.0.3", "10.244.0.4")
	change := map[types.NamespacedName]*model.ServiceInput{{Namespace: "demo", Name: "web"}: &changed}
	resReal = real.p.SyncServices(change)
	fake.p.SyncServices(change)
	if w := resReal.Counts.Writes(); w != 3 || resReal.Counts.DestinationsAdded != 2 || resReal.Counts.SetMembersAdded != 1 {
		// web has a clusterIP and a NodePort on the guest's one usable
		// address; the new endpoint is local, so it joins the hairpin set.
		t.Errorf("endpoint add made %+v, want 2 real-server adds (clusterIP and NodePort) and 1 hairpin member", resReal.Counts)
	}
	compare(t, "after one endpoint change", real.dump(t), fake.dump(t))

	// Everything deleted: only the foreign virtual servers remain.
	del := map[types.NamespacedName]*model.ServiceInput{}
	for _, in := range inputs {
		del[types.NamespacedName{Namespace: in.Service.Namespace, Name: in.Service.Name}] = nil
	}
	real.p.SyncServices(del)
	fake.p.SyncServices(del)
	compare(t, "after deleting every Service", real.dump(t), fake.dump(t))
	want := "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight\n" +
		"UDP  10.0.2.15:30999 rr\nTCP  172.17.0.1:8080 wlc\n  -> 172.17.0.2:80                Masq    3\nlink kube-ipvs0 dummy down\n"
	compare(t, "foreign state", real.dump(t), want)
}

// TestIPTablesMatchesFake syncs the masquerade rules through iptables and
// the fake, for both families, and requires equal dumps and a second sync
// with zero writes (the rule spelling survives iptables' normalisation).
func TestGuestIPTablesMatchesFake(t *testing.T) {
	guest(t)
	cfg := iptables.Config{LocalCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00:244::/56")}}
	for _, fam := range []iptables.Family{iptables.IPv4, iptables.IPv6} {
		t.Run(string(fam), func(t *testing.T) {
			ipt, err := iptables.NewLinux(fam)
			if err != nil {
				t.Fatal(err)
			}
			// The rules name the proxier's sets; iptables refuses a rule
			// whose set does not exist.
			sets := ipset.NewLinux()
			for _, s := range proxier.OwnedSets() {
				if err := sets.Ensure(s); err != nil {
					t.Fatal(err)
				}
			}
			t.Cleanup(func() {
				_ = ipt.Delete()
				for _, s := range proxier.OwnedSets() {
					_ = sets.Destroy(s.Name)
				}
			})
			fake := iptables.NewFake(fam)
			rs := iptables.Desired(cfg, fam)
			wReal, err := ipt.Sync(rs)
			if err != nil {
				t.Fatal(err)
			}
			wFake, err := fake.Sync(rs)
			if err != nil {
				t.Fatal(err)
			}
			if wReal != wFake {
				t.Errorf("writes: kernel %d, fake %d", wReal, wFake)
			}
			dReal, err := ipt.Dump()
			if err != nil {
				t.Fatal(err)
			}
			dFake, _ := fake.Dump()
			compare(t, "iptables "+string(fam), dReal, dFake)
			if w, err := ipt.Sync(rs); w != 0 || err != nil {
				t.Errorf("second sync: %d writes, err %v; want 0", w, err)
			}
		})
	}
}

// compareIpvsadm checks that what moby/ipvs reads back is what ipvsadm, the
// tool operators use, shows: the same entries, ignoring order and spacing.
func compareIpvsadm(t *testing.T, k *ipvs.Linux) {
	t.Helper()
	vss, err := k.List()
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, "ipvsadm", "ipvsadm", "-Ln")
	compare(t, "ipvsadm -Ln", normalize(ipvs.Format(vss, nil, true)), normalize(out))
}

var spaces = regexp.MustCompile(`\s+`)

// normalize turns an ipvsadm-style table into sorted blocks of
// whitespace-collapsed lines, dropping headers.
func normalize(table string) string {
	var blocks []string
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			sort.Strings(cur[1:])
			blocks = append(blocks, strings.Join(cur, "\n"))
		}
		cur = nil
	}
	for _, line := range strings.Split(table, "\n") {
		line = strings.TrimSpace(spaces.ReplaceAllString(line, " "))
		switch {
		case line == "", strings.HasPrefix(line, "IP Virtual Server"), strings.HasPrefix(line, "Prot "), strings.HasPrefix(line, "-> RemoteAddress"):
		case strings.HasPrefix(line, "->"):
			cur = append(cur, line)
		default:
			flush()
			cur = []string{line}
		}
	}
	flush()
	sort.Strings(blocks)
	return strings.Join(blocks, "\n") + "\n"
}

func compare(t *testing.T, what, got, want string) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s: kernel and expectation differ (-want +got):\n%s\ngot:\n%s", what, diff, got)
	}
}

func run(t *testing.T, what string, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", what, err, out)
	}
	return string(out)
}

// compareGets reads every virtual server the kernel lists one at a time,
// as a change-by-change sync does, and requires what List says of it,
// counters included; a key the kernel lacks is not found; and Services
// (the settings alone, as a sync reads them before it puts a new address
// on the link) says what List says without the real servers.
// wrap makes settings virtual servers without real servers, to sort them
// as List's are.
func wrap(svcs []ipvs.Service) []ipvs.VirtualServer {
	out := make([]ipvs.VirtualServer, len(svcs))
	for i, s := range svcs {
		out[i] = ipvs.VirtualServer{Service: s}
	}
	return out
}

func compareGets(t *testing.T, k *ipvs.Linux) {
	t.Helper()
	vss, err := k.List()
	if err != nil {
		t.Fatal(err)
	}
	var listed, got, settings, alone strings.Builder
	svcs, err := k.Services()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ipvs.Sorted(wrap(svcs)) {
		fmt.Fprintf(&alone, "%+v\n", s.Service)
	}
	for _, vs := range ipvs.Sorted(vss) {
		fmt.Fprintf(&settings, "%+v\n", vs.Service)
	}
	compare(t, "the virtual servers' settings dumped alone", alone.String(), settings.String())
	for _, vs := range vss {
		one, ok, err := k.Get(vs.ServiceKey)
		if err != nil || !ok {
			t.Errorf("Get %s: found %v, %v", vs.ServiceKey, ok, err)
			continue
		}
		fmt.Fprintf(&listed, "%+v\n", vs)
		fmt.Fprintf(&got, "%+v\n", one)
	}
	compare(t, "each virtual server read alone", got.String(), listed.String())
	missing := ipvs.ServiceKey{Addr: netip.MustParseAddr("10.96.255.254"), Proto: ipvs.TCP, Port: 1}
	if _, ok, err := k.Get(missing); ok || err != nil {
		t.Errorf("Get of a missing virtual server: found %v, %v", ok, err)
	}
}
