package ipvs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
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

// Linux is the kernel's IPVS table. Reads and writes go over pkg/nlbatch
// sockets (see batcher); moby/ipvs is left for the start-up check and the
// connection timeouts. A socket's calls on the sync loop's side hold mu.
type Linux struct {
	mu sync.Mutex
	h  *libipvs.Handle
	// lister is List's own socket: a periodic resync lists on its own
	// goroutine, and a dump of thousands of services on the sync loop's
	// socket held up every change's read and write for as long.
	listMu sync.Mutex
	lister *batcher
	// batch makes Write's ops many to a system call (see pkg/nlbatch),
	// and reads one virtual server for Get.
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
	lister, err := newBatcher()
	if err != nil {
		h.Close()
		return nil, err
	}
	b, err := newBatcher()
	if err != nil {
		h.Close()
		lister.close()
		return nil, err
	}
	return &Linux{h: h, lister: lister, batch: b}, nil
}

func (l *Linux) Close() {
	l.h.Close()
	l.lister.close()
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
	defer l.listMu.Unlock()
	svcs, err := l.lister.services()
	if err != nil {
		return nil, err
	}
	f, err := os.Open(procFile)
	if err != nil {
		return nil, fmt.Errorf("list IPVS real servers: %w", err)
	}
	defer f.Close()
	dests, err := parseProc(f, len(svcs))
	if err != nil {
		return nil, err
	}
	out := make([]VirtualServer, 0, len(svcs))
	for _, svc := range svcs {
		if svc.FWMark != 0 && !OwnedMark(svc.FWMark) {
			continue // another program's firewall-mark service
		}
		out = append(out, VirtualServer{Service: svc, Destinations: dests[svc.ServiceKey]})
	}
	return out, nil
}

func (l *Linux) Get(key ServiceKey) (VirtualServer, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.batch.get(key)
}

// Services dumps every virtual server's settings on the sync loop's
// socket; firewall-mark services other than ipvs-proxy's are left out, as
// List leaves them.
func (l *Linux) Services() ([]Service, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	svcs, err := l.batch.services()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(svcs, func(s Service) bool { return s.FWMark != 0 && !OwnedMark(s.FWMark) }), nil
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
