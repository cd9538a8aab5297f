package apiserver

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// process is one child (etcd or kube-apiserver) whose output goes to a log file.
type process struct {
	name     string
	logPath  string
	logStart int64 // size of the log before this run, to read only this run's lines
	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited
	err      error         // exit status, valid after done
}

func startProcess(name, bin, logPath string, args ...string) (*process, error) {
	// Append: a restarted apiserver keeps writing to the same file, so the
	// tail printed on failure shows both runs.
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s log: %w", name, err)
	}
	st, err := logFile.Stat()
	if err != nil {
		logFile.Close()
		return nil, fmt.Errorf("stat %s log: %w", name, err)
	}
	fmt.Fprintf(logFile, "=== %s starting at %s: %s %s\n", name, time.Now().Format(time.RFC3339), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true, // a Ctrl-C to `go test` is not delivered twice
		// If the test binary dies (panic, -timeout, SIGKILL) without running
		// its cleanups, the kernel kills the children instead of leaking them.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s (%s): %w", name, bin, err)
	}
	p := &process{name: name, logPath: logPath, logStart: st.Size(), cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
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

// stop sends SIGTERM, then SIGKILL after grace, and waits for the exit.
func (p *process) stop(grace time.Duration) {
	if p == nil || p.exited() {
		return
	}
	if grace > 0 {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			return
		case <-time.After(grace):
		}
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// tail returns the last n lines of the process's log, for failure messages.
func (p *process) tail(n int) string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", p.logPath, err)
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return fmt.Sprintf("--- last %d lines of %s ---\n%s", len(lines), p.logPath, bytes.Join(lines, []byte("\n")))
}

// freePort asks the kernel for an unused loopback port. The port is free only
// until someone else takes it; Start retries when a bind then fails.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// errAddrInUse is the bind error text both etcd and kube-apiserver log.
var errAddrInUse = errors.New("address already in use")

// bindFailed reports whether the process exited because its port was taken.
func (p *process) bindFailed() bool {
	if !p.exited() {
		return false
	}
	data, _ := os.ReadFile(p.logPath)
	if int64(len(data)) < p.logStart {
		return false
	}
	return bytes.Contains(data[p.logStart:], []byte(errAddrInUse.Error()))
}
