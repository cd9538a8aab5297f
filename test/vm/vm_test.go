package vm_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/test/vm"
)

// Set on the host, passed to the guest through the environment.
const (
	envForward   = "VMTEST_FORWARD_PORT"   // forwarded: a server that greets
	envBlocked   = "VMTEST_BLOCKED_PORT"   // not forwarded: must stay unreachable
	envDiscarded = "VMTEST_DISCARDED_PATH" // written in the guest, must not reach the host
	shareGuest   = "/mnt/vmtest-share"
	greeting     = "hello from the host\n"
)

// TestMain boots one VM for all tests of this package. On the host it first starts
// what the guest tests reach for (a forwarded server, an unforwarded one, a share),
// and after the VM it checks what only the host can see.
func TestMain(m *testing.M) {
	if vm.InGuest() {
		vm.Main(m)
	}
	os.Exit(hostMain(m))
}

func hostMain(m *testing.M) int {
	fwd, err := listen(func(c net.Conn) { c.Write([]byte(greeting)) })
	if err != nil {
		fmt.Println(err)
		return 1
	}
	var blockedHits atomic.Int32
	blocked, err := listen(func(net.Conn) { blockedHits.Add(1) })
	if err != nil {
		fmt.Println(err)
		return 1
	}
	share, err := os.MkdirTemp("", "vmtest-share-")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer os.RemoveAll(share)
	if err := os.WriteFile(filepath.Join(share, "from-host"), []byte("host"), 0o644); err != nil {
		fmt.Println(err)
		return 1
	}
	discarded := filepath.Join(os.TempDir(), fmt.Sprintf("vmtest-discarded-%d", os.Getpid()))

	code := vm.RunTests(m, vm.Config{
		Forwards: []int{port(fwd)},
		Env: []string{
			envForward + "=" + strconv.Itoa(port(fwd)),
			envBlocked + "=" + strconv.Itoa(port(blocked)),
			envDiscarded + "=" + discarded,
		},
		Shares: map[string]string{shareGuest: share},
	})

	// Host-side halves of TestShare, TestOverlayDiscardsWrites and TestNetworkRestricted,
	// checked only when those tests ran.
	if code == 0 && allTestsSelected() {
		if b, err := os.ReadFile(filepath.Join(share, "from-guest")); err != nil || string(b) != "guest" {
			fmt.Printf("FAIL: host: share file from the guest: %q, %v\n", b, err)
			code = 1
		}
		if _, err := os.Stat(discarded); !os.IsNotExist(err) {
			fmt.Printf("FAIL: host: the guest's write to %s reached the host (stat: %v)\n", discarded, err)
			os.Remove(discarded)
			code = 1
		}
		if n := blockedHits.Load(); n != 0 {
			fmt.Printf("FAIL: host: the unforwarded port got %d connections from the guest\n", n)
			code = 1
		}
		if err := stallEndsTheVM(); err != nil {
			fmt.Printf("FAIL: host: %v\n", err)
			code = 1
		}
	}
	return code
}

// stallEndsTheVM boots a VM whose command keeps every guest CPU from the
// kernel's RCU work (a real-time busy loop on each, with the real-time
// throttle off), and checks that the guest kernel's stall panic ends the
// run with ErrKernelStall, long before the VM's own timeout would.
func stallEndsTheVM() error {
	const hog = `echo -1 > /proc/sys/kernel/sched_rt_runtime_us || exit 1
for c in $(seq 0 $(($(nproc) - 1))); do taskset -c "$c" chrt -f 99 sh -c 'while :; do :; done' & done
wait`
	var out bytes.Buffer
	start := time.Now()
	code, err := vm.Run(context.Background(), vm.Config{
		Command:      []string{"sh", "-c", hog},
		Stdout:       &out,
		StallTimeout: 5 * time.Second,
		Timeout:      2 * time.Minute,
	})
	if !errors.Is(err, vm.ErrKernelStall) {
		return fmt.Errorf("a guest that stalls its CPUs: want ErrKernelStall, got exit code %d, error %v\n%s", code, err, out.String())
	}
	// Not the error's text: hack/test.sh runs a failed package once more
	// when its output has vm.StallMarker, and this check passing must not
	// make some other failure of this package look like a stall.
	fmt.Printf("host: a guest that stalls its CPUs ended with ErrKernelStall after %s\n",
		time.Since(start).Round(100*time.Millisecond))
	return nil
}

func allTestsSelected() bool {
	for _, name := range []string{"test.run", "test.skip"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return true
}

// listen serves each connection on a fresh loopback port with handle, then closes it.
func listen(handle func(net.Conn)) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("host listener: %w", err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			handle(c)
			c.Close()
		}
	}()
	return ln, nil
}

func port(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

func sh(t *testing.T, cmd string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", cmd).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	return string(out)
}

func TestGuestEnvironment(t *testing.T) {
	if !vm.InGuest() {
		t.Fatalf("%s is not 1 in the guest", vm.InGuestEnv)
	}
	if h, _ := os.Hostname(); h != "ipvs-proxy-vm" {
		t.Errorf("hostname %q, want ipvs-proxy-vm", h)
	}
	if _, err := os.Stat("/proc/net/ip_vs"); err != nil {
		t.Errorf("ip_vs not loaded: %v", err)
	}
	for _, mod := range []string{"ip_vs_mh", "xt_ipvs", "nft_compat", "nf_conntrack_netlink", "dummy", "veth"} {
		if _, err := os.Stat("/sys/module/" + mod); err != nil {
			t.Errorf("module %s not loaded", mod)
		}
	}
	// Debian's iptables is the nf_tables variant: it works only with the modules loaded.
	sh(t, "iptables -t nat -N VMTEST && iptables -t nat -A VMTEST -m ipvs --vdir ORIGINAL --vmethod MASQ -j MASQUERADE")
}

func TestIPVSDump(t *testing.T) {
	sh(t, "ip link add vmtest0 type dummy && ip addr add 10.1.1.1/32 dev vmtest0")
	if out := sh(t, "ip -d -o link show vmtest0"); !strings.Contains(out, " dummy ") {
		t.Errorf("vmtest0 is not a dummy link: %s", out)
	}
	sh(t, "ipvsadm -A -t 10.1.1.1:80 -s rr")
	sh(t, "ipvsadm -a -t 10.1.1.1:80 -r 10.2.2.2:8080 -m")
	want := "IP Virtual Server version 1.2.1 (size=4096)\n" +
		"Prot LocalAddress:Port Scheduler Flags\n" +
		"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n" +
		"TCP  10.1.1.1:80 rr\n" +
		"  -> 10.2.2.2:8080                Masq    1      0          0         \n"
	if got := sh(t, "ipvsadm -Ln"); got != want {
		t.Errorf("ipvsadm -Ln:\n%q\nwant:\n%q", got, want)
	}
}

func TestForward(t *testing.T) {
	addr := net.JoinHostPort(vm.ForwardAddr, os.Getenv(envForward))
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("forwarded port %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if line != greeting {
		t.Fatalf("from %s: %q, %v; want %q", addr, line, err, greeting)
	}
}

// TestNetworkRestricted: without restrict=on, 10.0.2.2:PORT would reach the host's
// loopback server on PORT; the host also counts its connections (must be 0).
func TestNetworkRestricted(t *testing.T) {
	p := os.Getenv(envBlocked)
	for _, addr := range []string{"10.0.2.2:" + p, vm.ForwardAddr + ":" + p, "10.0.2.2:22"} {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err == nil {
			c.Close()
			t.Errorf("connect to %s from the guest succeeded; only forwarded ports may", addr)
		}
	}
}

func TestShare(t *testing.T) {
	if b, err := os.ReadFile(shareGuest + "/from-host"); err != nil || string(b) != "host" {
		t.Fatalf("reading the share: %q, %v", b, err)
	}
	if err := os.WriteFile(shareGuest+"/from-guest", []byte("guest"), 0o644); err != nil {
		t.Fatalf("writing the share: %v", err)
	}
}

func TestOverlayDiscardsWrites(t *testing.T) {
	if err := os.WriteFile(os.Getenv(envDiscarded), []byte("x"), 0o644); err != nil {
		t.Fatalf("the guest root must be writable: %v", err)
	}
}
