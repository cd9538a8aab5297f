package proxier

import (
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/reconcile"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

// TestUnsavedRecordWritesNothing: a key that could not be recorded is not
// taken as recorded, its virtual server is not written, and the Service is
// synced again (not skipped as unchanged) once the record can be saved.
func TestUnsavedRecordWritesNothing(t *testing.T) {
	k := newKernel()
	dir := t.TempDir()
	blocked := filepath.Join(dir, "file")
	if err := os.WriteFile(blocked, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p := k.proxier(t, "")
	p.SyncAll(nil)
	p.owned.path = filepath.Join(blocked, "owned") // its directory is a file: saving fails
	before := k.ipvs.Dump()
	res := p.SyncServices(changesOf(input(api, apiSlice)))
	if len(res.Errors) == 0 || !slices.Equal(res.Failed, []types.NamespacedName{name("api")}) || res.NodeWide {
		t.Fatalf("errors %v, failed %v, node-wide %v; want the record's error, charged to ns/api", res.Errors, res.Failed, res.NodeWide)
	}
	if got := k.ipvs.Dump(); got != before {
		t.Errorf("IPVS was written although the record was not saved:\n%s", got)
	}
	if keys := p.owned.Keys(); len(keys) != 0 {
		t.Errorf("the record in memory holds %v though it was never saved", keys)
	}
	p.owned.path = filepath.Join(dir, "owned")
	res = p.SyncServices(changesOf(input(api, apiSlice))) // the same input: a retry
	if len(res.Errors) > 0 || len(res.Failed) > 0 {
		t.Fatalf("retry: errors %v, failed %v", res.Errors, res.Failed)
	}
	// Retried with success, the Service is no longer failed: the same
	// input once more is unchanged and writes nothing.
	if res = p.SyncServices(changesOf(input(api, apiSlice))); res.Counts != (reconcile.Counts{}) {
		t.Errorf("the same input after a successful retry wrote %+v, want nothing", res.Counts)
	}
	checkDump(t, k, ipvsHeader+`TCP  10.96.0.20:80 rr
  -> 10.244.1.7:8080              Masq    1
TCP  192.168.1.10:30080 rr
  -> 10.244.1.7:8080              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.20/32
`+sets("10.244.1.7")+guard("10.96.0.20,tcp:80"))
	saved, err := LoadOwned(p.owned.path)
	if err != nil || len(saved.Keys()) != 1 {
		t.Errorf("record on disk: %v, err %v; want the NodePort", saved.Keys(), err)
	}
}

// The record in the kernel's sets survives a new proxy process (a new pod
// without any volume): it deletes the NodePort that went away meanwhile.
func TestRecordInKernelSetsSurvivesRestart(t *testing.T) {
	k := newKernel()
	start := func() *Proxier {
		owned, err := LoadOwnedInSets(k.sets)
		if err != nil {
			t.Fatal(err)
		}
		return New(model.Options{NodeName: "node-a", Scheduler: "rr"}, k.ipvs, k.link, k.sets, owned)
	}
	start().SyncAll([]model.ServiceInput{input(web, webSlice), input(api, apiSlice)})
	es, err := k.sets.Entries("IPVS-PROXY-OWNED")
	if err != nil || len(es) != 1 || es[0].String() != "192.168.1.10,tcp:30080" {
		t.Fatalf("record set: %v, err %v; want the NodePort", es, err)
	}
	res := start().SyncAll([]model.ServiceInput{input(web, webSlice)})
	if len(res.Errors) > 0 {
		t.Fatal(res.Errors)
	}
	if strings.Contains(k.ipvs.Dump(), "30080") {
		t.Errorf("the new process kept the NodePort of a Service that went away:\n%s", k.ipvs.Dump())
	}
	if es, _ := k.sets.Entries("IPVS-PROXY-OWNED"); len(es) != 0 {
		t.Errorf("record set still holds %v", es)
	}
}
