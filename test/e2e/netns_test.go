package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// inNetns runs fn on a thread switched into the named network namespace
// ("" is the node's own). Sockets created inside keep that namespace after
// the thread switches back, so listeners and connections can be used from
// any goroutine afterwards.
func inNetns(name string, fn func() error) error {
	if name == "" {
		return fn()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	target, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return err
	}
	defer netns.Set(orig) //nolint:errcheck // restoring the thread's namespace
	return fn()
}

// serve answers each line on a TCP connection, and each UDP datagram, with
// "<name> <client address as seen>", so a test sees which pod answered and
// whether its source address was rewritten.
func serve(t *testing.T, ns, name string) {
	t.Helper()
	err := inNetns(ns, func() error {
		ln, err := net.Listen("tcp", ":8080")
		if err != nil {
			return err
		}
		pc, err := net.ListenPacket("udp", ":8080")
		if err != nil {
			return err
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					sc := bufio.NewScanner(c)
					for sc.Scan() {
						fmt.Fprintf(c, "%s %s\n", name, c.RemoteAddr())
					}
				}()
			}
		}()
		go func() {
			buf := make([]byte, 512)
			for {
				_, addr, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				pc.WriteTo([]byte(fmt.Sprintf("%s %s\n", name, addr)), addr) //nolint:errcheck
			}
		}()
		return nil
	})
	if err != nil {
		t.Fatalf("start server %s: %v", name, err)
	}
}

// answer is one reply: which pod, and the client address it saw.
type answer struct{ pod, seen string }

// ask sends one request on a new connection from namespace ns (optionally
// from source address src) and returns the answer.
func ask(ns, network, addr, src string) (answer, error) {
	var a answer
	err := inNetns(ns, func() error {
		d := net.Dialer{Timeout: 2 * time.Second}
		if src != "" {
			if network == "udp" {
				d.LocalAddr = &net.UDPAddr{IP: net.ParseIP(src)}
			} else {
				d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
			}
		}
		c, err := d.Dial(network, addr)
		if err != nil {
			return err
		}
		defer c.Close()
		a, err = roundTrip(c)
		return err
	})
	return a, err
}

func roundTrip(c net.Conn) (answer, error) {
	c.SetDeadline(time.Now().Add(2 * time.Second)) //nolint:errcheck
	if _, err := fmt.Fprintln(c, "hi"); err != nil {
		return answer{}, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return answer{}, err
	}
	pod, seen, _ := strings.Cut(strings.TrimSpace(line), " ")
	host, _, _ := net.SplitHostPort(seen)
	return answer{pod: pod, seen: host}, nil
}

// dial opens a long-lived TCP connection from namespace ns.
func dial(ns, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNetns(ns, func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, 2*time.Second)
		return err
	})
	return c, err
}

func sh(t *testing.T, script string) string {
	t.Helper()
	out, err := exec.Command("sh", "-ec", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return string(out)
}

// topology makes the pods the way a routed CNI does (Calico, the ptp
// plugin): each pod is a network namespace on its own veth with a /32, its
// default route via a link-local gateway the node answers for, and the
// node routes each pod address to its veth. All pod traffic is routed by
// the node, as on most clusters. The external client has its own link.
func topology(t *testing.T, pods map[string]int) {
	t.Helper()
	// The node forwards pod traffic (the CNI or node setup enables this;
	// ipvs-proxy sets only IPv4's, as kube-proxy does).
	sh(t, "sysctl -qw net.ipv6.conf.all.forwarding=1")
	for name, n := range pods {
		sh(t, fmt.Sprintf(`ip netns add %[1]s
ip link add v-%[1]s type veth peer name eth0 netns %[1]s
sysctl -qw net.ipv4.conf.v-%[1]s.proxy_arp=1
ip link set v-%[1]s up
ip addr add fe80::1/64 dev v-%[1]s nodad
ip route add 10.244.0.%[2]d/32 dev v-%[1]s
ip -6 route add fd00:244::%[2]d/128 dev v-%[1]s
ip -n %[1]s link set lo up
ip -n %[1]s addr add 10.244.0.%[2]d/32 dev eth0
ip -n %[1]s addr add fd00:244::%[2]d/128 dev eth0 nodad
ip -n %[1]s link set eth0 up
ip -n %[1]s route add 169.254.1.1 dev eth0 scope link
ip -n %[1]s route add default via 169.254.1.1 dev eth0
ip -n %[1]s -6 route add default via fe80::1 dev eth0`, name, n))
	}
	extra := ""
	for i := 10; i < 30; i++ {
		extra += fmt.Sprintf("ip -n ext addr add 192.168.100.%d/24 dev eth0\n", i)
	}
	t.Cleanup(func() {
		// Deleting one end of a veth deletes both; a namespace whose
		// sockets are still open lives on unnamed, out of the way.
		script := "ip link del v-ext; ip netns del ext\n"
		for name := range pods {
			script += fmt.Sprintf("ip link del v-%[1]s; ip netns del %[1]s\n", name)
		}
		exec.Command("sh", "-c", script).Run() //nolint:errcheck // best effort
	})
	sh(t, `ip netns add ext
ip link add v-ext type veth peer name eth0 netns ext
ip addr add 192.168.100.1/24 dev v-ext
ip link set v-ext up
ip -n ext link set lo up
ip -n ext addr add 192.168.100.2/24 dev eth0
ip -n ext link set eth0 up
ip -n ext route add default via 192.168.100.1
`+extra)
}
