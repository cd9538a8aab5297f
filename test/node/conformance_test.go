//go:build conformance

package node

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Where the e2e runs leave their JUnit reports and logs, shared read-write
// with the guest: $CONFORMANCE_RESULTS, or bin/conformance in the checkout.
// hack/conformance.sh turns the reports into results.md.
const envResults = "CONFORMANCE_RESULTS"

// resultsDir makes and returns the results directory.
func resultsDir(t *testing.T, root string) string {
	t.Helper()
	results := os.Getenv(envResults)
	if results == "" {
		results = filepath.Join(root, "bin/conformance")
	}
	results, err := filepath.Abs(results)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(results, 0o755); err != nil {
		t.Fatal(err)
	}
	return results
}

// TestConformance runs Kubernetes' own Service e2e tests on the real node,
// once under kube-proxy v1.37 in IPVS mode (the reference, kubeadm's
// DaemonSet) and once under ipvs-proxy, the same DaemonSet with only its
// image changed (TestGuestConformance).
func TestConformance(t *testing.T) {
	root := repoRoot(t)
	results := resultsDir(t, root)
	parts, err := selectedParts()
	if err != nil {
		t.Fatal(err)
	}
	// The selection, for hack/conformance-table: the reports cannot tell a
	// selected test the time budget stopped from one outside the focus.
	for _, p := range parts {
		if err := os.WriteFile(filepath.Join(results, "focus-"+p.Name+".txt"), []byte(p.Focus()+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Each proxy's run is bounded by e2e's own timeouts (e2eParts); the
	// rest is the node's start and the switch between the proxies.
	timeout := 20 * time.Minute
	for _, p := range parts {
		timeout += 2 * p.Timeout
	}
	bootNode(t, nodeRun{
		Guest:   "TestGuestConformance",
		Timeout: timeout,
		Images:  []string{"hack/conformance-images.sh", "hack/kube-proxy-image.sh"},
		Archives: []string{
			filepath.Join(root, "bin/node-images/agnhost.oci.tar"),
			filepath.Join(root, "bin/node-images/coredns.oci.tar"),
			filepath.Join(root, "bin/kube-proxy-image/kube-proxy.oci.tar"),
		},
		Env: []string{envResults + "=" + results, envParts + "=" + os.Getenv(envParts),
			envProxies + "=" + os.Getenv(envProxies), envProcs + "=" + os.Getenv(envProcs)},
		Shares: map[string]string{results: results},
	})
}
