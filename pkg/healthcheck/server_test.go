package healthcheck

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

// step is one sync of the proxy and what the ports answer afterwards.
type step struct {
	services  map[uint16]types.NamespacedName // nil: no SyncServices
	endpoints map[types.NamespacedName][2]int // nil: no SyncEndpoints
	unhealthy bool                            // the proxy's own health
	occupy    []uint16                        // ports taken before this step

	wantErr  string // substring; "" for no error
	wantDump string
	want     map[uint16]string // port -> answer (see answer)
}

func TestSync(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
	}{{
		name: "endpoints decide 200 or 503, and counts change",
		steps: []step{{
			services: map[uint16]types.NamespacedName{30001: svcA, 30002: svcB},
			wantDump: "30001 default/web localEndpoints=0,0\n30002 shop/cart localEndpoints=0,0\n",
			want:     map[uint16]string{30001: "503 default/web 0 true", 30002: "503 shop/cart 0 true"},
		}, {
			endpoints: map[types.NamespacedName][2]int{svcA: {2}, svcC: {7}},
			wantDump:  "30001 default/web localEndpoints=2,0\n30002 shop/cart localEndpoints=0,0\n",
			want:      map[uint16]string{30001: "200 default/web 2 true", 30002: "503 shop/cart 0 true"},
		}, {
			endpoints: map[types.NamespacedName][2]int{svcB: {1}},
			wantDump:  "30001 default/web localEndpoints=0,0\n30002 shop/cart localEndpoints=1,0\n",
			want:      map[uint16]string{30001: "503 default/web 0 true", 30002: "200 shop/cart 1 true"},
		}},
	}, {
		name: "an unhealthy proxy fails every port",
		steps: []step{{
			services:  map[uint16]types.NamespacedName{30001: svcA},
			endpoints: map[types.NamespacedName][2]int{svcA: {1}},
			want:      map[uint16]string{30001: "200 default/web 1 true"},
			wantDump:  "30001 default/web localEndpoints=1,0\n",
		}, {
			unhealthy: true,
			want:      map[uint16]string{30001: "503 default/web 1 false"},
			wantDump:  "30001 default/web localEndpoints=1,0\n",
		}},
	}, {
		name: "ports added and removed; a removed port stops answering",
		steps: []step{{
			services:  map[uint16]types.NamespacedName{30001: svcA},
			endpoints: map[types.NamespacedName][2]int{svcA: {1}, svcB: {1}},
			wantDump:  "30001 default/web localEndpoints=1,0\n",
			want:      map[uint16]string{30001: "200 default/web 1 true", 30002: "refused"},
		}, {
			services:  map[uint16]types.NamespacedName{30001: svcA, 30002: svcB},
			endpoints: map[types.NamespacedName][2]int{svcA: {1}, svcB: {1}},
			wantDump:  "30001 default/web localEndpoints=1,0\n30002 shop/cart localEndpoints=1,0\n",
			want:      map[uint16]string{30001: "200 default/web 1 true", 30002: "200 shop/cart 1 true"},
		}, {
			services:  map[uint16]types.NamespacedName{30002: svcB},
			endpoints: map[types.NamespacedName][2]int{svcA: {1}, svcB: {1}},
			wantDump:  "30002 shop/cart localEndpoints=1,0\n",
			want:      map[uint16]string{30001: "refused", 30002: "200 shop/cart 1 true"},
		}, {
			services: map[uint16]types.NamespacedName{},
			wantDump: "",
			want:     map[uint16]string{30001: "refused", 30002: "refused"},
		}},
	}, {
		name: "a port given to another Service answers for it, with no count until SyncEndpoints",
		steps: []step{{
			services:  map[uint16]types.NamespacedName{30001: svcA},
			endpoints: map[types.NamespacedName][2]int{svcA: {1}, svcB: {2}},
			want:      map[uint16]string{30001: "200 default/web 1 true"},
			wantDump:  "30001 default/web localEndpoints=1,0\n",
		}, {
			services: map[uint16]types.NamespacedName{30001: svcB},
			want:     map[uint16]string{30001: "503 shop/cart 0 true"},
			wantDump: "30001 shop/cart localEndpoints=0,0\n",
		}, {
			endpoints: map[types.NamespacedName][2]int{svcA: {1}, svcB: {2}},
			want:      map[uint16]string{30001: "200 shop/cart 2 true"},
			wantDump:  "30001 shop/cart localEndpoints=2,0\n",
		}},
	}, {
		name: "a port in use fails its Service only, and is retried on the next sync",
		steps: []step{{
			occupy:    []uint16{30002},
			services:  map[uint16]types.NamespacedName{30001: svcA, 30002: svcB, 30003: svcC},
			endpoints: map[types.NamespacedName][2]int{svcA: {1}, svcB: {1}, svcC: {1}},
			wantErr:   "open health check port 30002 for shop/cart: listen tcp 127.0.0.1:",
			wantDump:  "30001 default/web localEndpoints=1,0\n30003 shop/pay localEndpoints=1,0\n",
			want:      map[uint16]string{30001: "200 default/web 1 true", 30002: "refused", 30003: "200 shop/pay 1 true"},
		}, {
			services:  map[uint16]types.NamespacedName{30001: svcA, 30002: svcB, 30003: svcC},
			endpoints: map[types.NamespacedName][2]int{svcA: {1}, svcB: {1}, svcC: {1}},
			wantErr:   "open health check port 30002 for shop/cart",
			wantDump:  "30001 default/web localEndpoints=1,0\n30003 shop/pay localEndpoints=1,0\n",
			want:      map[uint16]string{30001: "200 default/web 1 true", 30003: "200 shop/pay 1 true"},
		}},
	}, {
		name: "port 0 is refused",
		steps: []step{{
			services: map[uint16]types.NamespacedName{0: svcA, 30001: svcB},
			wantErr:  "open health check port 0 for default/web: port 0 is not a node port",
			wantDump: "30001 shop/cart localEndpoints=0,0\n",
			want:     map[uint16]string{30001: "503 shop/cart 0 true"},
		}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lo := newLoopback()
			var unhealthy atomic.Bool
			s := New(Config{Listen: lo.listen, ProxyHealthy: func() bool { return !unhealthy.Load() }})
			t.Cleanup(s.Close)

			for i, st := range tc.steps {
				for _, p := range st.occupy {
					lo.occupy(t, p)
				}
				unhealthy.Store(st.unhealthy)
				var err error
				if st.services != nil {
					err = s.SyncServices(st.services)
				}
				if st.endpoints != nil {
					s.SyncEndpoints(counts(st.endpoints))
				}
				checkErr(t, i, err, st.wantErr)
				if got := s.Dump(); got != st.wantDump {
					t.Errorf("step %d: dump:\n%s\nwant:\n%s", i, got, st.wantDump)
				}
				for port, want := range st.want {
					for _, path := range []string{"/", "/healthz"} {
						if got := answer(t, lo.addr(port), path); got != want {
							t.Errorf("step %d: port %d %s answers %q, want %q", i, port, path, got, want)
						}
					}
				}
			}
		})
	}
}

// counts are Endpoints of the given counts and no families: each
// family's probe is answered with its own count.
func counts(m map[types.NamespacedName][2]int) map[types.NamespacedName]Endpoints {
	eps := map[types.NamespacedName]Endpoints{}
	for svc, c := range m {
		eps[svc] = Endpoints{Count: c}
	}
	return eps
}

func checkErr(t *testing.T, step int, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("step %d: unexpected error: %v", step, err)
	case want != "" && err == nil:
		t.Errorf("step %d: no error, want one containing %q", step, want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("step %d: error %q, want one containing %q", step, err, want)
	}
}

// TestProbeFamilies uses the default ListenFunc on loopback addresses,
// IPv4 and IPv6, with real ports, on one address or on one socket for
// every address. A single-stack Service's port answers probes of
// either family with the count of the family it has, as kube-proxy's one
// proxier that has the Service does on its dual-stack socket (0.0.0.0:port,
// network "tcp"): a load balancer probing a node's IPv4 address for an
// IPv6-only Service must see the node's IPv6 endpoints. A dual-stack
// Service is still answered per family.
func TestProbeFamilies(t *testing.T) {
	v4, v6, dual := [2]bool{true, false}, [2]bool{false, true}, [2]bool{true, true}
	cases := []struct {
		name     string
		families [2]bool
		count    [2]int
		listen   string // "" for one socket for every address
		probe    string
		want     string
	}{
		{"IPv6 only, an IPv4 probe", v6, [2]int{0, 2}, "", "127.0.0.1", "200 default/web 2 true"},
		{"IPv6 only, an IPv6 probe", v6, [2]int{0, 2}, "", "::1", "200 default/web 2 true"},
		{"IPv6 only, an IPv4 probe on an IPv4 address", v6, [2]int{0, 2}, "127.0.0.1", "127.0.0.1", "200 default/web 2 true"},
		{"IPv6 only, no local endpoint", v6, [2]int{0, 0}, "", "127.0.0.1", "503 default/web 0 true"},
		{"IPv6 only, a stale IPv4 count is not read", v6, [2]int{4, 0}, "", "127.0.0.1", "503 default/web 0 true"},
		{"IPv4 only, an IPv6 probe", v4, [2]int{3, 0}, "", "::1", "200 default/web 3 true"},
		{"IPv4 only, an IPv6 probe on an IPv6 address", v4, [2]int{3, 0}, "::1", "::1", "200 default/web 3 true"},
		{"IPv4 only, an IPv4 probe", v4, [2]int{3, 0}, "", "127.0.0.1", "200 default/web 3 true"},
		{"dual-stack, on an IPv4 address", dual, [2]int{3, 2}, "127.0.0.1", "127.0.0.1", "200 default/web 3 true"},
		{"dual-stack, on an IPv6 address", dual, [2]int{3, 2}, "::1", "::1", "200 default/web 2 true"},
		{"dual-stack, one socket, an IPv4 probe", dual, [2]int{3, 2}, "", "127.0.0.1", "200 default/web 3 true"},
		{"dual-stack, one socket, an IPv6 probe", dual, [2]int{3, 2}, "", "::1", "200 default/web 2 true"},
		{"dual-stack, an IPv4 probe", dual, [2]int{0, 2}, "", "127.0.0.1", "503 default/web 0 true"},
		{"dual-stack, an IPv6 probe", dual, [2]int{0, 2}, "", "::1", "200 default/web 2 true"},
		{"dual-stack, an IPv4 probe, IPv4 endpoints", dual, [2]int{3, 0}, "", "127.0.0.1", "200 default/web 3 true"},
		{"dual-stack, an IPv6 probe, IPv4 endpoints", dual, [2]int{3, 0}, "", "::1", "503 default/web 0 true"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			port := freePort(t, tc.probe)
			var addrs []net.IP
			if tc.listen != "" {
				addrs = []net.IP{net.ParseIP(tc.listen)}
			}
			s := New(Config{Addresses: addrs})
			t.Cleanup(s.Close)
			if err := s.SyncServices(map[uint16]types.NamespacedName{port: svcA}); err != nil {
				t.Fatal(err)
			}
			s.SyncEndpoints(map[types.NamespacedName]Endpoints{svcA: {Count: tc.count, Families: tc.families}})
			addr := net.JoinHostPort(tc.probe, strconv.Itoa(int(port)))
			if got := answer(t, addr, "/"); got != tc.want {
				t.Errorf("answer %q, want %q", got, tc.want)
			}
		})
	}
}

// TestPartialListen: when one of the node's addresses is taken, the port
// opens on none, so that the next sync can retry it whole.
func TestPartialListen(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	taken, err := listenTCP(net.JoinHostPort("127.0.0.2", strconv.Itoa(int(port))))
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	defer func() { _ = taken.Close() }()

	var failed []string
	s := New(Config{Addresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("127.0.0.2")},
		ListenFailed: func(svc types.NamespacedName, p uint16, err error) {
			failed = append(failed, fmt.Sprintf("%s %v", svc, p == port && err != nil))
		}})
	t.Cleanup(s.Close)
	err = s.SyncServices(map[uint16]types.NamespacedName{port: svcA})
	checkErr(t, 0, err, "address already in use")
	if got, want := strings.Join(failed, ";"), svcA.String()+" true"; got != want {
		t.Errorf("ListenFailed told %q, want %q", got, want)
	}
	if got := s.Dump(); got != "" {
		t.Errorf("dump %q, want nothing served", got)
	}
	// 127.0.0.1 was opened first; it must have been let go.
	ln, err := listenTCP(net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
	if err != nil {
		t.Fatalf("port still held on 127.0.0.1: %v", err)
	}
	_ = ln.Close()
}

func TestListenAddrs(t *testing.T) {
	cases := []struct {
		name string
		ips  []net.IP
		want string
	}{
		{"all addresses", nil, ":30000"},
		{"no node address in --nodeport-addresses: none", []net.IP{}, ""},
		{"IPv4 and IPv6", []net.IP{net.ParseIP("10.0.0.1"), net.ParseIP("fd00::1")}, "10.0.0.1:30000 [fd00::1]:30000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(listenAddrs(tc.ips, 30000), " "); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestClose(t *testing.T) {
	lo := newLoopback()
	s := New(Config{Listen: lo.listen})
	if err := s.SyncServices(map[uint16]types.NamespacedName{30001: svcA, 30002: svcB}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, port := range []uint16{30001, 30002} {
		if got := answer(t, lo.addr(port), "/"); got != "refused" {
			t.Errorf("port %d answers %q after Close", port, got)
		}
	}
	if got := s.Dump(); got != "" {
		t.Errorf("dump after Close: %q", got)
	}
	checkErr(t, 0, s.SyncServices(map[uint16]types.NamespacedName{30001: svcA}), "closed")
}

// TestConcurrent runs syncs, dumps, health changes and probes at once;
// run it with -race. Every answer must agree with itself: 200 exactly
// when it reports local endpoints and a healthy proxy.
func TestConcurrent(t *testing.T) {
	lo := newLoopback()
	var healthy atomic.Bool
	healthy.Store(true)
	s := New(Config{Listen: lo.listen, ProxyHealthy: healthy.Load})
	t.Cleanup(s.Close)
	if err := s.SyncServices(map[uint16]types.NamespacedName{30001: svcA}); err != nil {
		t.Fatal(err)
	}
	addr := lo.addr(30001)

	stop := make(chan struct{})
	var syncs sync.WaitGroup
	syncs.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			want := map[uint16]types.NamespacedName{30001: svcA}
			if i%2 == 0 {
				want[30002] = svcB // a second port comes and goes
			}
			if err := s.SyncServices(want); err != nil {
				t.Error(err)
				return
			}
			s.SyncEndpoints(counts(map[types.NamespacedName][2]int{svcA: {i % 3}, svcB: {1}}))
			healthy.Store(i%5 != 0)
			_ = s.Dump()
		}
	})

	var probes sync.WaitGroup
	for range 4 {
		probes.Go(func() {
			for range 50 {
				got := answer(t, addr, "/")
				var code, count int
				var name string
				var ok bool
				if _, err := fmt.Sscanf(got, "%d %s %d %t", &code, &name, &count, &ok); err != nil {
					t.Errorf("answer %q: %v", got, err)
					return
				}
				if name != "default/web" || (code == 200) != (count > 0 && ok) || (code != 200 && code != 503) {
					t.Errorf("inconsistent answer %q", got)
				}
			}
		})
	}
	probes.Wait()
	close(stop)
	syncs.Wait()
}
