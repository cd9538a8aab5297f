package ipvs

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/nlbatch"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The IPVS generic-netlink protocol (include/uapi/linux/ip_vs.h). moby/ipvs
// speaks it one request per round trip and keeps its encoder to itself, so
// the batched writes encode the same attributes here.
const (
	cmdNewService = 1
	cmdSetService = 2
	cmdDelService = 3
	cmdNewDest    = 5
	cmdSetDest    = 6
	cmdDelDest    = 7

	attrService = 1
	attrDest    = 2

	svcAF        = 1
	svcProtocol  = 2
	svcAddr      = 3
	svcPort      = 4
	svcFWMark    = 5
	svcSchedName = 6
	svcFlags     = 7
	svcTimeout   = 8
	svcNetmask   = 9

	destAddr      = 1
	destPort      = 2
	destFwdMethod = 3
	destWeight    = 4
	destUThresh   = 5
	destLThresh   = 6

	fwdMasq = 0 // IP_VS_CONN_F_MASQ
)

// batcher writes IPVS ops through one netlink socket, many to a system call.
// Its reads reuse req and dests, so a batcher is used by one caller at a
// time (Linux's locks).
type batcher struct {
	family uint16
	sock   *nlbatch.Socket
	req    msg           // the request of a read (command)
	dests  []Destination // the real servers of the last get, before they are copied out
}

func newBatcher() (*batcher, error) {
	f, err := netlink.GenlFamilyGet("IPVS")
	if err != nil {
		return nil, fmt.Errorf("look up the IPVS netlink family: %w", err)
	}
	s, err := nlbatch.Open(unix.NETLINK_GENERIC)
	if err != nil {
		return nil, err
	}
	return &batcher{family: f.ID, sock: s}, nil
}

func (b *batcher) close() { b.sock.Close() }

func (b *batcher) write(ops []Op) []error {
	errs := b.sock.Exec(len(ops), func(i int) []byte { return b.message(ops[i]) })
	for i, err := range errs {
		if err == nil {
			continue
		}
		if m := mapErrno(err); m != nil {
			err = m
		}
		errs[i] = fmt.Errorf("%s: %w", ops[i], err)
	}
	return errs
}

var commands = map[OpKind]uint8{
	OpAddService: cmdNewService, OpUpdateService: cmdSetService, OpDeleteService: cmdDelService,
	OpAddDestination: cmdNewDest, OpUpdateDestination: cmdSetDest, OpDeleteDestination: cmdDelDest,
}

// message encodes one op straight into its bytes: a cold start encodes
// 55,000 of them, and building them as netlink's attribute trees first
// cost seconds of CPU in the test VM.
func (b *batcher) message(o Op) []byte {
	m := make(msg, 0, 160)
	m = m.header(b.family, unix.NLM_F_REQUEST)
	m = append(m, commands[o.Kind], 1, 0, 0) // struct genlmsghdr: cmd, version 1
	// Writes of a service send all its settings; every other op names it
	// by its key alone, which is all the kernel reads from them.
	m = m.service(o.Service, o.Kind == OpAddService || o.Kind == OpUpdateService)
	switch o.Kind {
	case OpAddDestination, OpUpdateDestination, OpDeleteDestination:
		m = m.dest(o.Dest)
	}
	binary.NativeEndian.PutUint32(m[0:4], uint32(len(m)))
	return m
}

// msg is a netlink message being appended to.
type msg []byte

// header appends struct nlmsghdr; its length is set by message.
func (m msg) header(typ uint16, flags uint16) msg {
	m = binary.NativeEndian.AppendUint32(m, 0)
	m = binary.NativeEndian.AppendUint16(m, typ)
	m = binary.NativeEndian.AppendUint16(m, flags)
	return binary.NativeEndian.AppendUint64(m, 0) // seq (nlbatch's) and port id
}

// attr appends one struct nlattr with its value, padded to 4 bytes.
func (m msg) attr(typ uint16, value []byte) msg {
	m = binary.NativeEndian.AppendUint16(m, uint16(4+len(value)))
	m = binary.NativeEndian.AppendUint16(m, typ)
	m = append(m, value...)
	for len(m)%4 != 0 {
		m = append(m, 0)
	}
	return m
}

func (m msg) u16(typ, v uint16) msg { return m.attr(typ, binary.NativeEndian.AppendUint16(nil, v)) }
func (m msg) u32(typ uint16, v uint32) msg {
	return m.attr(typ, binary.NativeEndian.AppendUint32(nil, v))
}
func (m msg) be16(typ, v uint16) msg { return m.attr(typ, binary.BigEndian.AppendUint16(nil, v)) }

// nest appends a nested attribute whose contents fill adds.
func (m msg) nest(typ uint16, fill func(msg) msg) msg {
	start := len(m)
	m = m.attr(typ, nil)
	m = fill(m)
	binary.NativeEndian.PutUint16(m[start:start+2], uint16(len(m)-start))
	return m
}

func (m msg) service(s Service, full bool) msg {
	return m.nest(attrService, func(m msg) msg {
		af, mask := uint16(syscall.AF_INET), uint32(0xffffffff)
		if s.Addr.Is6() {
			af, mask = syscall.AF_INET6, 128
		}
		m = m.u16(svcAF, af)
		if s.FWMark != 0 {
			m = m.u32(svcFWMark, s.FWMark)
		} else {
			m = m.u16(svcProtocol, protoNumbers[s.Proto])
			m = m.attr(svcAddr, s.Addr.AsSlice())
			m = m.be16(svcPort, s.Port)
		}
		if !full {
			return m
		}
		var flags, timeout uint32
		if s.Persistent {
			flags, timeout = flagPersistent, s.Timeout
		}
		flags |= s.SchedFlags & schedFlagsMask
		m = m.attr(svcSchedName, append([]byte(s.Scheduler), 0))
		// struct ip_vs_flags: the flags, then the mask of those to set.
		m = m.attr(svcFlags, binary.NativeEndian.AppendUint32(binary.NativeEndian.AppendUint32(nil, flags), 0xffffffff))
		m = m.u32(svcTimeout, timeout)
		// The kernel rejects a netmask of 0 for a non-fwmark service.
		return m.u32(svcNetmask, mask)
	})
}

func (m msg) dest(d Destination) msg {
	return m.nest(attrDest, func(m msg) msg {
		m = m.attr(destAddr, d.Addr.AsSlice())
		m = m.be16(destPort, d.Port)
		m = m.u32(destFwdMethod, fwdMasq) // whatever d.Forward says: ipvs-proxy writes only Masq
		m = m.u32(destWeight, uint32(d.Weight))
		m = m.u32(destUThresh, 0)
		return m.u32(destLThresh, 0)
	})
}
