// Package integration runs the proxy's daemon in-process against a real
// kube-apiserver (test/apiserver) with fake kernel surfaces: the informers,
// RBAC, Events and reconnects are real, the kernel is pkg/ipvs's and
// pkg/netif's fakes. The daemon always uses a ServiceAccount token, by
// default the least-privileged kube-system/ipvs-proxy of
// manifests/rbac.yaml, so a permission missing there fails these tests
// (TestLeastPrivilege shows that it does).
package integration

import (
	"context"
	"errors"
	"fmt"
	"github.com/ipvs-proxy/ipvs-proxy/internal/testobj"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/watch"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/daemon"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/healthz"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/kubeclient"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/metrics"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/proxier"
	"github.com/ipvs-proxy/ipvs-proxy/test/apiserver"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
)

const (
	nodeName = "node-a"
	ns       = "apps"
	// nodeIP is the fake host's address: NodePorts are programmed on it
	// (and not on the loopback address the fake host also has).
	nodeIP = "192.168.1.10"
	// proxySA is the ServiceAccount of manifests/rbac.yaml, in kube-system.
	proxySA = "ipvs-proxy"
	// convergeTimeout bounds every wait for the kernel or an Event.
	convergeTimeout = 20 * time.Second
	header          = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight\n"
	// kubernetesVS is default/kubernetes: with the loopback advertise
	// address the API server publishes no endpoint for it.
	kubernetesVS = "TCP  10.96.0.1:443 rr\n"
)

// cluster is a running API server with the objects every test needs: the
// namespace and this node's Node.
type cluster struct {
	*apiserver.Server
	admin kubernetes.Interface
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	s := apiserver.Start(t, apiserver.Options{})
	admin, err := kubernetes.NewForConfig(s.Admin)
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}
	c := &cluster{Server: s, admin: admin}
	ctx := t.Context()
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", ns, err)
	}
	// No kubelet: the test registers the Node, with the address the fake
	// host has.
	node := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: nodeName},
		Status: v1.NodeStatus{Addresses: []v1.NodeAddress{
			{Type: v1.NodeInternalIP, Address: nodeIP},
			{Type: v1.NodeHostName, Address: nodeName},
		}},
	}
	if _, err := admin.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Node %s: %v", nodeName, err)
	}
	return c
}

// account is the identity a daemon runs as: a ServiceAccount in
// kube-system and a client config holding its token.
type account struct {
	name string
	cfg  *rest.Config
}

// proxyAccount is kube-system/ipvs-proxy, loaded from the kubeconfig file
// as `--kubeconfig` would be, with the QPS cmd/ipvs-proxy sets (the
// protobuf content type is pkg/kubeclient's own).
func (c *cluster) proxyAccount(t *testing.T) account {
	t.Helper()
	path := c.ProxyKubeconfig(t, "")
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	cfg.UserAgent = "ipvs-proxy-integration"
	cfg.QPS, cfg.Burst = 50, 100
	return account{name: proxySA, cfg: cfg}
}

// proxy is one in-process daemon and the fake kernel it programs.
type proxy struct {
	account account
	ipvs    *ipvs.Fake
	link    *netif.Fake
	sets    *ipset.Fake // programmed, not compared: see dump
	health  *healthz.Server
	metrics *metrics.Metrics
	done    chan error
	logMark int // daemonLog lines before this daemon started
	// exempt are daemonLog line ranges [from, to) in which refusals are
	// expected, such as an API server's start (see exemptForbidden).
	exempt [][2]int
	// shutdown stops the daemon and reports what went wrong in its life:
	// Run's error, and every request the API refused it (see forbidden).
	// It is idempotent; Cleanup calls it too.
	shutdown func() error
}

// startProxy runs daemon.Run as cmd/ipvs-proxy/run.go wires it, with the
// Linux kernel surfaces replaced by fakes and no iptables rule sets (they
// have their own fake tests and nothing here depends on them). Its Events
// carry the account's name as their source component: "ipvs-proxy", as in
// production, for the manifests' account.
func startProxy(t *testing.T, acct account, syncPeriod time.Duration) *proxy {
	t.Helper()
	client, err := kubeclient.New(acct.cfg)
	if err != nil {
		t.Fatalf("proxy client: %v", err)
	}
	p := &proxy{
		account: acct,
		ipvs:    ipvs.NewFake(), link: netif.NewFake("kube-ipvs0"), sets: ipset.NewFake(),
		done: make(chan error, 1), logMark: daemonLog.mark(),
	}
	p.link.SetHostAddresses([]netif.HostAddress{
		{Link: "eth0", Addr: netip.MustParseAddr(nodeIP)},
		{Link: "lo", Addr: netip.MustParseAddr("127.0.0.1")},
	})
	owned, err := proxier.LoadOwned("")
	if err != nil {
		t.Fatalf("ownership record: %v", err)
	}
	clk := clock.RealClock{}
	p.health = healthz.New(clk, syncPeriod)
	p.metrics = metrics.New()
	ctx, cancel := context.WithCancel(context.Background())

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(client.EventSink())
	recorder := broadcaster.NewRecorder(kubeclient.Scheme, v1.EventSource{Component: acct.name, Host: nodeName})

	go func() {
		p.done <- daemon.Run(ctx, daemon.Config{
			Client: client, NodeName: nodeName,
			Proxier:    proxier.New(model.Options{NodeName: nodeName, Scheduler: "rr"}, p.ipvs, p.link, p.sets, owned),
			SyncPeriod: syncPeriod, MinSyncPeriod: 10 * time.Millisecond,
			Health: p.health, Metrics: p.metrics, Recorder: recorder, Clock: clk,
		})
	}()
	var stopped bool
	var result error
	p.shutdown = func() error {
		if stopped {
			return result
		}
		stopped = true
		cancel()
		var errs []error
		select {
		case err := <-p.done:
			if err != nil {
				errs = append(errs, fmt.Errorf("daemon.Run returned %w, want nil", err))
			}
		case <-time.After(30 * time.Second):
			errs = append(errs, errors.New("daemon.Run did not return within 30 s of its context ending"))
		}
		broadcaster.Shutdown()
		if lines := p.forbidden(); len(lines) > 0 {
			errs = append(errs, fmt.Errorf("the API refused %s:\n%s", acct.name, strings.Join(lines, "\n")))
		}
		result = errors.Join(errs...)
		return result
	}
	t.Cleanup(func() {
		if stopped {
			return // whoever stopped it has seen the result
		}
		if err := p.shutdown(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// stop stops the daemon, failing the test if Run did not return nil or the
// API refused the daemon anything while it ran.
func (p *proxy) stop(t *testing.T) {
	t.Helper()
	if err := p.shutdown(); err != nil {
		t.Error(err)
	}
}

// forbidden returns the log lines, since this daemon started, of requests
// the API refused its account. RBAC refusals surface nowhere else: a
// reflector that may list but not watch still syncs, and a refused Event
// is only logged by the broadcaster.
func (p *proxy) forbidden() []string {
	return p.forbiddenIn(p.logMark, -1, true)
}

// forbiddenIn returns the refusals logged in lines [from, to) (to -1: up to
// now), leaving out the exempt ranges if skipExempt.
func (p *proxy) forbiddenIn(from, to int, skipExempt bool) []string {
	user := "system:serviceaccount:kube-system:" + p.account.name
	var out []string
	lines := daemonLog.since(from)
	if to >= 0 {
		lines = lines[:to-from]
	}
lines:
	for i, l := range lines {
		if skipExempt {
			for _, r := range p.exempt {
				if n := from + i; n >= r[0] && n < r[1] {
					continue lines
				}
			}
		}
		// klog quotes the message, so the user's closing quote is escaped.
		if strings.Contains(l, "forbidden") && (strings.Contains(l, user+`\"`) || strings.Contains(l, user+`"`)) {
			out = append(out, l)
		}
	}
	return out
}

// exemptForbidden accepts the refusals logged since mark: a kube-apiserver
// serves requests before /readyz passes, and until its authorizer's caches
// fill it refuses them (a daemon's reflectors retry and recover). It logs
// what it accepted.
func (p *proxy) exemptForbidden(t *testing.T, mark int) {
	t.Helper()
	now := daemonLog.mark()
	p.exempt = append(p.exempt, [2]int{mark, now})
	for _, l := range p.forbiddenIn(mark, now, false) {
		t.Logf("refusal while the API server was starting (accepted): %s", l)
	}
}

// healthz is what a probe of /healthz would get.
func (p *proxy) healthz() (int, string) {
	rec := httptest.NewRecorder()
	p.health.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	return rec.Code, strings.TrimSpace(rec.Body.String())
}

// metric scrapes the daemon's /metrics and returns the value of the sample
// written exactly as series (name plus labels, if any).
func (p *proxy) metric(t *testing.T, series string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	p.metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not exported; /metrics:\n%s", series, rec.Body.String())
	return 0
}

// dump is the fake kernel as text: the IPVS table, then the dummy link.
// The ipsets are left out: what goes in them is still being settled
// (pkg/ipset is newer than these tests), and pkg/proxier's tests cover it.
func (p *proxy) dump() string {
	link, err := p.link.Dump()
	if err != nil {
		return fmt.Sprintf("link dump: %v\n", err)
	}
	return p.ipvs.Dump() + link
}

// converge polls until the fake kernel equals want and returns how long
// that took, or an error with the difference after timeout.
func (p *proxy) converge(timeout time.Duration, want string) (time.Duration, error) {
	start := time.Now()
	for {
		got := p.dump()
		if got == want {
			return time.Since(start), nil
		}
		select {
		case err := <-p.done:
			p.done <- err // for shutdown
			return 0, fmt.Errorf("daemon.Run returned early: %v", err)
		default:
		}
		if time.Since(start) > timeout {
			return 0, fmt.Errorf("kernel not in the wanted state after %v (-want +got):\n%s\ngot:\n%s", timeout, cmp.Diff(want, got), got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor waits up to convergeTimeout for the fake kernel to equal want,
// and logs how long that took from since (the API write that caused it).
func (p *proxy) waitFor(t *testing.T, step string, since time.Time, want string) {
	t.Helper()
	p.waitWithin(t, convergeTimeout, step, since, want)
}

func (p *proxy) waitWithin(t *testing.T, timeout time.Duration, step string, since time.Time, want string) {
	t.Helper()
	if _, err := p.converge(timeout, want); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	t.Logf("%s: converged in %v", step, time.Since(since).Round(100*time.Microsecond))
}

// ---- objects ----

func service(name, clusterIP string, mutate ...func(*v1.Service)) *v1.Service {
	return testobj.Service(ns, name, []string{clusterIP}, mutate...)
}

type ep = testobj.Endpoint

var yes, no = testobj.Yes, testobj.No

// httpPort is the slice port matching service()'s port "http".
var httpPort = testobj.HTTP

func slicePort(name string, proto v1.Protocol, port int32) []discovery.EndpointPort {
	return []discovery.EndpointPort{testobj.Port(name, proto, port)}
}

// slice is an IPv4 EndpointSlice of Service svc, as the EndpointSlice
// controller would write it: endpoints an empty list, never null.
func slice(name, svc string, ports []discovery.EndpointPort, eps ...ep) *discovery.EndpointSlice {
	s := testobj.Slice(ns, name, svc, discovery.AddressTypeIPv4, ports, eps...)
	if s.Endpoints == nil {
		s.Endpoints = []discovery.Endpoint{}
	}
	return s
}

// ---- writes through the admin client ----

func (c *cluster) createService(t *testing.T, s *v1.Service) {
	t.Helper()
	if _, err := c.admin.CoreV1().Services(s.Namespace).Create(t.Context(), s, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Service %s/%s: %v", s.Namespace, s.Name, err)
	}
}

func (c *cluster) createSlice(t *testing.T, s *discovery.EndpointSlice) {
	t.Helper()
	if _, err := c.admin.DiscoveryV1().EndpointSlices(s.Namespace).Create(t.Context(), s, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create EndpointSlice %s/%s: %v", s.Namespace, s.Name, err)
	}
}

func (c *cluster) updateService(t *testing.T, name string, mutate func(*v1.Service)) {
	t.Helper()
	api := c.admin.CoreV1().Services(ns)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := api.Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		mutate(s)
		_, err = api.Update(t.Context(), s, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("update Service %s/%s: %v", ns, name, err)
	}
}

// replaceSlice replaces the slice's ports and endpoints with want's.
func (c *cluster) replaceSlice(t *testing.T, want *discovery.EndpointSlice) {
	t.Helper()
	api := c.admin.DiscoveryV1().EndpointSlices(want.Namespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := api.Get(t.Context(), want.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		s.Ports, s.Endpoints = want.Ports, want.Endpoints
		_, err = api.Update(t.Context(), s, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("update EndpointSlice %s/%s: %v", want.Namespace, want.Name, err)
	}
}

// setProxyName sets (or, with "", removes) the service-proxy-name label on
// Service name and on its slice name-1, as the EndpointSlice controller
// mirrors a Service's labels onto its slices.
func (c *cluster) setProxyName(t *testing.T, name, proxy string) {
	t.Helper()
	label := func(m map[string]string) map[string]string {
		if m == nil {
			m = map[string]string{}
		}
		if delete(m, watch.ServiceProxyNameLabel); proxy != "" {
			m[watch.ServiceProxyNameLabel] = proxy
		}
		return m
	}
	c.updateService(t, name, func(s *v1.Service) { s.Labels = label(s.Labels) })
	api := c.admin.DiscoveryV1().EndpointSlices(ns)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := api.Get(t.Context(), name+"-1", metav1.GetOptions{})
		if err != nil {
			return err
		}
		s.Labels = label(s.Labels)
		_, err = api.Update(t.Context(), s, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("label EndpointSlice %s/%s-1: %v", ns, name, err)
	}
}

func (c *cluster) deleteService(t *testing.T, name string) {
	t.Helper()
	if err := c.admin.CoreV1().Services(ns).Delete(t.Context(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete Service %s/%s: %v", ns, name, err)
	}
}

// ---- Events ----

// findEvent polls until an Event that component (a daemon's account name)
// put on Service name exists in the API with reason daemon.EventReason, a
// message containing every part of want, and a count of at least minCount.
func (c *cluster) findEvent(ctx context.Context, timeout time.Duration, component, name string, minCount int32, want ...string) (v1.Event, error) {
	sel := fields.Set{
		"involvedObject.kind": "Service", "involvedObject.name": name,
		"reason": daemon.EventReason, "source": component,
	}.AsSelector().String()
	deadline := time.Now().Add(timeout)
	var seen []string
	for {
		list, err := c.admin.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			return v1.Event{}, fmt.Errorf("list Events (%s): %w", sel, err)
		}
		seen = seen[:0]
		for _, ev := range list.Items {
			seen = append(seen, fmt.Sprintf("%q (count %d)", ev.Message, ev.Count))
			if containsAll(ev.Message, want) && ev.Count >= minCount {
				return ev, nil
			}
		}
		if time.Now().After(deadline) {
			return v1.Event{}, fmt.Errorf("no Event %s from %s on Service %s/%s with count >= %d and a message containing %q after %v; its Events: %v; all %s Events: %s",
				daemon.EventReason, component, ns, name, minCount, want, timeout, seen, daemon.EventReason, c.allEvents(ctx))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitForEvent is findEvent for the manifests' account, failing the test
// (but not stopping it) when no such Event comes within convergeTimeout.
// The proxy can only have written it with `create events` (RBAC).
func (c *cluster) waitForEvent(t *testing.T, name string, want ...string) (v1.Event, bool) {
	t.Helper()
	return c.waitForEventWithin(t, convergeTimeout, name, want...)
}

func (c *cluster) waitForEventWithin(t *testing.T, timeout time.Duration, name string, want ...string) (v1.Event, bool) {
	t.Helper()
	start := time.Now()
	ev, err := c.findEvent(t.Context(), timeout, proxySA, name, 1, want...)
	if err != nil {
		t.Error(err)
		return ev, false
	}
	t.Logf("Event on Service %s/%s after %v: %s %s %q (source %s/%s, count %d)", ns, name,
		time.Since(start).Round(time.Millisecond), ev.Type, ev.Reason, ev.Message, ev.Source.Component, ev.Source.Host, ev.Count)
	return ev, true
}

// waitForEvents waits until the manifests' account has put n Events with
// reason daemon.EventReason on Services, wherever they are, and returns
// how long that took.
func (c *cluster) waitForEvents(t *testing.T, n int) time.Duration {
	t.Helper()
	sel := fields.Set{"reason": daemon.EventReason, "source": proxySA}.AsSelector().String()
	start := time.Now()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, convergeTimeout, true, func(ctx context.Context) (bool, error) {
		list, err := c.admin.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: sel})
		return err == nil && len(list.Items) >= n, err
	})
	if err != nil {
		t.Fatalf("waiting for %d Events %s: %v; there are:%s", n, daemon.EventReason, err, c.allEvents(t.Context()))
	}
	return time.Since(start)
}

// allEvents lists the daemons' Events in every namespace, with the object
// each is about, for failure messages.
func (c *cluster) allEvents(ctx context.Context) string {
	sel := fields.OneTermEqualSelector("reason", daemon.EventReason).String()
	list, err := c.admin.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, ev := range list.Items {
		fmt.Fprintf(&b, "\n  from %s on %s %s/%s: %q", ev.Source.Component, ev.InvolvedObject.Kind, ev.InvolvedObject.Namespace, ev.InvolvedObject.Name, ev.Message)
	}
	return b.String()
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
