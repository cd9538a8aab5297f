package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"syscall"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/nlbatch"
	"golang.org/x/sys/unix"
)

// Reading one virtual server, which every change-by-change sync does for
// each changed Service, goes through the batcher's socket too: moby/ipvs
// sets a deadline and asks the socket's address on every request, and
// parses each answer into netlink attribute trees, about 36 KB of garbage
// a virtual server, which at a steady 50 changes/s kept the collector busy.

const (
	cmdGetService = 4
	cmdGetDest    = 8

	destActiveConns   = 7
	destInactiveConns = 8
	destAddrFamily    = 11
)

// get reads one virtual server: its settings, then its real servers.
func (b *batcher) get(key ServiceKey) (VirtualServer, bool, error) {
	var vs VirtualServer
	var af uint16 // the real servers' family, unless their answers say
	found := false
	err := b.sock.Query(b.request(cmdGetService, 0, key), func(p []byte) error {
		var err error
		vs.Service, af, err = parseService(p)
		found = err == nil
		return err
	})
	// The kernel answers IPVS_CMD_GET_SERVICE for a missing service with
	// ESRCH (ip_vs_genl_get_cmd).
	if mapErrno(err) == ErrNotFound {
		return VirtualServer{}, false, nil
	}
	if err != nil {
		return VirtualServer{}, false, fmt.Errorf("get IPVS service %s: %w", key, err)
	}
	if !found {
		return VirtualServer{}, false, fmt.Errorf("get IPVS service %s: no answer", key)
	}
	// The real servers are gathered in b.dests and copied out once, in one
	// allocation of their number, rather than grown one answer at a time.
	dests := b.dests[:0]
	err = b.sock.Query(b.request(cmdGetDest, unix.NLM_F_DUMP, key), func(p []byte) error {
		d, err := parseDest(p, af)
		if err == nil {
			dests = append(dests, d)
		}
		return err
	})
	b.dests = dests
	if err != nil {
		return VirtualServer{}, false, fmt.Errorf("list real servers of %s: %w", key, err)
	}
	if len(dests) > 0 {
		vs.Destinations = slices.Clone(dests)
		slices.SortFunc(vs.Destinations, CompareDestinations) // as List reads them
	}
	return vs, true, nil
}

// services dumps every virtual server's settings, parsed as get parses
// one. moby/ipvs's dump parses each answer into attribute trees, garbage
// by the thousand at thousands of Services, which the collector then
// works off beside the sync loop during a periodic resync's read.
func (b *batcher) services() ([]Service, error) {
	var out []Service
	err := b.sock.Query(b.command(cmdGetService, unix.NLM_F_DUMP, nil), func(p []byte) error {
		svc, _, err := parseService(p)
		if err == nil {
			out = append(out, svc)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list IPVS services: %w", err)
	}
	return out, nil
}

// request asks cmd of the virtual server key, named by its key attributes.
func (b *batcher) request(cmd uint8, flags uint16, key ServiceKey) []byte {
	return b.command(cmd, flags, func(m msg) msg { return m.service(Service{ServiceKey: key}, false) })
}

// command is one IPVS generic-netlink request, its attributes added by
// attrs (none if nil), encoded into the batcher's request buffer: it is
// valid until the next command, and Query is done with it on return.
func (b *batcher) command(cmd uint8, flags uint16, attrs func(msg) msg) []byte {
	m := b.req[:0]
	m = m.header(b.family, unix.NLM_F_REQUEST|flags)
	m = append(m, cmd, 1, 0, 0)
	if attrs != nil {
		m = attrs(m)
	}
	binary.NativeEndian.PutUint32(m[0:4], uint32(len(m)))
	b.req = m
	return m
}

// nested is the value of the attribute typ of a generic netlink payload
// (after its 4-byte genlmsghdr).
func nested(p []byte, typ uint16) ([]byte, error) {
	if len(p) < 4 {
		return nil, errors.New("short generic netlink message")
	}
	var out []byte
	err := nlbatch.Attrs(p[4:], func(t uint16, v []byte) {
		if t == typ {
			out = v
		}
	})
	if err == nil && out == nil {
		err = fmt.Errorf("no attribute %d in the answer", typ)
	}
	return out, err
}

// addrOf reads an address of family af; the kernel sends a union
// nf_inet_addr (16 bytes) for either family.
func addrOf(v []byte, af uint16) (netip.Addr, error) {
	n := 4
	if af == syscall.AF_INET6 {
		n = 16
	}
	if len(v) < n {
		return netip.Addr{}, fmt.Errorf("address of %d bytes", len(v))
	}
	a, _ := netip.AddrFromSlice(v[:n])
	return a, nil
}

// parseService reads an IPVS_CMD_NEW_SERVICE answer as fromLib reads
// moby/ipvs's service, and returns its family.
func parseService(p []byte) (Service, uint16, error) {
	body, err := nested(p, attrService)
	if err != nil {
		return Service{}, 0, err
	}
	var af, proto, port uint16
	var mark, flags, timeout uint32
	var rawAddr []byte
	var sched string
	err = nlbatch.Attrs(body, func(t uint16, v []byte) {
		switch {
		case t == svcAF && len(v) >= 2:
			af = binary.NativeEndian.Uint16(v)
		case t == svcProtocol && len(v) >= 2:
			proto = binary.NativeEndian.Uint16(v)
		case t == svcAddr:
			rawAddr = v
		case t == svcPort && len(v) >= 2:
			port = binary.BigEndian.Uint16(v)
		case t == svcFWMark && len(v) >= 4:
			mark = binary.NativeEndian.Uint32(v)
		case t == svcSchedName:
			sched = cString(v)
		case t == svcFlags && len(v) >= 4:
			flags = binary.NativeEndian.Uint32(v)
		case t == svcTimeout && len(v) >= 4:
			timeout = binary.NativeEndian.Uint32(v)
		}
	})
	if err != nil {
		return Service{}, 0, err
	}
	svc := Service{Scheduler: sched, SchedFlags: flags & schedFlagsMask}
	if flags&^flagHashed&flagPersistent != 0 {
		svc.Persistent, svc.Timeout = true, timeout
	}
	if mark != 0 {
		svc.ServiceKey = FWMarkKey(mark, af == syscall.AF_INET6)
		return svc, af, nil
	}
	addr, err := addrOf(rawAddr, af)
	if err != nil {
		return Service{}, 0, fmt.Errorf("IPVS service: %w", err)
	}
	svc.ServiceKey = ServiceKey{Addr: addr, Proto: protocolOf(proto), Port: port}
	return svc, af, nil
}

// parseDest reads an IPVS_CMD_NEW_DEST answer; svcAF is its virtual
// server's family, for a kernel whose answer does not name the real
// server's own.
func parseDest(p []byte, svcAF uint16) (Destination, error) {
	body, err := nested(p, attrDest)
	if err != nil {
		return Destination{}, err
	}
	af := svcAF
	var d Destination
	var rawAddr []byte
	err = nlbatch.Attrs(body, func(t uint16, v []byte) {
		switch {
		case t == destAddr:
			rawAddr = v
		case t == destPort && len(v) >= 2:
			d.Port = binary.BigEndian.Uint16(v)
		case t == destFwdMethod && len(v) >= 4:
			d.Forward = forwardOf(binary.NativeEndian.Uint32(v))
		case t == destWeight && len(v) >= 4:
			d.Weight = int32(binary.NativeEndian.Uint32(v))
		case t == destActiveConns && len(v) >= 4:
			d.ActiveConns = uint32(binary.NativeEndian.Uint32(v))
		case t == destInactiveConns && len(v) >= 4:
			d.InactiveConns = uint32(binary.NativeEndian.Uint32(v))
		case t == destAddrFamily && len(v) >= 2:
			af = binary.NativeEndian.Uint16(v)
		}
	})
	if err != nil {
		return Destination{}, err
	}
	if d.Addr, err = addrOf(rawAddr, af); err != nil {
		return Destination{}, fmt.Errorf("IPVS real server: %w", err)
	}
	return d, nil
}

func protocolOf(n uint16) Protocol {
	for p, num := range protoNumbers {
		if num == n {
			return p
		}
	}
	return Protocol(fmt.Sprintf("proto-%d", n))
}

// cString is a NUL-terminated name. A scheduler's name is one of a few,
// and each virtual server read back carries one: a known name is returned
// as the constant, not copied.
func cString(v []byte) string {
	if i := slices.Index(v, 0); i >= 0 {
		v = v[:i]
	}
	for _, name := range Schedulers {
		if string(v) == name {
			return name
		}
	}
	return string(v)
}
