package daemon

import (
	"testing"

	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

func TestDropManagedFields(t *testing.T) {
	s := &discovery.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{discovery.LabelServiceName: "web"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager"}}}}
	out, err := dropManagedFields(s)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*discovery.EndpointSlice)
	if got.ManagedFields != nil || got.Labels[discovery.LabelServiceName] != "web" {
		t.Errorf("after the transform: managedFields %v, labels %v", got.ManagedFields, got.Labels)
	}
	// A tombstone is not an object with metadata: it passes unchanged.
	tomb := cache.DeletedFinalStateUnknown{Key: "ns/web-1"}
	if out, err := dropManagedFields(tomb); err != nil || out != tomb {
		t.Errorf("tombstone: %v, %v", out, err)
	}
}
