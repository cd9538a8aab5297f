// Package vm runs commands, typically a test binary, inside a QEMU virtual machine
// with Debian's kernel, which has IPVS, dummy interfaces and every netfilter module
// (the kernel these tests run on otherwise has none of them).
//
// The guest sees the host's root file system read-only through 9p, with a tmpfs
// overlay so it may write anywhere; the command runs in a chroot of that, so every host
// binary (iptables, ipvsadm, a test binary under /tmp) runs as it is. The guest's
// network reaches only the host loopback ports listed in Config.Forwards, at
// 10.0.2.100:PORT; any other address fails inside the VM. TCG only: no KVM needed.
//
// A test package that must run in the VM uses Main (or RunTests) in its TestMain.
package vm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// InGuestEnv is set to "1" in the environment of every command the VM runs.
const InGuestEnv = "IPVS_PROXY_IN_VM"

// ForwardAddr is the guest address at which each forwarded host port is reachable.
const ForwardAddr = "10.0.2.100"

// Config describes one VM run.
type Config struct {
	Command []string // argv run inside the guest, in a chroot of the host's root
	Env     []string // extra environment for Command (the base is PATH, HOME and InGuestEnv)
	Dir     string   // working directory in the guest; default: the host's cwd
	// Forwards are host loopback TCP ports; each PORT is reachable in the guest at
	// ForwardAddr:PORT. Nothing else leaves the VM.
	Forwards []int
	// HostForwards are guest TCP ports the host reaches at 127.0.0.1:PORT (a
	// hostfwd bound to loopback: from the host into the guest only), e.g. the
	// API server reaching a kubelet.
	HostForwards []int
	// Shares are extra host dirs mounted read-write in the guest: guest path -> host path.
	Shares  map[string]string
	Memory  string        // default "2G"
	CPUs    int           // default 2
	Timeout time.Duration // default 10m; then qemu is killed and Run fails
	// StallTimeout is how long a guest CPU may make no progress in the kernel
	// (an RCU stall) before the guest kernel panics and Run fails at once
	// with ErrKernelStall; default 60s, the kernel's range is 3s to 300s.
	StallTimeout time.Duration
	Stdout       io.Writer // the command's stdout and stderr; nil discards them
	ConsoleLog   string    // optional host file for the kernel's serial console
}

// Timing says where a run's time went; all but Prepare are from the guest's uptime.
type Timing struct {
	Prepare time.Duration // host: finding the kernel, building or finding the initramfs
	Boot    time.Duration // kernel start to /init having loaded its modules and mounted ctl
	Modules time.Duration // the chroot's modprobe of netfilter, IPVS ...
	Command time.Duration // the command itself
}

// Run boots a VM, runs cfg.Command in it and returns its exit code. err is non-nil
// when the VM could not boot or never reported an exit code; it says why.
func Run(ctx context.Context, cfg Config) (int, error) {
	code, _, err := run(ctx, cfg)
	return code, err
}

func run(ctx context.Context, cfg Config) (int, Timing, error) {
	if len(cfg.Command) == 0 {
		return -1, Timing{}, errors.New("vm: empty Command")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Minute
	}
	if cfg.Memory == "" {
		cfg.Memory = "2G"
	}
	if cfg.CPUs <= 0 {
		cfg.CPUs = 2
	}
	if cfg.StallTimeout == 0 {
		cfg.StallTimeout = 60 * time.Second
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return -1, Timing{}, fmt.Errorf("vm: qemu-system-x86_64 not found %s", depsHint)
	}
	busybox, err := findBusybox() // the host side of each forward runs `busybox nc`
	if err != nil {
		return -1, Timing{}, fmt.Errorf("vm: %w", err)
	}
	start := time.Now()
	k, err := findKernel("/boot", "/lib/modules")
	if err != nil {
		return -1, Timing{}, fmt.Errorf("vm: %w", err)
	}
	initrd, err := initramfs(k)
	if err != nil {
		return -1, Timing{}, fmt.Errorf("vm: building initramfs: %w", err)
	}

	ctl, err := os.MkdirTemp("", "ipvs-proxy-vm-")
	if err != nil {
		return -1, Timing{}, fmt.Errorf("vm: %w", err)
	}
	defer os.RemoveAll(ctl)
	if err := writeControl(ctl, cfg, k); err != nil {
		return -1, Timing{}, fmt.Errorf("vm: %w", err)
	}
	prepared := time.Since(start)
	console := cfg.ConsoleLog
	if console == "" {
		cfg.ConsoleLog = filepath.Join(ctl, "console.log")
	}

	// The guest's output port is a unix socket that qemu connects to at start.
	sock := filepath.Join(ctl, "out.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return -1, Timing{}, fmt.Errorf("vm: output socket: %w", err)
	}
	defer ln.Close()
	out := cfg.Stdout
	if out == nil {
		out = io.Discard
	}
	stdout := newLastOutput(out, time.Now)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		conn, err := ln.Accept()
		if err != nil {
			return // qemu never connected; its own error says why
		}
		defer conn.Close()
		io.Copy(stdout, conn)
	}()

	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, qemuArgs(cfg, k, initrd, ctl, sock, busybox)...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	// If the test binary dies (go test's own timeout), qemu must not live on.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	ln.Close()
	select { // the guest's last output, still in the socket
	case <-copied:
	case <-time.After(5 * time.Second):
	}

	timing := readTiming(filepath.Join(ctl, "times"))
	timing.Prepare = prepared
	why := func(msg string) error {
		var b strings.Builder
		b.WriteString("vm: " + msg)
		b.WriteString("\n" + stdout.describe(time.Now()))
		if e, _ := os.ReadFile(filepath.Join(ctl, "error")); len(e) > 0 {
			b.WriteString("\nguest init: " + strings.TrimSpace(string(e)))
		}
		if s := strings.TrimSpace(stderr.String()); s != "" {
			b.WriteString("\nqemu: " + s)
		}
		if t := tail(cfg.ConsoleLog, 25); t != "" {
			b.WriteString("\nlast console lines:\n" + t)
			if console != "" {
				b.WriteString("\n(whole console log: " + console + ")")
			}
		}
		return errors.New(b.String())
	}
	if ctx.Err() == context.DeadlineExceeded {
		return -1, timing, why(fmt.Sprintf("timed out after %s; qemu killed", cfg.Timeout))
	}
	if ctx.Err() != nil {
		return -1, timing, why("canceled: " + ctx.Err().Error())
	}
	data, err := os.ReadFile(filepath.Join(ctl, "exitcode"))
	if err != nil && kernelStalled(cfg.ConsoleLog) {
		return -1, timing, fmt.Errorf("%w: %w", ErrKernelStall,
			why(fmt.Sprintf("a guest CPU made no progress for %s, and the guest kernel panicked", cfg.StallTimeout)))
	}
	if err != nil {
		msg := "the guest never reported an exit code"
		if runErr != nil {
			msg = fmt.Sprintf("qemu failed (%v) and the guest never reported an exit code", runErr)
		}
		return -1, timing, why(msg)
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return -1, timing, why(fmt.Sprintf("bad exit code file %q", data))
	}
	return code, timing, nil
}

// qemuArgs is the whole VM: TCG, no default devices, the serial console to a file,
// 9p shares for the host root, the control dir and cfg.Shares, restricted user
// networking with one guestfwd per forwarded port, and the output port.
func qemuArgs(cfg Config, k kernel, initrd, ctl, sock, busybox string) []string {
	args := []string{
		"-accel", "tcg", "-nographic", "-nodefaults", "-no-reboot",
		"-m", cfg.Memory, "-smp", strconv.Itoa(cfg.CPUs),
		"-kernel", k.Image, "-initrd", initrd,
		"-append", kernelArgs(cfg),
		"-monitor", "none",
		"-chardev", "file,id=con,path=" + qemuEscape(cfg.ConsoleLog), "-serial", "chardev:con",
		// multidevs=remap: / spans several host file systems; without it inode numbers
		// can collide in the guest.
		"-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
		"-virtfs", "local,path=" + qemuEscape(ctl) + ",mount_tag=ctl,security_model=none,multidevs=remap",
	}
	for i, s := range sortedShares(cfg.Shares) {
		args = append(args, "-virtfs", fmt.Sprintf("local,path=%s,mount_tag=share%d,security_model=none,multidevs=remap",
			qemuEscape(s[1]), i))
	}
	// restrict=on: the guest reaches nothing but the guestfwd addresses; without it
	// slirp would turn a connect to any 10.x VIP into a real connect from the host.
	netdev := "user,id=n0,restrict=on"
	for _, p := range cfg.Forwards {
		netdev += fmt.Sprintf(",guestfwd=tcp:%s:%d-cmd:%s nc 127.0.0.1 %d", ForwardAddr, p, qemuEscape(busybox), p)
	}
	for _, p := range cfg.HostForwards {
		netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:%d", p, p)
	}
	args = append(args,
		"-netdev", netdev,
		"-device", "virtio-net-pci,netdev=n0,romfile=", // no option ROM: we boot no firmware from it
		"-device", "virtio-serial-pci",
		"-chardev", "socket,id=out,path="+qemuEscape(sock),
		"-device", "virtserialport,chardev=out,name=ipvs-proxy-out",
	)
	return args
}

// kernelArgs is the guest kernel's command line. A guest CPU stuck in the
// kernel (an RCU stall; under TCG it has wedged a guest before any test
// step ran) panics the kernel after cfg.StallTimeout, and panic=-1 with
// qemu's -no-reboot ends the VM then, instead of a silent guest until
// cfg.Timeout.
func kernelArgs(cfg Config) string {
	return fmt.Sprintf("console=ttyS0 panic=-1 quiet rcupdate.rcu_cpu_stall_timeout=%d sysctl.kernel.panic_on_rcu_stall=1",
		int(cfg.StallTimeout.Seconds()))
}

// qemuEscape doubles commas, which qemu's option parser would split on.
func qemuEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// sortedShares lists cfg.Shares as [guest, host] pairs in a stable order, so share N
// means the same in the qemu arguments and the shares file.
func sortedShares(m map[string]string) [][2]string {
	var out [][2]string
	for g, h := range m {
		out = append(out, [2]string{g, h})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// writeControl fills the ctl share with what /init reads (see initScript).
func writeControl(ctl string, cfg Config, k kernel) error {
	dir := cfg.Dir
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return fmt.Errorf("working directory: %w", err)
		}
		dir = wd
	}
	script, err := runScript(cfg.Command, cfg.Env, dir)
	if err != nil {
		return err
	}
	var shares strings.Builder
	for i, s := range sortedShares(cfg.Shares) {
		if !filepath.IsAbs(s[0]) || strings.ContainsAny(s[0], "\n") {
			return fmt.Errorf("share guest path %q must be absolute and on one line", s[0])
		}
		if st, err := os.Stat(s[1]); err != nil || !st.IsDir() {
			return fmt.Errorf("share host path %q is not a directory", s[1])
		}
		fmt.Fprintf(&shares, "share%d %s\n", i, s[0])
	}
	for _, p := range append(cfg.Forwards, cfg.HostForwards...) {
		if p <= 0 || p > 65535 {
			return fmt.Errorf("bad forward port %d", p)
		}
	}
	mods, err := guestModprobeList(k.Modules)
	if err != nil {
		return err
	}
	for name, data := range map[string]string{
		"run.sh":   script,
		"shares":   shares.String(),
		"modprobe": modprobeLines(mods, cfg.CPUs),
	} {
		if err := os.WriteFile(filepath.Join(ctl, name), []byte(data), 0o644); err != nil {
			return fmt.Errorf("writing control file: %w", err)
		}
	}
	return nil
}

// modprobeLines deals the modules round-robin onto one line per vCPU (at least one).
func modprobeLines(mods []string, cpus int) string {
	if cpus < 1 {
		cpus = 1
	}
	lines := make([][]string, cpus)
	for i, m := range mods {
		lines[i%cpus] = append(lines[i%cpus], m)
	}
	var b strings.Builder
	for _, l := range lines {
		if len(l) > 0 {
			b.WriteString(strings.Join(l, " ") + "\n")
		}
	}
	return b.String()
}

// runScript is the shell script the guest runs in its chroot: cd to dir, then exec
// argv with a clean environment (base, then env, then InGuestEnv, later wins).
func runScript(argv, env []string, dir string) (string, error) {
	if len(argv) == 0 {
		return "", errors.New("empty command")
	}
	if strings.Contains(argv[0], "=") {
		return "", fmt.Errorf("command %q: the program name must not contain '='", argv[0])
	}
	words := []string{"exec", "env", "-i",
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}
	for _, e := range env {
		if !strings.Contains(e, "=") || strings.HasPrefix(e, "=") {
			return "", fmt.Errorf("environment entry %q is not NAME=VALUE", e)
		}
		words = append(words, e)
	}
	words = append(words, InGuestEnv+"=1")
	words = append(words, argv...)
	for i := range words {
		words[i] = shellQuote(words[i])
	}
	return fmt.Sprintf("cd %s || exit 127\n%s\n", shellQuote(dir), strings.Join(words, " ")), nil
}

// shellQuote makes s one word for sh, whatever it contains.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var escapes = regexp.MustCompile(`\x1b(\[[0-9;?]*[A-Za-z]|c)|\r`)

func readTiming(path string) Timing {
	data, _ := os.ReadFile(path)
	at := map[string]float64{}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				at[f[0]] = v
			}
		}
	}
	d := func(a, b string) time.Duration {
		if at[a] == 0 || at[b] == 0 {
			return 0
		}
		return time.Duration((at[b] - at[a]) * float64(time.Second))
	}
	return Timing{
		Boot:    time.Duration(at["init"] * float64(time.Second)),
		Modules: d("modprobe", "command"),
		Command: d("command", "end"),
	}
}

// tail returns the last n lines of a file, or "", without the terminal escape
// sequences the firmware prints.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	data = escapes.ReplaceAll(data, nil)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
