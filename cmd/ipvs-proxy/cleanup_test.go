package main

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/proxier"
)

// TestRemoveOwn: cleanup removes ipvs-proxy's virtual servers, dummy link,
// chains and sets; --rules-only (no ownership record) only the chains and
// sets, so that kube-proxy, back on the node, keeps serving the virtual
// servers it took over.
func TestRemoveOwn(t *testing.T) {
	const header = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight\n"
	vip := netip.MustParseAddr("10.96.0.10")
	nodePort := ipvs.ServiceKey{Addr: netip.MustParseAddr("192.0.2.1"), Proto: ipvs.TCP, Port: 30080}
	for _, c := range []struct {
		name            string
		rulesOnly       bool
		wantIPVS        string
		wantLinkRemoved bool
	}{
		{name: "everything", wantIPVS: header, wantLinkRemoved: true},
		{name: "rules only", rulesOnly: true, wantIPVS: header + "TCP  10.96.0.10:80 rr\nTCP  192.0.2.1:30080 rr\n", wantLinkRemoved: false},
	} {
		t.Run(c.name, func(t *testing.T) {
			kipvs := ipvs.NewFake()
			link := netif.NewFake(LinkName)
			sets := ipset.NewFake()
			ipt := iptables.NewFake(iptables.IPv4)
			if err := link.EnsureLink(); err != nil {
				t.Fatal(err)
			}
			if err := link.AddAddress(vip); err != nil {
				t.Fatal(err)
			}
			for _, k := range []ipvs.ServiceKey{{Addr: vip, Proto: ipvs.TCP, Port: 80}, nodePort} {
				if err := kipvs.AddService(ipvs.Service{ServiceKey: k, Scheduler: "rr"}); err != nil {
					t.Fatal(err)
				}
			}
			owned, err := proxier.LoadOwnedInSets(sets)
			if err != nil {
				t.Fatal(err)
			}
			if err := owned.Set(map[ipvs.ServiceKey]bool{nodePort: true}); err != nil {
				t.Fatal(err)
			}
			for _, s := range proxier.OwnedSets() {
				if err := sets.Ensure(s); err != nil {
					t.Fatal(err)
				}
			}
			rules := iptables.RuleSet{Family: iptables.IPv4, Chains: []iptables.Chain{{
				Table: "nat", Name: "IPVS-PROXY-POSTROUTING", JumpFrom: "POSTROUTING",
				Rules: [][]string{{"-m", "ipvs", "--vdir", "ORIGINAL", "--vmethod", "MASQ", "-j", "MASQUERADE"}},
			}}}
			if _, err := ipt.Sync(rules); err != nil {
				t.Fatal(err)
			}

			k := ownState{IPVS: kipvs, Link: link, IPTables: map[iptables.Family]iptables.Interface{iptables.IPv4: ipt}, Sets: sets}
			if c.rulesOnly {
				owned = nil
			}
			removed, errs := removeOwn(k, owned)
			if len(errs) > 0 {
				t.Fatalf("errors: %v", errs)
			}
			t.Logf("removed:\n%s", strings.Join(removed, "\n"))

			if got := kipvs.Dump(); got != c.wantIPVS {
				t.Errorf("IPVS:\n%s\nwant:\n%s", got, c.wantIPVS)
			}
			if l, err := link.Link(); err != nil || (l == nil) != c.wantLinkRemoved {
				t.Errorf("link %+v (err %v), want removed: %v", l, err, c.wantLinkRemoved)
			}
			if got, err := ipt.Dump(); err != nil || got != "" {
				t.Errorf("iptables (err %v):\n%s\nwant nothing of ipvs-proxy's", err, got)
			}
			if got, err := sets.Dump(); err != nil || got != "" {
				t.Errorf("ipsets (err %v):\n%s\nwant none of ipvs-proxy's", err, got)
			}
		})
	}
}
