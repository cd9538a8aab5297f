package proxier

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
)

// Someone deletes a Service's clusterIP from the dummy link: the next
// full sync, or resync in steps, puts the address back and keeps the
// Service's virtual server and set members, rather than taking the
// virtual server for another tool's (its address is off the link and it
// is in no record) and leaving the Service without its clusterIP.
func TestClusterIPDeletedFromTheLinkComesBack(t *testing.T) {
	for _, stepped := range []bool{false, true} {
		k := newKernel()
		p := k.proxier(t, "")
		inputs := []model.ServiceInput{input(web, webSlice)}
		if res := p.SyncAll(inputs); len(res.Errors) > 0 {
			t.Fatal(res.Errors)
		}
		want := k.dump(t)
		if err := k.link.DeleteAddress(netip.MustParseAddr("10.96.0.10")); err != nil {
			t.Fatal(err)
		}
		if stepped {
			r := p.BeginResync(PrepareInputs(inputs), p.ReadKernel())
			for done := false; !done; {
				done, _ = r.Step(time.Hour)
			}
		} else if res := p.SyncAll(inputs); len(res.Errors) > 0 {
			t.Fatal(res.Errors)
		}
		if got := k.dump(t); got != want {
			t.Errorf("stepped %v: after the address was deleted and a resync:\n%s\nwant:\n%s", stepped, got, want)
		}
	}
}
