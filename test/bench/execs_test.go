package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// The guest's root is an overlay of the host's root over 9p (no cache)
// with a tmpfs on top: a file read from the 9p layer leaves nothing in the
// page cache once closed, so every exec of ipset or iptables-restore would
// read the binary and its libraries over 9p again, a cost no node has and
// that only the proxy that execs on every sync (kube-proxy) would pay.
// Touching a file copies it up into the tmpfs, where it stays cached.
var execedByProxies = []string{"ipset", "iptables", "ip6tables", "iptables-save", "iptables-restore",
	"ip6tables-save", "ip6tables-restore", "iptables-nft", "conntrack", "modprobe", "ip"}

// copyUpExecs copies up the proxies' binaries, what they exec, the shared
// libraries of those and iptables' extensions.
func copyUpExecs(binaries ...string) error {
	files := map[string]bool{"/etc/ld.so.cache": true}
	add := func(p string) {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			files[real] = true
		}
	}
	for _, b := range binaries {
		add(b)
	}
	for _, name := range execedByProxies {
		p, err := exec.LookPath(name)
		if err != nil {
			continue // not installed: neither proxy can exec it either
		}
		add(p)
		out, err := exec.Command("ldd", p).Output()
		if err != nil {
			continue // static
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
				add(f[2])
			case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
				add(f[0]) // the dynamic loader
			}
		}
	}
	for _, pattern := range []string{"/usr/lib/*/xtables/*.so", "/lib/*/xtables/*.so"} {
		m, _ := filepath.Glob(pattern)
		for _, p := range m {
			add(p)
		}
	}
	args := []string{"-c"}
	for f := range files {
		args = append(args, f)
	}
	sort.Strings(args[1:])
	if _, err := runCmd(append([]string{"touch"}, args...)...); err != nil {
		return fmt.Errorf("copying up what the proxies exec: %w", err)
	}
	return nil
}

// calibration describes the VM for the report: what one exec costs here.
type calibration struct {
	ExecS float64 `json:"execS"` // median wall time of `ipset version`
}

const calibrationFile = "calibration.json"

func calibrate(work string) (calibration, error) {
	var ds []time.Duration
	for i := 0; i < 11; i++ {
		t0 := time.Now()
		if _, err := runCmd("ipset", "version"); err != nil {
			return calibration{}, err
		}
		ds = append(ds, time.Since(t0))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	c := calibration{ExecS: ds[len(ds)/2].Seconds()}
	data, _ := json.Marshal(c)
	return c, writeFileAtomic(filepath.Join(work, calibrationFile), string(data))
}

func readCalibration(work string) (calibration, bool) {
	var c calibration
	data, err := os.ReadFile(filepath.Join(work, calibrationFile))
	if err != nil || json.Unmarshal(data, &c) != nil {
		return c, false
	}
	return c, true
}
