package sysctl

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
	"k8s.io/utils/cpuset"
)

// procfs reads and writes files under root (/proc/sys).
type procfs struct{ root string }

// NewLinux returns the sysctls of this network namespace, over /proc/sys.
func NewLinux() Interface { return procfs{root: "/proc/sys"} }

func (p procfs) path(name string) (string, error) {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains("/"+name+"/", "/../") {
		return "", fmt.Errorf("bad sysctl name %q: want a path under /proc/sys such as net/ipv4/ip_forward", name)
	}
	return filepath.Join(p.root, name), nil
}

func (p procfs) Get(name string) (string, error) {
	path, err := p.path(name)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// Set writes without O_CREATE: a sysctl that does not exist cannot be made.
func (p procfs) Set(name, value string) error {
	path, err := p.path(name)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// KernelVersion is the running kernel's release, as `uname -r` prints it.
func KernelVersion() (string, error) {
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		if v := strings.TrimSpace(string(b)); v != "" {
			return v, nil
		}
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("kernel version: %w", err)
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}

// NewModuleParams returns the kernel modules' parameters, over /sys/module
// (e.g. "nf_conntrack/parameters/hashsize").
func NewModuleParams() Interface { return procfs{root: "/sys/module"} }

// NumCPU is the node's online CPUs, which nf_conntrack_max scales with: the
// table is the node's, so a process limited to fewer CPUs must not shrink
// it (kube-proxy counts the same way).
func NumCPU() int {
	if n, err := cpuset.NumCPU(); err == nil && n > 0 {
		return n
	}
	return runtime.NumCPU()
}
