package integration

import (
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

// TestUnprogrammableServices creates Services that kube-apiserver v1.37
// accepts but the proxy cannot program in full. (Bad addresses are not
// among them: with StrictIPCIDRValidation on by default since v1.36, the
// API refuses "10.244.1.300", "010.244.1.2", zones and IPv4-mapped IPv6 in
// EndpointSlices and externalIPs.) What it does accept:
//   - a scheduler annotation naming no IPVS scheduler;
//   - a Service port name that no port of its slices has;
//   - one externalIP:port in two Services.
//
// Each must leave the other Services programmed, program what it can, and
// put a Warning Event with reason daemon.EventReason on the Service, written
// through the API with the proxy's ServiceAccount, naming the problem.
func TestUnprogrammableServices(t *testing.T) {
	c := startCluster(t)
	c.createService(t, service("good", "10.96.0.10"))
	c.createSlice(t, slice("good-1", "good", httpPort(8080), ep{Addr: "10.244.1.2"}))
	// Present at start: reported by the first (full) sync. Three of them,
	// each naming its own scheduler, so that an Event put on the wrong
	// Service shows.
	badSchedulers := map[string]string{"fast": "fastest", "quick": "quickest", "rounds": "round-robin"}
	c.createService(t, service("fast", "10.96.0.11", func(s *v1.Service) {
		s.Annotations = map[string]string{model.SchedulerAnnotation: badSchedulers["fast"]}
	}))
	c.createSlice(t, slice("fast-1", "fast", httpPort(8080), ep{Addr: "10.244.1.3"}))
	c.createService(t, service("quick", "10.96.0.15", func(s *v1.Service) {
		s.Annotations = map[string]string{model.SchedulerAnnotation: badSchedulers["quick"]}
	}))
	c.createService(t, service("rounds", "10.96.0.16", func(s *v1.Service) {
		s.Annotations = map[string]string{model.SchedulerAnnotation: badSchedulers["rounds"]}
	}))
	c.createService(t, service("ext-a", "10.96.0.13", func(s *v1.Service) { s.Spec.ExternalIPs = []string{"203.0.113.7"} }))
	c.createSlice(t, slice("ext-a-1", "ext-a", httpPort(8080), ep{Addr: "10.244.1.4"}))

	started := time.Now()
	p := startProxy(t, c.proxyAccount(t), time.Minute)
	p.waitFor(t, "a bad scheduler falls back to the default", started, header+kubernetesVS+`TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1
TCP  10.96.0.11:80 rr
  -> 10.244.1.3:8080              Masq    1
TCP  10.96.0.13:80 rr
  -> 10.244.1.4:8080              Masq    1
TCP  10.96.0.15:80 rr
TCP  10.96.0.16:80 rr
TCP  203.0.113.7:80 rr
  -> 10.244.1.4:8080              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.1/32
addr 10.96.0.10/32
addr 10.96.0.11/32
addr 10.96.0.13/32
addr 10.96.0.15/32
addr 10.96.0.16/32
addr 203.0.113.7/32
`)
	// One sync reported all three: once its Events are in, each must be
	// on its own Service.
	t.Logf("3 Events in %v", c.waitForEvents(t, 3).Round(time.Millisecond))
	var events []v1.Event
	for _, name := range []string{"fast", "quick", "rounds"} {
		if ev, ok := c.waitForEventWithin(t, time.Second, name, `annotation ipvs-proxy.io/scheduler`, `"`+badSchedulers[name]+`"`, `using "rr"`); ok {
			events = append(events, ev)
		}
	}

	// Created while the daemon runs: reported by partial syncs.
	since := time.Now()
	c.createService(t, service("misnamed", "10.96.0.12"))
	c.createSlice(t, slice("misnamed-1", "misnamed", slicePort("web", v1.ProtocolTCP, 8080), ep{Addr: "10.244.1.5"}))
	nextSecond() // ext-b is younger: ext-a keeps the externalIP
	c.createService(t, service("ext-b", "10.96.0.14", func(s *v1.Service) { s.Spec.ExternalIPs = []string{"203.0.113.7"} }))
	c.createSlice(t, slice("ext-b-1", "ext-b", httpPort(8080), ep{Addr: "10.244.1.6"}))
	p.waitFor(t, "a port no slice names gets no real servers; the second claim on an externalIP is skipped", since, header+kubernetesVS+`TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1
TCP  10.96.0.11:80 rr
  -> 10.244.1.3:8080              Masq    1
TCP  10.96.0.12:80 rr
TCP  10.96.0.13:80 rr
  -> 10.244.1.4:8080              Masq    1
TCP  10.96.0.14:80 rr
  -> 10.244.1.6:8080              Masq    1
TCP  10.96.0.15:80 rr
TCP  10.96.0.16:80 rr
TCP  203.0.113.7:80 rr
  -> 10.244.1.4:8080              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.1/32
addr 10.96.0.10/32
addr 10.96.0.11/32
addr 10.96.0.12/32
addr 10.96.0.13/32
addr 10.96.0.14/32
addr 10.96.0.15/32
addr 10.96.0.16/32
addr 203.0.113.7/32
`)
	if ev, ok := c.waitForEvent(t, "misnamed", `port "http"/TCP matches no port`, "no real servers"); ok {
		events = append(events, ev)
	}
	if ev, ok := c.waitForEvent(t, "ext-b", "TCP 203.0.113.7:80", "wanted by another Service that takes precedence"); ok {
		events = append(events, ev)
	}

	for _, ev := range events {
		if ev.Type != v1.EventTypeWarning || ev.Source.Host != nodeName {
			t.Errorf("Event %s: type %q source %+v, want Warning from %s", ev.Name, ev.Type, ev.Source, nodeName)
		}
		svc, err := c.admin.CoreV1().Services(ns).Get(t.Context(), ev.InvolvedObject.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get Service %s: %v", ev.InvolvedObject.Name, err)
		}
		if ev.InvolvedObject.Kind != "Service" || ev.InvolvedObject.UID != svc.UID {
			t.Errorf("Event %s is about %+v, want Service %s/%s uid %s", ev.Name, ev.InvolvedObject, ns, svc.Name, svc.UID)
		}
	}
	// A Service with nothing wrong gets no Event from the proxy. (Other
	// components may put some on it: the API server's ClusterIP repair loop
	// warns "is not allocated; repairing" when a Service's create races it.)
	sel := fields.Set{"involvedObject.name": "good", "source": proxySA}.AsSelector().String()
	if list, err := c.admin.CoreV1().Events(ns).List(t.Context(), metav1.ListOptions{FieldSelector: sel}); err != nil {
		t.Fatalf("list Events: %v", err)
	} else if len(list.Items) > 0 {
		var msgs []string
		for _, ev := range list.Items {
			msgs = append(msgs, ev.Message)
		}
		t.Errorf("Events from %s on Service good, want none: %q", proxySA, msgs)
	}
	if n := p.metric(t, `ipvs_proxy_services_skipped_total{reason="invalid-input"}`); n != 5 {
		t.Errorf("ipvs_proxy_services_skipped_total = %v, want 5 (one per reported Service)", n)
	}

	// Fixing the annotation programs the scheduler it names.
	since = time.Now()
	c.updateService(t, "fast", func(s *v1.Service) { s.Annotations[model.SchedulerAnnotation] = "sh" })
	p.waitFor(t, "the annotation is fixed", since, header+kubernetesVS+`TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1
TCP  10.96.0.11:80 sh
  -> 10.244.1.3:8080              Masq    1
TCP  10.96.0.12:80 rr
TCP  10.96.0.13:80 rr
  -> 10.244.1.4:8080              Masq    1
TCP  10.96.0.14:80 rr
  -> 10.244.1.6:8080              Masq    1
TCP  10.96.0.15:80 rr
TCP  10.96.0.16:80 rr
TCP  203.0.113.7:80 rr
  -> 10.244.1.4:8080              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.1/32
addr 10.96.0.10/32
addr 10.96.0.11/32
addr 10.96.0.12/32
addr 10.96.0.13/32
addr 10.96.0.14/32
addr 10.96.0.15/32
addr 10.96.0.16/32
addr 203.0.113.7/32
`)
	p.stop(t)
}

// TestExternalIPTakeover: when the Service that holds a shared
// externalIP:port goes away, the Service whose claim was skipped must get
// it, without waiting for the periodic resync (a minute here).
func TestExternalIPTakeover(t *testing.T) {
	c := startCluster(t)
	c.createService(t, service("ext-a", "10.96.0.13", func(s *v1.Service) { s.Spec.ExternalIPs = []string{"203.0.113.7"} }))
	c.createSlice(t, slice("ext-a-1", "ext-a", httpPort(8080), ep{Addr: "10.244.1.4"}))
	started := time.Now()
	p := startProxy(t, c.proxyAccount(t), time.Minute)
	p.waitFor(t, "ext-a holds the externalIP", started, header+kubernetesVS+`TCP  10.96.0.13:80 rr
  -> 10.244.1.4:8080              Masq    1
TCP  203.0.113.7:80 rr
  -> 10.244.1.4:8080              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.1/32
addr 10.96.0.13/32
addr 203.0.113.7/32
`)

	nextSecond() // ext-b is younger: ext-a keeps the externalIP
	since := time.Now()
	c.createService(t, service("ext-b", "10.96.0.14", func(s *v1.Service) { s.Spec.ExternalIPs = []string{"203.0.113.7"} }))
	c.createSlice(t, slice("ext-b-1", "ext-b", httpPort(8080), ep{Addr: "10.244.1.5"}))
	p.waitFor(t, "ext-b's claim on the same externalIP:port is skipped", since, header+kubernetesVS+`TCP  10.96.0.13:80 rr
  -> 10.244.1.4:8080              Masq    1
TCP  10.96.0.14:80 rr
  -> 10.244.1.5:8080              Masq    1
TCP  203.0.113.7:80 rr
  -> 10.244.1.4:8080              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.1/32
addr 10.96.0.13/32
addr 10.96.0.14/32
addr 203.0.113.7/32
`)
	if _, ok := c.waitForEvent(t, "ext-b", "TCP 203.0.113.7:80", "wanted by another Service that takes precedence"); !ok {
		t.FailNow()
	}

	since = time.Now()
	c.deleteService(t, "ext-a")
	p.waitFor(t, "ext-a is deleted: ext-b takes the externalIP over", since, header+kubernetesVS+`TCP  10.96.0.14:80 rr
  -> 10.244.1.5:8080              Masq    1
TCP  203.0.113.7:80 rr
  -> 10.244.1.5:8080              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.1/32
addr 10.96.0.14/32
addr 203.0.113.7/32
`)
	p.stop(t)
}

// nextSecond waits into the next whole second. Of two Services that want
// one externalIP the older keeps it, and creationTimestamp counts whole
// seconds: one made after nextSecond is younger than one made before.
func nextSecond() {
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(1100 * time.Millisecond)))
}
