package kubeclient

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
)

// NodeExists is WaitForNode's condition when any Node will do.
func NodeExists(*corev1.Node) bool { return true }

// WaitForNode reads the Node called name every second, for at most
// timeout, until it exists and ready says it is as wanted. kube-proxy waits
// for its Node the same way: a kubelet registers the Node shortly after a
// DaemonSet's pod may start, and a controller assigns its podCIDRs later
// still. On a timeout the error is returned with the last Node read, nil
// if none was.
func (c *Client) WaitForNode(ctx context.Context, name string, timeout time.Duration, ready func(*corev1.Node) bool) (*corev1.Node, error) {
	var last *corev1.Node
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		n, err := c.Node(ctx, name)
		if err != nil {
			klog.V(2).InfoS("Cannot read the Node yet", "node", name, "err", err)
			return false, nil
		}
		if n == nil {
			return false, nil
		}
		last = n
		return ready(last), nil
	})
	return last, err
}

// Node reads the Node called name; nil, without an error, when there is
// none (a list by name: no NotFound error to tell from others).
func (c *Client) Node(ctx context.Context, name string) (*corev1.Node, error) {
	nodes := &corev1.NodeList{}
	byName := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()}
	if err := c.List(ctx, "nodes", byName, nodes); err != nil {
		return nil, err
	}
	if len(nodes.Items) == 0 {
		return nil, nil
	}
	return &nodes.Items[0], nil
}
