package proxier

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"k8s.io/apimachinery/pkg/types"
)

// TestSyncAllFromAnOlderRead: a periodic resync reads the kernel on the
// side while SyncServices goes on. Whatever those syncs wrote after the
// read began (a real server removed, a Service added, a Service deleted)
// must survive the resync of the older read, while drift the read did see
// on other virtual servers is still repaired.
func TestSyncAllFromAnOlderRead(t *testing.T) {
	cases := []struct {
		name   string
		change map[types.NamespacedName]*model.ServiceInput
		want   string
	}{{
		name:   "a real server removed",
		change: changes("web", input(web, slice("web", "10.244.1.2"))),
		want:   strings.Replace(webAndAPIKernel, "  -> 10.244.1.3:8080              Masq    1\n", "", 1) + sets("10.244.1.2", "10.244.1.7") + guard("10.96.0.10,tcp:80", "10.96.0.20,tcp:80"),
	}, {
		name:   "a Service added",
		change: changes("db", input(svc("db", "10.96.0.30"), slice("db", "10.244.1.9"))),
		want: strings.Replace(webAndAPIKernel, "TCP  192.168.1.10:30080 rr", `TCP  10.96.0.30:80 rr
  -> 10.244.1.9:8080              Masq    1
TCP  192.168.1.10:30080 rr`, 1) + "addr 10.96.0.30/32\n" + sets("10.244.1.2", "10.244.1.3", "10.244.1.7", "10.244.1.9") +
			guard("10.96.0.10,tcp:80", "10.96.0.20,tcp:80", "10.96.0.30,tcp:80"),
	}, {
		name:   "a Service deleted",
		change: map[types.NamespacedName]*model.ServiceInput{name("web"): nil},
		want: ipvsHeader + `TCP  10.96.0.20:80 rr
  -> 10.244.1.7:8080              Masq    1
TCP  192.168.1.10:30080 rr
  -> 10.244.1.7:8080              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.20/32
` + sets("10.244.1.7") + guard("10.96.0.20,tcp:80"),
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := newKernel()
			p := k.proxier(t, "")
			p.SyncAll([]model.ServiceInput{input(web, webSlice), input(api, apiSlice)})
			// Drift the read will see: the NodePort's real server is gone.
			nodePortKey := ipvs.ServiceKey{Addr: netip.MustParseAddr("192.168.1.10"), Proto: ipvs.TCP, Port: 30080}
			if err := k.ipvs.DeleteDestination(nodePortKey, ipvs.Destination{Addr: netip.MustParseAddr("10.244.1.7"), Port: 8080}); err != nil {
				t.Fatal(err)
			}

			p.BeginRead()
			snap := p.ReadKernel()
			if res := p.SyncServices(tc.change); len(res.Errors) > 0 {
				t.Fatalf("incremental sync: %v", res.Errors)
			}
			res := p.SyncAllFrom(currentInputs(tc.change), snap)
			if len(res.Errors) > 0 {
				t.Fatalf("resync: %v", res.Errors)
			}
			checkDump(t, k, tc.want)
			if res.Counts.DestinationsAdded != 1 || res.Counts.Writes() != 1 {
				t.Errorf("resync wrote %+v, want only the NodePort's real server back", res.Counts)
			}
			// And a resync from a fresh read agrees: nothing left to do.
			before := k.writes()
			p.SyncAll(currentInputs(tc.change))
			if got := k.writes() - before; got != 0 {
				t.Errorf("a fresh resync made %d writes, want 0", got)
			}
		})
	}
}
