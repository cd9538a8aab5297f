package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/testobj"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/healthcheck"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/kubeclient/kubeclienttest"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/proxier"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/clock"
)

// busyPorts is a health-check server whose first hand-over fails, as
// healthcheck.Server's does when another process holds a port; it keeps
// the ports of the first hand-over that succeeds.
type busyPorts struct {
	mu    sync.Mutex
	calls int
	open  map[uint16]healthcheck.Port
}

func (b *busyPorts) SyncServices(want map[uint16]healthcheck.Port) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	if b.calls == 1 {
		return errors.New("listen tcp :30999: bind: address already in use")
	}
	b.open = want
	return nil
}

func (b *busyPorts) SyncEndpoints(map[types.NamespacedName]healthcheck.Endpoints) {}

func (b *busyPorts) opened() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	names := map[uint16]types.NamespacedName{}
	for port, p := range b.open {
		names[port] = p.Service
	}
	return fmt.Sprint(names)
}

// TestHealthCheckPortRetried: a health-check node port that could not be
// opened is tried again, by the next sync (here an unrelated Service's
// change) or, on a quiet node, after hcRetry; before, only a change of its
// own Service's health check did, and the load balancer saw the node as
// down meanwhile.
func TestHealthCheckPortRetried(t *testing.T) {
	for _, change := range []bool{true, false} {
		t.Run(fmt.Sprint("unrelated change=", change), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			lb := service("lb", "10.96.0.20")
			lb.Spec.Type = v1.ServiceTypeLoadBalancer
			lb.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
			lb.Spec.HealthCheckNodePort = 30999
			lb.Spec.Ports[0].NodePort = 30080
			client := fake.NewClientset(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}},
				service("web", "10.96.0.10"), endpointSlice("web", "10.244.1.2"), lb)
			hc := &busyPorts{}
			kipvs := ipvs.NewFake()
			owned, _ := proxier.LoadOwned("")
			done := make(chan error, 1)
			go func() {
				done <- Run(ctx, Config{
					Client: kubeclienttest.Clientset{Interface: client}, NodeName: "node-a",
					Proxier:    proxier.New(model.Options{NodeName: "node-a", Scheduler: "rr"}, kipvs, netif.NewFake("kube-ipvs0"), ipset.NewFake(), owned),
					SyncPeriod: time.Hour, MinSyncPeriod: 10 * time.Millisecond,
					Health: &health{}, Metrics: nopMetrics{}, Clock: clock.RealClock{}, HealthChecks: hc,
				})
			}()
			const header = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight\n"
			waitFor(t, kipvs, header+"TCP  10.96.0.10:80 rr\n  -> 10.244.1.2:8080              Masq    1\n"+"TCP  10.96.0.20:80 rr\n")
			wait := hcRetry + 5*time.Second
			if change {
				if _, err := client.DiscoveryV1().EndpointSlices("ns").Update(ctx, endpointSlice("web", "10.244.1.3"), metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
				waitFor(t, kipvs, header+"TCP  10.96.0.10:80 rr\n  -> 10.244.1.3:8080              Masq    1\n"+"TCP  10.96.0.20:80 rr\n")
				wait = time.Second // well before hcRetry
			}
			const want = "map[30999:ns/lb]"
			deadline := time.Now().Add(wait)
			for hc.opened() != want && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := hc.opened(); got != want {
				t.Errorf("health-check ports open after %v: %s, want %s", wait, got, want)
			}
			cancel()
			<-done
		})
	}
}

// handedOver is a health-check server that keeps what it is handed.
type handedOver struct {
	ports map[uint16]healthcheck.Port
	eps   map[types.NamespacedName]healthcheck.Endpoints
}

func (h *handedOver) SyncServices(want map[uint16]healthcheck.Port) error {
	h.ports = want
	return nil
}

func (h *handedOver) SyncEndpoints(eps map[types.NamespacedName]healthcheck.Endpoints) { h.eps = eps }

// TestHealthCheckFamiliesHandedOver: the health-check server is told each
// port's Service and families, which the port listens in, and each
// Service's counts.
func TestHealthCheckFamiliesHandedOver(t *testing.T) {
	lb := func(name, ip string, port int32) *v1.Service {
		s := service(name, ip)
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = port
		return s
	}
	v4 := testobj.Slice("ns", "lb4-1", "lb4", discovery.AddressTypeIPv4, testobj.HTTP(8080), testobj.On("node-a", "10.244.1.5")...)
	v6 := testobj.Slice("ns", "lb6-1", "lb6", discovery.AddressTypeIPv6, testobj.HTTP(8080), testobj.On("node-a", "fd00:244::5")...)
	owned, _ := proxier.LoadOwned("")
	p := proxier.New(model.Options{NodeName: "node-a", Scheduler: "rr"}, ipvs.NewFake(), netif.NewFake("kube-ipvs0"), ipset.NewFake(), owned)
	p.SyncAll([]model.ServiceInput{
		{Service: model.ServiceFrom(lb("lb4", "10.96.0.20", 30998)), Slices: model.Slices(v4)},
		{Service: model.ServiceFrom(lb("lb6", "fd00:10:96::20", 30999)), Slices: model.Slices(v6)},
	})
	hc := &handedOver{}
	d := &daemon{Config: Config{Proxier: p, HealthChecks: hc}}
	d.syncHealthChecks()
	lb4, lb6 := types.NamespacedName{Namespace: "ns", Name: "lb4"}, types.NamespacedName{Namespace: "ns", Name: "lb6"}
	wantPorts := map[uint16]healthcheck.Port{
		30998: {Service: lb4, Families: [2]bool{true, false}},
		30999: {Service: lb6, Families: [2]bool{false, true}},
	}
	if !maps.Equal(hc.ports, wantPorts) {
		t.Errorf("ports handed over %v, want %v", hc.ports, wantPorts)
	}
	want := map[types.NamespacedName]healthcheck.Endpoints{
		lb4: {Count: [2]int{1, 0}},
		lb6: {Count: [2]int{0, 1}},
	}
	if !maps.Equal(hc.eps, want) {
		t.Errorf("counts handed over %v, want %v", hc.eps, want)
	}
}
