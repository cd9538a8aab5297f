package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// dirty says what either proxy (or the floor) left in the kernel, "" when
// nothing: every run must start from the same clean state.
func (g *guest) dirty() string {
	var left []string
	if t, err := readProcTable(); err != nil {
		left = append(left, "reading /proc/net/ip_vs: "+err.Error())
	} else if vs, rs := t.counts(); vs > 0 {
		left = append(left, fmt.Sprintf("%d virtual servers and %d real servers", vs, rs))
	}
	if exec.Command("ip", "link", "show", "kube-ipvs0").Run() == nil {
		left = append(left, "the link kube-ipvs0")
	}
	if out, err := runCmd("ipset", "list", "-n"); err != nil {
		left = append(left, "ipset list: "+err.Error())
	} else if s := strings.TrimSpace(string(out)); s != "" {
		left = append(left, "ipsets "+strings.Join(strings.Fields(s), ", "))
	}
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		out, err := runCmd(save)
		if err != nil {
			left = append(left, save+": "+err.Error())
			continue
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "KUBE-") || strings.Contains(line, "IPVS-PROXY") {
				left = append(left, save+": "+line)
				break
			}
		}
	}
	return strings.Join(left, "; ")
}

// ruleCounts is the number of iptables rules (IPv4 and IPv6, every table)
// and of ipset members on the node.
func ruleCounts() (rules, members int, err error) {
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		out, err := runCmd(save)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", save, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "-A ") {
				rules++
			}
		}
	}
	// -t prints each set's header, with its size, and not its members.
	out, err := runCmd("ipset", "list", "-t")
	if err != nil {
		return 0, 0, fmt.Errorf("ipset list: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Number of entries: "); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return 0, 0, fmt.Errorf("ipset list: %q", sc.Text())
			}
			members += n
		}
	}
	return rules, members, nil
}

// runCmd runs a command and returns its output; the error carries it.
func runCmd(argv ...string) ([]byte, error) {
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// resetIPVS unloads and reloads the IPVS modules once the kernel holds no
// virtual server. The kernel keeps deleted real servers in a trash list for
// two to three minutes, and every real server added meanwhile scans that
// list: right after a cleanup of 50,000 real servers, the next proxy's cold
// start would pay for the previous run (measured: most of its time in the
// kernel's add). A node's real cold start, after a boot, has no trash.
// Unloading is the one way to empty it; the proxies set their sysctls again
// at start.
func resetIPVS() error {
	mods, err := os.ReadFile("/proc/modules")
	if err != nil {
		return err
	}
	var ipvs []string
	for _, line := range strings.Split(string(mods), "\n") {
		name, _, _ := strings.Cut(line, " ")
		if strings.HasPrefix(name, "ip_vs_") || name == "xt_ipvs" {
			ipvs = append(ipvs, name)
		}
	}
	if out, err := runCmd(append([]string{"modprobe", "-r"}, append(ipvs, "ip_vs")...)...); err != nil {
		return fmt.Errorf("unload IPVS: %v: %s", err, out)
	}
	if out, err := runCmd(append([]string{"modprobe", "-a"}, append(ipvs, "ip_vs")...)...); err != nil {
		return fmt.Errorf("reload IPVS: %v: %s", err, out)
	}
	return nil
}
