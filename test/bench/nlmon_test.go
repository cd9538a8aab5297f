package bench

import (
	"encoding/binary"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// netlinkCounter counts the netlink writes every process in the guest sends
// to the kernel, read from an nlmon device (the kernel's netlink tap). It is
// the one view that sees kube-proxy's writes as well as ipvs-proxy's: IPVS
// through generic netlink, ipset and iptables-nft (nf_tables) through
// nfnetlink, addresses and links through rtnetlink, whether a proxy sends
// them itself or through an ipset or iptables-restore child. During a change
// only the proxy under test writes: the bench itself only reads.
//
// The tap copies every netlink message, so it is up only during change
// phases, never while cold convergence is timed.
type netlinkCounter struct {
	fd         int
	ipvsFamily uint16
	mu         sync.Mutex
	counts     map[string]int
	marker     atomic.Uint32 // the last marker the reader has seen
	packets    atomic.Int64  // tapped buffers read, to tell "no tap" from "slow reader"
	nextMarker uint32
	// dests are the IPVS real-server writes seen, for the churn cases'
	// tapSeer (dests_test.go).
	dests destWrites
}

const (
	nlmonLink   = "nlmon0"
	markerBase  = 0xb5000000 // sequence numbers of the bench's own marker requests
	packetBytes = 1 << 20
)

// The kinds of writes counted, as the table names them.
const (
	kindIPVS  = "ipvs"
	kindIPSet = "ipset"
	kindNFT   = "nftables"
	kindRTNL  = "rtnetlink"
)

func startNetlinkCounter() (*netlinkCounter, error) {
	for _, argv := range [][]string{{"modprobe", "nlmon"}, {"ip", "link", "add", nlmonLink, "type", "nlmon"}} {
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil && !strings.Contains(string(out), "exists") {
			return nil, fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, out)
		}
	}
	ifc, err := net.InterfaceByName(nlmonLink)
	if err != nil {
		return nil, err
	}
	fam, err := netlink.GenlFamilyGet("IPVS") // its message type is assigned at module load
	if err != nil {
		return nil, fmt.Errorf("IPVS generic netlink family: %w", err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind to %s: %w", nlmonLink, err)
	}
	if err := keepRequestsOnly(fd); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// kube-proxy's syncs at 5,000 Services send tens of thousands of
	// messages a second; a drop is reported, never silently undercounted.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20)
	// The kernel's receive time of each tapped buffer: the reader may run
	// late on a busy guest, and a change is timed by its write.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("packet socket: SO_TIMESTAMPNS: %w", err)
	}
	c := &netlinkCounter{fd: fd, ipvsFamily: fam.ID, counts: map[string]int{}, nextMarker: markerBase, dests: newDestWrites()}
	go c.read()
	return c, nil
}

// keepRequestsOnly attaches a socket filter that drops, in the kernel,
// every tapped buffer whose first message lacks NLM_F_REQUEST: the
// kernel's answers and notifications, which packet() skips anyway. A dump
// answers in thousands of messages (every read-back of a changed virtual
// server, a resync's read, kube-proxy's whole-table reads), and copying
// each to this reader took the guest's vCPUs from the writer and the proxy
// under test. A buffer is one direction, so its first message's flags
// stand for all of them.
func keepRequestsOnly(fd int) error {
	prog, err := bpf.Assemble(requestsOnly())
	if err != nil {
		return fmt.Errorf("assemble the tap's filter: %w", err)
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		filter[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return fmt.Errorf("packet socket: SO_ATTACH_FILTER: %w", err)
	}
	return nil
}

// requestsOnly is keepRequestsOnly's program.
func requestsOnly() []bpf.Instruction {
	// nlmsg_flags is a host-order u16 at offset 6; a classic BPF load is
	// big-endian, so the byte that holds NLM_F_REQUEST (0x1) is loaded alone.
	flagsByte := uint32(6)
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		flagsByte = 7
	}
	return []bpf.Instruction{
		bpf.LoadAbsolute{Off: flagsByte, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: unix.NLM_F_REQUEST, SkipTrue: 1},
		bpf.RetConstant{Val: 0},           // drop
		bpf.RetConstant{Val: packetBytes}, // keep, up to the reader's buffer
	}
}

func (c *netlinkCounter) read() {
	buf := make([]byte, packetBytes)
	oob := make([]byte, 128)
	for {
		n, oobn, _, from, err := unix.Recvmsg(c.fd, buf, oob, 0)
		switch {
		case err == unix.EBADF:
			return
		case err != nil:
			// ENETDOWN: the socket was bound while the link was down, or
			// the link went down between change phases; the kernel
			// re-attaches it when the link comes up.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		c.packets.Add(1)
		if ll, ok := from.(*unix.SockaddrLinklayer); ok {
			c.packet(int(htons(ll.Protocol)), buf[:n], stamp(oob[:oobn]))
		}
	}
}

// packet classifies each netlink message of one tapped buffer (a batch, as
// iptables-restore sends, is one buffer of many messages).
func (c *netlinkCounter) packet(proto int, b []byte, at time.Time) {
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return
		}
		typ := binary.NativeEndian.Uint16(b[4:6])
		flags := binary.NativeEndian.Uint16(b[6:8])
		seq := binary.NativeEndian.Uint32(b[8:12])
		switch {
		// The tap also shows the kernel's answers and notifications (its
		// filter keeps none, but a buffer queued before it was attached
		// may be one); every message sent to the kernel carries
		// NLM_F_REQUEST, none of those do, so the flag tells the direction
		// without the packet type.
		case flags&unix.NLM_F_REQUEST == 0:
		case proto == unix.NETLINK_ROUTE && typ == unix.RTM_GETLINK && seq >= markerBase:
			c.marker.Store(seq)
		default:
			kind := classify(proto, typ, b[:l], c.ipvsFamily)
			if kind == "" {
				break
			}
			if kind == kindIPVS {
				c.dests.note(b[unix.NLMSG_HDRLEN:l], at)
			}
			c.mu.Lock()
			c.counts[kind]++
			c.mu.Unlock()
		}
		b = b[min(len(b), (l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1)):]
	}
}

// Write commands, by subsystem; everything else (GET, dumps, batch
// markers) is a read or framing.
var (
	// IPVS_CMD_{NEW,SET,DEL}_SERVICE, {NEW,SET,DEL}_DEST, NEW/DEL_DAEMON,
	// SET_CONFIG, ZERO, FLUSH (include/uapi/linux/ip_vs.h).
	ipvsWrites = map[byte]bool{1: true, 2: true, 3: true, 5: true, 6: true, 7: true, 9: true, 10: true, 12: true, 16: true, 17: true}
	// IPSET_CMD_CREATE, DESTROY, FLUSH, RENAME, SWAP, ADD, DEL.
	ipsetWrites = map[uint16]bool{2: true, 3: true, 4: true, 5: true, 6: true, 9: true, 10: true}
	// NFT_MSG_NEW*/DEL* for tables, chains, rules, sets, set elements,
	// objects and flowtables.
	nftWrites = map[uint16]bool{0: true, 2: true, 3: true, 5: true, 6: true, 8: true, 9: true, 11: true,
		12: true, 14: true, 18: true, 20: true, 22: true, 24: true}
)

const (
	nfnlSubsysIPSet = 6
	nfnlSubsysNFT   = 10
)

func classify(proto int, typ uint16, msg []byte, ipvsFamily uint16) string {
	switch proto {
	case unix.NETLINK_GENERIC:
		if typ == ipvsFamily && len(msg) > unix.NLMSG_HDRLEN && ipvsWrites[msg[unix.NLMSG_HDRLEN]] {
			return kindIPVS
		}
	case unix.NETLINK_NETFILTER:
		switch sub, m := typ>>8, typ&0xff; {
		case sub == nfnlSubsysIPSet && ipsetWrites[m]:
			return kindIPSet
		case sub == nfnlSubsysNFT && nftWrites[m]:
			return kindNFT
		}
	case unix.NETLINK_ROUTE:
		// RTM_NEW*, RTM_DEL*, RTM_SET* come in fours from 16 with GET third.
		if typ >= unix.RTM_BASE && typ < 128 && (typ-unix.RTM_BASE)%4 != 2 {
			return kindRTNL
		}
	}
	return ""
}

// capture turns the tap on; the returned func turns it off.
func (c *netlinkCounter) capture() (stop func(), err error) {
	if out, err := exec.Command("ip", "link", "set", nlmonLink, "up").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip link set %s up: %v: %s", nlmonLink, err, out)
	}
	return func() { exec.Command("ip", "link", "set", nlmonLink, "down").Run() }, nil //nolint:errcheck
}

// snapshot returns the counts so far, once the reader has caught up with
// everything sent before the call (it waits for a marker request of its
// own), and the packets the socket dropped since the last snapshot.
func (c *netlinkCounter) snapshot() (map[string]int, int, error) {
	c.nextMarker++
	seq := c.nextMarker
	if err := sendMarker(seq); err != nil {
		return nil, 0, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.marker.Load() < seq {
		if time.Now().After(deadline) {
			return nil, 0, fmt.Errorf("netlink tap: marker %#x not seen in 10 s (%d buffers read so far)", seq, c.packets.Load())
		}
		time.Sleep(time.Millisecond)
	}
	st, err := unix.GetsockoptTpacketStats(c.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS) // resets on read
	if err != nil {
		return nil, 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out, int(st.Drops), nil
}

// sendMarker sends an RTM_GETLINK for no interface: a read the kernel
// answers with an error, and which the tap shows after everything sent
// before it.
func sendMarker(seq uint32) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	msg := make([]byte, unix.NLMSG_HDRLEN+unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], unix.RTM_GETLINK)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(msg[8:], seq)
	binary.NativeEndian.PutUint32(msg[unix.NLMSG_HDRLEN+4:], 0x7fffffff) // ifi_index: none
	return unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// delta is after minus before, by kind.
func delta(before, after map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// stamp is the kernel's receive time from a packet's control messages
// (SO_TIMESTAMPNS), or now when it has none.
func stamp(oob []byte) time.Time {
	msgs, _ := unix.ParseSocketControlMessage(oob)
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
			return time.Unix(int64(binary.NativeEndian.Uint64(m.Data[0:8])), int64(binary.NativeEndian.Uint64(m.Data[8:16])))
		}
	}
	return time.Now()
}
