package healthcheck

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// Config says where and how to listen. The zero value listens on all
// addresses and treats the proxy as always healthy.
type Config struct {
	// Addresses are, by family ([0] IPv4, [1] IPv6), the node IPs to
	// listen on for the Services of that family. nil means every address
	// of the family (0.0.0.0 or ::), as kube-proxy listens for a family
	// that --nodeport-addresses names no prefix of; an empty list none (no
	// node address is inside the family's prefixes).
	Addresses [2][]net.IP
	// Listen opens one listener; nil means a plain TCP listen.
	Listen ListenFunc
	// ProxyHealthy reports whether the proxy applies changes in time (the
	// "healthy" of /healthz, without node eligibility, as in kube-proxy).
	// nil means always healthy.
	ProxyHealthy func() bool
	// ListenFailed, if set, is told of each port that could not be
	// opened, on every sync that tries it: kube-proxy makes it a Warning
	// Event (FailedToStartServiceHealthcheck) on the Service.
	ListenFailed func(svc types.NamespacedName, port uint16, err error)
}

// Server runs one HTTP server per health check node port and address. Its
// methods are safe to call from the sync loop while HTTP handlers run.
type Server struct {
	addrs        [2][]net.IP
	listen       ListenFunc
	healthy      func() bool
	listenFailed func(svc types.NamespacedName, port uint16, err error)

	// mu guards ports, closed and every instance's eps and servers. It is held while listeners open and close, so handlers
	// wait for a sync to finish rather than read half of one.
	mu     sync.RWMutex
	ports  map[uint16]*instance
	closed bool
	// serving counts Serve goroutines, so that Close returns only when
	// none is left.
	serving sync.WaitGroup
}

// Port is one health check node port's Service and the families it is
// served in.
type Port struct {
	Service types.NamespacedName
	// Families are the Service's families, [0] IPv4 and [1] IPv6. The
	// port listens in those alone, as kube-proxy does: its proxier of
	// each family serves only its own family's Services, on a "tcp4" or
	// a "tcp6" socket, so a probe of a family the Service lacks is
	// refused, and a load balancer sees no node answer for a family the
	// Service is not served in. None set means both.
	Families [2]bool
}

// families is which families p listens in.
func (p Port) families() [2]bool {
	if p.Families == ([2]bool{}) {
		return [2]bool{true, true}
	}
	return p.Families
}

// instance is the servers of one port, by family. Each family is opened
// and closed on its own, as kube-proxy's health server of each family
// is: a family that cannot be opened (its port taken, no IPv6 in the
// kernel) leaves the other serving, and is tried again at the next sync.
type instance struct {
	port    uint16
	service types.NamespacedName
	eps     Endpoints // guarded by Server.mu
	servers [2][]*http.Server
}

// New returns a Server that serves no port until SyncServices.
func New(cfg Config) *Server {
	s := &Server{
		addrs:   [2][]net.IP{cloneIPs(cfg.Addresses[0]), cloneIPs(cfg.Addresses[1])},
		listen:  cfg.Listen,
		healthy: cfg.ProxyHealthy,
		ports:   map[uint16]*instance{},

		listenFailed: cfg.ListenFailed,
	}
	if s.listen == nil {
		s.listen = listenTCP
	}
	if s.healthy == nil {
		s.healthy = func() bool { return true }
	}
	return s
}

// cloneIPs copies ips, keeping nil (every address) apart from empty (none).
func cloneIPs(ips []net.IP) []net.IP {
	if ips == nil {
		return nil
	}
	return append([]net.IP{}, ips...)
}

// SyncServices makes the served ports exactly those of want: it closes the
// ports no longer wanted, or wanted for another Service, and the families a
// port's Service no longer has, then opens what is missing. A port or a
// family that cannot be opened does not stop the others; its error, naming
// the Service, is part of the returned error, and the next SyncServices
// tries it again.
func (s *Server) SyncServices(want map[uint16]Port) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("health check server is closed")
	}

	// Close first, so that a port moving from one Service to another is
	// free when it is opened again below.
	for port, inst := range s.ports {
		if p, ok := want[port]; !ok || p.Service != inst.service {
			klog.V(2).InfoS("Closing health check port", "service", inst.service, "port", port)
			inst.close()
			delete(s.ports, port)
		}
	}

	var errs []error
	for _, port := range slices.Sorted(maps.Keys(want)) {
		p := want[port]
		if port == 0 {
			s.failed(&errs, p.Service, port, errors.New("port 0 is not a node port"))
			continue
		}
		inst := s.ports[port]
		if inst == nil {
			inst = &instance{port: port, service: p.Service}
			s.ports[port] = inst
		}
		fams, on := p.families(), inst.listening()
		for f := range fams {
			switch {
			case !fams[f] && on[f]:
				klog.V(2).InfoS("Closing health check port in a family the Service left", "service", p.Service, "port", port, "family", familyNames(oneFamily(f)))
				inst.closeFamily(f)
			case fams[f] && !on[f]:
				// A family with no address inside --nodeport-addresses
				// opens nothing, at every sync.
				if err := s.openFamily(inst, f); err != nil {
					s.failed(&errs, p.Service, port, err)
				} else if len(inst.servers[f]) > 0 {
					klog.V(2).InfoS("Opened health check port", "service", p.Service, "port", port, "family", familyNames(oneFamily(f)))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// failed records that port could not be opened for svc.
func (s *Server) failed(errs *[]error, svc types.NamespacedName, port uint16, err error) {
	*errs = append(*errs, fmt.Errorf("open health check port %d for %s: %w", port, svc, err))
	if s.listenFailed != nil {
		s.listenFailed(svc, port, err)
	}
}

// openFamily listens on inst's port on every address of family f, or on
// none: a family half open would hold the port yet fail the retry on the
// next sync.
func (s *Server) openFamily(inst *instance, f int) error {
	var lns []net.Listener
	for _, a := range listenAddrs(s.addrs[f], f, inst.port) {
		ln, err := s.listen(a.network, a.addr)
		if err != nil {
			for _, l := range lns {
				_ = l.Close()
			}
			return err
		}
		lns = append(lns, ln)
	}
	svc := inst.service
	for _, ln := range lns {
		srv := &http.Server{
			Handler: handler{s: s, inst: inst},
			// kube-proxy sets no timeout. These ports face the network,
			// so a client that never sends its headers must not hold a
			// connection for ever; probes send theirs at once.
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      10 * time.Second,
			IdleTimeout:       60 * time.Second,
		}
		inst.servers[f] = append(inst.servers[f], srv)
		s.serving.Go(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				klog.ErrorS(err, "Health check server stopped", "service", svc, "address", ln.Addr())
			}
		})
	}
	return nil
}

// close stops the instance's servers and cuts their connections at once,
// as kube-proxy does: a load balancer must not keep probing a port that
// no longer belongs to the Service.
func (inst *instance) close() {
	for f := range inst.servers {
		inst.closeFamily(f)
	}
}

// listening is which families inst has a socket in.
func (inst *instance) listening() [2]bool {
	return [2]bool{len(inst.servers[0]) > 0, len(inst.servers[1]) > 0}
}

// closeFamily stops the servers of family f.
func (inst *instance) closeFamily(f int) {
	for _, srv := range inst.servers[f] {
		if err := srv.Close(); err != nil {
			klog.ErrorS(err, "Closing health check server", "service", inst.service, "port", inst.port)
		}
	}
	inst.servers[f] = nil
}

// Endpoints is what one Service's port answers from.
type Endpoints struct {
	// Count is the Service's local ready endpoints by family, [0] IPv4
	// and [1] IPv6: a probe is answered with its own family's, as
	// kube-proxy's health server of each family answers with its
	// proxier's count.
	Count [2]int
}

// SyncEndpoints sets the local ready endpoints of every served Service. A Service
// missing from eps has none. Those of Services not served are dropped, as
// in kube-proxy: call SyncServices first.
func (s *Server) SyncEndpoints(eps map[types.NamespacedName]Endpoints) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, inst := range s.ports {
		inst.eps = eps[inst.service]
	}
}

// Close stops every port and waits for their servers to return. The
// Server serves nothing afterwards.
func (s *Server) Close() {
	s.mu.Lock()
	for port, inst := range s.ports {
		inst.close()
		delete(s.ports, port)
	}
	s.closed = true
	s.mu.Unlock()
	s.serving.Wait()
}

// Dump is what is served, one port a line in port order:
// "<port> <namespace>/<name> localEndpoints=<IPv4>,<IPv6>", and " IPv4
// only" or " IPv6 only" for a port listening in one family. A port
// listening nowhere is left out.
func (s *Server) Dump() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var b strings.Builder
	for _, port := range slices.Sorted(maps.Keys(s.ports)) {
		inst := s.ports[port]
		on := inst.listening()
		if on == ([2]bool{}) {
			continue
		}
		fmt.Fprintf(&b, "%d %s localEndpoints=%d,%d%s\n", port, inst.service, inst.eps.Count[0], inst.eps.Count[1], onlyIn(on))
	}
	return b.String()
}

// endpoints is inst's count for a probe of family (0 IPv4, 1 IPv6), and
// whether inst is still served.
func (s *Server) endpoints(inst *instance, family int) (int, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return inst.eps.Count[family], s.ports[inst.port] == inst
}
