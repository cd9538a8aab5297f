package healthcheck

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// Config says how to listen. Every port listens on all addresses
// (":port"). The zero value treats the proxy as always healthy.
type Config struct {
	// Listen opens one listener; nil means a plain TCP listen.
	Listen ListenFunc
	// ProxyHealthy reports whether the proxy applies changes in time (the
	// "healthy" of /healthz, without node eligibility, as in kube-proxy).
	// nil means always healthy.
	ProxyHealthy func() bool
}

// Server runs one HTTP server per health check node port. Its methods are
// safe to call from the sync loop while HTTP handlers run.
type Server struct {
	listen  ListenFunc
	healthy func() bool

	// mu guards ports, closed and every instance's count. It is held
	// while listeners open and close, so handlers wait for a sync to
	// finish rather than read half of one.
	mu     sync.RWMutex
	ports  map[uint16]*instance
	closed bool
	// serving counts Serve goroutines, so that Close returns only when
	// none is left.
	serving sync.WaitGroup
}

// instance is the server of one port.
type instance struct {
	port    uint16
	service types.NamespacedName
	count   int // local ready endpoints; guarded by Server.mu
	server  *http.Server
}

// New returns a Server that serves no port until SyncServices.
func New(cfg Config) *Server {
	s := &Server{
		listen:  cfg.Listen,
		healthy: cfg.ProxyHealthy,
		ports:   map[uint16]*instance{},
	}
	if s.listen == nil {
		s.listen = listenTCP
	}
	if s.healthy == nil {
		s.healthy = func() bool { return true }
	}
	return s
}

// SyncServices makes the served ports exactly those of want: it closes the
// ports no longer wanted, or wanted for another Service, then opens the new
// ones. A port that cannot be opened does not stop the others; its error,
// naming the Service, is part of the returned error, and the next
// SyncServices tries it again.
func (s *Server) SyncServices(want map[uint16]types.NamespacedName) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("health check server is closed")
	}

	// Close first, so that a port moving from one Service to another is
	// free when it is opened again below.
	for port, inst := range s.ports {
		if svc, ok := want[port]; !ok || svc != inst.service {
			klog.V(2).InfoS("Closing health check port", "service", inst.service, "port", port)
			inst.close()
			delete(s.ports, port)
		}
	}

	var errs []error
	for _, port := range slices.Sorted(maps.Keys(want)) {
		if s.ports[port] != nil {
			continue
		}
		svc := want[port]
		if err := s.open(port, svc); err != nil {
			errs = append(errs, fmt.Errorf("open health check port %d for %s: %w", port, svc, err))
			continue
		}
		klog.V(2).InfoS("Opened health check port", "service", svc, "port", port)
	}
	return errors.Join(errs...)
}

// open listens on port on all addresses.
func (s *Server) open(port uint16, svc types.NamespacedName) error {
	if port == 0 {
		return errors.New("port 0 is not a node port")
	}
	ln, err := s.listen(":" + strconv.Itoa(int(port)))
	if err != nil {
		return err
	}
	inst := &instance{port: port, service: svc}
	inst.server = &http.Server{
		Handler: handler{s: s, inst: inst},
		// kube-proxy sets no timeout. These ports face the network, so a
		// client that never sends its headers must not hold a connection
		// for ever; probes send theirs at once.
		ReadHeaderTimeout: 10 * time.Second,
	}
	s.serving.Go(func() {
		if err := inst.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "Health check server stopped", "service", svc, "address", ln.Addr())
		}
	})
	s.ports[port] = inst
	return nil
}

// close stops the instance's server and cuts its connections at once, as
// kube-proxy does: a load balancer must not keep probing a port that no
// longer belongs to the Service.
func (inst *instance) close() {
	if err := inst.server.Close(); err != nil {
		klog.ErrorS(err, "Closing health check server", "service", inst.service, "port", inst.port)
	}
}

// SyncEndpoints sets the number of local ready endpoints of every served
// Service; a Service missing from counts has none. Counts of Services not
// served are dropped, as in kube-proxy: call SyncServices first.
func (s *Server) SyncEndpoints(counts map[types.NamespacedName]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, inst := range s.ports {
		inst.count = counts[inst.service]
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
// "<port> <namespace>/<name> localEndpoints=<n>".
func (s *Server) Dump() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var b strings.Builder
	for _, port := range slices.Sorted(maps.Keys(s.ports)) {
		inst := s.ports[port]
		fmt.Fprintf(&b, "%d %s localEndpoints=%d\n", port, inst.service, inst.count)
	}
	return b.String()
}

// endpoints is inst's count, and whether inst is still served.
func (s *Server) endpoints(inst *instance) (int, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return inst.count, s.ports[inst.port] == inst
}
