package proxier

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// TestCleanupLeavesAnotherTypesLink: Cleanup removes the dummy link and the
// virtual servers on its addresses, but a link of another type under the
// name is another program's: it stays, and so do the virtual servers on its
// addresses. A recorded virtual server is ipvs-proxy's wherever it is.
func TestCleanupLeavesAnotherTypesLink(t *testing.T) {
	onLink := ipvs.ServiceKey{Addr: netip.MustParseAddr("10.96.0.1"), Proto: ipvs.TCP, Port: 443}
	recorded := ipvs.ServiceKey{Addr: netip.MustParseAddr("192.168.1.10"), Proto: ipvs.TCP, Port: 30080}
	elsewhere := ipvs.ServiceKey{Addr: netip.MustParseAddr("192.0.2.7"), Proto: ipvs.TCP, Port: 80}
	const header = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight\n"
	for _, tc := range []struct {
		linkType    string
		wantRemoved []string
		wantErrs    string
		wantDump    string
	}{{
		linkType:    "dummy",
		wantRemoved: []string{"ipvs: delete TCP 10.96.0.1:443", "ipvs: delete TCP 192.168.1.10:30080", "link: delete the dummy link"},
		wantDump:    header + "TCP  192.0.2.7:80 rr\nlink kube-ipvs0 absent\n",
	}, {
		linkType:    "veth",
		wantRemoved: []string{"ipvs: delete TCP 192.168.1.10:30080"},
		wantErrs:    "link: the dummy link's name is taken by a veth link, not ipvs-proxy's: left in place, with the virtual servers on its addresses",
		wantDump:    header + "TCP  10.96.0.1:443 rr\nTCP  192.0.2.7:80 rr\nlink kube-ipvs0 veth down\naddr 10.96.0.1/32\n",
	}, {
		linkType:    "bridge",
		wantRemoved: []string{"ipvs: delete TCP 192.168.1.10:30080"},
		wantErrs:    "link: the dummy link's name is taken by a bridge link, not ipvs-proxy's: left in place, with the virtual servers on its addresses",
		wantDump:    header + "TCP  10.96.0.1:443 rr\nTCP  192.0.2.7:80 rr\nlink kube-ipvs0 bridge down\naddr 10.96.0.1/32\n",
	}} {
		t.Run(tc.linkType, func(t *testing.T) {
			k := newKernel()
			if err := k.link.EnsureLink(); err != nil {
				t.Fatal(err)
			}
			if err := k.link.AddAddress(onLink.Addr); err != nil {
				t.Fatal(err)
			}
			k.link.SetLinkType(tc.linkType)
			for _, key := range []ipvs.ServiceKey{onLink, recorded, elsewhere} {
				if err := k.ipvs.AddService(ipvs.Service{ServiceKey: key, Scheduler: "rr"}); err != nil {
					t.Fatal(err)
				}
			}
			owned, err := LoadOwned("")
			if err != nil {
				t.Fatal(err)
			}
			if err := owned.Set(map[ipvs.ServiceKey]bool{recorded: true}); err != nil {
				t.Fatal(err)
			}
			removed, errs := Cleanup(k.ipvs, k.link, owned)
			var errText []string
			for _, err := range errs {
				errText = append(errText, err.Error())
			}
			if diff := cmp.Diff(tc.wantRemoved, removed); diff != "" {
				t.Errorf("removed (-want +got):\n%s", diff)
			}
			if got := strings.Join(errText, "\n"); got != tc.wantErrs {
				t.Errorf("errors:\n%s\nwant:\n%s", got, tc.wantErrs)
			}
			if diff := cmp.Diff(tc.wantDump, k.ipvs.Dump()+mustDump(t, k)); diff != "" {
				t.Errorf("kernel left (-want +got):\n%s", diff)
			}
		})
	}
}

func mustDump(t *testing.T, k kernel) string {
	t.Helper()
	d, err := k.link.Dump()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
