package bench

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
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
// procHeaderLines are the lines of /proc/net/ip_vs before the first
// virtual server: the version and two column headers.
const procHeaderLines = 3

func readProcTable() (table, error) {
	data, err := os.ReadFile("/proc/net/ip_vs")
	if err != nil {
		return nil, err
	}
	return parseProcTable(data)
}

// parseProcTable parses the layout of /proc/net/ip_vs:
//
//	TCP  0A600001:0050 rr
//	  -> 0AF40001:1F90      Masq    1      0          0
//
// IPv6 addresses are bracketed full hex. Firewall-mark services are skipped
// with their real servers: neither proxy makes them.
func parseProcTable(data []byte) (table, error) {
	t := table{}
	var cur map[netip.AddrPort]int
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		switch {
		case line <= procHeaderLines || len(f) == 0:
		case f[0] == "->":
			if len(f) < 4 {
				return nil, fmt.Errorf("/proc/net/ip_vs line %d: %q", line, sc.Text())
			}
			if cur == nil {
				continue // a firewall-mark service's
			}
			a, err := parseHexAddrPort(f[1])
			if err != nil {
				return nil, fmt.Errorf("/proc/net/ip_vs line %d: %w", line, err)
			}
			w, err := strconv.Atoi(f[3])
			if err != nil {
				return nil, fmt.Errorf("/proc/net/ip_vs line %d: weight %q", line, f[3])
			}
			cur[a] = w
		case f[0] == "FWM":
			cur = nil
		default:
			if len(f) < 2 {
				return nil, fmt.Errorf("/proc/net/ip_vs line %d: %q", line, sc.Text())
			}
			a, err := parseHexAddrPort(f[1])
			if err != nil {
				return nil, fmt.Errorf("/proc/net/ip_vs line %d: %w", line, err)
			}
			cur = map[netip.AddrPort]int{}
			t[vsKey{Proto: f[0], Addr: a}] = cur
		}
	}
	return t, sc.Err()
}

// parseHexAddrPort parses "0A600001:0050" and "[20010db8...0001]:0050".
func parseHexAddrPort(s string) (netip.AddrPort, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return netip.AddrPort{}, fmt.Errorf("address %q has no port", s)
	}
	port, err := strconv.ParseUint(s[i+1:], 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: port: %w", s, err)
	}
	h := strings.NewReplacer("[", "", "]", "", ":", "").Replace(s[:i])
	b, err := hex.DecodeString(h)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: %w", s, err)
	}
	var addr netip.Addr
	switch len(b) {
	case 4:
		addr = netip.AddrFrom4([4]byte(b))
	case 16:
		addr = netip.AddrFrom16([16]byte(b))
	default:
		return netip.AddrPort{}, fmt.Errorf("address %q: %d bytes", s, len(b))
	}
	return netip.AddrPortFrom(addr, uint16(port)), nil
}

// endpointAddr is endpoint j of Service i: one address of 10.244.0.0/16
// each, so 6,553 Services × 10 fit.
func endpointAddr(i, j int) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], 10<<24|244<<16|uint32(i*endpoints+j))
	return netip.AddrFrom4(b).String()
}

// changedAddr is where change number c moves an endpoint: never an address
// that was used before.
func changedAddr(c int) string { return fmt.Sprintf("%s.%d.%d", changedNet, (c>>8)&255, c&255) }

func svcName(i int) string { return fmt.Sprintf("s-%05d", i) }
