package ipvs

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	libipvs "github.com/moby/ipvs"
)

const (
	flagPersistent = 0x1 // IP_VS_SVC_F_PERSISTENT
	// The kernel reports every service it holds with IP_VS_SVC_F_HASHED set;
	// it is not something we set, so it is masked before comparing.
	flagHashed = 0x2
)

// Linux is the kernel's IPVS table over moby/ipvs. A moby/ipvs handle is
// not safe for concurrent use (it shares one socket and sequence number),
// so every call holds mu.
type Linux struct {
	mu sync.Mutex
	h  *libipvs.Handle
	// lister is List's own handle: a periodic resync lists on its own
	// goroutine, and a dump of thousands of services on the sync loop's
	// handle held up every change's read and write for as long.
	listMu sync.Mutex
	lister *libipvs.Handle
	// batch makes Write's ops many to a system call (see pkg/nlbatch);
	// reads and single writes stay with moby/ipvs.
	batch *batcher
}

var _ Interface = &Linux{}

// NewLinux opens a netlink handle and checks that the kernel answers. moby/ipvs
// looks up the IPVS generic-netlink family once per process, so a kernel
// without ip_vs loaded at this moment stays unusable until restart: say so.
func NewLinux() (*Linux, error) {
	if err := loaded(); err != nil {
		return nil, err
	}
	h, err := libipvs.New("")
	if err != nil {
		return nil, fmt.Errorf("open IPVS netlink socket: %w", err)
	}
	if _, err := h.GetServices(); err != nil {
		h.Close()
		return nil, fmt.Errorf("the kernel has no IPVS (load it with `modprobe ip_vs`): %w", err)
	}
	lister, err := libipvs.New("")
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("open IPVS netlink socket: %w", err)
	}
	b, err := newBatcher()
	if err != nil {
		h.Close()
		lister.Close()
		return nil, err
	}
	return &Linux{h: h, lister: lister, batch: b}, nil
}

func (l *Linux) Close() {
	l.h.Close()
	l.lister.Close()
	l.batch.close()
}

func (l *Linux) Write(ops []Op) []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.batch.write(ops)
}

// loaded checks for IPVS before moby/ipvs is asked: with no ip_vs module,
// moby/ipvs logs a warning and then answers every dump with an empty list,
// which would read as "no virtual servers" rather than "no IPVS".
func loaded() error {
	if _, err := os.Stat("/proc/net/ip_vs"); err == nil {
		return nil
	}
	out, err := exec.Command("modprobe", "ip_vs").CombinedOutput()
	if _, statErr := os.Stat("/proc/net/ip_vs"); statErr == nil {
		return nil
	}
	return fmt.Errorf("the kernel has no IPVS: /proc/net/ip_vs is missing and `modprobe ip_vs` failed (%v: %s); load the ip_vs module on the node", err, strings.TrimSpace(string(out)))
}

// List dumps every virtual server over netlink and reads their
// destinations from /proc/net/ip_vs (see procFile). Neither read is atomic
// against other writers; a list that missed an entry costs at most a
// redundant add ("exists" is success) or a deletion left to the next
// resync.
func (l *Linux) List() ([]VirtualServer, error) {
	l.listMu.Lock()
	svcs, err := l.lister.GetServices()
	l.listMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("list IPVS services: %w", err)
	}
	data, err := os.ReadFile(procFile)
	if err != nil {
		return nil, fmt.Errorf("list IPVS real servers: %w", err)
	}
	dests, err := ParseProc(data)
	if err != nil {
		return nil, err
	}
	out := make([]VirtualServer, 0, len(svcs))
	for _, s := range svcs {
		if s.FWMark != 0 && !OwnedMark(s.FWMark) {
			continue // another program's firewall-mark service
		}
		svc, err := fromLib(s)
		if err != nil {
			return nil, err
		}
		out = append(out, VirtualServer{Service: svc, Destinations: dests[svc.ServiceKey]})
	}
	return out, nil
}

func (l *Linux) Get(key ServiceKey) (VirtualServer, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, err := l.h.GetService(toLib(Service{ServiceKey: key}))
	if err != nil {
		// The kernel answers IPVS_CMD_GET_SERVICE for a missing service
		// with ESRCH (ip_vs_genl_get_cmd), which moby/ipvs returns as is.
		if mapErrno(err) == ErrNotFound {
			return VirtualServer{}, false, nil
		}
		return VirtualServer{}, false, fmt.Errorf("get IPVS service %s: %w", key, err)
	}
	vs, err := l.read(s)
	return vs, err == nil, err
}

func (l *Linux) read(s *libipvs.Service) (VirtualServer, error) {
	svc, err := fromLib(s)
	if err != nil {
		return VirtualServer{}, err
	}
	dsts, err := l.h.GetDestinations(s)
	if err != nil {
		return VirtualServer{}, fmt.Errorf("list real servers of %s: %w", svc.ServiceKey, err)
	}
	vs := VirtualServer{Service: svc}
	for _, d := range dsts {
		addr, ok := netip.AddrFromSlice(d.Address)
		if !ok {
			return VirtualServer{}, fmt.Errorf("real server of %s has a bad address %v", svc.ServiceKey, d.Address)
		}
		vs.Destinations = append(vs.Destinations, Destination{
			Addr: addr.Unmap(), Port: d.Port, Weight: d.Weight,
			ActiveConns: d.ActiveConnections, InactiveConns: d.InactiveConnections,
		})
	}
	return vs, nil
}

// DeleteService goes through the batch encoder like every other write.
func (l *Linux) DeleteService(key ServiceKey) error {
	return l.Write([]Op{{Kind: OpDeleteService, Service: Service{ServiceKey: key}}})[0]
}

func mapErrno(err error) error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return nil
	}
	switch errno {
	case syscall.EEXIST:
		return ErrExists
	case syscall.ESRCH, syscall.ENOENT:
		return ErrNotFound
	}
	return nil
}

var protoNumbers = map[Protocol]uint16{TCP: syscall.IPPROTO_TCP, UDP: syscall.IPPROTO_UDP, SCTP: 132}

func toLib(s Service) *libipvs.Service {
	ls := &libipvs.Service{
		Address:   net.IP(s.Addr.AsSlice()),
		Protocol:  protoNumbers[s.Proto],
		Port:      s.Port,
		FWMark:    s.FWMark,
		SchedName: s.Scheduler,
	}
	if s.FWMark != 0 {
		ls.Address, ls.Protocol = nil, 0 // moby/ipvs sends either the mark or the address
	}
	// moby/ipvs sends the netmask as given; the kernel rejects 0 for a
	// non-fwmark service of either family.
	if s.Addr.Is4() {
		ls.AddressFamily, ls.Netmask = syscall.AF_INET, 0xffffffff
	} else {
		ls.AddressFamily, ls.Netmask = syscall.AF_INET6, 128
	}
	if s.Persistent {
		ls.Flags, ls.Timeout = flagPersistent, s.Timeout
	}
	ls.Flags |= s.SchedFlags & schedFlagsMask
	return ls
}

func fromLib(s *libipvs.Service) (Service, error) {
	if s.FWMark != 0 {
		svc := Service{ServiceKey: FWMarkKey(s.FWMark, s.AddressFamily == syscall.AF_INET6), Scheduler: s.SchedName,
			SchedFlags: s.Flags & schedFlagsMask}
		if s.Flags&^flagHashed&flagPersistent != 0 {
			svc.Persistent, svc.Timeout = true, s.Timeout
		}
		return svc, nil
	}
	addr, ok := netip.AddrFromSlice(s.Address)
	if !ok {
		return Service{}, fmt.Errorf("IPVS service with a bad address %v", s.Address)
	}
	if s.AddressFamily == syscall.AF_INET {
		addr = addr.Unmap()
	}
	var proto Protocol
	for p, n := range protoNumbers {
		if n == s.Protocol {
			proto = p
		}
	}
	if proto == "" {
		proto = Protocol(fmt.Sprintf("proto-%d", s.Protocol))
	}
	svc := Service{ServiceKey: ServiceKey{Addr: addr, Proto: proto, Port: s.Port}, Scheduler: s.SchedName,
		SchedFlags: s.Flags & schedFlagsMask}
	if s.Flags&^flagHashed&flagPersistent != 0 {
		svc.Persistent, svc.Timeout = true, s.Timeout
	}
	return svc, nil
}

// SetTimeouts sets the IPVS connection timeouts (`ipvsadm --set`); a zero
// leaves the kernel's value, as the kernel itself treats 0.
func (l *Linux) SetTimeouts(tcp, tcpFin, udp time.Duration) error {
	if tcp == 0 && tcpFin == 0 && udp == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.h.SetConfig(&libipvs.Config{TimeoutTCP: tcp, TimeoutTCPFin: tcpFin, TimeoutUDP: udp}); err != nil {
		return fmt.Errorf("set IPVS timeouts: %w", err)
	}
	return nil
}
