package conntrack

import (
	"net/netip"
	"testing"
)

func TestFormatSortsAndRoundTrips(t *testing.T) {
	ap := netip.MustParseAddrPort
	entries := []Entry{
		{Proto: "UDP", Orig: Tuple{ap("[fd00::1]:1"), ap("[fd00:96::10]:53")}, Reply: Tuple{ap("[fd00:244::5]:53"), ap("[fd00::1]:1")}},
		{Proto: "UDP", Orig: Tuple{ap("10.0.0.1:2"), ap("10.96.0.10:53")}, Reply: Tuple{ap("10.244.0.5:53"), ap("10.0.0.1:2")}},
		{Proto: "TCP", Orig: Tuple{ap("10.0.0.1:1"), ap("10.96.0.10:53")}, Reply: Tuple{ap("10.244.0.5:53"), ap("10.0.0.1:1")}},
		{Proto: "1", Orig: Tuple{ap("10.0.0.1:0"), ap("10.96.0.9:0")}, Reply: Tuple{ap("10.96.0.9:0"), ap("10.0.0.1:0")}},
	}
	want := `1 src=10.0.0.1 dst=10.96.0.9 sport=0 dport=0 src=10.96.0.9 dst=10.0.0.1 sport=0 dport=0
tcp src=10.0.0.1 dst=10.96.0.10 sport=1 dport=53 src=10.244.0.5 dst=10.0.0.1 sport=53 dport=1
udp src=10.0.0.1 dst=10.96.0.10 sport=2 dport=53 src=10.244.0.5 dst=10.0.0.1 sport=53 dport=2
udp src=fd00::1 dst=fd00:96::10 sport=1 dport=53 src=fd00:244::5 dst=fd00::1 sport=53 dport=1
`
	got := Format(entries)
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	parsed, err := ParseEntries(got)
	if err != nil {
		t.Fatal(err)
	}
	if again := Format(parsed); again != want {
		t.Errorf("round trip:\n%s\nwant:\n%s", again, want)
	}
}

func TestParseEntriesErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"udp src=10.0.0.1", `line 1 "udp src=10.0.0.1": want a protocol and 8 fields, got 2 fields`},
		{"\nudp dst=1.1.1.1 src=1.1.1.1 sport=1 dport=2 src=1.1.1.1 dst=1.1.1.1 sport=1 dport=2",
			`line 2 "udp dst=1.1.1.1 src=1.1.1.1 sport=1 dport=2 src=1.1.1.1 dst=1.1.1.1 sport=1 dport=2": field "dst=1.1.1.1": want src=`},
		{"udp src=1.1.1.1 dst=1.1.1.1 sport=1 dport=70000 src=1.1.1.1 dst=1.1.1.1 sport=1 dport=2",
			`line 1 "udp src=1.1.1.1 dst=1.1.1.1 sport=1 dport=70000 src=1.1.1.1 dst=1.1.1.1 sport=1 dport=2": strconv.ParseUint: parsing "70000": value out of range`},
	} {
		if _, err := ParseEntries(tc.in); errString(err) != tc.want {
			t.Errorf("ParseEntries(%q):\n%v\nwant:\n%s", tc.in, err, tc.want)
		}
	}
}
