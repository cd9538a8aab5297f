package main

import (
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/proxier"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/status"
)

// TestReadOurs: status reads the dummy link's addresses and the ownership
// record where the running proxy keeps them (the kernel sets, or
// --state-file), and writes nothing: missing sets are an empty record,
// not made.
func TestReadOurs(t *testing.T) {
	vip := netip.MustParseAddr("10.96.0.10")
	nodePort := ipvs.ServiceKey{Addr: netip.MustParseAddr("192.0.2.1"), Proto: ipvs.TCP, Port: 30080}
	for _, tc := range []struct {
		name      string
		record    bool // the proxy recorded nodePort
		stateFile bool // in a --state-file rather than the kernel sets
		want      status.Ours
	}{
		{name: "no record sets yet", want: status.Ours{LinkAddrs: map[netip.Addr]bool{vip: true}, Recorded: map[ipvs.ServiceKey]bool{}}},
		{name: "record in the kernel sets", record: true,
			want: status.Ours{LinkAddrs: map[netip.Addr]bool{vip: true}, Recorded: map[ipvs.ServiceKey]bool{nodePort: true}}},
		{name: "no state file yet", stateFile: true, want: status.Ours{LinkAddrs: map[netip.Addr]bool{vip: true}, Recorded: map[ipvs.ServiceKey]bool{}}},
		{name: "record in the state file", stateFile: true, record: true,
			want: status.Ours{LinkAddrs: map[netip.Addr]bool{vip: true}, Recorded: map[ipvs.ServiceKey]bool{nodePort: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			link := netif.NewFake(LinkName)
			if err := link.EnsureLink(); err != nil {
				t.Fatal(err)
			}
			if err := link.AddAddress(vip); err != nil {
				t.Fatal(err)
			}
			sets := ipset.NewFake()
			path := ""
			if tc.stateFile {
				path = filepath.Join(t.TempDir(), "owned")
			}
			if tc.record {
				owned, err := proxier.LoadOwned(path)
				if !tc.stateFile {
					owned, err = proxier.LoadOwnedInSets(sets)
				}
				if err != nil {
					t.Fatal(err)
				}
				if err := owned.Set(map[ipvs.ServiceKey]bool{nodePort: true}); err != nil {
					t.Fatal(err)
				}
			}
			setsBefore := sets.Writes
			dumpBefore, _ := link.Dump()
			if diff := cmp.Diff(tc.want, readOurs(link, sets, path)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if sets.Writes != setsBefore {
				t.Errorf("status wrote the sets: %q", sets.Log[setsBefore:])
			}
			if dump, _ := link.Dump(); dump != dumpBefore {
				t.Errorf("status changed the link:\n%s\nwas:\n%s", dump, dumpBefore)
			}
		})
	}
}
