package cleanup

import (
	"errors"
	"slices"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
)

func TestCleanIPSets(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sets   []string
		inUse  []string // sets a rule of another program matches on
		failOn map[string]error
		// wantRemoved and wantErrs are report lines, wantLeft the sets left.
		wantRemoved, wantErrs, wantLeft string
	}{
		{
			name: "IPv4 and IPv6 sets of kube-proxy, and others' sets",
			sets: []string{
				"KUBE-CLUSTER-IP", "KUBE-LOOP-BACK", "KUBE-IPVS-IPS", "KUBE-6-CLUSTER-IP",
				"KUBE-6-LOAD-BALANCER-SOURCE-CID", "KUBE-NODE-PORT-SCTP",
				"KUBE-MYAPP-ALLOW", "KUBE-6-LOAD-BALANCER-SOURCE-CIDR", "cali40all-ipam-pools", "blocklist",
			},
			wantRemoved: `
ipset: destroy KUBE-6-CLUSTER-IP
ipset: destroy KUBE-6-LOAD-BALANCER-SOURCE-CID
ipset: destroy KUBE-CLUSTER-IP
ipset: destroy KUBE-IPVS-IPS
ipset: destroy KUBE-LOOP-BACK
ipset: destroy KUBE-NODE-PORT-SCTP
`,
			// A 32-character name cannot be an ipset; if one were listed it
			// is not kube-proxy's spelling, so it stays like the others.
			wantLeft: `
KUBE-6-LOAD-BALANCER-SOURCE-CIDR
KUBE-MYAPP-ALLOW
blocklist
cali40all-ipam-pools
`,
		},
		{
			name:  "a set another program's rule still matches on stays, the rest go",
			sets:  []string{"KUBE-CLUSTER-IP", "KUBE-LOOP-BACK"},
			inUse: []string{"KUBE-CLUSTER-IP"},
			wantRemoved: `
ipset: destroy KUBE-LOOP-BACK
`,
			wantErrs: `
ipset: destroy ipset KUBE-CLUSTER-IP: set is in use by a kernel component
`,
			wantLeft: "KUBE-CLUSTER-IP",
		},
		{
			name:     "a set destroyed meanwhile is no error",
			sets:     []string{"KUBE-CLUSTER-IP", "KUBE-LOOP-BACK"},
			failOn:   map[string]error{"KUBE-CLUSTER-IP": ipset.ErrNotFound},
			wantLeft: "KUBE-CLUSTER-IP",
			wantRemoved: `
ipset: destroy KUBE-LOOP-BACK
`,
		},
		{
			name:   "errors are reported with the set's name",
			sets:   []string{"KUBE-CLUSTER-IP"},
			failOn: map[string]error{"KUBE-CLUSTER-IP": errors.New("operation not permitted")},
			wantErrs: `
ipset: destroy ipset KUBE-CLUSTER-IP: operation not permitted
`,
			wantLeft: "KUBE-CLUSTER-IP",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fakeSets(tc.sets...)
			s.FailOn = tc.failOn
			s.InUse = func(name string) bool { return slices.Contains(tc.inUse, name) }
			r := &report{}
			cleanIPSets(s, r)
			diff(t, "removed", joinLines(r.removed), joinLines(lines(tc.wantRemoved)))
			diff(t, "errors", errStrings(r.errs), joinLines(lines(tc.wantErrs)))
			diff(t, "left", joinLines(s.Names()), joinLines(lines(tc.wantLeft)))
		})
	}
}
