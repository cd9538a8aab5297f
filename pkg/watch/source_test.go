package watch

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/kubeclient/kubeclienttest"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
)

// describe prints an input as "ns/name: slice slice", slices by name: the
// cache hands them out in no particular order.
func describe(in *model.ServiceInput) string {
	if in == nil {
		return "<nil>"
	}
	var ss []string
	for _, s := range in.Slices {
		ss = append(ss, s.Name)
	}
	slices.Sort(ss)
	return strings.TrimSpace(fmt.Sprintf("%s/%s: %s", in.Service.Namespace, in.Service.Name, strings.Join(ss, " ")))
}

// startSource runs informers over a fake API holding objs; notified counts
// the changes the handlers recorded.
func startSource(t *testing.T, objs ...runtime.Object) (*Source, *Changes, kubernetes.Interface, *atomic.Int64) {
	t.Helper()
	client := fake.NewClientset(objs...)
	lw := kubeclienttest.Clientset{Interface: client}
	var notified atomic.Int64
	changes := NewChanges(func(Change) { notified.Add(1) })
	src, err := NewSource(lw.ListWatch("services", nil), lw.ListWatch("endpointslices", nil), changes)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		running.Wait()
	})
	for _, inf := range src.Informers() {
		running.Go(func() { inf.RunWithContext(ctx) })
	}
	if !src.WaitSynced(ctx) {
		t.Fatal("caches did not sync")
	}
	// Synced means the initial adds reached the handlers, not only the
	// caches: every one is recorded by now.
	want := 0
	for _, o := range objs {
		if s, ok := o.(*discovery.EndpointSlice); !ok || s.Labels[discovery.LabelServiceName] != "" {
			want++
		}
	}
	if got := notified.Load(); got != int64(want) {
		t.Fatalf("after Synced, %d changes recorded, want the %d initial adds", got, want)
	}
	return src, changes, client, &notified
}

var world = []runtime.Object{
	svc("ns", "web"),
	svc("ns", "api"),
	svc("other", "web"), // same name, another namespace
	svc("ns", "lonely"), // no slices at all
	slice("ns", "web-abc", "web"),
	slice("ns", "web-def", "web"),
	slice("ns", "api-abc", "api"),
	slice("other", "web-xyz", "web"),
	slice("ns", "mirror", ""),           // no label: nobody's
	slice("ns", "gone-abc", "gone"),     // its Service is gone
	slice("ns", "web-v2-abc", "web-v2"), // a label that only starts like web's
}

func TestSourceInput(t *testing.T) {
	src, _, _, _ := startSource(t, world...)
	cases := []struct {
		name types.NamespacedName
		want string
	}{
		{types.NamespacedName{Namespace: "ns", Name: "web"}, "ns/web: web-abc web-def"},
		{types.NamespacedName{Namespace: "ns", Name: "api"}, "ns/api: api-abc"},
		{types.NamespacedName{Namespace: "other", Name: "web"}, "other/web: web-xyz"},
		{types.NamespacedName{Namespace: "ns", Name: "lonely"}, "ns/lonely:"},
		{types.NamespacedName{Namespace: "ns", Name: "gone"}, "<nil>"},
		{types.NamespacedName{Namespace: "nowhere", Name: "web"}, "<nil>"},
	}
	for _, tc := range cases {
		t.Run(tc.name.String(), func(t *testing.T) {
			in, err := src.Input(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if got := describe(in); got != tc.want {
				t.Errorf("Input(%s) = %q, want %q", tc.name, got, tc.want)
			}
		})
	}
}

func TestSourceAll(t *testing.T) {
	src, _, _, _ := startSource(t, world...)
	all, err := src.All()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := range all {
		got = append(got, describe(&all[i]))
	}
	slices.Sort(got)
	want := `ns/api: api-abc
ns/lonely:
ns/web: web-abc web-def
other/web: web-xyz`
	if g := strings.Join(got, "\n"); g != want {
		t.Errorf("All:\n%s\nwant:\n%s", g, want)
	}
}

// The handlers are wired to the informers: the initial list marks every
// Service and every labelled slice's Service, and a relabelled slice moves
// from one Service's input to the other's.
func TestSourceEvents(t *testing.T) {
	src, changes, client, notified := startSource(t, world...)
	// Four Services and six labelled slices: ten adds.
	waitNotified(t, notified, 10)
	if got, want := names(changes.Take()), "ns/api ns/gone ns/lonely ns/web ns/web-v2 other/web"; got != want {
		t.Errorf("marked by the initial list: %q, want %q", got, want)
	}

	moved := slice("ns", "web-def", "api")
	if _, err := client.DiscoveryV1().EndpointSlices("ns").Update(context.Background(), moved, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitNotified(t, notified, 12)
	if got, want := names(changes.Take()), "ns/api ns/web"; got != want {
		t.Errorf("marked by relabelling: %q, want %q", got, want)
	}
	web, _ := src.Input(types.NamespacedName{Namespace: "ns", Name: "web"})
	api, _ := src.Input(types.NamespacedName{Namespace: "ns", Name: "api"})
	if got, want := describe(web)+" | "+describe(api), "ns/web: web-abc | ns/api: api-abc web-def"; got != want {
		t.Errorf("after relabelling: %q, want %q", got, want)
	}

	if err := client.CoreV1().Services("ns").Delete(context.Background(), "api", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitNotified(t, notified, 13)
	if got, want := names(changes.Take()), "ns/api"; got != want {
		t.Errorf("marked by deletion: %q, want %q", got, want)
	}
	in, err := src.Input(types.NamespacedName{Namespace: "ns", Name: "api"})
	if in != nil || err != nil {
		t.Errorf("Input of a deleted Service = %q, %v; want <nil>, nil", describe(in), err)
	}
}

// waitNotified waits until the handlers have recorded n changes in all;
// they run on the informers' goroutines. The cache is updated before the
// handlers are called, so reads after this see the change.
func waitNotified(t *testing.T, notified *atomic.Int64, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for notified.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d changes recorded, want %d", notified.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let a surplus show, if any
	if got := notified.Load(); got != n {
		t.Fatalf("%d changes recorded, want %d", got, n)
	}
}
