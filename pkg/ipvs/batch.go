package ipvs

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/nlbatch"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
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
type batcher struct {
	family uint16
	sock   *nlbatch.Socket
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
	reqs := make([]*nl.NetlinkRequest, len(ops))
	for i, o := range ops {
		reqs[i] = b.request(o)
	}
	errs := b.sock.Exec(reqs)
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

func (b *batcher) request(o Op) *nl.NetlinkRequest {
	cmd := map[OpKind]uint8{
		OpAddService: cmdNewService, OpUpdateService: cmdSetService, OpDeleteService: cmdDelService,
		OpAddDestination: cmdNewDest, OpUpdateDestination: cmdSetDest, OpDeleteDestination: cmdDelDest,
	}[o.Kind]
	req := nl.NewNetlinkRequest(int(b.family), 0)
	req.AddData(&nl.Genlmsg{Command: cmd, Version: 1})
	// Writes of a service send all its settings; every other op names it
	// by its key alone, which is all the kernel reads from them.
	req.AddData(serviceAttr(o.Service, o.Kind == OpAddService || o.Kind == OpUpdateService))
	switch o.Kind {
	case OpAddDestination, OpUpdateDestination, OpDeleteDestination:
		req.AddData(destAttr(o.Dest))
	}
	return req
}

func serviceAttr(s Service, full bool) *nl.RtAttr {
	a := nl.NewRtAttr(attrService, nil)
	af, mask := uint16(syscall.AF_INET), uint32(0xffffffff)
	if s.Addr.Is6() {
		af, mask = syscall.AF_INET6, 128
	}
	a.AddRtAttr(svcAF, nl.Uint16Attr(af))
	a.AddRtAttr(svcProtocol, nl.Uint16Attr(protoNumbers[s.Proto]))
	a.AddRtAttr(svcAddr, s.Addr.AsSlice())
	a.AddRtAttr(svcPort, bigEndian16(s.Port))
	if !full {
		return a
	}
	var flags uint32
	timeout := uint32(0)
	if s.Persistent {
		flags, timeout = flagPersistent, s.Timeout
	}
	// struct ip_vs_flags: the flags, then the mask of those to set.
	f := make([]byte, 8)
	binary.NativeEndian.PutUint32(f[0:4], flags)
	binary.NativeEndian.PutUint32(f[4:8], 0xffffffff)
	a.AddRtAttr(svcSchedName, nl.ZeroTerminated(s.Scheduler))
	a.AddRtAttr(svcFlags, f)
	a.AddRtAttr(svcTimeout, nl.Uint32Attr(timeout))
	// The kernel rejects a netmask of 0 for a non-fwmark service.
	a.AddRtAttr(svcNetmask, nl.Uint32Attr(mask))
	return a
}

func destAttr(d Destination) *nl.RtAttr {
	a := nl.NewRtAttr(attrDest, nil)
	a.AddRtAttr(destAddr, d.Addr.AsSlice())
	a.AddRtAttr(destPort, bigEndian16(d.Port))
	a.AddRtAttr(destFwdMethod, nl.Uint32Attr(fwdMasq))
	a.AddRtAttr(destWeight, nl.Uint32Attr(uint32(d.Weight)))
	a.AddRtAttr(destUThresh, nl.Uint32Attr(0))
	a.AddRtAttr(destLThresh, nl.Uint32Attr(0))
	return a
}

func bigEndian16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
