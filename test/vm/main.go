package vm

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// InGuest reports whether this process runs inside the VM.
func InGuest() bool { return os.Getenv(InGuestEnv) == "1" }

// Main is for a test package's TestMain: in the guest it runs the tests; on the host
// it boots one VM that runs this same test binary with the same arguments, streams
// its output to os.Stdout and exits with the guest's code. A VM that cannot boot is a
// failure (exit 1, with the reason), never a skip.
func Main(m *testing.M) { os.Exit(RunTests(m, Config{})) }

// RunTests is Main without the os.Exit, and with a Config for what the tests need
// from the host (Forwards, Shares, Env, Memory, CPUs). Command and Stdout are set here.
// The guest gets the host's environment followed by cfg.Env.
//
// The VM's timeout is cfg.Timeout, else $IPVS_PROXY_VM_TIMEOUT (a Go duration), else
// 15 minutes, raised to -test.timeout plus a minute so the guest's own timeout report
// (with goroutine stacks) reaches the output before the VM is killed.
func RunTests(m *testing.M, cfg Config) int {
	if InGuest() {
		return m.Run()
	}
	if !flag.Parsed() {
		flag.Parse()
	}
	exe, err := os.Executable() // a path under /tmp, which the guest's chroot has too
	if err != nil {
		fmt.Printf("vm: cannot find the test binary: %v\nFAIL\n", err)
		return 1
	}
	cfg.Command = append([]string{exe}, os.Args[1:]...)
	cfg.Env = append(os.Environ(), cfg.Env...)
	cfg.Stdout = os.Stdout
	if cfg.Timeout == 0 {
		cfg.Timeout, err = testTimeout()
		if err != nil {
			fmt.Printf("vm: %v\nFAIL\n", err)
			return 1
		}
	}
	cfg.Shares = withOutputShares(cfg.Shares)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	code, t, err := run(ctx, cfg)
	wall := time.Since(start).Round(100 * time.Millisecond)
	if err != nil {
		fmt.Printf("%v\nFAIL\nvm: wall time %s\n", err, wall)
		return 1
	}
	r := func(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }
	fmt.Printf("vm: wall time %s (host prepare %s; guest boot %s, modprobe %s, tests %s), exit code %d\n",
		wall, r(t.Prepare), r(t.Boot), r(t.Modules), r(t.Command), code)
	return code
}

func testTimeout() (time.Duration, error) {
	d := 15 * time.Minute
	if s := os.Getenv("IPVS_PROXY_VM_TIMEOUT"); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil || v <= 0 {
			return 0, fmt.Errorf("IPVS_PROXY_VM_TIMEOUT=%q is not a positive duration", s)
		}
		return v, nil
	}
	if f := flag.Lookup("test.timeout"); f != nil {
		if g, ok := f.Value.(flag.Getter); ok {
			if t, ok := g.Get().(time.Duration); ok && t+time.Minute > d {
				d = t + time.Minute
			}
		}
	}
	return d, nil
}

// withOutputShares adds read-write shares for the places the guest's test binary
// writes results the host must keep (coverage, profiles), at the same paths as on the
// host; without them those writes would land in the discarded overlay.
func withOutputShares(shares map[string]string) map[string]string {
	out := map[string]string{}
	for g, h := range shares {
		out[g] = h
	}
	add := func(dir string) {
		if dir == "" || !filepath.IsAbs(dir) {
			return
		}
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			if _, taken := out[dir]; !taken {
				out[dir] = dir
			}
		}
	}
	value := func(name string) string {
		if f := flag.Lookup(name); f != nil {
			return f.Value.String()
		}
		return ""
	}
	add(value("test.outputdir"))
	add(value("test.gocoverdir"))
	for _, name := range []string{"test.coverprofile", "test.cpuprofile", "test.memprofile",
		"test.blockprofile", "test.mutexprofile", "test.trace"} {
		if v := value(name); v != "" {
			add(filepath.Dir(v))
		}
	}
	return out
}
