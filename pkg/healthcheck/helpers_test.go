package healthcheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

var (
	svcA = types.NamespacedName{Namespace: "default", Name: "web"}
	svcB = types.NamespacedName{Namespace: "shop", Name: "cart"}
	svcC = types.NamespacedName{Namespace: "shop", Name: "pay"}
)

// loopback is a ListenFunc that opens every requested port, of either
// family, as an ephemeral port on 127.0.0.1, so tests never bind node
// ports or non-loopback addresses. A requested address in busy is opened
// on the address of a listener the test holds, so it fails with the
// kernel's own EADDRINUSE.
type loopback struct {
	mu   sync.Mutex
	real map[string]string // requested "host:port" -> listening address
	busy map[string]string // requested "host:port" -> address already taken
}

func newLoopback() *loopback {
	return &loopback{real: map[string]string{}, busy: map[string]string{}}
}

func (l *loopback) listen(_, addr string) (net.Listener, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	target := "127.0.0.1:0"
	if taken, ok := l.busy[addr]; ok {
		target = taken
	}
	ln, err := listenTCP("tcp4", target)
	if err != nil {
		return nil, err
	}
	l.real[addr] = ln.Addr().String()
	return ln, nil
}

// occupy makes port fail to open, by holding the stand-in address of its
// IPv4 socket.
func (l *loopback) occupy(t *testing.T, port uint16) {
	t.Helper()
	ln, err := listenTCP("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	l.mu.Lock()
	defer l.mu.Unlock()
	l.busy[anyIPv4(port)] = ln.Addr().String()
}

// addr is where port's IPv4 socket (opened on all addresses) really
// listens.
func (l *loopback) addr(port uint16) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.real[anyIPv4(port)]
}

// anyIPv4 is the address of port's socket on every IPv4 address.
func anyIPv4(port uint16) string { return "0.0.0.0:" + strconv.Itoa(int(port)) }

// ports are every given port served in both families.
func ports(m map[uint16]types.NamespacedName) map[uint16]Port {
	if m == nil {
		return nil
	}
	want := map[uint16]Port{}
	for port, svc := range m {
		want[port] = Port{Service: svc}
	}
	return want
}

var client = &http.Client{
	Timeout: 5 * time.Second,
	// A fresh connection each time: a kept-alive one could outlive a
	// closed server and hide that the port stopped answering.
	Transport: &http.Transport{DisableKeepAlives: true},
}

// answer is what addr answers to GET path, summarised as
// "<code> <namespace>/<name> <localEndpoints> <serviceProxyHealthy>",
// or "refused" when nothing listens.
func answer(t *testing.T, addr, path string) string {
	t.Helper()
	if addr == "" {
		return "refused" // never opened
	}
	resp, err := client.Get("http://" + addr + path)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return "refused"
	}
	if err != nil {
		t.Fatalf("GET %s%s: %v", addr, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s%s: %v", addr, path, err)
	}
	var b struct {
		Service struct {
			Namespace, Name string
		}
		LocalEndpoints      int
		ServiceProxyHealthy bool
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatalf("GET %s%s: %d, body %q is not JSON: %v", addr, path, resp.StatusCode, raw, err)
	}
	if w := resp.Header.Get("X-Load-Balancing-Endpoint-Weight"); w != strconv.Itoa(b.LocalEndpoints) {
		t.Errorf("GET %s%s: weight header %q, body says %d endpoints", addr, path, w, b.LocalEndpoints)
	}
	return fmt.Sprintf("%d %s/%s %d %v", resp.StatusCode, b.Service.Namespace, b.Service.Name, b.LocalEndpoints, b.ServiceProxyHealthy)
}

// freePort is a loopback port free a moment ago, for the tests that use
// the real ListenFunc with a fixed port.
func freePort(t *testing.T, host string) uint16 {
	t.Helper()
	network := "tcp4"
	if strings.Contains(host, ":") {
		network = "tcp6"
	}
	ln, err := listenTCP(network, net.JoinHostPort(host, "0"))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", host, err)
	}
	defer func() { _ = ln.Close() }()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// family is 0 for an IPv4 address, 1 for IPv6.
func family(ip net.IP) int {
	if ip.To4() != nil {
		return 0
	}
	return 1
}
