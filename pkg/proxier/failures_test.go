package proxier

import (
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// refusingSets refuses, as the kernel refuses a value it cannot hold,
// every add to the sets whose names start with prefix.
type refusingSets struct {
	ipset.Interface
	prefix string
}

func (r refusingSets) Add(set string, e ipset.Entry) error {
	if strings.HasPrefix(set, r.prefix) {
		return syscall.EINVAL
	}
	return r.Interface.Add(set, e)
}

func (r refusingSets) AddAll(set string, es []ipset.Entry) []error {
	if !strings.HasPrefix(set, r.prefix) {
		return r.Interface.AddAll(set, es)
	}
	errs := make([]error, len(es))
	for i := range errs {
		errs[i] = syscall.EINVAL
	}
	return errs
}

// A set member the kernel refuses is the failure of the Services that
// want it, whatever the sync: they are retried, and nothing else is. It
// is not the node's, which would make every sync a full one, nor the
// failure of another Service synced with it.
func TestRefusedMemberIsItsServices(t *testing.T) {
	lb := input(svc("lb", "10.96.0.60", nodePort(30060), func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.LoadBalancerSourceRanges = []string{"192.0.2.0/24"}
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.9"}}
	}), slice("lb", "10.244.1.5"))
	bystander := input(web, webSlice)
	world := []model.ServiceInput{lb, bystander}
	want := []types.NamespacedName{nameOf(lb)}
	check := func(t *testing.T, what string, res Result) {
		t.Helper()
		if res.NodeWide || !slices.Equal(res.Failed, want) || len(res.Errors) == 0 {
			t.Errorf("%s: node-wide %v, failed %v (want %v), errors %v", what, res.NodeWide, res.Failed, want, res.Errors)
		}
	}
	newProxier := func(t *testing.T) *Proxier {
		k := newKernel()
		owned, err := LoadOwned("")
		if err != nil {
			t.Fatal(err)
		}
		return New(model.Options{NodeName: "node-a", Scheduler: "rr"}, k.ipvs, k.link, refusingSets{k.sets, "IPVS-PROXY-SOURCE-RANGES"}, owned)
	}
	t.Run("full sync", func(t *testing.T) {
		check(t, "full sync", newProxier(t).SyncAll(world))
	})
	t.Run("change", func(t *testing.T) {
		p := newProxier(t)
		p.SyncAll(nil)
		check(t, "change", p.SyncServices(changesOf(world...)))
	})
	t.Run("resync in steps", func(t *testing.T) {
		p := newProxier(t)
		p.SyncAll(nil)
		check(t, "resync", resyncInSteps(t, p.BeginResync(PrepareInputs(world), p.ReadKernel()), 1, nil))
	})
}

// switchableSets refuses adds to sets starting with prefix while *refuse.
type switchableSets struct {
	ipset.Interface
	prefix string
	refuse *bool
}

func (s switchableSets) Add(set string, e ipset.Entry) error {
	if *s.refuse && strings.HasPrefix(set, s.prefix) {
		return syscall.ENOSPC // a full set
	}
	return s.Interface.Add(set, e)
}

// An LB IP:port whose firewall member cannot be written does not serve
// without its ranges: its virtual server is left out (fail closed) until a
// retry writes the member, while the Service's clusterIP serves on.
func TestUnguardedLoadBalancerIsNotServed(t *testing.T) {
	lb := input(svc("lb", "10.96.0.60", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.LoadBalancerSourceRanges = []string{"192.0.2.0/24"}
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.9"}}
	}), slice("lb", "10.244.1.5"))
	k := newKernel()
	refuse := true
	owned, err := LoadOwned("")
	if err != nil {
		t.Fatal(err)
	}
	p := New(model.Options{NodeName: "node-a", Scheduler: "rr"}, k.ipvs, k.link, switchableSets{k.sets, "IPVS-PROXY-FIREWALL", &refuse}, owned)
	p.SyncAll(nil)
	const clusterIP = "TCP  10.96.0.60:80 rr\n  -> 10.244.1.5:8080              Masq    1\n"
	const lbVS = "TCP  203.0.113.9:80 rr\n  -> 10.244.1.5:8080              Masq    1\n"
	for i, want := range []string{ipvsHeader + clusterIP, ipvsHeader + clusterIP, ipvsHeader + clusterIP + lbVS} {
		if i == 2 {
			refuse = false // the set has room again
		}
		res := p.SyncServices(changesOf(lb)) // the change, then the daemon's retries
		if got := k.ipvs.Dump(); got != want {
			t.Errorf("sync %d: ipvs:\n%s\nwant:\n%s", i, got, want)
		}
		if failed := len(res.Failed) > 0; failed != refuse {
			t.Errorf("sync %d: failed %v, want failing %v", i, res.Failed, refuse)
		}
	}
}
