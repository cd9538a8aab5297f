package model

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// TestTopology: the endpoints' hints narrow the cluster-wide real servers
// exactly as kube-proxy v1.37's CategorizeEndpoints does; Local policies
// and the terminating fall-back ignore them.
func TestTopology(t *testing.T) {
	zoned := func(addr, node string, zones ...string) ep { return ep{Addr: addr, Node: node, Zones: zones} }
	cases := []struct {
		name string
		svc  *v1.Service
		eps  []ep
		zone string
		want string
	}{{
		name: "zone hints: only this zone's endpoints",
		eps:  []ep{zoned("10.244.1.2", "node-a", "zone-a"), zoned("10.244.2.2", "node-b", "zone-b"), zoned("10.244.3.2", "node-c", "zone-a")},
		zone: "zone-a",
		want: "TCP  10.96.0.10:80 rr                     # ns/web:http\n  -> 10.244.1.2:8080              Masq    1\n  -> 10.244.3.2:8080              Masq    1\n",
	}, {
		name: "one ready endpoint without a hint: hints are ignored",
		eps:  []ep{zoned("10.244.1.2", "node-a", "zone-a"), zoned("10.244.2.2", "node-b")},
		zone: "zone-a",
		want: "TCP  10.96.0.10:80 rr                     # ns/web:http\n  -> 10.244.1.2:8080              Masq    1\n  -> 10.244.2.2:8080              Masq    1\n",
	}, {
		name: "no endpoint hinted for this zone: all of them",
		eps:  []ep{zoned("10.244.1.2", "node-a", "zone-b"), zoned("10.244.2.2", "node-b", "zone-c")},
		zone: "zone-a",
		want: "TCP  10.96.0.10:80 rr                     # ns/web:http\n  -> 10.244.1.2:8080              Masq    1\n  -> 10.244.2.2:8080              Masq    1\n",
	}, {
		name: "the node has no zone label: hints are ignored",
		eps:  []ep{zoned("10.244.1.2", "node-a", "zone-a"), zoned("10.244.2.2", "node-b", "zone-b")},
		want: "TCP  10.96.0.10:80 rr                     # ns/web:http\n  -> 10.244.1.2:8080              Masq    1\n  -> 10.244.2.2:8080              Masq    1\n",
	}, {
		name: "a not-ready endpoint's missing hint does not count",
		eps:  []ep{zoned("10.244.1.2", "node-a", "zone-a"), zoned("10.244.2.2", "node-b", "zone-b"), {Addr: "10.244.3.2", Node: "node-c", Ready: no}},
		zone: "zone-a",
		want: "TCP  10.96.0.10:80 rr                     # ns/web:http\n  -> 10.244.1.2:8080              Masq    1\n",
	}, {
		name: "node hints (PreferSameNode) win over zone hints",
		eps: []ep{{Addr: "10.244.1.2", Node: "node-a", Zones: []string{"zone-a"}, Nodes: []string{"node-a"}},
			{Addr: "10.244.1.3", Node: "node-x", Zones: []string{"zone-a"}, Nodes: []string{"node-x"}}},
		zone: "zone-a",
		want: "TCP  10.96.0.10:80 rr                     # ns/web:http\n  -> 10.244.1.2:8080              Masq    1\n",
	}, {
		name: "node hints for other nodes only: zone hints apply",
		eps: []ep{{Addr: "10.244.1.2", Node: "node-b", Zones: []string{"zone-a"}, Nodes: []string{"node-b"}},
			{Addr: "10.244.2.2", Node: "node-c", Zones: []string{"zone-b"}, Nodes: []string{"node-c"}}},
		zone: "zone-a",
		want: "TCP  10.96.0.10:80 rr                     # ns/web:http\n  -> 10.244.1.2:8080              Masq    1\n",
	}, {
		name: "only terminating endpoints: the fall-back ignores topology",
		eps: []ep{{Addr: "10.244.1.2", Node: "node-b", Zones: []string{"zone-b"}, Ready: no, Serving: yes, Terminating: yes},
			{Addr: "10.244.2.2", Node: "node-c", Zones: []string{"zone-a"}, Ready: no, Serving: yes, Terminating: yes}},
		zone: "zone-a",
		want: "TCP  10.96.0.10:80 rr                     # ns/web:http\n  -> 10.244.1.2:8080              Masq    1\n  -> 10.244.2.2:8080              Masq    1\n",
	}, {
		name: "internalTrafficPolicy Local: this node's endpoints, whatever the hints",
		svc: service("web", func(s *v1.Service) {
			s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal)
		}),
		eps:  []ep{zoned("10.244.1.2", "node-a", "zone-b"), zoned("10.244.2.2", "node-b", "zone-a")},
		zone: "zone-a",
		want: "TCP  10.96.0.10:80 rr                     # ns/web:http\n  -> 10.244.1.2:8080              Masq    1\n",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := defaultOptions()
			o.Zone = tc.zone
			svc := tc.svc
			if svc == nil {
				svc = service("web")
			}
			st := NewBuilder(o).Service(ServiceInput{Service: ServiceFrom(svc), Slices: Slices(slice("web-1", v4, httpPort, tc.eps...))})
			st.VIPs, st.Hairpin, st.ServicePorts = nil, nil, nil
			if diff := cmp.Diff(header+tc.want, st.Dump()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestExplainTopology(t *testing.T) {
	o := defaultOptions()
	o.Zone = "zone-a"
	in := ServiceInput{Service: ServiceFrom(service("web")), Slices: Slices(slice("web-1", v4, httpPort,
		ep{Addr: "10.244.1.2", Node: "node-a", Zones: []string{"zone-a"}}, ep{Addr: "10.244.2.2", Node: "node-b", Zones: []string{"zone-b"}}))}
	es := NewBuilder(o).Explain(in)
	if len(es) != 2 || es[0].Internal != "programmed" || es[1].Internal != "not programmed: topology hints (PreferSameZone) give it to other zones" {
		t.Errorf("explanations: %+v", es)
	}
}

// TestNoLocalCounts: a port counts when its Local policy finds endpoints
// in the cluster but none here; external only when reachable from outside.
func TestNoLocalCounts(t *testing.T) {
	remote := []ep{{Addr: "10.244.2.2", Node: "node-b"}}
	local := []ep{{Addr: "10.244.1.2", Node: "node-a"}}
	itp := func(s *v1.Service) { s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal) }
	etp := func(s *v1.Service) { s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal }
	nodePort := func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeNodePort; s.Spec.Ports[0].NodePort = 30080 }
	for _, tc := range []struct {
		name string
		svc  *v1.Service
		eps  []ep
		want NoLocalCounts
	}{
		{"internal Local, remote endpoints only", service("web", itp), remote, NoLocalCounts{Internal: [2]int{1, 0}}},
		{"internal Local, a local endpoint", service("web", itp), local, NoLocalCounts{}},
		{"internal Local, no endpoints at all", service("web", itp), nil, NoLocalCounts{}},
		{"external Local NodePort, remote endpoints only", service("web", etp, nodePort), remote, NoLocalCounts{External: [2]int{1, 0}}},
		{"external Local without a NodePort or external address", service("web", etp), remote, NoLocalCounts{}},
		{"Cluster policies", service("web", nodePort), remote, NoLocalCounts{}},
	} {
		st := NewBuilder(defaultOptions()).Service(ServiceInput{Service: ServiceFrom(tc.svc), Slices: Slices(slice("web-1", v4, httpPort, tc.eps...))})
		if st.NoLocal != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, st.NoLocal, tc.want)
		}
	}
}
