package proxier

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

const ipvsHeader = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight\n"

var (
	web      = svc("web", "10.96.0.10")
	webSlice = slice("web", "10.244.1.2", "10.244.1.3")
	api      = svc("api", "10.96.0.20", nodePort(30080))
	apiSlice = slice("api", "10.244.1.7")
)

// sets is the dump of the kernel sets with these hairpin members (this
// node's endpoints, all on port 8080/TCP in these tests).
func sets(hairpin ...string) string {
	out := "set IPVS-PROXY-EXTERNAL-VIPS hash:ip family inet\nset IPVS-PROXY-EXTERNAL-VIPS6 hash:ip family inet6\n" +
		"set IPVS-PROXY-FIREWALL hash:ip,port family inet\nset IPVS-PROXY-FIREWALL6 hash:ip,port family inet6\n" +
		"set IPVS-PROXY-HAIRPIN hash:ip,port,ip family inet\n"
	for _, h := range hairpin {
		out += "  " + h + ",tcp:8080," + h + "\n"
	}
	return out + "set IPVS-PROXY-HAIRPIN6 hash:ip,port,ip family inet6\n" +
		"set IPVS-PROXY-KEEP-SOURCE hash:ip,port family inet\n" +
		"set IPVS-PROXY-KEEP-SOURCE6 hash:ip,port family inet6\n"
}

// withExternalVIP puts an externalIP in the dump of sets.
func withExternalVIP(sets, vip string) string {
	return strings.Replace(sets, "set IPVS-PROXY-EXTERNAL-VIPS hash:ip family inet\n", "set IPVS-PROXY-EXTERNAL-VIPS hash:ip family inet\n  "+vip+"\n", 1)
}

// guard is the dump of the VIP filter sets (IPv4 only, no externalTraffic
// Policy Local Services): each "10.96.0.10,tcp:80" is a service port with
// endpoints and puts its address in the VIP set; a bare "10.96.0.30" is a
// VIP without any.
func guard(specs ...string) string {
	var ports, vips []string
	seen := map[string]bool{}
	for _, s := range specs {
		addr, _, port := strings.Cut(s, ",")
		if port {
			ports = append(ports, s)
		}
		if !seen[addr] {
			seen[addr] = true
			vips = append(vips, addr)
		}
	}
	byAddr := func(a, b string) int {
		x, _, _ := strings.Cut(a, ",")
		y, _, _ := strings.Cut(b, ",")
		if c := netip.MustParseAddr(x).Compare(netip.MustParseAddr(y)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	}
	slices.SortFunc(ports, byAddr)
	slices.SortFunc(vips, byAddr)
	out := "set IPVS-PROXY-NO-LOCAL-ENDPOINTS hash:ip,port family inet\n" +
		"set IPVS-PROXY-NO-LOCAL-ENDPOINTS6 hash:ip,port family inet6\n" +
		"set IPVS-PROXY-SERVICE-PORTS hash:ip,port family inet\n"
	for _, p := range ports {
		out += "  " + p + "\n"
	}
	out += "set IPVS-PROXY-SERVICE-PORTS6 hash:ip,port family inet6\n" +
		"set IPVS-PROXY-SHORT-CIRCUIT hash:ip,port family inet skbinfo\nset IPVS-PROXY-SHORT-CIRCUIT6 hash:ip,port family inet6 skbinfo\n" +
		"set IPVS-PROXY-SOURCE-RANGES hash:ip,port,net family inet\nset IPVS-PROXY-SOURCE-RANGES6 hash:ip,port,net family inet6\n" +
		"set IPVS-PROXY-VIPS hash:ip family inet\n"
	for _, v := range vips {
		out += "  " + v + "\n"
	}
	return out + "set IPVS-PROXY-VIPS6 hash:ip family inet6\n"
}

var webAndAPI = webAndAPIKernel + sets("10.244.1.2", "10.244.1.3", "10.244.1.7") + guard("10.96.0.10,tcp:80", "10.96.0.20,tcp:80")

const webAndAPIKernel = ipvsHeader + `TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.1.3:8080              Masq    1
TCP  10.96.0.20:80 rr
  -> 10.244.1.7:8080              Masq    1
TCP  192.168.1.10:30080 rr
  -> 10.244.1.7:8080              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.10/32
addr 10.96.0.20/32
`

func TestSyncAllFromEmptyThenNoOp(t *testing.T) {
	k := newKernel()
	p := k.proxier(t, "")
	res := p.SyncAll([]model.ServiceInput{input(web, webSlice), input(api, apiSlice)})
	if len(res.Errors) > 0 {
		t.Fatalf("errors: %v", res.Errors)
	}
	checkDump(t, k, webAndAPI)
	// 2 addresses + 3 services + 4 destinations + 3 hairpin members + 2
	// service ports + 2 VIPs in the filter sets; creating the link is not
	// one of the counted writes (reconcile.Counts)
	if got, want := res.Counts.Writes(), 16; got != want {
		t.Errorf("first sync made %d writes, want %d", got, want)
	}

	before := k.writes()
	res = p.SyncAll([]model.ServiceInput{input(web, webSlice), input(api, apiSlice)})
	if res.Counts.Writes() != 0 || k.writes() != before {
		t.Errorf("unchanged world: sync made %d writes (fakes saw %d), want 0", res.Counts.Writes(), k.writes()-before)
	}
	res = p.SyncServices(map[types.NamespacedName]*model.ServiceInput{name("web"): ptrTo(input(web, webSlice))})
	if res.Counts.Writes() != 0 || k.writes() != before {
		t.Errorf("unchanged Service: incremental sync made %d writes, want 0", res.Counts.Writes())
	}
	checkDump(t, k, webAndAPI)
}

func TestIncrementalSync(t *testing.T) {
	cases := []struct {
		name       string
		change     map[types.NamespacedName]*model.ServiceInput
		wantWrites int
		want       string
	}{{
		name:       "one local endpoint added is one real-server write and one hairpin member",
		change:     changes("web", input(web, slice("web", "10.244.1.2", "10.244.1.3", "10.244.1.4"))),
		wantWrites: 2,
		want: strings.Replace(webAndAPIKernel, "  -> 10.244.1.3:8080              Masq    1\n", "  -> 10.244.1.3:8080              Masq    1\n  -> 10.244.1.4:8080              Masq    1\n", 1) +
			sets("10.244.1.2", "10.244.1.3", "10.244.1.4", "10.244.1.7") + guard("10.96.0.10,tcp:80", "10.96.0.20,tcp:80"),
	}, {
		name:       "one local endpoint removed is one real-server write and one hairpin member",
		change:     changes("web", input(web, slice("web", "10.244.1.2"))),
		wantWrites: 2,
		want:       strings.Replace(webAndAPIKernel, "  -> 10.244.1.3:8080              Masq    1\n", "", 1) + sets("10.244.1.2", "10.244.1.7") + guard("10.96.0.10,tcp:80", "10.96.0.20,tcp:80"),
	}, {
		name:       "scheduler change is one service update",
		change:     changes("web", input(svc("web", "10.96.0.10", func(s *v1.Service) { s.Annotations = map[string]string{model.SchedulerAnnotation: "lc"} }), webSlice)),
		wantWrites: 1,
		want:       strings.Replace(webAndAPI, "TCP  10.96.0.10:80 rr", "TCP  10.96.0.10:80 lc", 1),
	}, {
		name:       "Service deleted: its virtual servers, VIP and set members go, the other Service stays",
		change:     map[types.NamespacedName]*model.ServiceInput{name("api"): nil},
		wantWrites: 6, // 2 services, 1 address, hairpin, service port and VIP members
		want: ipvsHeader + `TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.1.3:8080              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.10/32
` + sets("10.244.1.2", "10.244.1.3") + guard("10.96.0.10,tcp:80"),
	}, {
		name:       "new Service",
		change:     changes("db", input(svc("db", "10.96.0.30"), slice("db", "10.244.1.9"))),
		wantWrites: 6, // service, real server, address, hairpin, service port and VIP members
		want: strings.Replace(webAndAPIKernel, "TCP  192.168.1.10:30080 rr", `TCP  10.96.0.30:80 rr
  -> 10.244.1.9:8080              Masq    1
TCP  192.168.1.10:30080 rr`, 1) + "addr 10.96.0.30/32\n" + sets("10.244.1.2", "10.244.1.3", "10.244.1.7", "10.244.1.9") +
			guard("10.96.0.10,tcp:80", "10.96.0.20,tcp:80", "10.96.0.30,tcp:80"),
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := newKernel()
			p := k.proxier(t, "")
			p.SyncAll([]model.ServiceInput{input(web, webSlice), input(api, apiSlice)})
			before := k.writes()
			res := p.SyncServices(tc.change)
			if len(res.Errors) > 0 {
				t.Fatalf("errors: %v", res.Errors)
			}
			checkDump(t, k, tc.want)
			if got := k.writes() - before; got != tc.wantWrites || res.Counts.Writes() != tc.wantWrites {
				t.Errorf("kernel writes = %d (counted %d), want %d", got, res.Counts.Writes(), tc.wantWrites)
			}
			// A full resync afterwards finds nothing left to do.
			before = k.writes()
			p.SyncAll(currentInputs(tc.change))
			if got := k.writes() - before; got != 0 {
				t.Errorf("resync after the change made %d writes, want 0: incremental and full sync disagree", got)
			}
		})
	}
}

func TestForeignStateIsLeftAlone(t *testing.T) {
	k := newKernel()
	foreign := []ipvs.Service{
		{ServiceKey: key("172.17.0.1", 8080), Scheduler: "wlc"},   // unrelated address
		{ServiceKey: key("192.168.1.10", 30999), Scheduler: "rr"}, // node IP, inside the NodePort range
	}
	for _, s := range foreign {
		if err := k.ipvs.AddService(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := k.ipvs.AddDestination(foreign[0].ServiceKey, ipvs.Destination{Addr: netip.MustParseAddr("172.17.0.2"), Port: 80, Weight: 3}); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "owned")
	p := k.proxier(t, state)
	p.SyncAll([]model.ServiceInput{input(web, webSlice), input(api, apiSlice)})
	p.SyncServices(map[types.NamespacedName]*model.ServiceInput{name("api"): nil})

	// A restarted proxy reads the record and still knows what is its own.
	p = k.proxier(t, state)
	res := p.SyncAll(nil)
	if len(res.Errors) > 0 {
		t.Fatalf("errors: %v", res.Errors)
	}
	checkDump(t, k, ipvsHeader+`TCP  172.17.0.1:8080 wlc
  -> 172.17.0.2:80                Masq    3
TCP  192.168.1.10:30999 rr
link kube-ipvs0 dummy down
`+sets()+guard())
}

func TestRestartForgetsNothingOwned(t *testing.T) {
	k := newKernel()
	state := filepath.Join(t.TempDir(), "owned")
	k.proxier(t, state).SyncAll([]model.ServiceInput{input(web, webSlice), input(api, apiSlice)})
	// The NodePort Service goes away while the proxy is down: the new
	// process must remove its node-IP virtual server, known only from the record.
	res := k.proxier(t, state).SyncAll([]model.ServiceInput{input(web, webSlice)})
	if len(res.Errors) > 0 {
		t.Fatalf("errors: %v", res.Errors)
	}
	checkDump(t, k, ipvsHeader+`TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.1.3:8080              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.10/32
`+sets("10.244.1.2", "10.244.1.3")+guard("10.96.0.10,tcp:80"))
}

func TestBadInputIsSkippedAndOthersProgrammed(t *testing.T) {
	k := newKernel()
	p := k.proxier(t, "")
	badSlice := slice("bad-ep", "10.244.1.5", "300.1.1.1")
	wrongPort := svc("wrong-port", "10.96.0.41", func(s *v1.Service) { s.Spec.Ports[0].Name = "metrics" })
	badSched := svc("bad-sched", "10.96.0.42", func(s *v1.Service) { s.Annotations = map[string]string{model.SchedulerAnnotation: "nope"} })
	res := p.SyncAll([]model.ServiceInput{
		input(svc("bad-ep", "10.96.0.40"), badSlice),
		input(wrongPort, slice("wrong-port", "10.244.1.6")),
		input(badSched, slice("bad-sched", "10.244.1.8")),
		input(web, webSlice),
	})
	if len(res.Errors) > 0 {
		t.Fatalf("errors: %v", res.Errors)
	}
	var got []string
	for _, n := range []string{"bad-ep", "bad-sched", "wrong-port"} {
		for _, pr := range res.Problems[name(n)] {
			got = append(got, n+": "+pr)
		}
	}
	want := []string{
		`bad-ep: EndpointSlice ns/bad-ep-1: endpoint address "300.1.1.1" is not a valid IPv4 address; skipped`,
		`bad-sched: annotation ipvs-proxy.io/scheduler: unknown IPVS scheduler "nope" (want one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos); using "rr"`,
		`wrong-port: port "metrics"/TCP matches no port of the Service's IPv4 EndpointSlices; it has no real servers`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	checkDump(t, k, ipvsHeader+`TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.1.3:8080              Masq    1
TCP  10.96.0.40:80 rr
  -> 10.244.1.5:8080              Masq    1
TCP  10.96.0.41:80 rr
TCP  10.96.0.42:80 rr
  -> 10.244.1.8:8080              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.10/32
addr 10.96.0.40/32
addr 10.96.0.41/32
addr 10.96.0.42/32
`+sets("10.244.1.2", "10.244.1.3", "10.244.1.5", "10.244.1.8")+
		// 10.96.0.41 has no real servers: its address is guarded, no port is open.
		guard("10.96.0.10,tcp:80", "10.96.0.40,tcp:80", "10.96.0.41", "10.96.0.42,tcp:80"))
}

func TestFailedWriteIsRetriedAndDoesNotStopOthers(t *testing.T) {
	k := newKernel()
	k.ipvs.FailOn = map[ipvs.ServiceKey]error{key("10.96.0.20", 80): errors.New("injected")}
	p := k.proxier(t, "")
	res := p.SyncAll([]model.ServiceInput{input(web, webSlice), input(api, apiSlice)})
	if len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Error(), "injected") {
		t.Fatalf("errors = %v, want the one injected failure", res.Errors)
	}
	checkDump(t, k, strings.Replace(webAndAPI, "TCP  10.96.0.20:80 rr\n  -> 10.244.1.7:8080              Masq    1\n", "", 1))

	k.ipvs.FailOn = nil
	res = p.SyncAll([]model.ServiceInput{input(web, webSlice), input(api, apiSlice)})
	if len(res.Errors) > 0 {
		t.Fatalf("errors: %v", res.Errors)
	}
	checkDump(t, k, webAndAPI)
	if res.Counts.Writes() != 2 {
		t.Errorf("retry made %d writes, want 2 (the service and its real server)", res.Counts.Writes())
	}
}

func TestTwoServicesClaimingOneAddressPort(t *testing.T) {
	k := newKernel()
	p := k.proxier(t, "")
	withExt := func(s *v1.Service) { s.Spec.ExternalIPs = []string{"203.0.113.9"} }
	a := svc("a", "10.96.0.50", withExt)
	b := svc("b", "10.96.0.51", withExt)
	res := p.SyncAll([]model.ServiceInput{input(b, slice("b", "10.244.1.11")), input(a, slice("a", "10.244.1.10"))})
	if got, want := strings.Join(res.Problems[name("b")], "\n"), "http TCP 203.0.113.9:80 is wanted by another Service that takes precedence; skipped"; got != want {
		t.Errorf("problems of b = %q, want %q", got, want)
	}
	checkDump(t, k, ipvsHeader+`TCP  10.96.0.50:80 rr
  -> 10.244.1.10:8080             Masq    1
TCP  10.96.0.51:80 rr
  -> 10.244.1.11:8080             Masq    1
TCP  203.0.113.9:80 rr
  -> 10.244.1.10:8080             Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.50/32
addr 10.96.0.51/32
addr 203.0.113.9/32
`+withExternalVIP(sets("10.244.1.10", "10.244.1.11"), "203.0.113.9")+guard("10.96.0.50,tcp:80", "10.96.0.51,tcp:80", "203.0.113.9,tcp:80"))
}

func changes(n string, in model.ServiceInput) map[types.NamespacedName]*model.ServiceInput {
	return map[types.NamespacedName]*model.ServiceInput{name(n): &in}
}

// currentInputs is the world after a change applied on top of web and api.
func currentInputs(change map[types.NamespacedName]*model.ServiceInput) []model.ServiceInput {
	world := map[types.NamespacedName]*model.ServiceInput{name("web"): ptrTo(input(web, webSlice)), name("api"): ptrTo(input(api, apiSlice))}
	for n, in := range change {
		world[n] = in
	}
	var out []model.ServiceInput
	for _, in := range world {
		if in != nil {
			out = append(out, *in)
		}
	}
	return out
}

func key(addr string, port uint16) ipvs.ServiceKey {
	return ipvs.ServiceKey{Addr: netip.MustParseAddr(addr), Proto: ipvs.TCP, Port: port}
}

func ptrTo[T any](v T) *T { return &v }

// reads counts Get, the kernel read of one virtual server.
type reads struct {
	*ipvs.Fake
	gets int
}

func (r *reads) Get(k ipvs.ServiceKey) (ipvs.VirtualServer, bool, error) {
	r.gets++
	return r.Fake.Get(k)
}

// TestUnchangedServiceIsNotRead: an event that leaves a Service's built
// state as it was (the informers' initial adds arriving after the first
// full sync, an update of a field nothing reads) costs no kernel read or
// write, unless a real server of it is draining.
func TestUnchangedServiceIsNotRead(t *testing.T) {
	k := newKernel()
	r := &reads{Fake: k.ipvs}
	owned, _ := LoadOwned("")
	p := New(model.Options{NodeName: "node-a", Scheduler: "rr"}, r, k.link, k.sets, owned)
	p.DrainTimeout = time.Minute
	p.SyncAll([]model.ServiceInput{input(web, webSlice), input(api, apiSlice)})
	before := k.writes()

	res := p.SyncServices(changes("web", input(web, webSlice)))
	if r.gets != 0 || k.writes() != before || len(res.Errors) > 0 {
		t.Errorf("unchanged Service: %d reads, %d writes, errors %v; want none", r.gets, k.writes()-before, res.Errors)
	}

	// An endpoint with connections leaves: it drains, and from then on each
	// sync of the Service reads the kernel for its connection counts.
	webKey := ipvs.ServiceKey{Addr: netip.MustParseAddr("10.96.0.10"), Proto: ipvs.TCP, Port: 80}
	k.ipvs.SetCounters(webKey, netip.MustParseAddrPort("10.244.1.3:8080"), 1, 0)
	one := input(web, slice("web", "10.244.1.2"))
	if res := p.SyncServices(changes("web", one)); len(res.Draining) != 1 {
		t.Fatalf("draining after the endpoint left: %v, want web", res.Draining)
	}
	r.gets = 0
	p.SyncServices(changes("web", one))
	if r.gets == 0 {
		t.Error("a draining Service was not read again")
	}
	checkDump(t, k, strings.Replace(webAndAPIKernel, "  -> 10.244.1.3:8080              Masq    1\n", "  -> 10.244.1.3:8080              Masq    0\n", 1)+
		sets("10.244.1.2", "10.244.1.7")+guard("10.96.0.10,tcp:80", "10.96.0.20,tcp:80"))
}

// order records which kernel surface each batched write of a sync went to.
type order struct{ log []string }

func (o *order) note(what string) {
	if n := len(o.log); n == 0 || o.log[n-1] != what {
		o.log = append(o.log, what)
	}
}

type orderIPVS struct {
	*ipvs.Fake
	o *order
}

func (x orderIPVS) Write(ops []ipvs.Op) []error {
	x.o.note("virtual servers")
	return x.Fake.Write(ops)
}

type orderSets struct {
	*ipset.Fake
	o *order
}

func (x orderSets) AddAll(name string, es []ipset.Entry) []error {
	x.o.note("sets")
	return x.Fake.AddAll(name, es)
}

type orderLink struct {
	*netif.Fake
	o *order
}

func (x orderLink) AddAddresses(as []netip.Addr) []error {
	x.o.note("VIPs")
	return x.Fake.AddAddresses(as)
}

// TestFullSyncWriteOrder: virtual servers first, then the sets the VIP
// filter reads, then the VIPs, which are what let traffic in.
func TestFullSyncWriteOrder(t *testing.T) {
	k := newKernel()
	o := &order{}
	owned, _ := LoadOwned("")
	p := New(model.Options{NodeName: "node-a", Scheduler: "rr"}, orderIPVS{k.ipvs, o}, orderLink{k.link, o}, orderSets{k.sets, o}, owned)
	if res := p.SyncAll([]model.ServiceInput{input(web, webSlice), input(api, apiSlice)}); len(res.Errors) > 0 {
		t.Fatal(res.Errors)
	}
	if got := strings.Join(o.log, ", "); got != "virtual servers, sets, VIPs" {
		t.Errorf("writes went to: %s", got)
	}
	checkDump(t, k, webAndAPI)
}

type batchIPVS struct {
	*ipvs.Fake
	sizes *[]string
}

func (x batchIPVS) Write(ops []ipvs.Op) []error {
	*x.sizes = append(*x.sizes, fmt.Sprint(len(ops)))
	return x.Fake.Write(ops)
}

// TestFullSyncWritesServersInBatches: a full sync diffs and writes the
// virtual servers serverBatch at a time (each batch's writes then go in
// chunks of 4096), and the kernel ends as the incremental path leaves it.
func TestFullSyncWritesServersInBatches(t *testing.T) {
	world := benchWorld(1100) // 11 writes each: the virtual server and 10 real servers
	k := newKernel()
	var sizes []string
	owned, _ := LoadOwned("")
	p := New(model.Options{NodeName: "node-a", Scheduler: "rr"}, batchIPVS{k.ipvs, &sizes}, k.link, k.sets, owned)
	if res := p.SyncAll(world); len(res.Errors) > 0 {
		t.Fatal(res.Errors)
	}
	// 512 × 11 = 5632 = 4096 + 1536; the last batch is 76 × 11.
	if got := strings.Join(sizes, " "); got != "4096 1536 4096 1536 836" {
		t.Errorf("IPVS writes went in chunks of %s", got)
	}

	other := newKernel()
	ownedToo, _ := LoadOwned("")
	q := New(model.Options{NodeName: "node-a", Scheduler: "rr"}, other.ipvs, other.link, other.sets, ownedToo)
	q.SyncAll(nil)
	changed := map[types.NamespacedName]*model.ServiceInput{}
	for i := range world {
		changed[nameOf(world[i])] = &world[i]
	}
	if res := q.SyncServices(changed); len(res.Errors) > 0 {
		t.Fatal(res.Errors)
	}
	checkDump(t, k, other.dump(t))

	sizes = nil
	if res := p.SyncAll(world); res.Counts.Writes() != 0 {
		t.Errorf("a second full sync wrote %d times (%s)", res.Counts.Writes(), strings.Join(sizes, " "))
	}
}
