package proxier

import (
	"maps"
	"slices"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/testobj"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	discovery "k8s.io/api/discovery/v1"
)

// TestSameInput: a resync reuses a built state only for the very objects
// it was built from: another Service object, another slice or one more,
// or a Service with nothing built, is built again.
func TestSameInput(t *testing.T) {
	web, api := svc("web", "10.96.0.10"), svc("api", "10.96.0.11")
	s1, s2 := slice("web", "10.244.1.2"), slice("web", "10.244.1.3")
	in := input(web, s1)
	x := newIndex(1)
	x.built[name("web")] = model.ServiceState{Problems: []string{"built"}}
	x.from[name("web")] = in
	x.from[name("api")] = input(api)
	for _, tc := range []struct {
		what string
		name string
		in   model.ServiceInput
		want bool
	}{
		{"the same objects", "web", in, true},
		{"the same objects in a new list", "web", model.ServiceInput{Service: in.Service, Slices: slices.Clone(in.Slices)}, true},
		{"a new slice object", "web", input(web, s1), false},
		{"another slice", "web", model.ServiceInput{Service: in.Service, Slices: append(slices.Clone(in.Slices), model.Slices(s2)...)}, false},
		{"another Service object", "web", model.ServiceInput{Service: in.Service.Clone(), Slices: in.Slices}, false},
		{"nothing built", "api", x.from[name("api")], false},
		{"never built", "db", in, false},
	} {
		if got := x.sameInput(name(tc.name), tc.in); got != tc.want {
			t.Errorf("%s: sameInput %v, want %v", tc.what, got, tc.want)
		}
	}
}

// TestShiftMovesOnlyWhatChanged: a Service's change moves the references
// of the groups of members that changed and of no other, so that a change
// of a remote endpoint (the VIP and its port unchanged) costs no member's
// count down and up; and the counts after it are those the new state
// alone gives.
func TestShiftMovesOnlyWhatChanged(t *testing.T) {
	b := model.NewBuilder(model.Options{NodeName: "node-a", Scheduler: "rr"})
	web := svc("web", "10.96.0.10")
	remote := func(addrs ...string) *discovery.EndpointSlice {
		return testobj.Slice("ns", "web-1", "web", discovery.AddressTypeIPv4, testobj.HTTP(8080), testobj.On("node-b", addrs...)...)
	}
	local := func(addrs ...string) *discovery.EndpointSlice {
		return testobj.Slice("ns", "web-2", "web", discovery.AddressTypeIPv4, testobj.HTTP(8080), testobj.On("node-a", addrs...)...)
	}
	before := b.Service(input(web, remote("10.244.2.2"), local("10.244.1.2")))
	for _, tc := range []struct {
		what  string
		after model.ServiceState
		moved []string
	}{
		{"a remote endpoint added", b.Service(input(web, remote("10.244.2.2", "10.244.2.3"), local("10.244.1.2"))), nil},
		// The hairpin group changed, so all of it moves (the kept member
		// down and up again); the VIP's members do not.
		{"a local endpoint added", b.Service(input(web, remote("10.244.2.2"), local("10.244.1.2", "10.244.1.3"))),
			[]string{"IPVS-PROXY-HAIRPIN 10.244.1.2,tcp:8080,10.244.1.2", "IPVS-PROXY-HAIRPIN 10.244.1.3,tcp:8080,10.244.1.3"}},
		{"the clusterIP replaced", b.Service(input(svc("web", "10.96.0.11"), remote("10.244.2.2"), local("10.244.1.2"))),
			[]string{"IPVS-PROXY-SERVICE-PORTS 10.96.0.10,tcp:80", "IPVS-PROXY-SERVICE-PORTS 10.96.0.11,tcp:80", "IPVS-PROXY-VIPS 10.96.0.10", "IPVS-PROXY-VIPS 10.96.0.11"}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			x := newIndex(1)
			x.move(before, +1)
			x.trackMembers()
			x.shift(before, tc.after)
			var moved []string
			for m := range x.before {
				moved = append(moved, m.setName()+" "+m.entry().String())
			}
			slices.Sort(moved)
			if !slices.Equal(moved, tc.moved) {
				t.Errorf("moved members:\n%q\nwant:\n%q", moved, tc.moved)
			}
			fresh := newIndex(1)
			fresh.move(tc.after, +1)
			if !maps.Equal(x.memberRefs, fresh.memberRefs) || !maps.Equal(x.vipRefs, fresh.vipRefs) || x.noLocal != fresh.noLocal {
				t.Errorf("counts after the shift differ from the new state's own:\nmembers %v\nwant    %v\nVIPs %v\nwant %v",
					x.memberRefs, fresh.memberRefs, x.vipRefs, fresh.vipRefs)
			}
		})
	}
}
