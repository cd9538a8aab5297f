package sysctl

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRequired(t *testing.T) {
	const (
		base = `net/ipv4/vs/conntrack = 1
net/ipv4/vs/expire_nodest_conn = 1
net/ipv4/vs/expire_quiescent_template = 1
net/ipv4/ip_forward = 1
`
		withReuse = `net/ipv4/vs/conntrack = 1
net/ipv4/vs/conn_reuse_mode = 0
net/ipv4/vs/expire_nodest_conn = 1
net/ipv4/vs/expire_quiescent_template = 1
net/ipv4/ip_forward = 1
`
		arp = `net/ipv4/conf/all/arp_ignore = 1
net/ipv4/conf/all/arp_announce = 2
`
	)
	for _, tc := range []struct {
		kernel    string
		strictARP bool
		want      string
	}{
		{"3.10.0-1160.el7.x86_64", false, base}, // conn_reuse_mode does not exist before 4.1
		{"3.10", true, base + arp},
		{"4.0.9", false, base},
		{"4.1.0", false, withReuse},
		{"4.19.0-26-amd64", false, withReuse},
		{"5.8.18", false, withReuse},
		{"5.8.18", true, withReuse + arp},
		{"5.9.0", false, base}, // fixed in 5.9: keep the kernel's mode 1
		{"6.1.0-28-amd64", false, base},
		{"6.1.0-28-amd64", true, base + arp},
		{"10.0.0", false, base},
		{"", false, base},        // unknown: leave conn_reuse_mode alone
		{"garbage", false, base}, // same
		{"5.4+", false, withReuse},
	} {
		t.Run(fmt.Sprintf("%s strictARP=%v", tc.kernel, tc.strictARP), func(t *testing.T) {
			var got strings.Builder
			for _, s := range Required(tc.strictARP, tc.kernel) {
				if s.Why == "" {
					t.Errorf("%s has no Why", s.Name)
				}
				fmt.Fprintf(&got, "%s = %s\n", s.Name, s.Value)
			}
			diff(t, "settings", tc.want, got.String())
		})
	}
}

// recorder counts the writes that reach the kernel.
type recorder struct {
	Interface
	sets   []string
	failOn map[string]error
}

func (r *recorder) Set(name, value string) error {
	if err := r.failOn[name]; err != nil {
		return err
	}
	r.sets = append(r.sets, name+"="+value)
	return r.Interface.Set(name, value)
}

func TestApply(t *testing.T) {
	kernel := Fake{
		"net/ipv4/vs/conntrack":                 "0",
		"net/ipv4/vs/conn_reuse_mode":           "1",
		"net/ipv4/vs/expire_nodest_conn":        "1", // already right
		"net/ipv4/vs/expire_quiescent_template": "0",
		"net/ipv4/ip_forward":                   "1", // already right
		"net/ipv4/conf/all/arp_ignore":          "0",
		"net/ipv4/conf/all/arp_announce":        "0",
		"net/ipv4/tcp_fin_timeout":              "60", // not ours: untouched
	}
	r := &recorder{Interface: kernel}
	changed, err := Apply(r, Required(true, "5.4.0-150-generic"))
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "changed", `net/ipv4/vs/conntrack: 0 -> 1
net/ipv4/vs/conn_reuse_mode: 1 -> 0
net/ipv4/vs/expire_quiescent_template: 0 -> 1
net/ipv4/conf/all/arp_ignore: 0 -> 1
net/ipv4/conf/all/arp_announce: 0 -> 2`, strings.Join(changed, "\n"))
	diff(t, "kernel", `net/ipv4/conf/all/arp_announce = 2
net/ipv4/conf/all/arp_ignore = 1
net/ipv4/ip_forward = 1
net/ipv4/tcp_fin_timeout = 60
net/ipv4/vs/conn_reuse_mode = 0
net/ipv4/vs/conntrack = 1
net/ipv4/vs/expire_nodest_conn = 1
net/ipv4/vs/expire_quiescent_template = 1
`, kernel.Dump())
	if len(r.sets) != 5 {
		t.Errorf("wrote %d sysctls, want only the 5 that differ: %v", len(r.sets), r.sets)
	}

	// A second run finds nothing to do and writes nothing.
	r.sets = nil
	changed, err = Apply(r, Required(true, "5.4.0-150-generic"))
	if err != nil || len(changed) != 0 || len(r.sets) != 0 {
		t.Errorf("second Apply: changed %q, wrote %q, err %v; want nothing", changed, r.sets, err)
	}
}

func TestApplyWithoutIPVSModule(t *testing.T) {
	kernel := Fake{ // no net/ipv4/vs/...: ip_vs is not loaded
		"net/ipv4/ip_forward":            "0",
		"net/ipv4/conf/all/arp_ignore":   "0",
		"net/ipv4/conf/all/arp_announce": "0",
	}
	changed, err := Apply(kernel, Required(true, "6.1.0-28-amd64"))
	want := `sysctl net/ipv4/vs/conntrack does not exist: the ip_vs kernel module is not loaded; run "modprobe ip_vs" on the node, and add ip_vs to /etc/modules-load.d/ so it loads at boot`
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	diff(t, "error (once, not per vs sysctl)", want, err.Error())
	// The settings that do exist are still applied.
	diff(t, "changed", `net/ipv4/ip_forward: 0 -> 1
net/ipv4/conf/all/arp_ignore: 0 -> 1
net/ipv4/conf/all/arp_announce: 0 -> 2`, strings.Join(changed, "\n"))
}

func TestApplyErrors(t *testing.T) {
	kernel := Fake{
		"net/ipv4/vs/conntrack":                 "0",
		"net/ipv4/vs/expire_nodest_conn":        "0",
		"net/ipv4/vs/expire_quiescent_template": "0",
		// net/ipv4/ip_forward missing: not a module problem
	}
	r := &recorder{Interface: kernel, failOn: map[string]error{
		"net/ipv4/vs/conntrack": &fs.PathError{Op: "open", Path: "/proc/sys/net/ipv4/vs/conntrack", Err: syscall.EROFS},
	}}
	changed, err := Apply(r, Required(false, "6.6.0"))
	diff(t, "error", `set sysctl net/ipv4/vs/conntrack to 1: open /proc/sys/net/ipv4/vs/conntrack: read-only file system (/proc/sys is read-only here: ipvs-proxy must run in a privileged container)
read sysctl net/ipv4/ip_forward: open /proc/sys/net/ipv4/ip_forward: file does not exist`, fmt.Sprint(err))
	diff(t, "changed despite errors", `net/ipv4/vs/expire_nodest_conn: 0 -> 1
net/ipv4/vs/expire_quiescent_template: 0 -> 1`, strings.Join(changed, "\n"))
}

func TestFakeDump(t *testing.T) {
	f := Fake{"b/x": "2", "a/y": "1"}
	if err := f.Set("c/new", "1"); err == nil {
		t.Error("Set of a missing sysctl succeeded; /proc/sys cannot create one")
	}
	diff(t, "dump", "a/y = 1\nb/x = 2\n", f.Dump())
}

func TestProcfs(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "net/ipv4"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "net/ipv4/ip_forward"), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := procfs{root: root}
	if v, err := p.Get("net/ipv4/ip_forward"); err != nil || v != "0" {
		t.Errorf("Get = %q, %v; want \"0\"", v, err)
	}
	if err := p.Set("net/ipv4/ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "net/ipv4/ip_forward")); string(b) != "1\n" {
		t.Errorf("file holds %q after Set, want \"1\\n\"", b)
	}
	if _, err := p.Get("net/ipv4/vs/conntrack"); !errorsIsNotExist(err) {
		t.Errorf("Get of a missing sysctl: %v, want fs.ErrNotExist", err)
	}
	if err := p.Set("net/ipv4/vs/conntrack", "1"); !errorsIsNotExist(err) {
		t.Errorf("Set of a missing sysctl: %v, want fs.ErrNotExist", err)
	}
	for _, bad := range []string{"", "/etc/passwd", "../etc/passwd", "net/../../etc/passwd"} {
		if _, err := p.Get(bad); err == nil {
			t.Errorf("Get(%q) succeeded, want a bad-name error", bad)
		}
	}
}

func TestLinuxReadsProc(t *testing.T) {
	if _, err := os.Stat("/proc/sys/net/ipv4/ip_forward"); err != nil {
		t.Skipf("no /proc/sys here: %v", err)
	}
	v, err := NewLinux().Get("net/ipv4/ip_forward")
	if err != nil || (v != "0" && v != "1") {
		t.Errorf("Get(net/ipv4/ip_forward) = %q, %v; want 0 or 1", v, err)
	}
	kv, err := KernelVersion()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := parseKernelVersion(kv); !ok {
		t.Errorf("KernelVersion() = %q, which does not parse", kv)
	}
}

func errorsIsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

func diff(t *testing.T, what, want, got string) {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s (-want +got):\n%s", what, d)
	}
}
