package metrics

import (
	"time"
)

// TriggerTimeAnnotation is where the EndpointSlice controller records when
// the change to Pods or the Service that led to a slice's current content
// happened (v1.EndpointsLastChangeTriggerTime).
const TriggerTimeAnnotation = "endpoints.kubernetes.io/last-change-trigger-time"

// ProgrammingLatency is the time from a slice's trigger time to now, for
// kubeproxy_network_programming_duration_seconds. ok is false when the
// annotation is absent (hand-written slices, deletions) or unparsable.
//
// Callers should skip trigger times from before the proxy started, as
// kube-proxy does: after a restart, every existing slice carries an old
// trigger time that this proxy had no part in. The result is negative when
// the node's clock is behind the control plane's.
func ProgrammingLatency(annotations map[string]string, now time.Time) (time.Duration, bool) {
	v, ok := annotations[TriggerTimeAnnotation]
	if !ok {
		return 0, false
	}
	// The controller writes UTC in RFC3339Nano; RFC3339Nano parsing also
	// accepts any fraction, or none.
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return 0, false
	}
	return now.Sub(t), true
}
