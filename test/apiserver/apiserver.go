// Package apiserver runs a real etcd and kube-apiserver for tests, built by
// hack/build-tools.sh. Only the API server: no kubelet and no controller
// manager, so tests create Nodes, Services and EndpointSlices themselves.
package apiserver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Options configures Start. The zero value is a single-stack server on a
// free loopback port.
type Options struct {
	// ServiceCIDRs is --service-cluster-ip-range; default "10.96.0.0/16".
	// Dual stack: "10.96.0.0/16,fd00:10:96::/108".
	ServiceCIDRs string
	// AdvertiseAddress is the address published in default/kubernetes;
	// default 127.0.0.1. Tests using the VM pass 10.0.2.100, the address the
	// guest reaches the host's loopback on. kube-apiserver refuses to publish
	// a loopback endpoint, so with a loopback address the endpoint reconciler
	// is off: default/kubernetes then exists but has no endpoints.
	AdvertiseAddress string
	// Port is the secure port on 127.0.0.1; 0 picks a free one.
	Port int
}

// Server is a running etcd + kube-apiserver, stopped on the test's cleanup.
type Server struct {
	URL  string // https://127.0.0.1:Port
	Port int
	// Admin is a system:masters config with raised QPS/Burst (client-go's
	// default 5/s takes half an hour to create 10,000 objects). Copy it with
	// rest.CopyConfig before changing it.
	Admin  *rest.Config
	Dir    string // data, certificates, logs and kubeconfigs
	CAFile string // PEM of the CA that signed the serving certificate

	opts    Options
	bin     string
	creds   *credentials
	etcdURL string
	etcd    *process
	api     *process
	client  kubernetes.Interface
	nconfig atomic.Int32 // kubeconfig files written, for unique names
}

const (
	startTimeout = 90 * time.Second // cold start on 2 busy cores
	stopGrace    = 15 * time.Second
	bindAttempts = 3 // a "free" port can be taken before the child binds it
)

// Start runs etcd and kube-apiserver with data in t.TempDir(), waits until
// the server is ready and can allocate Service IPs, and applies
// manifests/rbac.yaml. It builds nothing: it fails the test if the binaries
// from hack/build-tools.sh are missing.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if o.ServiceCIDRs == "" {
		o.ServiceCIDRs = "10.96.0.0/16"
	}
	if o.AdvertiseAddress == "" {
		o.AdvertiseAddress = "127.0.0.1"
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("apiserver: %v", err)
	}
	bin, err := binDir(root)
	if err != nil {
		t.Fatalf("apiserver: %v", err)
	}
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			t.Fatalf("apiserver: %s not found in %s (%v): build the test binaries first with "+
				"`hack/build-tools.sh` (~10-15 min cold), or set IPVS_PROXY_BIN to a directory holding etcd and kube-apiserver",
				name, bin, err)
		}
	}

	s := &Server{Dir: t.TempDir(), opts: o, bin: bin}
	if s.creds, err = writeCredentials(s.Dir, o); err != nil {
		t.Fatalf("apiserver: %v", err)
	}
	s.CAFile = filepath.Join(s.Dir, "ca.crt")
	if err := os.WriteFile(s.CAFile, s.creds.caPEM, 0o600); err != nil {
		t.Fatalf("apiserver: writing CA: %v", err)
	}
	// Registered after t.TempDir, so it runs before the directory is removed.
	t.Cleanup(func() {
		if t.Failed() {
			s.logTails(t)
		}
		s.api.stop(0)
		s.etcd.stop(0)
	})

	started := time.Now()
	if err := s.startEtcd(); err != nil {
		s.fatal(t, "starting etcd: %v", err)
	}
	for attempt := 1; ; attempt++ {
		if s.Port = o.Port; s.Port == 0 {
			if s.Port, err = freePort(); err != nil {
				s.fatal(t, "%v", err)
			}
		}
		s.URL = "https://127.0.0.1:" + strconv.Itoa(s.Port)
		s.Admin = &rest.Config{
			Host:            s.URL,
			BearerToken:     s.creds.adminToken,
			TLSClientConfig: rest.TLSClientConfig{CAData: s.creds.caPEM},
			QPS:             500,
			Burst:           1000,
		}
		if s.client, err = kubernetes.NewForConfig(s.Admin); err != nil {
			s.fatal(t, "admin client: %v", err)
		}
		err = s.startAPIServer()
		if err == nil || o.Port != 0 || attempt == bindAttempts || !s.api.bindFailed() {
			break
		}
	}
	if err != nil {
		s.fatal(t, "starting kube-apiserver: %v", err)
	}
	readyz := time.Since(started)
	s.WaitServiceCIDRReady(t)
	if err := s.applyRBAC(filepath.Join(root, "manifests", "rbac.yaml")); err != nil {
		s.fatal(t, "applying RBAC: %v", err)
	}
	t.Logf("apiserver: %s ready in %v (/readyz after %v; dir %s)", s.URL,
		time.Since(started).Round(time.Millisecond), readyz.Round(time.Millisecond), s.Dir)
	return s
}

// Restart stops kube-apiserver (if running) and starts it again on the same
// port with the same etcd data, then waits until it is ready.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	stopping := time.Now()
	s.api.stop(stopGrace)
	started := time.Now()
	if err := s.startAPIServer(); err != nil {
		s.fatal(t, "restarting kube-apiserver: %v", err)
	}
	readyz := time.Since(started)
	s.WaitServiceCIDRReady(t)
	if err := s.waitProxyAuthorized(context.Background()); err != nil {
		s.fatal(t, "after restart: %v", err)
	}
	t.Logf("apiserver: stopped in %v, /readyz after %v, Services creatable after %v",
		started.Sub(stopping).Round(time.Millisecond), readyz.Round(time.Millisecond),
		time.Since(started).Round(time.Millisecond))
}

// Stop stops kube-apiserver only, for tests of a proxy whose server is gone;
// etcd and the data stay, and Restart brings the server back.
func (s *Server) Stop() {
	s.api.stop(stopGrace)
}

func (s *Server) startEtcd() error {
	var lastErr error
	for attempt := 0; attempt < bindAttempts; attempt++ {
		client, err1 := freePort()
		peer, err2 := freePort()
		if err1 != nil || err2 != nil {
			return fmt.Errorf("etcd ports: %v %v", err1, err2)
		}
		s.etcdURL = fmt.Sprintf("http://127.0.0.1:%d", client)
		peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
		p, err := startProcess("etcd", filepath.Join(s.bin, "etcd"), filepath.Join(s.Dir, "etcd.log"),
			"--name=default",
			"--data-dir="+filepath.Join(s.Dir, "etcd"),
			"--listen-client-urls="+s.etcdURL,
			"--advertise-client-urls="+s.etcdURL,
			"--listen-peer-urls="+peerURL,
			"--initial-advertise-peer-urls="+peerURL,
			"--initial-cluster=default="+peerURL,
			// Test data need not survive a crash; fsync dominates write latency.
			"--unsafe-no-fsync",
		)
		if err != nil {
			return err
		}
		s.etcd = p
		if lastErr = waitHTTP(p, s.etcdURL+"/health", nil, startTimeout); lastErr == nil || !p.bindFailed() {
			return lastErr
		}
		// The data dir may already name the old peer URL: start afresh.
		if err := os.RemoveAll(filepath.Join(s.Dir, "etcd")); err != nil {
			return fmt.Errorf("removing etcd data after a failed bind: %w", err)
		}
	}
	return lastErr
}

func (s *Server) startAPIServer() error {
	c := s.creds
	args := []string{
		"--etcd-servers=" + s.etcdURL,
		"--bind-address=127.0.0.1", // only loopback: the VM reaches it through a guestfwd
		"--secure-port=" + strconv.Itoa(s.Port),
		"--advertise-address=" + s.opts.AdvertiseAddress,
		"--service-cluster-ip-range=" + s.opts.ServiceCIDRs,
		"--cert-dir=" + filepath.Join(s.Dir, "certs"),
		"--tls-cert-file=" + c.certFile,
		"--tls-private-key-file=" + c.keyFile,
		"--token-auth-file=" + c.tokenFile,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + c.saPublicFile,
		"--service-account-signing-key-file=" + c.saSigningKey,
		"--authorization-mode=Node,RBAC", // as kubeadm: RBAC is what proves least privilege
		// As kubeadm: manifests/daemonset.yaml's pod is privileged (test/node runs it).
		"--allow-privileged=true",
		"--profiling=false",
		"--v=1",
	}
	// "cannot use public IP 127.0.0.1 with endpoint reconciler": see Options.
	if ip := net.ParseIP(s.opts.AdvertiseAddress); ip != nil && ip.IsLoopback() {
		args = append(args, "--endpoint-reconciler-type=none")
	}
	p, err := startProcess("kube-apiserver", filepath.Join(s.bin, "kube-apiserver"), filepath.Join(s.Dir, "kube-apiserver.log"), args...)
	if err != nil {
		return err
	}
	s.api = p
	return waitHTTP(p, s.URL+"/readyz", s.Admin, startTimeout)
}

// waitHTTP polls url until it answers 200, failing early if p exits.
func waitHTTP(p *process, url string, cfg *rest.Config, timeout time.Duration) error {
	client := &http.Client{}
	if cfg != nil {
		var err error
		if client, err = rest.HTTPClientFor(cfg); err != nil {
			return fmt.Errorf("http client for %s: %w", url, err)
		}
	}
	client.Timeout = 5 * time.Second // one hung request must not eat the whole wait
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for {
		if p.exited() {
			return fmt.Errorf("%s exited while waiting for %s: %v", p.name, url, p.err)
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %s", url, timeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// fatal fails the test; the cleanup registered by Start then prints the tails
// of the etcd and kube-apiserver logs.
func (s *Server) fatal(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Fatalf("apiserver: "+format, args...)
}

func (s *Server) logTails(t testing.TB) {
	t.Helper()
	for _, p := range []*process{s.etcd, s.api} {
		if p != nil {
			t.Log(p.tail(40))
		}
	}
}

// repoRoot finds the checkout: upwards from the working directory (go test
// runs in the package directory), else from this source file's path.
func repoRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for ; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "hack", "build-tools.sh")); err == nil {
				return dir, nil
			}
			if dir == filepath.Dir(dir) {
				break
			}
		}
	}
	return "", fmt.Errorf("cannot find the repository root (a directory with hack/build-tools.sh) above %v", starts)
}

// BinDir is the directory holding what hack/build-tools.sh builds (etcd,
// kube-apiserver and kube-proxy, the reference the bench compares with).
func BinDir() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	return binDir(root)
}

// binDir is $IPVS_PROXY_BIN, else what hack/build-tools.sh --print-dir says,
// so the cache location is defined in one place.
func binDir(root string) (string, error) {
	if dir := os.Getenv("IPVS_PROXY_BIN"); dir != "" {
		return dir, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", filepath.Join(root, "hack", "build-tools.sh"), "--print-dir").Output()
	if err != nil {
		return "", fmt.Errorf("hack/build-tools.sh --print-dir: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}
