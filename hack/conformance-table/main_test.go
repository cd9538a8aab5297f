package main

import "testing"

// The fixtures hold what the e2e reports hold: names with ginkgo's "[It] ",
// specs outside the focus files ("skipped" with no reason, left out), a
// spec reported by both parts (the part that ran it wins), a self-skip with
// its reason, the suite timeout (the running test interrupted, the
// selected ones after it "skipped" with no reason: not run), and a report
// missing for a part.
func TestBuild(t *testing.T) {
	got, err := build("testdata")
	if err != nil {
		t.Fatal(err)
	}
	want := `| e2e test | kube-proxy | ipvs-proxy |
|---|---|---|
| should be able to up and down services | passed (90 s) | not run |
| should have session affinity work for NodePort service [LinuxOnly] [Conformance] | failed (61 s) | not run |
| should serve a basic endpoint from pods  [Conformance] | passed (41 s) | interrupted (300 s) |
| should support externalTrafficPolicy=Local for type=NodePort | skipped: Requires at least 2 nodes (not 1) | not run |

| proxy | run | passed | failed | interrupted | skipped | not run |
|---|---|---|---|---|---|---|
| kube-proxy | 3 | 2 | 1 | 0 | 1 | 0 |
| ipvs-proxy | 1 | 0 | 0 | 1 | 0 | 3 |
`
	if got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}
