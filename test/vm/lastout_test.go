package vm

import (
	"strings"
	"testing"
	"time"
)

func TestLastOutput(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		writes []string // one a second from t0
		want   string   // describe at t0 + 1m
	}{
		{"nothing", nil, "the guest printed no line"},
		{"only a partial line", []string{"=== RUN   TestGuestNode"}, "the guest printed no line"},
		{"lines in one write", []string{"a\nb\n"}, "the guest's last line, 1m0s before the end: b"},
		{"a line split over writes", []string{"containerd ", "up in 5.3s\n", "imported"},
			"the guest's last line, 59s before the end: containerd up in 5.3s"},
		{"blank lines do not count", []string{"step 1\n", "\n  \n"}, "the guest's last line, 1m0s before the end: step 1"},
		{"a line longer than kept keeps its end", []string{strings.Repeat("x", maxLine), "tail\n"},
			"the guest's last line, 59s before the end: " + strings.Repeat("x", maxLine-4) + "tail"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var passed strings.Builder
			now := t0
			o := newLastOutput(&passed, func() time.Time { return now })
			for i, w := range tc.writes {
				now = t0.Add(time.Duration(i) * time.Second)
				if n, err := o.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if got := o.describe(t0.Add(time.Minute)); got != tc.want {
				t.Errorf("describe:\n got %s\nwant %s", got, tc.want)
			}
			if got, want := passed.String(), strings.Join(tc.writes, ""); got != want {
				t.Errorf("passed on %q, want %q", got, want)
			}
		})
	}
}
