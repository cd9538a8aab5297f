package watch

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/testobj"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

func svc(ns, name string) *v1.Service { return testobj.Service(ns, name, nil) }

// cached is a Service as the handlers get it: after the informer's transform.
func cached(ns, name string) *CachedService { return CompactService(svc(ns, name)) }

// slice is an EndpointSlice labelled for service; "" leaves the label off.
func slice(ns, name, service string) *discovery.EndpointSlice {
	s := testobj.Slice(ns, name, service, discovery.AddressTypeIPv4, nil)
	s.Labels["other"] = "x"
	if service == "" {
		delete(s.Labels, discovery.LabelServiceName)
	}
	return s
}

// cachedSlice is slice as the informer caches it, which is what handlers get.
func cachedSlice(ns, name, service string) *CachedSlice {
	return CompactSlice(slice(ns, name, service))
}

func names(ns []types.NamespacedName) string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.String()
	}
	return strings.Join(out, " ")
}

// event drives the handlers the way an informer does.
type event func(svcs, slices cache.ResourceEventHandler)

func TestChanges(t *testing.T) {
	cases := []struct {
		name   string
		events []event
		// notified lists the notify calls: "service" or "endpoints".
		notified string
		pending  string
		taken    string
	}{{
		name:     "nothing happened",
		notified: "",
		pending:  "services=0 endpoints=0",
		taken:    "",
	}, {
		name: "Service added",
		events: []event{func(s, _ cache.ResourceEventHandler) {
			s.OnAdd(cached("ns", "web"), true)
		}},
		notified: "service",
		pending:  "services=1 endpoints=0",
		taken:    "ns/web",
	}, {
		name: "Service updated: recorded and counted once",
		events: []event{func(s, _ cache.ResourceEventHandler) {
			s.OnUpdate(cached("ns", "web"), cached("ns", "web"))
		}},
		notified: "service",
		pending:  "services=1 endpoints=0",
		taken:    "ns/web",
	}, {
		name: "Service deleted",
		events: []event{func(s, _ cache.ResourceEventHandler) {
			s.OnDelete(cached("ns", "web"))
		}},
		notified: "service",
		pending:  "services=1 endpoints=0",
		taken:    "ns/web",
	}, {
		name: "Service deleted while the watch was down: DeletedFinalStateUnknown is unwrapped",
		events: []event{func(s, _ cache.ResourceEventHandler) {
			s.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/web", Obj: cached("ns", "web")})
		}},
		notified: "service",
		pending:  "services=1 endpoints=0",
		taken:    "ns/web",
	}, {
		name: "EndpointSlice add, update and delete mark the Service of its label, in the slice's namespace",
		events: []event{func(_, e cache.ResourceEventHandler) {
			e.OnAdd(cachedSlice("ns", "web-abc", "web"), false)
			e.OnDelete(cachedSlice("other", "api-abc", "api"))
		}},
		notified: "endpoints endpoints",
		pending:  "services=0 endpoints=2",
		taken:    "ns/web other/api",
	}, {
		name: "relabelling a slice marks both the old and the new Service",
		events: []event{func(_, e cache.ResourceEventHandler) {
			e.OnUpdate(cachedSlice("ns", "web-abc", "web"), cachedSlice("ns", "web-abc", "web-v2"))
		}},
		notified: "endpoints endpoints",
		pending:  "services=0 endpoints=2",
		taken:    "ns/web ns/web-v2",
	}, {
		name: "a slice losing its label marks the Service it left",
		events: []event{func(_, e cache.ResourceEventHandler) {
			e.OnUpdate(cachedSlice("ns", "web-abc", "web"), cachedSlice("ns", "web-abc", ""))
		}},
		notified: "endpoints",
		pending:  "services=0 endpoints=1",
		taken:    "ns/web",
	}, {
		name: "a slice without the label marks nothing and notifies nobody",
		events: []event{func(_, e cache.ResourceEventHandler) {
			e.OnAdd(cachedSlice("ns", "mirror", ""), false)
			e.OnUpdate(cachedSlice("ns", "mirror", ""), cachedSlice("ns", "mirror", ""))
			e.OnDelete(cachedSlice("ns", "mirror", ""))
			e.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/mirror", Obj: cachedSlice("ns", "mirror", "")})
		}},
		notified: "",
		pending:  "services=0 endpoints=0",
		taken:    "",
	}, {
		name: "EndpointSlice DeletedFinalStateUnknown is unwrapped",
		events: []event{func(_, e cache.ResourceEventHandler) {
			e.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/web-abc", Obj: cachedSlice("ns", "web-abc", "web")})
		}},
		notified: "endpoints",
		pending:  "services=0 endpoints=1",
		taken:    "ns/web",
	}, {
		name: "objects of the wrong type, and a tombstone without an object, are ignored",
		events: []event{func(s, e cache.ResourceEventHandler) {
			s.OnAdd(cachedSlice("ns", "web-abc", "web"), false)
			e.OnAdd(cached("ns", "web"), false)
			s.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/web"})
			e.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/web-abc"})
		}},
		notified: "",
		pending:  "services=0 endpoints=0",
		taken:    "",
	}, {
		name: "a burst is one set of names, sorted by namespace then name",
		events: []event{func(s, e cache.ResourceEventHandler) {
			s.OnAdd(cached("b", "web"), false)
			e.OnAdd(cachedSlice("a", "z-1", "z"), false)
			s.OnAdd(cached("a", "web"), false)
			e.OnAdd(cachedSlice("b", "web-1", "web"), false)
			e.OnAdd(cachedSlice("b", "web-2", "web"), false)
			s.OnDelete(cached("a", "api"))
		}},
		notified: "service endpoints service endpoints endpoints service",
		pending:  "services=3 endpoints=3",
		taken:    "a/api a/web a/z b/web",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var notified []string
			c := NewChanges(func(kind Change) {
				notified = append(notified, map[Change]string{ServiceEvent: "service", SliceEvent: "endpoints"}[kind])
			})
			for _, e := range tc.events {
				e(c.ServiceHandler(), c.SliceHandler())
			}
			if got := strings.Join(notified, " "); got != tc.notified {
				t.Errorf("notified %q, want %q", got, tc.notified)
			}
			s, e := c.Pending()
			if got := fmt.Sprintf("services=%d endpoints=%d", s, e); got != tc.pending {
				t.Errorf("Pending: %s, want %s", got, tc.pending)
			}
			if got := names(c.Take()); got != tc.taken {
				t.Errorf("Take: %q, want %q", got, tc.taken)
			}
			// Take forgets: a second one is empty and nothing is pending.
			s, e = c.Pending()
			if got := names(c.Take()); got != "" || s != 0 || e != 0 {
				t.Errorf("after Take: Take %q, Pending services=%d endpoints=%d; want all empty", got, s, e)
			}
		})
	}
}

// Mark re-queues a Service (a retry, a drain re-check): it kicks the sync
// loop (notify, as Requeue) but is no event, so Pending does not count it.
func TestChangesMark(t *testing.T) {
	var notified []Change
	c := NewChanges(func(kind Change) { notified = append(notified, kind) })
	c.Mark(types.NamespacedName{Namespace: "ns", Name: "web"})
	c.Mark(types.NamespacedName{Namespace: "ns", Name: "api"})
	c.ServiceHandler().OnAdd(cached("ns", "web"), false)
	c.Mark(types.NamespacedName{Namespace: "ns", Name: "web"})
	s, e := c.Pending()
	got := fmt.Sprintf("notified %v, pending services=%d endpoints=%d, taken %q", notified, s, e, names(c.Take()))
	want := `notified [requeue requeue service requeue], pending services=1 endpoints=0, taken "ns/api ns/web"`
	if got != want {
		t.Errorf("%s\nwant:\n%s", got, want)
	}
}

// A nil notify is allowed (e.g. for a one-shot reader).
func TestChangesNilNotify(t *testing.T) {
	c := NewChanges(nil)
	c.ServiceHandler().OnAdd(cached("ns", "web"), false)
	if got := names(c.Take()); got != "ns/web" {
		t.Errorf("Take: %q, want ns/web", got)
	}
}

func TestTriggerTime(t *testing.T) {
	annotated := func(name, v string) *discovery.EndpointSlice {
		s := slice("ns", name, "web")
		s.Annotations = map[string]string{model.TriggerTimeAnnotation: v}
		return s
	}
	cases := []struct {
		name   string
		slices []*discovery.EndpointSlice
		want   string // UTC, or "none"
	}{
		{"no slices", nil, "none"},
		{"slices without the annotation", []*discovery.EndpointSlice{slice("ns", "a", "web")}, "none"},
		{"one slice, seconds", []*discovery.EndpointSlice{annotated("a", "2024-05-01T10:00:00Z")}, "2024-05-01T10:00:00Z"},
		{"one slice, nanoseconds", []*discovery.EndpointSlice{annotated("a", "2024-05-01T10:00:00.123456789Z")}, "2024-05-01T10:00:00.123456789Z"},
		{"the latest of several", []*discovery.EndpointSlice{
			annotated("a", "2024-05-01T10:00:00Z"),
			annotated("b", "2024-05-01T10:00:02Z"),
			slice("ns", "c", "web"),
			annotated("d", "2024-05-01T10:00:01Z"),
		}, "2024-05-01T10:00:02Z"},
		{"compared as instants, not as text", []*discovery.EndpointSlice{
			annotated("a", "2024-05-01T11:30:00+02:00"), // 09:30 UTC
			annotated("b", "2024-05-01T10:00:00Z"),
		}, "2024-05-01T10:00:00Z"},
		{"an unparsable value is ignored", []*discovery.EndpointSlice{
			annotated("a", "yesterday"),
			annotated("b", "2024-05-01T10:00:00Z"),
			annotated("c", "2024-05-01 12:00:00"),
		}, "2024-05-01T10:00:00Z"},
		{"only unparsable values", []*discovery.EndpointSlice{annotated("a", ""), annotated("b", "1714557600")}, "none"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := "none"
			if ts, ok := TriggerTime(&model.ServiceInput{Service: model.ServiceFrom(svc("ns", "web")), Slices: model.Slices(tc.slices...)}); ok {
				got = ts.UTC().Format(time.RFC3339Nano)
			}
			if got != tc.want {
				t.Errorf("TriggerTime = %s, want %s", got, tc.want)
			}
		})
	}
}

// Take orders names as everything else does (model.CompareNames):
// namespace first, so "a/y" comes before "a-b/x", which a comparison of
// "namespace/name" strings would put first.
func TestTakeOrder(t *testing.T) {
	c := NewChanges(nil)
	for _, n := range []types.NamespacedName{{Namespace: "a-b", Name: "x"}, {Namespace: "a", Name: "y"}, {Namespace: "a", Name: "b"}} {
		c.Mark(n)
	}
	if got := fmt.Sprint(c.Take()); got != "[a/b a/y a-b/x]" {
		t.Errorf("Take = %s, want [a/b a/y a-b/x]", got)
	}
}
