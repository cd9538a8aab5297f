package proxier

import (
	"slices"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
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
