package vm

// Tests of pure helpers. They need no kernel features, but share the package's test
// binary, so they run in the guest along with the rest.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunScriptQuoting(t *testing.T) {
	script, err := runScript([]string{"sh", "-c", `printf '%s|' "$0" "$X" "$` + InGuestEnv + `"`, "a b'c"},
		[]string{"X=it's $HOME", "ODD NAME=1"}, "/")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s\nscript:\n%s", err, out, script)
	}
	if want := "a b'c|it's $HOME|1|"; string(out) != want {
		t.Errorf("got %q, want %q\nscript:\n%s", out, want, script)
	}
	if _, err := runScript([]string{"A=B"}, nil, "/"); err == nil {
		t.Error("a program name with '=' was accepted")
	}
	if _, err := runScript([]string{"true"}, []string{"NOVALUE"}, "/"); err == nil {
		t.Error("an environment entry without '=' was accepted")
	}
}

// TestCPIO unpacks an archive from cpioWriter with busybox cpio.
func TestCPIO(t *testing.T) {
	busybox, err := findBusybox()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	c := &cpioWriter{w: &buf}
	c.Dir("d")
	c.File("d/odd", 0o755, []byte("abc")) // lengths that need padding
	c.File("d/empty", 0o644, nil)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(busybox, "cpio", "-i", "-d")
	cmd.Dir, cmd.Stdin = dir, &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("busybox cpio -i: %v: %s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "d/odd")); err != nil || string(b) != "abc" {
		t.Errorf("d/odd: %q, %v", b, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "d/odd")); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("d/odd mode: %v, %v", st, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "d/empty")); err != nil || st.Size() != 0 {
		t.Errorf("d/empty: %v, %v", st, err)
	}
}

func TestVersionLess(t *testing.T) {
	for _, c := range [][2]string{{"6.1.0-9-amd64", "6.1.0-56-amd64"}, {"5.10.0-30-amd64", "6.1.0-1-amd64"}, {"6.1.0-56-amd64", "6.12.0-1-amd64"}} {
		if !versionLess(c[0], c[1]) || versionLess(c[1], c[0]) {
			t.Errorf("want %s < %s", c[0], c[1])
		}
	}
}

func TestGuestModprobeList(t *testing.T) {
	k, err := findKernel("/boot", "/lib/modules")
	if err != nil {
		t.Fatal(err)
	}
	mods, err := guestModprobeList(k.Modules)
	if err != nil {
		t.Fatal(err)
	}
	got := " " + strings.Join(mods, " ") + " "
	for _, m := range []string{"ip_vs", "ip_vs_mh", "xt_ipvs", "ip_set_hash_ip", "nft_chain_nat", "xt_MASQUERADE", "ip6table_nat"} {
		if !strings.Contains(got, " "+m+" ") {
			t.Errorf("%s missing from the guest's modprobe list", m)
		}
	}
}

func TestKernelStalled(t *testing.T) {
	for _, tc := range []struct {
		name, console string
		want          bool
	}{
		{"a clean run", "[    2.1] Run /init as init process\n", false},
		{"a stall report without the panic", "[  998.1] rcu: INFO: rcu_preempt self-detected stall on CPU\n", false},
		{"another panic", "[   12.0] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\n", false},
		{"the stall panic", "[   30.2] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:\n" +
			"[   30.3] Kernel panic - not syncing: RCU Stall\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "console.log")
			if err := os.WriteFile(path, []byte(tc.console), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := kernelStalled(path); got != tc.want {
				t.Errorf("kernelStalled = %v, want %v", got, tc.want)
			}
		})
	}
	if kernelStalled(filepath.Join(t.TempDir(), "missing")) {
		t.Error("a missing console log reads as a stall")
	}
}

// TestStallMarkerInTestScript: hack/test.sh runs a package once more only
// when its output has StallMarker; the two must not drift apart.
func TestStallMarkerInTestScript(t *testing.T) {
	script, err := os.ReadFile("../../hack/test.sh")
	if err != nil {
		t.Fatal(err)
	}
	if want := `stall_marker="` + StallMarker + `"`; !strings.Contains(string(script), want) {
		t.Errorf("hack/test.sh has no %s", want)
	}
	if !strings.Contains(ErrKernelStall.Error(), StallMarker) {
		t.Errorf("ErrKernelStall %q does not carry the marker %q", ErrKernelStall, StallMarker)
	}
}
