package conntrack

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Format prints entries one a line, sorted by virtual server, in the words
// of `conntrack -L` without its counters and timers:
//
//	udp src=10.0.0.1 dst=10.96.0.10 sport=40000 dport=53 src=10.244.1.5 dst=10.0.0.1 sport=53 dport=40000
//
// The first four fields are the original tuple, the last four the reply.
func Format(entries []Entry) string {
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, compareEntries)
	var b strings.Builder
	for _, e := range sorted {
		b.WriteString(e.String() + "\n")
	}
	return b.String()
}

func (e Entry) String() string {
	return strings.ToLower(e.Proto) + " " + e.Orig.String() + " " + e.Reply.String()
}

func (t Tuple) String() string {
	return fmt.Sprintf("src=%s dst=%s sport=%d dport=%d", t.Src.Addr(), t.Dst.Addr(), t.Src.Port(), t.Dst.Port())
}

func compareEntries(a, b Entry) int {
	return cmp.Or(
		a.Orig.Dst.Compare(b.Orig.Dst),
		cmp.Compare(a.Proto, b.Proto),
		a.Orig.Src.Compare(b.Orig.Src),
		a.Reply.Src.Compare(b.Reply.Src),
		a.Reply.Dst.Compare(b.Reply.Dst),
	)
}

// ParseEntries reads what Format prints, so tests can state a table as
// text. Blank lines are skipped.
func ParseEntries(text string) ([]Entry, error) {
	var out []Entry
	for i, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		e, err := parseEntry(line)
		if err != nil {
			return nil, fmt.Errorf("line %d %q: %w", i+1, line, err)
		}
		out = append(out, e)
	}
	return out, nil
}

func parseEntry(line string) (Entry, error) {
	fields := strings.Fields(line)
	if len(fields) != 9 {
		return Entry{}, fmt.Errorf("want a protocol and 8 fields, got %d fields", len(fields))
	}
	orig, err := parseTuple(fields[1:5])
	if err != nil {
		return Entry{}, err
	}
	reply, err := parseTuple(fields[5:9])
	if err != nil {
		return Entry{}, err
	}
	return Entry{Proto: strings.ToUpper(fields[0]), Orig: orig, Reply: reply}, nil
}

func parseTuple(fields []string) (Tuple, error) {
	var v [4]string
	for i, name := range []string{"src", "dst", "sport", "dport"} {
		val, ok := strings.CutPrefix(fields[i], name+"=")
		if !ok {
			return Tuple{}, fmt.Errorf("field %q: want %s=", fields[i], name)
		}
		v[i] = val
	}
	src, err1 := netip.ParseAddr(v[0])
	dst, err2 := netip.ParseAddr(v[1])
	sport, err3 := strconv.ParseUint(v[2], 10, 16)
	dport, err4 := strconv.ParseUint(v[3], 10, 16)
	if err := cmp.Or(err1, err2, err3, err4); err != nil {
		return Tuple{}, err
	}
	return Tuple{Src: netip.AddrPortFrom(src, uint16(sport)), Dst: netip.AddrPortFrom(dst, uint16(dport))}, nil
}
