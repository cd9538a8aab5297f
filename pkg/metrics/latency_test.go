package metrics

import (
	"fmt"
	"testing"
	"time"
)

func TestProgrammingLatency(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 10, 0, time.UTC)
	cases := []struct {
		name        string
		annotations map[string]string
		want        string // "duration ok"
	}{
		{"no annotations", nil, "0s false"},
		{"other annotations only", map[string]string{"a": "b"}, "0s false"},
		{"as the controller writes it", map[string]string{TriggerTimeAnnotation: "2026-01-01T12:00:08.5Z"}, "1.5s true"},
		{"nanoseconds", map[string]string{TriggerTimeAnnotation: "2026-01-01T12:00:09.999999999Z"}, "1ns true"},
		{"no fraction", map[string]string{TriggerTimeAnnotation: "2026-01-01T12:00:00Z"}, "10s true"},
		{"another zone", map[string]string{TriggerTimeAnnotation: "2026-01-01T13:00:00+01:00"}, "10s true"},
		{"node clock behind", map[string]string{TriggerTimeAnnotation: "2026-01-01T12:00:12Z"}, "-2s true"},
		{"empty", map[string]string{TriggerTimeAnnotation: ""}, "0s false"},
		{"date only", map[string]string{TriggerTimeAnnotation: "2026-01-01"}, "0s false"},
		{"unix seconds", map[string]string{TriggerTimeAnnotation: "1767268800"}, "0s false"},
		{"no zone", map[string]string{TriggerTimeAnnotation: "2026-01-01T12:00:00"}, "0s false"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, ok := ProgrammingLatency(tc.annotations, now)
			if got := fmt.Sprintf("%v %v", d, ok); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
