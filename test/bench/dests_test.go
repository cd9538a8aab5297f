package bench

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"time"
)

// Seeing a change in the churn cases. Polling each change's virtual server
// every few milliseconds, as the spaced changes do, costs the guest about a
// millisecond of emulated CPU a read, and IPVS serializes every netlink
// read and write on one mutex: at 50 changes/s the polls took the vCPUs
// and the mutex from the proxy they were timing, and the slower it got,
// the more changes were open and polled. So a churn change is timed from
// the netlink tap instead: the kernel's receive time of the proxy's writes
// of the new real server (weight > 0) and of the old one's removal
// (deletion or weight 0); the kernel is then read once to confirm it
// shows the change, and only a change the tap has not shown within
// tapGrace is polled, sparsely.

// tapGrace is how long a change may go unseen on the tap before it is
// polled (a dropped tap buffer, or a write the tap could not parse).
const tapGrace = 2 * time.Second

// IPVS generic netlink (include/uapi/linux/ip_vs.h): the real-server
// commands and attributes the tap reads.
const (
	ipvsNewDest = 5
	ipvsSetDest = 6
	ipvsDelDest = 7

	ipvsAttrDest   = 2
	ipvsDestAddr   = 1
	ipvsDestPort   = 2
	ipvsDestWeight = 4
)

// destWrite is when a real server was last written with a weight, and
// last deleted or set to weight 0.
type destWrite struct{ added, removed time.Time }

// destWrites are the IPVS real-server writes seen on the tap, by address.
type destWrites struct {
	mu sync.Mutex
	m  map[netip.AddrPort]destWrite
}

func newDestWrites() destWrites { return destWrites{m: map[netip.AddrPort]destWrite{}} }

// note records one IPVS request (its generic netlink header and
// attributes) received by the kernel at at.
func (d *destWrites) note(genl []byte, at time.Time) {
	if len(genl) < 4 {
		return
	}
	cmd := genl[0]
	if cmd != ipvsNewDest && cmd != ipvsSetDest && cmd != ipvsDelDest {
		return
	}
	dest, ok := nlAttr(genl[4:], ipvsAttrDest)
	if !ok {
		return
	}
	rawAddr, ok1 := nlAttr(dest, ipvsDestAddr)
	rawPort, ok2 := nlAttr(dest, ipvsDestPort)
	addr, ok3 := netip.AddrFromSlice(rawAddr)
	if !ok1 || !ok2 || !ok3 || len(rawPort) < 2 {
		return
	}
	key := netip.AddrPortFrom(addr.Unmap(), binary.BigEndian.Uint16(rawPort))
	weight := uint32(0)
	if w, ok := nlAttr(dest, ipvsDestWeight); ok && len(w) >= 4 {
		weight = binary.NativeEndian.Uint32(w)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.m[key]
	if cmd != ipvsDelDest && weight > 0 {
		w.added = at
	} else {
		w.removed = at
	}
	d.m[key] = w
}

func (d *destWrites) get(k netip.AddrPort) destWrite {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.m[k]
}

// nlAttr is the value of attribute typ among b's netlink attributes.
func nlAttr(b []byte, typ uint16) ([]byte, bool) {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		if l < 4 || l > len(b) {
			return nil, false
		}
		if binary.NativeEndian.Uint16(b[2:4])&0x3fff == typ {
			return b[4:l], true
		}
		b = b[min(len(b), (l+3)&^3):]
	}
	return nil, false
}

// tapSeer sees a change when the tap has shown both of its writes since
// its API write and the kernel then shows it; it times the change by the
// later write.
//
// The tap copies a request as the kernel receives it, before the kernel
// acts on it, and a batch of many requests is one tapped buffer: the
// bench's reader, on the other vCPU, can see the proxy's writes before the
// kernel has applied them. So a change the tap has shown is read again on
// each of the tracker's rounds until the kernel shows it (within
// tapGrace), and is still timed by its write. Only a change the tap has
// not shown is polled, sparsely, and timed by the poll (an upper bound).
type tapSeer struct {
	taps  *destWrites
	shows func(key vsKey, moved, old netip.AddrPort) bool
}

func newTapSeer(g *guest) tapSeer { return tapSeer{taps: &g.nl.dests, shows: g.shows} }

func (s tapSeer) seen(pd *pending) (time.Time, bool) {
	now := time.Now()
	n, o := s.taps.get(pd.moved), s.taps.get(pd.old)
	if !n.added.Before(pd.t0) && !o.removed.Before(pd.t0) {
		at := n.added
		if o.removed.After(at) {
			at = o.removed
		}
		if !at.Equal(pd.checked) || now.Sub(at) < tapGrace {
			pd.checked = at
			if s.shows(pd.key, pd.moved, pd.old) {
				return at, true
			}
			return time.Time{}, false
		}
	}
	// Not on the tap (yet): read the kernel now and then, no more often
	// than a quarter of the change's age.
	if age := now.Sub(pd.t0); age > tapGrace && now.Sub(pd.polled) > age/4 {
		pd.polled = now
		if s.shows(pd.key, pd.moved, pd.old) {
			pd.byPoll = true
			return now, true
		}
	}
	return time.Time{}, false
}
