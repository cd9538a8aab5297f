package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
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

// trashWait is how long a deleted real server can stay in the kernel's
// trash list: it is freed once idle for IP_VS_DEST_TRASH_PERIOD (120 s),
// checked every 60 s. Until then every real server added scans the list,
// so right after a cleanup of 50,000 real servers the next cold start
// would pay for the previous run (measured: most of ipvs-proxy's cold
// start at 5,000 Services was the kernel's add-destination). A node's real
// cold start, after a boot, has no trash. Unloading ip_vs would empty it
// at once, but this process's moby/ipvs handle keeps the old generic
// netlink family for life.
const trashWait = 190 * time.Second

// trashFloor is the number of deleted real servers below which the scan
// costs too little to wait for.
const trashFloor = 5000

// waitTrash sleeps out the trash left by a cleanup that deleted deleted
// real servers.
func waitTrash(t *testing.T, deleted int) {
	if deleted < trashFloor {
		return
	}
	t.Logf("waiting %s for the kernel to free the %d real servers just deleted", trashWait, deleted)
	time.Sleep(trashWait)
}
