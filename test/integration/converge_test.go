package integration

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/watch"
	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// TestConverge starts the daemon on a cluster that already has Services,
// then changes them one at a time through the API; after each change the
// fake kernel must reach the exact expected state. The sync period is long,
// so every step after the first is an event-driven partial sync.
func TestConverge(t *testing.T) {
	c := startCluster(t)
	c.createService(t, service("web", "10.96.0.10"))
	c.createSlice(t, slice("web-1", "web", httpPort(8080),
		ep{Addr: "10.244.1.2", Node: nodeName}, ep{Addr: "10.244.2.2", Node: "node-b"}))
	c.createService(t, service("np", "10.96.0.11", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30080
	}))
	c.createSlice(t, slice("np-1", "np", httpPort(8080),
		ep{Addr: "10.244.1.3", Node: nodeName, Ready: yes}, ep{Addr: "10.244.1.4", Node: nodeName, Ready: yes}))
	// The API fills in the default affinity timeout (10800 s).
	c.createService(t, service("sticky", "10.96.0.12", func(s *v1.Service) {
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
	}))
	c.createSlice(t, slice("sticky-1", "sticky", httpPort(8080), ep{Addr: "10.244.2.4", Node: "node-b"}))
	// Served by another proxy: kube-proxy leaves it alone, and so must we.
	other := service("other", "10.96.0.13")
	otherSlice := slice("other-1", "other", httpPort(8080), ep{Addr: "10.244.1.9", Node: nodeName})
	other.Labels = map[string]string{watch.ServiceProxyNameLabel: "another-proxy"}
	otherSlice.Labels[watch.ServiceProxyNameLabel] = "another-proxy" // copied by the EndpointSlice controller
	c.createService(t, other)
	c.createSlice(t, otherSlice)

	started := time.Now()
	p := startProxy(t, c.proxyAccount(t), time.Minute)

	steps := []struct {
		name   string
		change func(t *testing.T)
		want   string
	}{{
		name: "initial state, default/kubernetes included",
		want: header + kubernetesVS + `TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
TCP  10.96.0.11:80 rr
  -> 10.244.1.3:8080              Masq    1
  -> 10.244.1.4:8080              Masq    1
TCP  10.96.0.12:80 rr persistent 10800
  -> 10.244.2.4:8080              Masq    1
TCP  192.168.1.10:30080 rr
  -> 10.244.1.3:8080              Masq    1
  -> 10.244.1.4:8080              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.1/32
addr 10.96.0.10/32
addr 10.96.0.11/32
addr 10.96.0.12/32
`,
	}, {
		name: "an endpoint is added",
		change: func(t *testing.T) {
			c.replaceSlice(t, slice("web-1", "web", httpPort(8080),
				ep{Addr: "10.244.1.2", Node: nodeName}, ep{Addr: "10.244.2.2", Node: "node-b"}, ep{Addr: "10.244.3.5", Node: "node-c"}))
		},
		want: header + kubernetesVS + `TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.2.2:8080              Masq    1
  -> 10.244.3.5:8080              Masq    1
TCP  10.96.0.11:80 rr
  -> 10.244.1.3:8080              Masq    1
  -> 10.244.1.4:8080              Masq    1
TCP  10.96.0.12:80 rr persistent 10800
  -> 10.244.2.4:8080              Masq    1
TCP  192.168.1.10:30080 rr
  -> 10.244.1.3:8080              Masq    1
  -> 10.244.1.4:8080              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.1/32
addr 10.96.0.10/32
addr 10.96.0.11/32
addr 10.96.0.12/32
`,
	}, {
		name: "an endpoint becomes not ready",
		change: func(t *testing.T) {
			c.replaceSlice(t, slice("web-1", "web", httpPort(8080),
				ep{Addr: "10.244.1.2", Node: nodeName}, ep{Addr: "10.244.2.2", Node: "node-b", Ready: no, Serving: no}, ep{Addr: "10.244.3.5", Node: "node-c"}))
		},
		want: header + kubernetesVS + `TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.3.5:8080              Masq    1
TCP  10.96.0.11:80 rr
  -> 10.244.1.3:8080              Masq    1
  -> 10.244.1.4:8080              Masq    1
TCP  10.96.0.12:80 rr persistent 10800
  -> 10.244.2.4:8080              Masq    1
TCP  192.168.1.10:30080 rr
  -> 10.244.1.3:8080              Masq    1
  -> 10.244.1.4:8080              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.1/32
addr 10.96.0.10/32
addr 10.96.0.11/32
addr 10.96.0.12/32
`,
	}, {
		// A rolling update whose new pod is not ready yet: of the two old
		// pods, the one terminating but still serving keeps the Service
		// answering; the one that stopped serving takes no new traffic.
		name: "no endpoint is ready: the terminating one still serving is used",
		change: func(t *testing.T) {
			c.replaceSlice(t, slice("np-1", "np", httpPort(8080),
				ep{Addr: "10.244.1.3", Node: nodeName, Ready: no, Serving: yes, Terminating: yes},
				ep{Addr: "10.244.1.4", Node: nodeName, Ready: no, Serving: no, Terminating: yes},
				ep{Addr: "10.244.1.5", Node: nodeName, Ready: no, Serving: no}))
		},
		want: header + kubernetesVS + `TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.3.5:8080              Masq    1
TCP  10.96.0.11:80 rr
  -> 10.244.1.3:8080              Masq    1
TCP  10.96.0.12:80 rr persistent 10800
  -> 10.244.2.4:8080              Masq    1
TCP  192.168.1.10:30080 rr
  -> 10.244.1.3:8080              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.1/32
addr 10.96.0.10/32
addr 10.96.0.11/32
addr 10.96.0.12/32
`,
	}, {
		name: "the new endpoint becomes ready and replaces the terminating one",
		change: func(t *testing.T) {
			c.replaceSlice(t, slice("np-1", "np", httpPort(8080),
				ep{Addr: "10.244.1.3", Node: nodeName, Ready: no, Serving: yes, Terminating: yes},
				ep{Addr: "10.244.1.5", Node: nodeName, Ready: yes, Serving: yes}))
		},
		want: header + kubernetesVS + `TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.3.5:8080              Masq    1
TCP  10.96.0.11:80 rr
  -> 10.244.1.5:8080              Masq    1
TCP  10.96.0.12:80 rr persistent 10800
  -> 10.244.2.4:8080              Masq    1
TCP  192.168.1.10:30080 rr
  -> 10.244.1.5:8080              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.1/32
addr 10.96.0.10/32
addr 10.96.0.11/32
addr 10.96.0.12/32
`,
	}, {
		name: "a Service's port and scheduler annotations change",
		change: func(t *testing.T) {
			c.updateService(t, "web", func(s *v1.Service) {
				s.Annotations = map[string]string{model.SchedulerAnnotation: "sh", model.SchedulerFlagsAnnotation: "sh-fallback,sh-port"}
				s.Spec.Ports[0].Port = 81
			})
		},
		want: header + kubernetesVS + `TCP  10.96.0.10:81 sh (sh-fallback,sh-port)
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.3.5:8080              Masq    1
TCP  10.96.0.11:80 rr
  -> 10.244.1.5:8080              Masq    1
TCP  10.96.0.12:80 rr persistent 10800
  -> 10.244.2.4:8080              Masq    1
TCP  192.168.1.10:30080 rr
  -> 10.244.1.5:8080              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.1/32
addr 10.96.0.10/32
addr 10.96.0.11/32
addr 10.96.0.12/32
`,
	}, {
		name: "the scheduler annotation alone changes a virtual server in place, affinity timeout too",
		change: func(t *testing.T) {
			c.updateService(t, "sticky", func(s *v1.Service) {
				s.Annotations = map[string]string{model.SchedulerAnnotation: "lc"}
				s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](600)}}
			})
		},
		want: header + kubernetesVS + `TCP  10.96.0.10:81 sh (sh-fallback,sh-port)
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.3.5:8080              Masq    1
TCP  10.96.0.11:80 rr
  -> 10.244.1.5:8080              Masq    1
TCP  10.96.0.12:80 lc persistent 600
  -> 10.244.2.4:8080              Masq    1
TCP  192.168.1.10:30080 rr
  -> 10.244.1.5:8080              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.1/32
addr 10.96.0.10/32
addr 10.96.0.11/32
addr 10.96.0.12/32
`,
	}, {
		name:   "a NodePort Service is deleted: its clusterIP, NodePort and VIP go",
		change: func(t *testing.T) { c.deleteService(t, "np") },
		want: header + kubernetesVS + `TCP  10.96.0.10:81 sh (sh-fallback,sh-port)
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.3.5:8080              Masq    1
TCP  10.96.0.12:80 lc persistent 600
  -> 10.244.2.4:8080              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.1/32
addr 10.96.0.10/32
addr 10.96.0.12/32
`,
	}, {
		name:   "the service-proxy-name label is removed: the Service is ours now",
		change: func(t *testing.T) { c.setProxyName(t, "other", "") },
		want: header + kubernetesVS + `TCP  10.96.0.10:81 sh (sh-fallback,sh-port)
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.3.5:8080              Masq    1
TCP  10.96.0.12:80 lc persistent 600
  -> 10.244.2.4:8080              Masq    1
TCP  10.96.0.13:80 rr
  -> 10.244.1.9:8080              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.1/32
addr 10.96.0.10/32
addr 10.96.0.12/32
addr 10.96.0.13/32
`,
	}, {
		name:   "labelled for another proxy again: its virtual server and VIP go",
		change: func(t *testing.T) { c.setProxyName(t, "other", "another-proxy") },
		want: header + kubernetesVS + `TCP  10.96.0.10:81 sh (sh-fallback,sh-port)
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.3.5:8080              Masq    1
TCP  10.96.0.12:80 lc persistent 600
  -> 10.244.2.4:8080              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.1/32
addr 10.96.0.10/32
addr 10.96.0.12/32
`,
	}}
	for i, step := range steps {
		if i > 0 && step.want == steps[i-1].want {
			t.Fatalf("step %q expects no change: it could pass without the daemon seeing it", step.name)
		}
		since := time.Now()
		if step.change != nil {
			step.change(t)
		} else {
			since = started
		}
		p.waitFor(t, step.name, since, step.want)
		if i == 0 {
			// The Node was seen through the node informer (list/watch nodes).
			if code, body := p.healthz(); code != http.StatusOK {
				t.Errorf("/healthz = %d %s after the first sync, want 200", code, body)
			}
		}
	}
	// Let any stray write land, then check nothing moved.
	time.Sleep(300 * time.Millisecond)
	if got, want := p.dump(), steps[len(steps)-1].want; got != want {
		t.Errorf("kernel moved after converging (-want +got):\n%s", cmp.Diff(want, got))
	}
	p.stop(t)
}
