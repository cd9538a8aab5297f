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
			wantErr:   "open health check port 30002 for shop/cart: listen tcp4 127.0.0.1:",
			// Its IPv6 socket opened: each family stands alone.
			wantDump: "30001 default/web localEndpoints=1,0\n30002 shop/cart localEndpoints=1,0 IPv6 only\n30003 shop/pay localEndpoints=1,0\n",
			want:     map[uint16]string{30001: "200 default/web 1 true", 30002: "refused", 30003: "200 shop/pay 1 true"},
		}, {
			services:  map[uint16]types.NamespacedName{30001: svcA, 30002: svcB, 30003: svcC},
			endpoints: map[types.NamespacedName][2]int{svcA: {1}, svcB: {1}, svcC: {1}},
			wantErr:   "open health check port 30002 for shop/cart",
			wantDump:  "30001 default/web localEndpoints=1,0\n30002 shop/cart localEndpoints=1,0 IPv6 only\n30003 shop/pay localEndpoints=1,0\n",
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
					err = s.SyncServices(ports(st.services))
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

// counts are Endpoints of the given counts.
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
// IPv4 and IPv6, with real ports, on one address or on every address. A
// port listens in its Service's families alone, each probe answered with
// its own family's count, as kube-proxy's health server of each family
// listens ("tcp4" or "tcp6") for its own family's Services: a probe of a
// family the Service lacks is refused.
func TestProbeFamilies(t *testing.T) {
	v4, v6, dual := [2]bool{true, false}, [2]bool{false, true}, [2]bool{true, true}
	cases := []struct {
		name     string
		families [2]bool
		count    [2]int
		listen   string // "" for every address
		probe    string
		want     string
	}{
		{"IPv6 only, an IPv4 probe", v6, [2]int{0, 2}, "", "127.0.0.1", "refused"},
		{"IPv6 only, an IPv6 probe", v6, [2]int{0, 2}, "", "::1", "200 default/web 2 true"},
		{"IPv6 only, an IPv4 node address is not listened on", v6, [2]int{0, 2}, "127.0.0.1", "127.0.0.1", "refused"},
		{"IPv6 only, on an IPv6 address", v6, [2]int{0, 2}, "::1", "::1", "200 default/web 2 true"},
		{"IPv6 only, no local endpoint", v6, [2]int{0, 0}, "", "::1", "503 default/web 0 true"},
		{"IPv4 only, an IPv6 probe", v4, [2]int{3, 0}, "", "::1", "refused"},
		{"IPv4 only, an IPv6 node address is not listened on", v4, [2]int{3, 0}, "::1", "::1", "refused"},
		{"IPv4 only, an IPv4 probe", v4, [2]int{3, 0}, "", "127.0.0.1", "200 default/web 3 true"},
		{"dual-stack, on an IPv4 address", dual, [2]int{3, 2}, "127.0.0.1", "127.0.0.1", "200 default/web 3 true"},
		{"dual-stack, on an IPv6 address", dual, [2]int{3, 2}, "::1", "::1", "200 default/web 2 true"},
		{"dual-stack, every address, an IPv4 probe", dual, [2]int{3, 2}, "", "127.0.0.1", "200 default/web 3 true"},
		{"dual-stack, every address, an IPv6 probe", dual, [2]int{3, 2}, "", "::1", "200 default/web 2 true"},
		{"dual-stack, an IPv4 probe, IPv6 endpoints", dual, [2]int{0, 2}, "", "127.0.0.1", "503 default/web 0 true"},
		{"dual-stack, an IPv6 probe, IPv4 endpoints", dual, [2]int{3, 0}, "", "::1", "503 default/web 0 true"},
		{"no families given: both", [2]bool{}, [2]int{3, 2}, "", "::1", "200 default/web 2 true"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			port := freePort(t, tc.probe)
			var addrs [2][]net.IP // every address of each family
			if tc.listen != "" {
				// The one address, and none of the other family.
				ip := net.ParseIP(tc.listen)
				addrs = [2][]net.IP{{}, {}}
				addrs[family(ip)] = []net.IP{ip}
			}
			s := New(Config{Addresses: addrs})
			t.Cleanup(s.Close)
			if err := s.SyncServices(map[uint16]Port{port: {Service: svcA, Families: tc.families}}); err != nil {
				t.Fatal(err)
			}
			s.SyncEndpoints(map[types.NamespacedName]Endpoints{svcA: {Count: tc.count}})
			addr := net.JoinHostPort(tc.probe, strconv.Itoa(int(port)))
			if got := answer(t, addr, "/"); got != tc.want {
				t.Errorf("answer %q, want %q", got, tc.want)
			}
		})
	}
}

// TestFamiliesChange: a Service that gains or loses a family has its port
// opened again in its new families, and its dump says which.
func TestFamiliesChange(t *testing.T) {
	port := freePort(t, "::1")
	s := New(Config{})
	t.Cleanup(s.Close)
	v4 := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
	v6 := net.JoinHostPort("::1", strconv.Itoa(int(port)))
	for i, st := range []struct {
		families       [2]bool
		dump, at4, at6 string
	}{
		{[2]bool{true, false}, " IPv4 only", "200 default/web 3 true", "refused"},
		{[2]bool{true, true}, "", "200 default/web 3 true", "200 default/web 2 true"},
		{[2]bool{false, true}, " IPv6 only", "refused", "200 default/web 2 true"},
	} {
		if err := s.SyncServices(map[uint16]Port{port: {Service: svcA, Families: st.families}}); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		s.SyncEndpoints(map[types.NamespacedName]Endpoints{svcA: {Count: [2]int{3, 2}}})
		if got, want := s.Dump(), fmt.Sprintf("%d default/web localEndpoints=3,2%s\n", port, st.dump); got != want {
			t.Errorf("step %d: dump %q, want %q", i, got, want)
		}
		if got := answer(t, v4, "/"); got != st.at4 {
			t.Errorf("step %d: IPv4 probe answered %q, want %q", i, got, st.at4)
		}
		if got := answer(t, v6, "/"); got != st.at6 {
			t.Errorf("step %d: IPv6 probe answered %q, want %q", i, got, st.at6)
		}
	}
}

// TestPartialListen: when one of the node's addresses is taken, the port
// opens on none, so that the next sync can retry it whole.
func TestPartialListen(t *testing.T) {
	port := freePort(t, "127.0.0.1")
	taken, err := listenTCP("tcp4", net.JoinHostPort("127.0.0.2", strconv.Itoa(int(port))))
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	defer func() { _ = taken.Close() }()

	var failed []string
	s := New(Config{Addresses: [2][]net.IP{{net.ParseIP("127.0.0.1"), net.ParseIP("127.0.0.2")}, {}},
		ListenFailed: func(svc types.NamespacedName, p uint16, err error) {
			failed = append(failed, fmt.Sprintf("%s %v", svc, p == port && err != nil))
		}})
	t.Cleanup(s.Close)
	err = s.SyncServices(ports(map[uint16]types.NamespacedName{port: svcA}))
	checkErr(t, 0, err, "address already in use")
	if got, want := strings.Join(failed, ";"), svcA.String()+" true"; got != want {
		t.Errorf("ListenFailed told %q, want %q", got, want)
	}
	if got := s.Dump(); got != "" {
		t.Errorf("dump %q, want nothing served", got)
	}
	// 127.0.0.1 was opened first; it must have been let go.
	ln, err := listenTCP("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
	if err != nil {
		t.Fatalf("port still held on 127.0.0.1: %v", err)
	}
	_ = ln.Close()
}

func TestListenAddrs(t *testing.T) {
	node := []net.IP{net.ParseIP("10.0.0.1"), net.ParseIP("fd00::1")}
	cases := []struct {
		name   string
		ips    []net.IP
		family int
		want   string
	}{
		{"every IPv4 address", nil, 0, "tcp4 0.0.0.0:30000"},
		{"every IPv6 address", nil, 1, "tcp6 [::]:30000"},
		{"no node address in --nodeport-addresses: none", []net.IP{}, 0, ""},
		{"node addresses, IPv4", node, 0, "tcp4 10.0.0.1:30000"},
		{"node addresses, IPv6", node, 1, "tcp6 [fd00::1]:30000"},
		{"an IPv4 node address, IPv6: none", node[:1], 1, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, a := range listenAddrs(tc.ips, tc.family, 30000) {
				got = append(got, a.network+" "+a.addr)
			}
			if s := strings.Join(got, ", "); s != tc.want {
				t.Errorf("got %q, want %q", s, tc.want)
			}
		})
	}
}

// TestFamilyFailsAlone: a family whose socket cannot be opened leaves the
// other family serving, as kube-proxy's two health servers do, and is
// opened at the next sync once it can be. Before, a dual-stack port was
// opened in both families or none, so an IPv6 socket taken (or a kernel
// without IPv6) also refused every IPv4 probe.
func TestFamilyFailsAlone(t *testing.T) {
	port := freePort(t, "::1")
	held, err := listenTCP("tcp6", net.JoinHostPort("::", strconv.Itoa(int(port))))
	if err != nil {
		t.Skipf("cannot listen on [::]:%d: %v", port, err)
	}
	s := New(Config{})
	t.Cleanup(s.Close)
	v4 := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
	v6 := net.JoinHostPort("::1", strconv.Itoa(int(port)))
	dual := map[uint16]Port{port: {Service: svcA, Families: [2]bool{true, true}}}
	eps := map[types.NamespacedName]Endpoints{svcA: {Count: [2]int{3, 2}}}

	checkErr(t, 0, s.SyncServices(dual), "address already in use")
	s.SyncEndpoints(eps)
	if got, want := s.Dump(), fmt.Sprintf("%d default/web localEndpoints=3,2 IPv4 only\n", port); got != want {
		t.Errorf("dump %q, want %q", got, want)
	}
	if got := answer(t, v4, "/"); got != "200 default/web 3 true" {
		t.Errorf("IPv4 probe while the IPv6 socket is taken: %q", got)
	}

	_ = held.Close()
	checkErr(t, 1, s.SyncServices(dual), "")
	s.SyncEndpoints(eps)
	if got := answer(t, v6, "/"); got != "200 default/web 2 true" {
		t.Errorf("IPv6 probe once the socket is free: %q", got)
	}
	if got := answer(t, v4, "/"); got != "200 default/web 3 true" {
		t.Errorf("IPv4 probe after the retry: %q", got)
	}
}

func TestClose(t *testing.T) {
	lo := newLoopback()
	s := New(Config{Listen: lo.listen})
	if err := s.SyncServices(ports(map[uint16]types.NamespacedName{30001: svcA, 30002: svcB})); err != nil {
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
	checkErr(t, 0, s.SyncServices(ports(map[uint16]types.NamespacedName{30001: svcA})), "closed")
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
	if err := s.SyncServices(ports(map[uint16]types.NamespacedName{30001: svcA})); err != nil {
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
			if err := s.SyncServices(ports(want)); err != nil {
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
