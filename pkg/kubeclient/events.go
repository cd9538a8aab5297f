package kubeclient

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
)

// EventSink writes core/v1 Events for an event broadcaster, making the
// requests client-go's EventSinkImpl makes through a clientset: each Event
// goes to its own namespace.
func (c *Client) EventSink() record.EventSink { return eventSink{c.core} }

type eventSink struct{ c rest.Interface }

// The broadcaster's interface has no context; the clientset's sink uses
// context.Background() too. The client's timeouts and the broadcaster's
// retries bound each write.

func (s eventSink) Create(e *corev1.Event) (*corev1.Event, error) {
	return send(s.c.Post(), e, "", e)
}

func (s eventSink) Update(e *corev1.Event) (*corev1.Event, error) {
	return send(s.c.Put(), e, e.Name, e)
}

func (s eventSink) Patch(e *corev1.Event, data []byte) (*corev1.Event, error) {
	return send(s.c.Patch(types.StrategicMergePatchType), e, e.Name, data)
}

// send makes r for Event e (named, unless name is ""), with body.
func send(r *rest.Request, e *corev1.Event, name string, body any) (*corev1.Event, error) {
	r = r.NamespaceIfScoped(e.Namespace, e.Namespace != "").Resource("events")
	if name != "" {
		r = r.Name(name)
	}
	out := &corev1.Event{}
	err := r.Body(body).Do(context.Background()).Into(out)
	return out, err
}
