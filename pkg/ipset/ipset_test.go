package ipset

import (
	"net/netip"
	"testing"
)

func TestEntryString(t *testing.T) {
	a := netip.MustParseAddr
	for _, tc := range []struct {
		e    Entry
		want string
	}{
		{Entry{IP: a("10.244.0.2"), Proto: "tcp", Port: 8080, IP2: a("10.244.0.2")}, "10.244.0.2,tcp:8080,10.244.0.2"},
		{Entry{IP: a("10.244.0.2"), Proto: "tcp", Port: 8080}, "10.244.0.2,tcp:8080"},
		{Entry{IP: a("fd00:10:244::2"), Proto: "udp", Port: 53}, "fd00:10:244::2,udp:53"},
		{Entry{IP: a("fd00::2"), Proto: "sctp", Port: 65535, IP2: a("fd00::3")}, "fd00::2,sctp:65535,fd00::3"},
		{Entry{IP: a("10.0.0.1"), Proto: "udp", Port: 0}, "10.0.0.1,udp:0"},
		{Entry{}, "invalid IP"},
		{Entry{IP: netip.MustParseAddr("10.96.0.1")}, "10.96.0.1"},
	} {
		if got := tc.e.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.e, got, tc.want)
		}
		if tc.e.IP.IsValid() && entry(tc.want) != tc.e {
			t.Errorf("entry(%q) = %#v, want %#v", tc.want, entry(tc.want), tc.e)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		name string
		sets []Contents
		want string
	}{
		{name: "nothing", want: ""},
		{
			name: "sets by name, members by address then protocol, port and second address",
			sets: []Contents{
				{Set: keep6Set, Entries: []Entry{entry("fd00::10,tcp:80"), entry("fd00::9,tcp:80")}},
				{Set: hairpinSet, Entries: []Entry{
					entry("10.0.0.2,udp:53,10.0.0.2"), entry("10.0.0.2,tcp:53,10.0.0.3"),
					entry("10.0.0.2,tcp:53,10.0.0.2"), entry("10.0.0.2,tcp:9,10.0.0.9"), entry("10.0.0.1,udp:1,10.0.0.1"),
				}},
				{Set: keepSet},
			},
			want: `set IPVS-PROXY-T-HAIRPIN hash:ip,port,ip family inet
  10.0.0.1,udp:1,10.0.0.1
  10.0.0.2,tcp:9,10.0.0.9
  10.0.0.2,tcp:53,10.0.0.2
  10.0.0.2,tcp:53,10.0.0.3
  10.0.0.2,udp:53,10.0.0.2
set IPVS-PROXY-T-KEEP hash:ip,port family inet
set IPVS-PROXY-T-KEEP6 hash:ip,port family inet6
  fd00::9,tcp:80
  fd00::10,tcp:80
`,
		},
	} {
		if got := Format(tc.sets); got != tc.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tc.name, got, tc.want)
		}
	}
}
