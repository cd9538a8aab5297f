//go:build conformance

package node

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
)

// The streams of client traffic from the node during a swap.
const (
	streamShortClusterIP = "short TCP requests via the ClusterIP"
	streamShortNodePort  = "short TCP requests via the NodePort"
	streamLong           = "long-lived TCP connection"
	streamUDP            = "UDP datagrams via the ClusterIP"
	// The same short requests to one pod's address, through no proxy: the
	// baseline, whose gaps are the emulated VM's own stalls.
	streamDirect = "short TCP requests to a pod, no Service (baseline)"
)

var streamOrder = []string{streamShortClusterIP, streamShortNodePort, streamLong, streamUDP, streamDirect}

// Traffic runs this long before a swap's first step, and this long after
// the new proxy's first sync (and the steps after it).
const (
	trafficBefore = 5 * time.Second
	trafficAfter  = 10 * time.Second
)

// swapFigures is what the client traffic saw during one swap of proxies.
type swapFigures struct {
	Name    string
	Synced  time.Duration // from the first step to the new proxy's first sync
	Settled time.Duration // from the first step to the end of the README's steps
	Traffic time.Duration // how long the traffic ran
	Streams map[string]streamFigures
}

// swap runs steps under client traffic to svc (its ports http, tcp-echo
// and udp-echo) and returns what the traffic saw. steps returns when the
// new proxy's first sync was seen, and when the README's steps were done.
func (m *migration) swap(svc *v1.Service, name string, steps func() (synced, settled time.Time)) swapFigures {
	m.t.Helper()
	cluster := func(port int32) string { return fmt.Sprintf("%s:%d", svc.Spec.ClusterIP, port) }
	nodePort := fmt.Sprintf("%s:%d", nodeIP, svc.Spec.Ports[0].NodePort)
	m.t.Logf("%s: traffic to %s, %s (short requests, every %s), %s (one connection, a line every %s), %s (UDP, every %s)",
		name, cluster(80), nodePort, shortInterval, cluster(81), longInterval, cluster(82), shortInterval)
	start := time.Now()
	tr := startTraffic(map[string]func(context.Context) streamFigures{
		streamShortClusterIP: func(ctx context.Context) streamFigures { return shortRequests(ctx, cluster(80)) },
		streamShortNodePort:  func(ctx context.Context) streamFigures { return shortRequests(ctx, nodePort) },
		streamLong:           func(ctx context.Context) streamFigures { return longConnection(ctx, cluster(81)) },
		streamUDP:            func(ctx context.Context) streamFigures { return udpStream(ctx, cluster(82)) },
		streamDirect:         func(ctx context.Context) streamFigures { return shortRequests(ctx, m.directAddr) },
	})
	time.Sleep(trafficBefore)
	began := time.Now()
	synced, settled := steps()
	time.Sleep(trafficAfter)
	f := swapFigures{Name: name, Synced: synced.Sub(began), Settled: settled.Sub(began), Traffic: time.Since(start), Streams: tr.stop()}
	m.t.Logf("%s: the new proxy's first sync %s after the first step, the steps done after %s; traffic ran %s", name,
		f.Synced.Round(time.Second), f.Settled.Round(time.Second), f.Traffic.Round(time.Second))
	for _, s := range streamOrder {
		m.t.Logf("%s: %s: %s", name, s, f.Streams[s])
	}
	return f
}

// checkFigures fails the test when the swap lost the long-lived connection
// or failed more short requests than shortFailTolerance allows.
func (m *migration) checkFigures(f swapFigures) {
	m.t.Helper()
	if !f.Streams[streamLong].Survived {
		m.t.Errorf("%s: the long-lived connection was lost: %s", f.Name, f.Streams[streamLong])
	}
	for _, s := range []string{streamShortClusterIP, streamShortNodePort} {
		sf := f.Streams[s]
		if allowed := int(math.Floor(shortFailTolerance * float64(sf.Sent))); sf.Failed > allowed {
			m.t.Errorf("%s: %s: %d of %d failed, more than %d (%.1f %%)", f.Name, s, sf.Failed, sf.Sent, allowed, 100*shortFailTolerance)
		}
	}
}

// writeResults writes the swaps' figures as a Markdown table to
// migration.md in the results directory.
func (m *migration) writeResults(swaps ...swapFigures) {
	m.t.Helper()
	var b strings.Builder
	row := func(measure string, cell func(swapFigures) string) {
		b.WriteString("| " + measure)
		for _, f := range swaps {
			b.WriteString(" | " + cell(f))
		}
		b.WriteString(" |\n")
	}
	row("measure", func(f swapFigures) string { return f.Name })
	row("---", func(swapFigures) string { return "---" })
	row("from the first step to the new proxy's first sync", func(f swapFigures) string { return f.Synced.Round(time.Second).String() })
	row("from the first step to the end of the README's steps", func(f swapFigures) string { return f.Settled.Round(time.Second).String() })
	row("client traffic ran", func(f swapFigures) string { return f.Traffic.Round(time.Second).String() })
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	for _, s := range []string{streamShortClusterIP, streamShortNodePort} {
		row(s+" (every "+shortInterval.String()+"): sent / failed", func(f swapFigures) string {
			return fmt.Sprintf("%d / %d", f.Streams[s].Sent, f.Streams[s].Failed)
		})
		row("… longest gap between answers", func(f swapFigures) string { return ms(f.Streams[s].LongestGap) })
	}
	row(streamLong+" (a line every "+longInterval.String()+")", func(f swapFigures) string {
		l := f.Streams[streamLong]
		if l.Survived {
			return fmt.Sprintf("survived (%d exchanges)", l.Sent)
		}
		return fmt.Sprintf("lost after %d exchanges", l.Sent)
	})
	row("… longest gap between answers", func(f swapFigures) string { return ms(f.Streams[streamLong].LongestGap) })
	row(streamUDP+" (every "+shortInterval.String()+"): sent / lost", func(f swapFigures) string {
		return fmt.Sprintf("%d / %d", f.Streams[streamUDP].Sent, f.Streams[streamUDP].Failed)
	})
	row("… longest gap between answers", func(f swapFigures) string { return ms(f.Streams[streamUDP].LongestGap) })
	row(streamDirect+": sent / failed", func(f swapFigures) string {
		return fmt.Sprintf("%d / %d", f.Streams[streamDirect].Sent, f.Streams[streamDirect].Failed)
	})
	row("… longest gap between answers", func(f swapFigures) string { return ms(f.Streams[streamDirect].LongestGap) })
	file := filepath.Join(os.Getenv(envResults), migrationFile)
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		m.t.Errorf("write %s: %v", file, err)
	}
	m.t.Logf("%s:\n%s", file, b.String())
}
