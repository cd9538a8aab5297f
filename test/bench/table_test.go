package bench

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// vsKey is a virtual server as the kernel keys it.
type vsKey struct {
	Proto string // "TCP", "UDP", "SCTP"
	Addr  netip.AddrPort
}

func (k vsKey) String() string { return k.Proto + " " + k.Addr.String() }

// table is an IPVS table: virtual server → its real servers → weight. What
// the API says the kernel must hold is a table with every weight 1.
type table map[vsKey]map[netip.AddrPort]int

func (t table) counts() (vs, rs int) {
	for _, d := range t {
		rs += len(d)
	}
	return len(t), rs
}

func (t table) clone() table {
	out := make(table, len(t))
	for k, ds := range t {
		c := make(map[netip.AddrPort]int, len(ds))
		for a, w := range ds {
			c[a] = w
		}
		out[k] = c
	}
	return out
}

// diff says how got differs from t (the wanted table): "" when they hold
// the same virtual servers with the same real servers, whatever the
// weights. At most max differences are listed, after the totals.
func (t table) diff(got table, max int) string {
	var lines []string
	add := func(format string, a ...any) {
		if len(lines) < max {
			lines = append(lines, fmt.Sprintf(format, a...))
		}
	}
	missing := 0
	for k, want := range t {
		have, ok := got[k]
		if !ok {
			missing++
			add("missing virtual server %s", k)
			continue
		}
		for a := range want {
			if _, ok := have[a]; !ok {
				missing++
				add("%s: missing real server %s", k, a)
			}
		}
		for a := range have {
			if _, ok := want[a]; !ok {
				missing++
				add("%s: unexpected real server %s", k, a)
			}
		}
	}
	for k := range got {
		if _, ok := t[k]; !ok {
			missing++
			add("unexpected virtual server %s", k)
		}
	}
	if missing == 0 {
		return ""
	}
	wv, wr := t.counts()
	gv, gr := got.counts()
	sort.Strings(lines)
	return fmt.Sprintf("want %d virtual servers / %d real servers, kernel has %d / %d; %d differences, e.g.:\n  %s",
		wv, wr, gv, gr, missing, strings.Join(lines, "\n  "))
}

// readProcTable reads /proc/net/ip_vs: one seq file for the whole table,
// far cheaper than a netlink dump per virtual server when polling 5,000 of
// them.
func readProcTable() (table, error) {
	data, err := os.ReadFile("/proc/net/ip_vs")
	if err != nil {
		return nil, err
	}
	return parseProcTable(data)
}

// parseProcTable reads /proc/net/ip_vs with ipvs-proxy's own parser,
// which the VM tests hold to the kernel; firewall-mark virtual servers are
// left out (neither proxy makes them).
func parseProcTable(data []byte) (table, error) {
	vss, err := ipvs.ParseProc(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	t := make(table, len(vss))
	for k, ds := range vss {
		rs := make(map[netip.AddrPort]int, len(ds))
		for _, d := range ds {
			rs[d.AddrPort()] = int(d.Weight)
		}
		t[vsKey{Proto: string(k.Proto), Addr: k.AddrPort()}] = rs
	}
	return t, nil
}

// endpointAddr is endpoint j of Service i: one address of 10.244.0.0/15
// each, so 13,107 Services × 10 fit.
func endpointAddr(i, j int) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], 10<<24|244<<16|uint32(i*endpoints+j))
	return netip.AddrFrom4(b).String()
}

// changedAddr is where change number c moves an endpoint: never an address
// that was used before.
func changedAddr(c int) string { return fmt.Sprintf("%s.%d.%d", changedNet, (c>>8)&255, c&255) }

func svcName(i int) string { return fmt.Sprintf("s-%05d", i) }
