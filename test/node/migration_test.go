//go:build conformance

package node

import (
	_ "embed"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/test/vm"
)

// TestMigration is the live migration from kube-proxy's IPVS mode to
// ipvs-proxy and back, on a real node under client traffic, following the
// README's "Replacing kube-proxy" and "Rolling back to kube-proxy" as a
// user of a kubeadm cluster would. It runs with `make conformance` (build
// tag conformance), and writes its figures as a Markdown table to
// migration.md in $CONFORMANCE_RESULTS (default bin/conformance).
func TestMigration(t *testing.T) {
	if vm.InGuest() {
		t.Skip("host side: boots the VM that runs TestGuestMigration")
	}
	root := repoRoot(t)
	results := resultsDir(t, root)
	bootNode(t, nodeRun{
		Guest:    "TestGuestMigration",
		Timeout:  30 * time.Minute,
		Images:   []string{"hack/kube-proxy-image.sh"},
		Archives: []string{filepath.Join(root, "bin/kube-proxy-image/kube-proxy.oci.tar")},
		Env:      []string{envResults + "=" + results},
		Shares:   map[string]string{results: results},
	})
	t.Logf("%s:\n%s", filepath.Join(results, migrationFile), tailFile(filepath.Join(results, migrationFile), 40))
}

const migrationFile = "migration.md"

// Each direction must keep the long-lived connection, and may fail at most
// this share of each stream of short requests: one request lost to a stall
// of the emulated VM is noise, a swap that drops connections is not.
const shortFailTolerance = 0.005

func TestGuestMigration(t *testing.T) {
	if !vm.InGuest() {
		t.Skip("runs inside the VM, started by TestMigration")
	}
	start := time.Now()
	n := startNode(t)
	m := &migration{t: t, node: n, ipvsProxyImage: os.Getenv(envProxy), kubeProxyImage: builtImage(t, "/kube-proxy:")}

	// The node before any proxy: kubelet's and the CNI plugin's chains.
	pods := m.createEchoServers()
	m.directAddr = pods[0].Status.PodIP + ":8080"
	chainsBefore, setsBefore := chains(), ipsets()
	t.Logf("iptables chains before any proxy:\n%s\nipsets: %q", chainsBefore, setsBefore)

	// kube-proxy as kubeadm installs it, programming the Service.
	m.installKubeProxy()
	svc := m.createEchoService()
	m.waitProgrammed(svc, pods)
	m.waitProxySynced("kube-proxy", time.Time{}, "IPv4", "IPv6")
	time.Sleep(3 * time.Second) // its first sync's follow-ups
	tableKubeProxy, chainsKubeProxy, setsKubeProxy := ipvsTable(), chains(), ipsets()
	t.Logf("kube-proxy's state:\nipvsadm -Ln:\n%s\niptables chains:\n%s\nipsets:\n%s", tableKubeProxy, chainsKubeProxy, setsKubeProxy)

	// README, "Replacing kube-proxy", kubeadm: change only the image.
	forward := m.swap(svc, "kube-proxy → ipvs-proxy", func() (synced, settled time.Time) {
		return m.replaceKubeProxy(), time.Now()
	})
	m.expectTable("ipvs-proxy's table after the swap (kube-proxy's, taken over)", tableKubeProxy)
	m.expectText("iptables chains under ipvs-proxy", chains, sortedLines(chainsBefore, ipvsProxyChains))
	m.expectText("ipsets under ipvs-proxy", ipsets, sortedLines(setsBefore, ipvsProxyIPSets))
	m.checkProxyLog()

	// ipvs-proxy is the one programming: a new pod and a new Service.
	tableBefore := parseTable(tableKubeProxy)
	newPod, newSvc := m.scaleAndAddService(pods)
	tableAfter := withRealServer(tableBefore, pods[0].Status.PodIP, newPod.Status.PodIP)
	tableAfter["TCP "+newSvc.Spec.ClusterIP+":80 rr"] = nil
	for _, p := range append(pods, newPod) {
		tableAfter["TCP "+newSvc.Spec.ClusterIP+":80 rr"] = append(tableAfter["TCP "+newSvc.Spec.ClusterIP+":80 rr"], "  -> "+p.Status.PodIP+":8080 Masq 1")
	}
	m.expectTable("ipvs-proxy programs a new endpoint and a new Service", formatTable(tableAfter))

	// README, "Rolling back to kube-proxy".
	backward := m.swap(svc, "ipvs-proxy → kube-proxy", func() (synced, settled time.Time) {
		m.kubectl("-n", "kube-system", "set", "image", "daemonset/kube-proxy", "kube-proxy="+m.kubeProxyImage)
		var err error
		if synced, err = proxySynced(m.waitProxyPod(m.kubeProxyImage), 8*time.Minute, "IPv4"); err != nil {
			t.Errorf("kube-proxy's first sync after the rollback: %v", err)
			m.kubectl("-n", "kube-system", "logs", "--tail=80", "daemonset/kube-proxy")
		}
		// Step 2 matters for clients that come through filter INPUT (pods,
		// outside clients): ipvs-proxy's guard on VIPs, left behind, would
		// refuse a port added under kube-proxy. This client is the node
		// itself, whose connections IPVS serves at LOCAL_OUT, before filter
		// INPUT, so what it sees before the step is only logged; after the
		// step the port must answer.
		added := m.addPort(newSvc, 83, len(pods)+1)
		_, err = httpGet("http://" + added + "/hostname")
		t.Logf("%s, a port added under kube-proxy, from the node before cleanup --rules-only: error %v", added, err)
		m.cleanupRulesOnly()
		if _, err := httpGet("http://" + added + "/hostname"); err != nil {
			t.Errorf("%s after cleanup --rules-only: %v", added, err)
		}
		return synced, time.Now()
	})
	for vs, rs := range tableAfter {
		if strings.HasPrefix(vs, "TCP "+newSvc.Spec.ClusterIP+":80 ") {
			tableAfter["TCP "+newSvc.Spec.ClusterIP+":83 rr"] = rs
		}
	}
	// kube-proxy's log says which IP families it serves again.
	m.kubectl("-n", "kube-system", "logs", "--tail=80", "daemonset/kube-proxy")
	m.expectTable("kube-proxy's table after the rollback", formatTable(tableAfter))
	m.expectText("iptables chains after the rollback (kube-proxy's again)", chains, chainsKubeProxy)
	m.expectText("ipsets after the rollback (kube-proxy's again)", ipsets, setsKubeProxy)
	// kube-proxy is the one programming: the new Service goes.
	m.deleteService(newSvc.Name)
	delete(tableAfter, "TCP "+newSvc.Spec.ClusterIP+":80 rr")
	delete(tableAfter, "TCP "+newSvc.Spec.ClusterIP+":83 rr")
	m.expectTable("kube-proxy removes a deleted Service", formatTable(tableAfter))

	m.writeResults(forward, backward)
	if !t.Failed() {
		m.checkFigures(forward)
	}
	t.Logf("migration test in the guest: %s", time.Since(start).Round(100*time.Millisecond))
}

// The chains and ipsets ipvs-proxy makes on this node (IPv4 and IPv6).
const (
	ipvsProxyChains = `ip6tables-save filter IPVS-PROXY-FILTER
ip6tables-save mangle IPVS-PROXY-OUTPUT
ip6tables-save mangle IPVS-PROXY-SHORT-CIRCUIT
ip6tables-save nat IPVS-PROXY-POSTROUTING
ip6tables-save nat IPVS-PROXY-PREROUTING
iptables-save filter IPVS-PROXY-FILTER
iptables-save mangle IPVS-PROXY-OUTPUT
iptables-save mangle IPVS-PROXY-SHORT-CIRCUIT
iptables-save nat IPVS-PROXY-POSTROUTING
iptables-save nat IPVS-PROXY-PREROUTING`
	ipvsProxyIPSets = `IPVS-PROXY-EXTERNAL-VIPS
IPVS-PROXY-EXTERNAL-VIPS6
IPVS-PROXY-FIREWALL
IPVS-PROXY-FIREWALL6
IPVS-PROXY-HAIRPIN
IPVS-PROXY-HAIRPIN6
IPVS-PROXY-KEEP-SOURCE
IPVS-PROXY-KEEP-SOURCE6
IPVS-PROXY-NO-LOCAL-ENDPOINTS
IPVS-PROXY-NO-LOCAL-ENDPOINTS6
IPVS-PROXY-OWNED
IPVS-PROXY-OWNED6
IPVS-PROXY-SERVICE-PORTS
IPVS-PROXY-SERVICE-PORTS6
IPVS-PROXY-SHORT-CIRCUIT
IPVS-PROXY-SHORT-CIRCUIT6
IPVS-PROXY-SOURCE-RANGES
IPVS-PROXY-SOURCE-RANGES6
IPVS-PROXY-VIPS
IPVS-PROXY-VIPS6`
)

// builtImage is the name:tag of the image built for this run whose name
// contains part.
func builtImage(t *testing.T, part string) string {
	t.Helper()
	for _, ref := range strings.Fields(os.Getenv(envBuilt)) {
		if name, _, _ := strings.Cut(ref, "@"); strings.Contains(name, part) {
			return name
		}
	}
	t.Fatalf("no image %q in $%s: %q", part, envBuilt, os.Getenv(envBuilt))
	return ""
}
