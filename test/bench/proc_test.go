package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// userHZ is the unit of the times in /proc/PID/stat (USER_HZ, 100 on every
// Linux architecture Go supports): a resolution of 10 ms.
const userHZ = 100

// process is a proxy under measurement.
type process struct {
	cmd   *exec.Cmd
	start time.Time
	log   string
	done  chan struct{} // closed once the process has exited and been reaped
}

// startProcess runs argv with the guest's environment plus env. Its log
// is written in the guest's own memory and copied to keep when it exits:
// each write to the shared directory is a 9p round trip to the host,
// which under emulation cost a proxy logging every sync milliseconds a
// line.
func startProcess(keep string, env []string, argv ...string) (*process, error) {
	dir, err := os.MkdirTemp("", "bench-log-")
	if err != nil {
		return nil, err
	}
	log := filepath.Join(dir, filepath.Base(keep))
	f, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	p := &process{cmd: cmd, log: log, done: make(chan struct{})}
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	go func() {
		cmd.Wait() //nolint:errcheck // the exit status is read from ProcessState
		f.Close()
		if data, err := os.ReadFile(log); err == nil {
			if err := os.WriteFile(keep, data, 0o644); err != nil {
				fmt.Fprintf(os.Stderr, "keep %s: %v\n", keep, err)
			}
		}
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// cpu is the process's user and system time plus that of its children it
// has reaped: kube-proxy execs ipset, iptables-save and iptables-restore on
// every sync, and their cost is part of its cost.
func (p *process) cpu() (float64, error) {
	user, sys, err := p.cpuTimes()
	return user + sys, err
}

// cpuTimes is cpu split into user and system time, each with the reaped
// children's: the system time is what a CPU profile of the proxy may not
// see (netlink copies, the tap's among them).
func (p *process) cpuTimes() (user, sys float64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may hold spaces; fields after its ')' are fixed.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("bad /proc/PID/stat %q", data)
	}
	f := strings.Fields(string(data[i+1:]))
	// f[0] is field 3 (state); utime, stime, cutime, cstime are fields 14..17.
	if len(f) < 15 {
		return 0, 0, fmt.Errorf("short /proc/PID/stat %q", data)
	}
	var ticks [4]int64
	for j, s := range f[11:15] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("bad /proc/PID/stat %q", data)
		}
		ticks[j] = v
	}
	return float64(ticks[0]+ticks[2]) / userHZ, float64(ticks[1]+ticks[3]) / userHZ, nil
}

// peakRSS is VmHWM, the process's own high-water mark of resident memory
// in KiB (its short-lived children are not in it).
func (p *process) peakRSS() (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", p.cmd.Process.Pid)
}

// memory is the memory lines of /proc/PID/status (peak, now, and the
// resident split into anonymous memory, mapped files, and shared memory,
// where the binary's text is when it runs from a tmpfs), for the log:
// where the peak RSS comes from.
func (p *process) memory() string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return err.Error()
	}
	var keep []string
	for _, line := range strings.Split(string(data), "\n") {
		for _, key := range []string{"VmHWM:", "VmRSS:", "RssAnon:", "RssFile:", "RssShmem:"} {
			if strings.HasPrefix(line, key) {
				keep = append(keep, strings.Join(strings.Fields(line), " "))
			}
		}
	}
	return strings.Join(keep, ", ")
}

// stop sends SIGTERM (SIGKILL after 30 s) and returns the CPU seconds of
// the whole run from wait4's rusage, which includes the reaped children.
func (p *process) stop() (cpu float64, err error) {
	if !p.exited() {
		p.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may have just exited
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			p.cmd.Process.Kill() //nolint:errcheck
			<-p.done
			err = fmt.Errorf("%s ignored SIGTERM for 30 s; killed", p.cmd.Path)
		}
	}
	ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, fmt.Errorf("no rusage for %s", p.cmd.Path)
	}
	sec := func(tv syscall.Timeval) float64 { return float64(tv.Sec) + float64(tv.Usec)/1e6 }
	return sec(ru.Utime) + sec(ru.Stime), err
}

// logTail is the end of the process's log, for failure messages.
func (p *process) logTail(lines int) string {
	data, _ := os.ReadFile(p.log)
	l := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}
