package proxier

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ipvs-proxy/ipvs-proxy/internal/testobj"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// kernel is a fake node: IPVS and the dummy link, dumped as one text.
type kernel struct {
	ipvs *ipvs.Fake
	link *netif.Fake
	sets *ipset.Fake
}

func newKernel() kernel {
	k := kernel{ipvs: ipvs.NewFake(), link: netif.NewFake("kube-ipvs0"), sets: ipset.NewFake()}
	k.link.SetHostAddresses([]netif.HostAddress{
		{Link: "eth0", Addr: netip.MustParseAddr("192.168.1.10")},
		{Link: "lo", Addr: netip.MustParseAddr("127.0.0.1")},
	})
	return k
}

func (k kernel) dump(t *testing.T) string {
	t.Helper()
	l, err := k.link.Dump()
	if err != nil {
		t.Fatal(err)
	}
	sets, err := k.sets.Dump()
	if err != nil {
		t.Fatal(err)
	}
	return k.ipvs.Dump() + l + sets
}

func (k kernel) writes() int { return k.ipvs.Writes + k.link.Writes + k.sets.Writes }

func (k kernel) proxier(t *testing.T, stateFile string) *Proxier {
	t.Helper()
	owned, err := LoadOwned(stateFile)
	if err != nil {
		t.Fatal(err)
	}
	return New(model.Options{NodeName: "node-a", Scheduler: "rr"}, k.ipvs, k.link, k.sets, owned)
}

func checkDump(t *testing.T, k kernel, want string) {
	t.Helper()
	if diff := cmp.Diff(want, k.dump(t)); diff != "" {
		t.Errorf("kernel dump mismatch (-want +got):\n%s", diff)
	}
}

func svc(name, clusterIP string, mutate ...func(*v1.Service)) *v1.Service {
	return testobj.Service("ns", name, []string{clusterIP}, mutate...)
}

func nodePort(n int32) func(*v1.Service) {
	return func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = n
	}
}

func slice(svcName string, addrs ...string) *discovery.EndpointSlice {
	return testobj.Slice("ns", svcName+"-1", svcName, discovery.AddressTypeIPv4, testobj.HTTP(8080), testobj.On("node-a", addrs...)...)
}

func input(s *v1.Service, slices ...*discovery.EndpointSlice) model.ServiceInput {
	return model.ServiceInput{Service: model.ServiceFrom(s), Slices: model.Slices(slices...)}
}

func name(n string) types.NamespacedName { return types.NamespacedName{Namespace: "ns", Name: n} }
