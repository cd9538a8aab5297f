package proxier

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// FuzzNodeOfTenants builds a node's worth of Services from several
// namespaces whose externalIPs and LoadBalancer IPs collide at random with
// each other and with other Services' clusterIPs, and checks the tenant
// promise on the kernel the proxier leaves:
//
//   - one full sync, and change-by-change syncs in either order, leave the
//     same kernel (the rule does not depend on the kind of sync);
//
//   - every virtual server, and every set member of a virtual server, is
//     exactly what one Service alone would have there: no Service's state is
//     a mix of two, and a loser leaves nothing behind;
//
//   - a Service's clusterIP virtual servers and their set members are what
//     that Service alone would have, whatever the others say.
//
//     go test ./pkg/proxier -run XXX -fuzz FuzzNodeOfTenants -fuzztime 60s
func FuzzNodeOfTenants(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{3, 0, 1, 0, 1, 1, 2, 1, 1, 0, 0, 1, 2, 0, 0, 1, 2, 1, 1, 1})
	f.Add([]byte{5, 2, 0, 3, 1, 0, 4, 2, 2, 1, 1, 0, 1, 1, 3, 2, 0, 1, 2, 2, 1, 0, 3, 1, 1, 2, 0, 0, 4, 1, 2, 1, 3})
	f.Add([]byte{4, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 3, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		ins := tenantInputs(&byteReader{data: data})
		full := runSyncs(t, ins, nil)
		forward := runSyncs(t, nil, ins)
		backward := runSyncs(t, nil, reversed(ins))
		if full.dump != forward.dump || full.dump != backward.dump {
			t.Fatalf("the kind or order of syncs changed the kernel:\nfull:\n%s\nforward:\n%s\nbackward:\n%s", full.dump, forward.dump, backward.dump)
		}
		if stepped := resyncOneByOne(t, ins); stepped != full.dump {
			t.Fatalf("a resync a Service a step left another kernel:\nfull:\n%s\nin steps:\n%s", full.dump, stepped)
		}
		alone := map[types.NamespacedName]map[ipvs.ServiceKey]string{}
		for _, in := range ins {
			alone[nameOf(in)] = runSyncs(t, []model.ServiceInput{in}, nil).byKey
		}
		for k, got := range full.byKey {
			from := ""
			for _, in := range ins {
				if alone[nameOf(in)][k] == got {
					from = nameOf(in).String()
				}
			}
			if from == "" {
				t.Errorf("%s in the kernel is no one Service's alone:\n%s", k, got)
			}
		}
		for _, in := range ins {
			for _, ip := range append([]string{in.Service.ClusterIP}, in.Service.ClusterIPs...) {
				for k, want := range alone[nameOf(in)] {
					if k.Addr.String() == ip && full.byKey[k] != want {
						t.Errorf("clusterIP %s of %s changed by another Service:\nalone:\n%s\nwith the others:\n%s", k, nameOf(in), want, full.byKey[k])
					}
				}
			}
		}
	})
}

type byteReader struct {
	data []byte
	i    int
}

// next returns a choice in [0, n).
func (r *byteReader) next(n int) int {
	if r.i >= len(r.data) {
		return 0
	}
	b := r.data[r.i]
	r.i++
	return int(b) % n
}

// tenantInputs makes 2 to 6 Services. Their clusterIPs are distinct, as
// the API server allocates them; everything a tenant writes is drawn from
// small pools so that collisions are common.
func tenantInputs(r *byteReader) []model.ServiceInput {
	namespaces := []string{"aaa", "kube-system", "zzz"}
	chosenPool := []string{"10.96.0.1", "10.96.0.2", "10.96.0.3", "203.0.113.1", "203.0.113.2", "192.168.1.10"}
	ports := []v1.ServicePort{{Name: "dns", Protocol: v1.ProtocolUDP, Port: 53}, {Name: "http", Protocol: v1.ProtocolTCP, Port: 80}}
	n := 2 + r.next(5)
	var ins []model.ServiceInput
	for i := range n {
		clusterIP := fmt.Sprintf("10.96.0.%d", i+1)
		s := &v1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespaces[r.next(len(namespaces))], Name: fmt.Sprintf("s%d", i),
				UID: types.UID(fmt.Sprintf("uid-%d", r.next(3))), CreationTimestamp: metav1.Unix(int64(r.next(3)), 0)},
			Spec: v1.ServiceSpec{Type: v1.ServiceTypeClusterIP, ClusterIP: clusterIP, ClusterIPs: []string{clusterIP}},
		}
		if r.next(2) == 1 {
			s.Spec.Ports = append(s.Spec.Ports, ports[0])
		}
		if r.next(2) == 1 || len(s.Spec.Ports) == 0 {
			s.Spec.Ports = append(s.Spec.Ports, ports[1])
		}
		for range r.next(3) {
			s.Spec.ExternalIPs = append(s.Spec.ExternalIPs, chosenPool[r.next(len(chosenPool))])
		}
		if r.next(2) == 1 {
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		}
		if r.next(3) == 2 {
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: chosenPool[r.next(len(chosenPool))]}}
			if r.next(2) == 1 {
				s.Spec.LoadBalancerSourceRanges = []string{"192.0.2.0/24"}
			}
		}
		var slices []*discovery.EndpointSlice
		if eps := r.next(3); eps > 0 {
			sl := &discovery.EndpointSlice{
				ObjectMeta:  metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name + "-1", Labels: map[string]string{discovery.LabelServiceName: s.Name}},
				AddressType: discovery.AddressTypeIPv4,
			}
			for _, p := range s.Spec.Ports {
				sl.Ports = append(sl.Ports, discovery.EndpointPort{Name: ptr.To(p.Name), Protocol: ptr.To(p.Protocol), Port: ptr.To[int32](8080)})
			}
			for e := range eps {
				node := "node-a"
				if r.next(2) == 1 {
					node = "node-b"
				}
				sl.Endpoints = append(sl.Endpoints, discovery.Endpoint{Addresses: []string{fmt.Sprintf("10.244.%d.%d", i, e+1)}, NodeName: ptr.To(node)})
			}
			slices = append(slices, sl)
		}
		ins = append(ins, input(s, slices...))
	}
	return ins
}

func reversed(ins []model.ServiceInput) []model.ServiceInput {
	out := slices.Clone(ins)
	slices.Reverse(out)
	return out
}

// resyncOneByOne resyncs ins a Service a step on a fresh node, and
// returns the kernel's dump.
func resyncOneByOne(t *testing.T, ins []model.ServiceInput) string {
	t.Helper()
	k := newKernel()
	p := k.proxier(t, "")
	p.SyncAll(nil)
	if res := resyncInSteps(t, p.BeginResync(PrepareInputs(ins), p.ReadKernel()), 1, nil); len(res.Errors) > 0 {
		t.Fatalf("errors: %v", res.Errors)
	}
	return k.dump(t)
}

// kernelView is a kernel dump, whole and cut by virtual server: each key
// with its ipvsadm lines and the set members that name it.
type kernelView struct {
	dump  string
	byKey map[ipvs.ServiceKey]string
}

// runSyncs syncs full with one SyncAll, then each of steps with its own
// SyncServices, on a fresh kernel.
func runSyncs(t *testing.T, full, steps []model.ServiceInput) kernelView {
	t.Helper()
	k := newKernel()
	p := k.proxier(t, "")
	res := p.SyncAll(full)
	for _, in := range steps {
		if r := p.SyncServices(changesOf(in)); len(r.Errors) > 0 {
			res.Errors = append(res.Errors, r.Errors...)
		}
	}
	if len(res.Errors) > 0 {
		t.Fatalf("errors: %v", res.Errors)
	}
	v := kernelView{dump: k.dump(t), byKey: map[ipvs.ServiceKey]string{}}
	vss, err := k.ipvs.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, vs := range vss {
		v.byKey[vs.ServiceKey] = ipvs.Format([]ipvs.VirtualServer{vs}, nil, false)
	}
	for _, set := range ownedSets {
		es, err := k.sets.Entries(set.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Proto == "" || e.IP2.IsValid() {
				continue // VIPs and hairpin members are not a virtual server's
			}
			key := ipvs.ServiceKey{Addr: e.IP, Proto: ipvs.Protocol(strings.ToUpper(e.Proto)), Port: e.Port}
			v.byKey[key] += fmt.Sprintf("%s %s\n", set.Name, e)
		}
	}
	// A key with set members but no virtual server still shows.
	for k, s := range v.byKey {
		if !strings.HasPrefix(s, "Prot") {
			v.byKey[k] = "(no virtual server)\n" + s
		}
	}
	return v
}
