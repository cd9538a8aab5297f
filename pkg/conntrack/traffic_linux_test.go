//go:build linux

package conntrack

import (
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/test/netnstest"
	"github.com/vishvananda/netlink"
)

// The bug itself, with real datagrams on loopback in a test namespace: a
// DNAT rule stands in for IPVS (both leave original destination = VIP and
// reply source = backend). After the "rollout" moves the client to a new
// backend, its datagrams still reach the old one, because NAT is decided
// once per conntrack entry; after DeleteFlows they reach the new one, and
// the flow to another port of the same backend address is left alone.
func TestLinuxStaleUDPFlowWithTraffic(t *testing.T) {
	netnstest.Enter(t)
	if _, err := exec.LookPath("nft"); err != nil {
		netnstest.Skipf(t, "needs nft to add a DNAT rule in the test namespace (hack/vm-deps.sh installs it)")
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	// The VIP is local, as IPVS's are on the dummy interface; without a
	// route the datagram would not reach the NAT hook.
	if err := netlink.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 96, 0, 10), Mask: net.CIDRMask(32, 32)}}); err != nil {
		t.Fatal(err)
	}
	nft(t, `table ip ctest {
	chain out {
		type nat hook output priority -100; policy accept;
		ip daddr 10.96.0.10 udp dport 53 dnat to 127.0.0.2:5353
		ip daddr 10.96.0.10 udp dport 54 dnat to 127.0.0.2:5354
	}
}`)
	oldDNS, otherPort, newDNS := listen(t, "127.0.0.2:5353"), listen(t, "127.0.0.2:5354"), listen(t, "127.0.0.3:5353")
	client, other := listen(t, "127.0.0.1:40000"), listen(t, "127.0.0.1:40002")
	vip53, vip54 := &net.UDPAddr{IP: net.IPv4(10, 96, 0, 10), Port: 53}, &net.UDPAddr{IP: net.IPv4(10, 96, 0, 10), Port: 54}

	send(t, client, vip53, "a")
	expect(t, oldDNS, "a")
	send(t, other, vip54, "x")
	expect(t, otherPort, "x")

	// Rollout: 127.0.0.2:5353 is gone, 127.0.0.3:5353 replaces it.
	nft(t, `flush chain ip ctest out
add rule ip ctest out ip daddr 10.96.0.10 udp dport 53 dnat to 127.0.0.3:5353
add rule ip ctest out ip daddr 10.96.0.10 udp dport 54 dnat to 127.0.0.2:5354`)
	send(t, client, vip53, "b")
	expect(t, oldDNS, "b") // the blackhole: still the old backend

	const stale = "udp src=127.0.0.1 dst=10.96.0.10 sport=40000 dport=53 src=127.0.0.2 dst=127.0.0.1 sport=5353 dport=40000\n"
	const kept = "udp src=127.0.0.1 dst=10.96.0.10 sport=40002 dport=54 src=127.0.0.2 dst=127.0.0.1 sport=5354 dport=40002\n"
	if got := kernelDump(t); got != stale+kept {
		t.Fatalf("table before:\n%s\nwant:\n%s", got, stale+kept)
	}
	n, err := NewLinux().DeleteFlows([]Flow{flow("UDP", "10.96.0.10:53", "127.0.0.2:5353")})
	if n != 1 || err != nil {
		t.Fatalf("DeleteFlows: %d, %v; want 1, nil", n, err)
	}
	if got := kernelDump(t); got != kept {
		t.Fatalf("table after delete:\n%s\nwant:\n%s", got, kept)
	}

	send(t, client, vip53, "c")
	expect(t, newDNS, "c")
	const fresh = "udp src=127.0.0.1 dst=10.96.0.10 sport=40000 dport=53 src=127.0.0.3 dst=127.0.0.1 sport=5353 dport=40000\n"
	if got := kernelDump(t); got != fresh+kept {
		t.Fatalf("table after the next datagram:\n%s\nwant:\n%s", got, fresh+kept)
	}
}

func nft(t *testing.T, script string) {
	t.Helper()
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
}

// listen opens a UDP socket; opened on the test's locked thread, it is in
// the test namespace.
func listen(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c *net.UDPConn, to *net.UDPAddr, msg string) {
	t.Helper()
	if _, err := c.WriteToUDP([]byte(msg), to); err != nil {
		t.Fatalf("send %q to %s: %v", msg, to, err)
	}
}

func expect(t *testing.T, c *net.UDPConn, msg string) {
	t.Helper()
	buf := make([]byte, 64)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, _, err := c.ReadFromUDP(buf)
	if err != nil || string(buf[:n]) != msg {
		t.Fatalf("%s received %q (err %v), want %q", c.LocalAddr(), buf[:n], err, msg)
	}
}
