//go:build conformance

package node

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// e2ePart is one e2e.test run: the tests whose full name matches Focus,
// bounded by Timeout (ginkgo stops there and reports the rest as not run).
type e2ePart struct {
	Name    string
	Tests   []string // substrings of the tests' full names; none means Conformance
	Timeout time.Duration
}

// The selection, run in this order under each proxy. One at a time, the
// whole selection took about 35 minutes of the software-emulated VM per
// proxy (the session affinity tests alone 3 minutes each); the budgets
// leave room for that, and e2eProcs parallel processes finish sooner.
//
// Left out: the Services tests that restart kube-proxy or the API server as
// pods ([Disruptive]: neither runs as a pod here), that need an evicted pod
// (kubelet's eviction is off on this node), a LoadBalancer provider
// ("same port and different protocol ... Type LoadBalancer"), or three
// nodes ("HealthCheckNodePort correctly when ExternalTrafficPolicy
// changes"), SCTP ([Serial], two nodes), and topology (one zone). No test
// in the selection reaches the internet.
var e2eParts = []e2ePart{
	{Name: "conformance", Timeout: 20 * time.Minute},
	{Name: "single-node", Timeout: 25 * time.Minute, Tests: []string{
		"should be updated after adding or deleting ports",
		"should allow pods to hairpin back to themselves through services",
		"should be able to up and down services",
		"should work after the service has been recreated",
		"should be possible to connect to a service via ExternalIP when the external IP is not assigned to a node",
		"should be able to update service type to NodePort listening on same port number but different protocols",
		"should prevent NodePort collisions",
		"should check NodePort out-of-range",
		"should release NodePorts on delete",
		"should create endpoints for unready pods",
		"should have session affinity timeout work for service with type clusterIP",
		"should have session affinity timeout work for NodePort service",
		"should implement service.kubernetes.io/service-proxy-name",
		"should implement service.kubernetes.io/headless",
		"should be rejected when no endpoints exist",
		"should connect to the ports exposed by restartable init containers",
		"should connect to the named ports exposed by restartable init containers",
		"should support named targetPorts that resolve to different ports on different endpoints",
		// These need two nodes and skip themselves here; they stay in the
		// selection so the report names them.
		"should preserve source pod IP for traffic thru service cluster IP",
		"should be able to connect to terminating and unready endpoints if PublishNotReadyAddresses is true",
		"should not be able to connect to terminating and unready endpoints if PublishNotReadyAddresses is false",
		"should respect internalTrafficPolicy=Local Pod to Pod",
		"should respect internalTrafficPolicy=Local Pod (hostNetwork: true) to Pod",
		"should respect internalTrafficPolicy=Local Pod and Node, to Pod (hostNetwork: true)",
		"should support externalTrafficPolicy=Local for type=NodePort",
		"should fail health check node port if there are only terminating endpoints",
		"should fallback to terminating endpoints when there are no ready endpoints with internalTrafficPolicy=Cluster",
		"should fallback to local terminating endpoints when there are no ready endpoints with internalTrafficPolicy=Local",
		"should fallback to terminating endpoints when there are no ready endpoints with externallTrafficPolicy=Cluster",
		"should fallback to local terminating endpoints when there are no ready endpoints with externalTrafficPolicy=Local",
	}},
}

// Focus is the part's --ginkgo.focus: the [sig-network] Services tests it
// names, or all of their Conformance ones.
func (p e2ePart) Focus() string {
	if len(p.Tests) == 0 {
		return `\[sig-network\] Services .*\[Conformance\]`
	}
	quoted := make([]string, len(p.Tests))
	for i, s := range p.Tests {
		quoted[i] = regexp.QuoteMeta(s)
	}
	return `\[sig-network\] Services (` + strings.Join(quoted, "|") + `)`
}

// envParts narrows a run to some parts with other time budgets, e.g.
// CONFORMANCE_PARTS=conformance=9m (a shorter run; the default is every
// part at its own budget), envProxies to some proxies, e.g.
// CONFORMANCE_PROXIES=ipvs-proxy, and envProcs sets the e2e processes that
// run at once (default 2; 1 runs the tests one after another).
const (
	envParts   = "CONFORMANCE_PARTS"
	envProxies = "CONFORMANCE_PROXIES"
	envProcs   = "CONFORMANCE_PROCS"
)

// e2eProcs is $CONFORMANCE_PROCS, or 2: the node's two vCPUs are mostly idle
// while a test waits for its pods or its session affinity timeout.
func e2eProcs() (int, error) {
	v := os.Getenv(envProcs)
	if v == "" {
		return 2, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s=%q: want a positive number", envProcs, v)
	}
	return n, nil
}

// selectedParts is e2eParts as $CONFORMANCE_PARTS narrows them.
func selectedParts() ([]e2ePart, error) {
	spec := os.Getenv(envParts)
	if spec == "" {
		return e2eParts, nil
	}
	var parts []e2ePart
	for _, item := range strings.Split(spec, ",") {
		name, budget, _ := strings.Cut(item, "=")
		i := slices.IndexFunc(e2eParts, func(p e2ePart) bool { return p.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("%s: no part %q", envParts, name)
		}
		p := e2eParts[i]
		if budget != "" {
			d, err := time.ParseDuration(budget)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", envParts, err)
			}
			p.Timeout = d
		}
		parts = append(parts, p)
	}
	return parts, nil
}

// runsProxy says whether $CONFORMANCE_PROXIES (all when empty) names proxy.
func runsProxy(proxy string) bool {
	v := os.Getenv(envProxies)
	return v == "" || slices.Contains(strings.Split(v, ","), proxy)
}
