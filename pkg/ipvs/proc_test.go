package ipvs

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"
)

// The text as kernel 6.1 prints it: persistence and one-packet flags,
// IPv6, another program's firewall-mark virtual server with a real server,
// ipvs-proxy's of both families (TCP, UDP) and one without real servers, a
// virtual server without any.
const procSample = `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
TCP  0A60000A:0050 rr 
  -> 0AF40103:1F90      Masq    1      0          2         
  -> 0AF40102:1F90      Masq    0      3          0         
SCTP  0A60000B:0009 sh persistent 10800 FFFFFFFF
UDP  [fd00:0010:0096:0000:0000:0000:0000:000a]:0035 lc 
  -> [fd00:0010:0244:0000:0000:0000:0000:0002]:14E9      Masq    1      0          0         
FWM  00000001 wlc 
  -> 0A000001:0050      Route   1      0          0         
FWM  40000A01 rr 
  -> 0AF40104:1F90      Masq    1      0          0         
FWM  50000A01 rr 
  -> [fd00:0010:0244:0000:0000:0000:0000:0005]:0035      Masq    1      0          0         
FWM  40000A02 rr 
TCP  AC110001:1F90 wlc ops 
  -> AC110002:0050      Masq    3      0          0         
`

func TestParseProc(t *testing.T) {
	got, err := ParseProc(strings.NewReader(procSample))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for k, ds := range got {
		line := k.String() + ":"
		for _, d := range ds {
			line += fmt.Sprintf(" %s w%d a%d i%d", d.AddrPort(), d.Weight, d.ActiveConns, d.InactiveConns)
		}
		lines = append(lines, line)
	}
	sort.Strings(lines)
	want := `FWM 1073744385: 10.244.1.4:8080 w1 a0 i0
FWM 1342179841 IPv6: [fd00:10:244::5]:53 w1 a0 i0
SCTP 10.96.0.11:9:
TCP 10.96.0.10:80: 10.244.1.2:8080 w0 a3 i0 10.244.1.3:8080 w1 a0 i2
TCP 172.17.0.1:8080: 172.17.0.2:80 w3 a0 i0
UDP [fd00:10:96::a]:53: [fd00:10:244::2]:5353 w1 a0 i0`
	if g := strings.Join(lines, "\n"); g != want {
		t.Errorf("parsed:\n%s\nwant:\n%s", g, want)
	}
}

func TestParseProcRefuses(t *testing.T) {
	head := "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n"
	for _, bad := range []string{
		"TCP  0A60000A rr\n",
		"TCP  0A6000:0050 rr\n",
		"TCP  0A60000A:0050 rr\n  -> 0AF40103:1F90      Masq    x      0          2\n",
		"TCP  0A60000A:0050 rr\n  -> 0AF40103:1F90 Masq 1\n",
		"UDP  [fd00::zz]:0035 lc\n",
	} {
		if _, err := ParseProc(strings.NewReader(head + bad)); err == nil {
			t.Errorf("%q parsed without an error", bad)
		}
	}
}

// TestParseProcAllocations: a periodic resync parses the whole file, tens
// of thousands of lines; parsing costs an allocation per virtual server
// with real servers (its list, at its exact length) besides the map and
// the read buffer, never one per line.
func TestParseProcAllocations(t *testing.T) {
	var b strings.Builder
	b.WriteString("IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n")
	const services, dests = 500, 10
	for i := range services {
		fmt.Fprintf(&b, "TCP  0A60%04X:0050 rr \n", i)
		for j := range dests {
			fmt.Fprintf(&b, "  -> 0AF4%02X%02X:1F90      Masq    1      0          0         \n", i%256, j)
		}
	}
	text := b.String()
	var got map[ServiceKey][]Destination
	allocs := testing.AllocsPerRun(5, func() {
		var err error
		if got, err = parseProc(strings.NewReader(text), services); err != nil {
			t.Fatal(err)
		}
	})
	if len(got) != services {
		t.Fatalf("parsed %d virtual servers, want %d", len(got), services)
	}
	for k, ds := range got {
		if len(ds) != dests || cap(ds) != dests {
			t.Fatalf("%s: %d real servers in a list of %d, want %d in %d", k, len(ds), cap(ds), dests, dests)
		}
	}
	// One list each, and a few for the map, the reader, the reused list.
	if lines := services * (1 + dests); allocs > services+20 {
		t.Errorf("parsing %d lines made %.0f allocations, want at most %d", lines, allocs, services+20)
	}
}

// TestParseProcLastLine: a file that does not end in a newline still
// gives its last real server.
func TestParseProcLastLine(t *testing.T) {
	got, err := ParseProc(strings.NewReader(strings.TrimSuffix(procSample, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	k := ServiceKey{Addr: netip.MustParseAddr("172.17.0.1"), Proto: TCP, Port: 8080}
	if ds := got[k]; len(ds) != 1 || ds[0].AddrPort() != netip.MustParseAddrPort("172.17.0.2:80") {
		t.Errorf("%s: %v, want its one real server 172.17.0.2:80", k, ds)
	}
}

// TestParseProcForward: each real server keeps the forwarding method of
// its Forward column, as status prints it; another tool's direct-routing
// or tunnelled real servers are not shown as Masq.
func TestParseProcForward(t *testing.T) {
	head := "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\nTCP  C0A8010A:0050 wlc \n"
	k := ServiceKey{Addr: netip.MustParseAddr("192.168.1.10"), Proto: TCP, Port: 80}
	for _, tc := range []struct {
		column string
		want   Forward
	}{
		{"Masq", ForwardMasq},
		{"Local", ForwardLocal},
		{"Tunnel", ForwardTunnel},
		{"Route", ForwardRoute},
		{"Bypass", ForwardMasq}, // the kernel never prints it (ip_vs_fwd_name): read as its default, not an error
	} {
		t.Run(tc.column, func(t *testing.T) {
			got, err := ParseProc(strings.NewReader(head + "  -> C0A80114:0050      " + tc.column + "   1      0          0         \n"))
			if err != nil {
				t.Fatal(err)
			}
			if ds := got[k]; len(ds) != 1 || ds[0].Forward != tc.want {
				t.Errorf("%s: %+v, want one real server forwarding by %s", k, ds, tc.want)
			}
		})
	}
}
