package proxier

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"k8s.io/apimachinery/pkg/types"
)

// TestResyncFromAnOlderRead: a periodic resync reads the kernel on the
// side while SyncServices goes on, then runs in steps with changes synced
// between them (BeginResync). Whatever those changes wrote after the read
// began (a real server removed, a Service added, a Service deleted),
// during the read or before any step, must survive the resync, while
// drift the read did see on other virtual servers is still repaired: the
// kernel ends the same every way.
func TestResyncFromAnOlderRead(t *testing.T) {
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
	// In steps of one Service (or virtual server, or set member looked at
	// for being stale), the change comes before each step in turn.
	steps := 0
	{
		k := newKernel()
		p := k.proxier(t, "")
		p.SyncAll([]model.ServiceInput{input(web, webSlice), input(api, apiSlice)})
		resyncInSteps(t, p.BeginResync(PrepareInputs([]model.ServiceInput{input(web, webSlice), input(api, apiSlice)}), p.ReadKernel()), 1,
			func(int) { steps++ })
	}
	hows := []struct {
		name string
		at   int // the change comes before this step; -1: during the read
	}{{"the change during the read", -1}}
	for at := range steps {
		hows = append(hows, struct {
			name string
			at   int
		}{fmt.Sprintf("in steps, the change before step %d of %d", at+1, steps), at})
	}
	for _, tc := range cases {
		for _, how := range hows {
			t.Run(tc.name+", "+how.name, func(t *testing.T) {
				k := newKernel()
				p := k.proxier(t, "")
				world := []model.ServiceInput{input(web, webSlice), input(api, apiSlice)}
				p.SyncAll(world)
				// Drift the read will see: the NodePort's real server is gone.
				nodePortKey := ipvs.ServiceKey{Addr: netip.MustParseAddr("192.168.1.10"), Proto: ipvs.TCP, Port: 30080}
				if err := k.ipvs.DeleteDestination(nodePortKey, ipvs.Destination{Addr: netip.MustParseAddr("10.244.1.7"), Port: 8080}); err != nil {
					t.Fatal(err)
				}

				p.BeginRead()
				snap := p.ReadKernel()
				changeWrites := 0 // the kernel requests the change made
				change := func() {
					before := k.writes()
					if res := p.SyncServices(tc.change); len(res.Errors) > 0 {
						t.Fatalf("incremental sync: %v", res.Errors)
					}
					changeWrites = k.writes() - before
				}
				start := k.writes()
				inputs := world
				if how.at < 0 {
					change()
					inputs = currentInputs(tc.change)
				} // else the resync began before the change: its inputs are older
				res := resyncInSteps(t, p.BeginResync(PrepareInputs(inputs), snap), 1, func(step int) {
					if step == how.at {
						change()
					}
				})
				if len(res.Errors) > 0 {
					t.Fatalf("resync: %v", res.Errors)
				}
				checkDump(t, k, tc.want)
				if res.Counts.DestinationsAdded != 1 || res.Counts.Writes() != 1 {
					t.Errorf("resync wrote %+v, want only the NodePort's real server back", res.Counts)
				}
				// Requests too, those the kernel would refuse as done
				// already (a VIP the change put on the link, or took off,
				// that the read did not see) included.
				if got := k.writes() - start - changeWrites; got != 1 {
					t.Errorf("the resync made %d kernel requests, want 1 (the NodePort's real server)", got)
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
}
