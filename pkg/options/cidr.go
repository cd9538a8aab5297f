package options

import (
	"net/netip"
	"strings"
)

const notCIDR = "not a CIDR (want e.g. 10.96.0.0/12 or fd00::/108)"

// parsePrefixes parses CIDR list items, masking host bits as kube-proxy
// does ("10.1.2.3/8" is 10.0.0.0/8). With keywords, it also takes the
// --nodeport-addresses keywords 'all' and 'localhost', and reports
// 'primary', which stands for addresses known only once the Node is read.
// Bad items are returned rather than failing the list, so that all of them
// get reported.
func parsePrefixes(items []string, keywords bool) (good []netip.Prefix, bad []badValue, primary bool) {
	for _, item := range items {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if keywords {
			switch item {
			case "all":
				good = append(good, netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0"))
				continue
			case "localhost":
				good = append(good, netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"))
				continue
			case "primary":
				primary = true
				continue
			}
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			bad = append(bad, badValue{item, notCIDR})
			continue
		}
		good = append(good, p.Masked())
	}
	return good, bad, primary
}

// prefixFlag is a comma-separated CIDR list flag. As with pflag's string
// slices, the first use replaces the default and later uses append. It
// never fails the parse: bad items wait in Options.badCIDRs for Validate.
type prefixFlag struct {
	o        *Options
	f        field
	list     *[]netip.Prefix
	keywords bool
	changed  bool
}

func (o *Options) prefixFlag(f field, list *[]netip.Prefix, keywords bool) *prefixFlag {
	return &prefixFlag{o: o, f: f, list: list, keywords: keywords}
}

func (p *prefixFlag) Set(s string) error {
	good, bad, primary := parsePrefixes(strings.Split(s, ","), p.keywords)
	if !p.changed {
		*p.list = nil
		p.o.setBad(p.f, nil)
		p.changed = true
	}
	p.o.NodePortPrimary = p.o.NodePortPrimary || primary
	*p.list = append(*p.list, good...)
	p.o.setBad(p.f, append(p.o.badCIDRs[p.f], bad...))
	return nil
}

func (p *prefixFlag) String() string { return joinPrefixes(*p.list) }

func (p *prefixFlag) Type() string { return "cidrs" }

func (o *Options) setBad(f field, bad []badValue) {
	if len(bad) == 0 {
		delete(o.badCIDRs, f)
		return
	}
	if o.badCIDRs == nil {
		o.badCIDRs = map[field][]badValue{}
	}
	o.badCIDRs[f] = bad
}

// ParsePrefixes parses CIDRs as the flags do (host bits masked), for CIDRs
// read from the API (a Node's podCIDRs); bad lists the items that did not
// parse.
func ParsePrefixes(items []string) (good []netip.Prefix, bad []string) {
	good, b, _ := parsePrefixes(items, false)
	for _, x := range b {
		bad = append(bad, x.value)
	}
	return good, bad
}
