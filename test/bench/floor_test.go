package bench

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"syscall"
	"time"

	libipvs "github.com/moby/ipvs"
)

// floor is the physical floor: the same table written by a bare loop over
// moby/ipvs, one netlink request per virtual and real server, and one
// endpoint change as the two writes it must cost (add the new real server,
// delete the old). No proxy can program the kernel faster than this.
func floor(n int, want table, changes int) (Run, error) {
	r := Run{N: n, Proxy: floorName}
	h, err := libipvs.New("")
	if err != nil {
		return r, err
	}
	defer h.Close()
	keys := sortedKeys(want)

	start := time.Now()
	for _, k := range keys {
		s := libService(k)
		if err := h.NewService(s); err != nil {
			return r, fmt.Errorf("floor: add %s: %w", k, err)
		}
		for a := range want[k] {
			if err := h.NewDestination(s, libDest(a)); err != nil {
				return r, fmt.Errorf("floor: add %s to %s: %w", a, k, err)
			}
		}
	}
	r.ColdS = time.Since(start).Seconds()
	defer func() {
		for _, k := range keys {
			h.DelService(libService(k)) //nolint:errcheck // checked: the next run starts by checking the kernel is clean
		}
	}()
	got, err := readProcTable()
	if err != nil {
		return r, err
	}
	if d := want.diff(got, 5); d != "" {
		return r, fmt.Errorf("floor: the loop did not make the wanted table: %s", d)
	}

	// Changes move one real server of one virtual server, round the table.
	want = want.clone() // the caller's table stays the API's
	for c := 0; c < changes; c++ {
		k := keys[(c*7919)%len(keys)]
		s := libService(k)
		var old netip.AddrPort
		for a := range want[k] {
			old = a
			break
		}
		moved := netip.AddrPortFrom(netip.MustParseAddr(fmt.Sprintf("10.246.%d.%d", c>>8&255, c&255)), old.Port())
		t0 := time.Now()
		if err := h.NewDestination(s, libDest(moved)); err != nil {
			return r, fmt.Errorf("floor: add %s to %s: %w", moved, k, err)
		}
		if err := h.DelDestination(s, libDest(old)); err != nil {
			return r, fmt.Errorf("floor: delete %s from %s: %w", old, k, err)
		}
		// No tap runs here: its writes are floorChangeWrites by
		// construction, and the report says so (floorWritesCell).
		r.Changes = append(r.Changes, Change{Seconds: time.Since(t0).Seconds()})
		delete(want[k], old)
		want[k][moved] = 1
	}
	return r, nil
}

// floorChangeWrites are the floor's netlink writes per change: the add and
// the delete above, one request each.
const floorChangeWrites = 2

func sortedKeys(t table) []vsKey {
	keys := make([]vsKey, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Addr.Compare(keys[j].Addr) < 0 })
	return keys
}

var protoNumbers = map[string]uint16{"TCP": syscall.IPPROTO_TCP, "UDP": syscall.IPPROTO_UDP, "SCTP": syscall.IPPROTO_SCTP}

// libService is what moby/ipvs needs to name (and make) a virtual server;
// the kernel rejects a netmask of 0.
func libService(k vsKey) *libipvs.Service {
	return &libipvs.Service{Address: net.IP(k.Addr.Addr().AsSlice()), Protocol: protoNumbers[k.Proto],
		Port: k.Addr.Port(), SchedName: "rr", AddressFamily: syscall.AF_INET, Netmask: 0xffffffff}
}

func libDest(a netip.AddrPort) *libipvs.Destination {
	return &libipvs.Destination{Address: net.IP(a.Addr().AsSlice()), Port: a.Port(), Weight: 1,
		ConnectionFlags: libipvs.ConnectionFlagMasq, AddressFamily: syscall.AF_INET}
}
