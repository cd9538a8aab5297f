package node

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/test/apiserver"
)

// startControllers runs kube-controller-manager and kube-scheduler on the
// host next to the API server, as a control plane node would: a DaemonSet's
// and a Deployment's pods, the `default` ServiceAccount, kube-root-ca.crt and
// the EndpointSlices of real pods all come from them. Neither serves HTTPS
// (--secure-port=0): other tests on this machine pick ports too.
func startControllers(t *testing.T, s *apiserver.Server, bin, logs string) {
	t.Helper()
	kubeconfig := s.AdminKubeconfig(t, s.URL)
	daemon(t, filepath.Join(bin, "kube-controller-manager"), filepath.Join(logs, "kube-controller-manager.log"),
		"--kubeconfig="+kubeconfig,
		"--secure-port=0",
		"--leader-elect=false",
		"--root-ca-file="+s.CAFile,
		"--service-account-private-key-file="+filepath.Join(s.Dir, "sa.key"),
		"--use-service-account-credentials=false",
		// The node's pod CIDR is the CNI bridge's range (testdata/10-bridge.conflist).
		"--allocate-node-cidrs=true",
		"--cluster-cidr=10.244.0.0/16",
		"--node-cidr-mask-size=24",
		"--service-cluster-ip-range=10.96.0.0/16",
	)
	daemon(t, filepath.Join(bin, "kube-scheduler"), filepath.Join(logs, "kube-scheduler.log"),
		"--kubeconfig="+kubeconfig,
		"--secure-port=0",
		"--leader-elect=false",
	)
}

// daemon starts a process logging to logPath and kills it when the test ends
// (or the test binary dies: Pdeathsig).
func daemon(t *testing.T, bin, logPath string, args ...string) {
	t.Helper()
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); log.Close(); close(done) }() //nolint:errcheck
	t.Cleanup(func() { terminate(cmd.Process, done, 10*time.Second) })
}

// terminate asks a process to stop (SIGTERM), kills it after grace, and
// waits until done says it has exited.
func terminate(p *os.Process, done <-chan struct{}, grace time.Duration) {
	p.Signal(syscall.SIGTERM) //nolint:errcheck
	select {
	case <-done:
	case <-time.After(grace):
		p.Kill() //nolint:errcheck
		<-done
	}
}
