package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The binary links only the API groups it reads, through pkg/kubeclient:
// a clientset, its scheme or client-go's informer factory would bring in
// every group, megabytes of code and type data resident on every node.
func TestLinksNoClientset(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", ".")
	cmd.Env = append(os.Environ(), "GOOS=linux", "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	allowed := map[string]bool{"k8s.io/api/core/v1": true, "k8s.io/api/discovery/v1": true}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "k8s.io/client-go/kubernetes") || strings.HasPrefix(pkg, "k8s.io/client-go/informers") ||
			strings.HasPrefix(pkg, "k8s.io/api/") && !allowed[pkg] {
			t.Errorf("ipvs-proxy links %s; use pkg/kubeclient (and its Scheme) instead", pkg)
		}
	}
}
