package watch

import (
	"testing"

	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestCachedSlice: the cache can key and version a CachedSlice, the index
// finds its Service, and a deep copy shares nothing that could be written.
func TestCachedSlice(t *testing.T) {
	c := CompactSlice(&discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-abc", ResourceVersion: "42", UID: "u",
			Labels: map[string]string{discovery.LabelServiceName: "web", "app": "web"}},
		AddressType: discovery.AddressTypeIPv4,
		Endpoints:   []discovery.Endpoint{{Addresses: []string{"10.244.1.2"}}},
	})
	m, err := meta.Accessor(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.GetNamespace() + "/" + m.GetName() + " rv " + m.GetResourceVersion() + " service " + c.Service; got != "ns/web-abc rv 42 service web" {
		t.Errorf("cached as %q", got)
	}
	cp := c.DeepCopyObject().(*CachedSlice)
	cp.Endpoints[0].Node = "changed"
	if c.Endpoints[0].Node != "" {
		t.Error("the deep copy shares its endpoints with the original")
	}
}
