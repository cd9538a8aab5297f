package vm

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// depsHint is appended to errors about missing host pieces.
const depsHint = "(run hack/vm-deps.sh to install qemu, the Debian kernel and busybox-static)"

// kernel is a bootable kernel image with its modules directory on the host.
type kernel struct {
	Image   string // /boot/vmlinuz-<Version>
	Version string // 6.1.0-56-amd64
	Modules string // /lib/modules/<Version>
}

// findKernel picks the newest /boot/vmlinuz-* whose /lib/modules/<version> exists: the
// guest loads its modules from the host's root, so an image without them is useless.
func findKernel(bootDir, modulesDir string) (kernel, error) {
	images, err := filepath.Glob(filepath.Join(bootDir, "vmlinuz-*"))
	if err != nil {
		return kernel{}, fmt.Errorf("listing kernels: %w", err)
	}
	var found []kernel
	for _, img := range images {
		v := strings.TrimPrefix(filepath.Base(img), "vmlinuz-")
		mods := filepath.Join(modulesDir, v)
		if st, err := os.Stat(mods); err == nil && st.IsDir() {
			found = append(found, kernel{Image: img, Version: v, Modules: mods})
		}
	}
	if len(found) == 0 {
		return kernel{}, fmt.Errorf("no %s/vmlinuz-* with a matching %s/<version> directory %s",
			bootDir, modulesDir, depsHint)
	}
	sort.Slice(found, func(i, j int) bool { return versionLess(found[i].Version, found[j].Version) })
	return found[len(found)-1], nil
}

// versionLess compares kernel versions such as 6.1.0-9-amd64 and 6.1.0-56-amd64 by
// their numeric parts, so -56 is newer than -9.
func versionLess(a, b string) bool {
	split := func(s string) []string {
		return strings.FieldsFunc(s, func(r rune) bool { return r == '.' || r == '-' })
	}
	pa, pb := split(a), split(b)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		switch {
		case ea == nil && eb == nil && na != nb:
			return na < nb
		case (ea != nil || eb != nil) && pa[i] != pb[i]:
			return pa[i] < pb[i]
		}
	}
	return len(pa) < len(pb)
}

// initramfsModules are what /init needs before it can reach the host's root: 9p over
// virtio (with netfs and fscache, which Debian's 9p.ko depends on), overlay for the
// writable layer, virtio_net for eth0 and virtio_console for the output port. In Debian's
// kernel all of these are modules, not built in.
var initramfsModules = []string{"virtio_pci", "9p", "9pnet_virtio", "overlay", "virtio_net", "virtio_console"}

// resolveModules returns the .ko files for mods and their dependencies in load order,
// each once, as modprobe --show-depends reports them (built-in modules are skipped).
func resolveModules(kver string, mods []string) ([]string, error) {
	var paths []string
	seen := map[string]bool{}
	for _, m := range mods {
		out, err := exec.Command("modprobe", "-S", kver, "--show-depends", m).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("modprobe -S %s --show-depends %s: %v: %s %s",
				kver, m, err, bytes.TrimSpace(out), depsHint)
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 || f[0] != "insmod" || seen[f[1]] {
				continue // "builtin x" lines and repeats
			}
			seen[f[1]] = true
			paths = append(paths, f[1])
		}
	}
	return paths, nil
}

// readModule returns a module's uncompressed bytes: insmod in busybox takes plain .ko.
func readModule(path string) ([]byte, error) {
	var out []byte
	var err error
	switch {
	case strings.HasSuffix(path, ".ko.xz"):
		out, err = exec.Command("xz", "-dc", path).Output()
	case strings.HasSuffix(path, ".ko.zst"):
		out, err = exec.Command("zstd", "-dcq", path).Output()
	case strings.HasSuffix(path, ".ko.gz"):
		out, err = exec.Command("gzip", "-dc", path).Output()
	default:
		out, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading module %s: %w", path, err)
	}
	return out, nil
}

// moduleName turns /lib/modules/v/kernel/fs/9p/9p.ko.xz into 9p.
func moduleName(path string) string {
	base := filepath.Base(path)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return base
}

// guestModprobeList is what the guest loads with one `modprobe -a` in the chroot: the
// modules the project uses by name plus every netfilter, IPVS and ipset module, so no
// test fails on a missing iptables match or target ("Extension X revision 0 not
// supported"). One modprobe process for all of them: forks are slow under TCG.
func guestModprobeList(modulesDir string) ([]string, error) {
	names := []string{"ip_vs", "ip_vs_rr", "ip_vs_lc", "ip_vs_sh", "ip_vs_wrr", "ip_vs_mh",
		"dummy", "veth", "bridge", "nf_conntrack", "nf_conntrack_netlink", "xt_ipvs",
		"nf_tables", "nft_compat", "nft_chain_nat"}
	seen := map[string]bool{}
	for _, n := range names {
		seen[n] = true
	}
	// kernel/net/netfilter contains the ipvs and ipset directories.
	for _, dir := range []string{"kernel/net/netfilter", "kernel/net/ipv4/netfilter",
		"kernel/net/ipv6/netfilter", "kernel/net/sctp"} {
		err := filepath.WalkDir(filepath.Join(modulesDir, dir), func(p string, d os.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return nil // sctp, for one, may be absent
				}
				return err
			}
			if n := moduleName(p); !d.IsDir() && strings.Contains(filepath.Base(p), ".ko") && !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("listing modules under %s: %w", dir, err)
		}
	}
	return names, nil
}

// findBusybox returns a statically linked busybox: the initramfs has no libc.
func findBusybox() (string, error) {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		static := true
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				static = false
			}
		}
		f.Close()
		if static {
			return p, nil
		}
	}
	return "", fmt.Errorf("no statically linked busybox at /bin/busybox %s", depsHint)
}
