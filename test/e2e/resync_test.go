package e2e

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestGuestResyncKeepsChanges: with a resync every second, whose kernel
// read runs beside the sync loop (on the real kernel: the netlink sockets
// and /proc/net/ip_vs read from two goroutines), endpoint changes made all
// the while land, and no resync from a read older than a change undoes it.
func TestGuestResyncKeepsChanges(t *testing.T) {
	guest(t)
	w := newWorld(t, "resync")
	w.startProxy("--ipvs-sync-period", "1s")
	w.waitFirstSync()
	svc := w.service("churn", scheduler("rr"), ep{pod: "pod-a"})
	vs := "TCP " + hostPort(svc.Spec.ClusterIP, 80) + " rr"
	waitIPVS(t, vs, rs("pod-a"))

	rounds := [][]ep{{{pod: "pod-b"}}, {{pod: "pod-a"}, {pod: "pod-c"}}, {{pod: "pod-d"}}, {{pod: "pod-a"}, {pod: "pod-b"}, {pod: "pod-d"}}}
	start := time.Now()
	changes := 0
	for ; time.Since(start) < 6*time.Second; changes++ {
		w.endpoints(svc, rounds[changes%len(rounds)]...)
		time.Sleep(150 * time.Millisecond)
	}
	w.endpoints(svc, ep{pod: "pod-b"}, ep{pod: "pod-c"})
	waitIPVS(t, vs, rs("pod-b"), rs("pod-c"))
	// Three more resyncs: none may bring back an older state.
	time.Sleep(3500 * time.Millisecond)
	if got := ipvsTable(t)[vs]; strings.Join(got, "|") != rs("pod-b")+"|"+rs("pod-c") {
		t.Errorf("after three more resyncs %q has %q", vs, got)
	}

	log, err := os.ReadFile(w.log)
	if err != nil {
		t.Fatal(err)
	}
	full := strings.Count(string(log), `"Synced" full=true`)
	if full < 6 {
		t.Errorf("%d full syncs in the log, want a resync every second over about 10 s", full)
	}
	if strings.Contains(string(log), "Kernel write failed") {
		t.Errorf("a kernel write failed; see the log")
	}
	t.Logf("%d endpoint changes during %d full syncs", changes+1, full)
}
