package ipvs

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink/nl"
)

// reference encodes an op the way moby/ipvs does (its fillService and
// fillDestination, over netlink's attribute trees), less the attributes a
// command does not read, which moby/ipvs also sends for deletions.
func reference(family uint16, o Op) []byte {
	req := nl.NewNetlinkRequest(int(family), 0)
	req.Seq = 0
	req.AddData(genlHeader{commands[o.Kind]})
	s := o.Service
	af, mask := uint16(syscall.AF_INET), uint32(0xffffffff)
	if s.Addr.Is6() {
		af, mask = syscall.AF_INET6, 128
	}
	sa := nl.NewRtAttr(attrService, nil)
	sa.AddRtAttr(svcAF, nl.Uint16Attr(af))
	if s.FWMark != 0 {
		sa.AddRtAttr(svcFWMark, nl.Uint32Attr(s.FWMark))
	} else {
		sa.AddRtAttr(svcProtocol, nl.Uint16Attr(protoNumbers[s.Proto]))
		sa.AddRtAttr(svcAddr, s.Addr.AsSlice())
		sa.AddRtAttr(svcPort, binary.BigEndian.AppendUint16(nil, s.Port))
	}
	if o.Kind == OpAddService || o.Kind == OpUpdateService {
		var flags, timeout uint32
		if s.Persistent {
			flags, timeout = flagPersistent, s.Timeout
		}
		flags |= s.SchedFlags
		sa.AddRtAttr(svcSchedName, nl.ZeroTerminated(s.Scheduler))
		sa.AddRtAttr(svcFlags, append(nl.Uint32Attr(flags), nl.Uint32Attr(0xffffffff)...))
		sa.AddRtAttr(svcTimeout, nl.Uint32Attr(timeout))
		sa.AddRtAttr(svcNetmask, nl.Uint32Attr(mask))
	}
	req.AddData(sa)
	switch o.Kind {
	case OpAddDestination, OpUpdateDestination, OpDeleteDestination:
		da := nl.NewRtAttr(attrDest, nil)
		da.AddRtAttr(destAddr, o.Dest.Addr.AsSlice())
		da.AddRtAttr(destPort, binary.BigEndian.AppendUint16(nil, o.Dest.Port))
		da.AddRtAttr(destFwdMethod, nl.Uint32Attr(fwdMasq))
		da.AddRtAttr(destWeight, nl.Uint32Attr(uint32(o.Dest.Weight)))
		da.AddRtAttr(destUThresh, nl.Uint32Attr(0))
		da.AddRtAttr(destLThresh, nl.Uint32Attr(0))
		req.AddData(da)
	}
	return req.Serialize()
}

// genlHeader is moby/ipvs's struct genlmsghdr, reserved bytes zero. (nl's
// Genlmsg is 2 bytes and serializes 4 from its address: the last 2 are
// whatever follows it in memory.)
type genlHeader struct{ cmd uint8 }

func (h genlHeader) Len() int          { return 4 }
func (h genlHeader) Serialize() []byte { return []byte{h.cmd, 1, 0, 0} }

// TestMessageEncoding: the hand-rolled encoder writes, byte for byte, what
// netlink's attribute trees write. The kernel itself checks both in the VM
// (test/e2e TestGuestKernelMatchesFakes).
func TestMessageEncoding(t *testing.T) {
	v4 := ServiceKey{Addr: netip.MustParseAddr("10.96.0.10"), Proto: TCP, Port: 80}
	v6 := ServiceKey{Addr: netip.MustParseAddr("fd00:10:96::a"), Proto: UDP, Port: 53}
	sctp := ServiceKey{Addr: netip.MustParseAddr("10.96.0.11"), Proto: SCTP, Port: 9}
	d4 := Destination{Addr: netip.MustParseAddr("10.244.1.2"), Port: 8080, Weight: 1}
	d6 := Destination{Addr: netip.MustParseAddr("fd00:10:244::2"), Port: 5353, Weight: 0}
	ops := []Op{
		{Kind: OpAddService, Service: Service{ServiceKey: v4, Scheduler: "rr"}},
		{Kind: OpAddService, Service: Service{ServiceKey: sctp, Scheduler: "sh", Persistent: true, Timeout: 10800}},
		{Kind: OpUpdateService, Service: Service{ServiceKey: v6, Scheduler: "lc"}},
		{Kind: OpAddService, Service: Service{ServiceKey: v4, Scheduler: "mh", SchedFlags: SchedFlag1 | SchedFlag2, Persistent: true, Timeout: 60}},
		{Kind: OpDeleteService, Service: Service{ServiceKey: v6}},
		{Kind: OpAddDestination, Service: Service{ServiceKey: v4}, Dest: d4},
		{Kind: OpUpdateDestination, Service: Service{ServiceKey: v6}, Dest: d6},
		{Kind: OpDeleteDestination, Service: Service{ServiceKey: v4}, Dest: d4},
		{Kind: OpAddService, Service: Service{ServiceKey: FWMarkKey(0x40000a01, false), Scheduler: "rr"}},
		{Kind: OpAddDestination, Service: Service{ServiceKey: FWMarkKey(0x50000a01, true)}, Dest: d6},
		{Kind: OpDeleteService, Service: Service{ServiceKey: FWMarkKey(0x40000a01, false)}},
	}
	b := &batcher{family: 0x1d}
	for _, o := range ops {
		if got, want := b.message(o), reference(b.family, o); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got % x\nwant % x", o, got, want)
		}
	}
}

// TestSchedFlagsEncoding: the scheduler's flags reach the kernel in
// IPVS_SVC_ATTR_FLAGS (struct ip_vs_flags: flags, then mask), OR-ed with
// persistence: sh-fallback|sh-port is IP_VS_SVC_F_SCHED1|SCHED2 = 0x18.
func TestSchedFlagsEncoding(t *testing.T) {
	key := ServiceKey{Addr: netip.MustParseAddr("10.96.0.10"), Proto: TCP, Port: 80}
	for _, tc := range []struct {
		svc  Service
		want []byte
	}{
		{Service{ServiceKey: key, Scheduler: "sh", SchedFlags: SchedFlag1 | SchedFlag2}, []byte{0x18, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}},
		{Service{ServiceKey: key, Scheduler: "sh", SchedFlags: SchedFlag2, Persistent: true, Timeout: 5}, []byte{0x11, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}},
		{Service{ServiceKey: key, Scheduler: "rr"}, []byte{0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}},
	} {
		msg := (&batcher{family: 0x1d}).message(Op{Kind: OpAddService, Service: tc.svc})
		// The flags attribute: length 12, type svcFlags, then the 8 bytes.
		attr := binary.NativeEndian.AppendUint16(binary.NativeEndian.AppendUint16(nil, 12), svcFlags)
		i := bytes.Index(msg, attr)
		if i < 0 {
			t.Fatalf("%s: no flags attribute in % x", tc.svc.Scheduler, msg)
		}
		if got := msg[i+4 : i+12]; !bytes.Equal(got, tc.want) {
			t.Errorf("%+v: flags % x, want % x", tc.svc, got, tc.want)
		}
	}
}
