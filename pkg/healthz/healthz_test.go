package healthz

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"
)

const syncPeriod = 30 * time.Second // so the timeout is 60s

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// event is a call on the Server at a time after epoch.
type event struct {
	at time.Duration
	do func(*Server)
}

func queued(at time.Duration) event  { return event{at, (*Server).QueuedUpdate} }
func updated(at time.Duration) event { return event{at, (*Server).Updated} }

// node states as the daemon reports them.
const (
	unseen   = "unseen" // SetNodeEligible never called
	eligible = "eligible"
	deleting = "deleting"
)

func setNode(s *Server, node string) {
	switch node {
	case eligible:
		s.SetNodeEligible(true, "")
	case deleting:
		s.SetNodeEligible(false, "node is being deleted")
	}
}

func TestHealth(t *testing.T) {
	cases := []struct {
		name   string
		events []event
		now    time.Duration
		node   string
		// want is "code body" for /healthz, then for /livez.
		wantHealthz, wantLivez string
	}{{
		name:        "fresh: healthy, but /healthz waits for the Node",
		now:         time.Minute,
		node:        unseen,
		wantHealthz: `503 {"lastUpdated":"0001-01-01T00:00:00Z","currentTime":"2026-01-01T00:01:00Z","nodeEligible":false,"healthy":true}`,
		wantLivez:   `200 {"lastUpdated":"2026-01-01T00:01:00Z","currentTime":"2026-01-01T00:01:00Z","healthy":true}`,
	}, {
		name:        "starting up: a change queued before the first Updated does not count",
		events:      []event{queued(0)},
		now:         time.Hour,
		node:        eligible,
		wantHealthz: `200 {"lastUpdated":"2026-01-01T01:00:00Z","currentTime":"2026-01-01T01:00:00Z","nodeEligible":true,"healthy":true}`,
		wantLivez:   `200 {"lastUpdated":"2026-01-01T01:00:00Z","currentTime":"2026-01-01T01:00:00Z","healthy":true}`,
	}, {
		name:        "idle: a sync long ago and nothing pending is healthy",
		events:      []event{updated(0)},
		now:         24 * time.Hour,
		node:        eligible,
		wantHealthz: `200 {"lastUpdated":"2026-01-02T00:00:00Z","currentTime":"2026-01-02T00:00:00Z","nodeEligible":true,"healthy":true}`,
		wantLivez:   `200 {"lastUpdated":"2026-01-02T00:00:00Z","currentTime":"2026-01-02T00:00:00Z","healthy":true}`,
	}, {
		name:        "pending just under twice the sync period",
		events:      []event{updated(0), queued(10 * time.Second)},
		now:         70*time.Second - time.Millisecond,
		node:        eligible,
		wantHealthz: `200 {"lastUpdated":"2026-01-01T00:01:09.999Z","currentTime":"2026-01-01T00:01:09.999Z","nodeEligible":true,"healthy":true}`,
		wantLivez:   `200 {"lastUpdated":"2026-01-01T00:01:09.999Z","currentTime":"2026-01-01T00:01:09.999Z","healthy":true}`,
	}, {
		name:        "pending for exactly twice the sync period is stale",
		events:      []event{updated(0), queued(10 * time.Second)},
		now:         70 * time.Second,
		node:        eligible,
		wantHealthz: `503 {"lastUpdated":"2026-01-01T00:00:00Z","currentTime":"2026-01-01T00:01:10Z","nodeEligible":true,"healthy":false}`,
		wantLivez:   `503 {"lastUpdated":"2026-01-01T00:00:00Z","currentTime":"2026-01-01T00:01:10Z","healthy":false}`,
	}, {
		name:        "only the oldest pending change counts",
		events:      []event{updated(0), queued(10 * time.Second), queued(65 * time.Second)},
		now:         70 * time.Second,
		node:        eligible,
		wantHealthz: `503 {"lastUpdated":"2026-01-01T00:00:00Z","currentTime":"2026-01-01T00:01:10Z","nodeEligible":true,"healthy":false}`,
		wantLivez:   `503 {"lastUpdated":"2026-01-01T00:00:00Z","currentTime":"2026-01-01T00:01:10Z","healthy":false}`,
	}, {
		name:        "a sync clears what was pending",
		events:      []event{updated(0), queued(10 * time.Second), updated(20 * time.Second)},
		now:         time.Hour,
		node:        eligible,
		wantHealthz: `200 {"lastUpdated":"2026-01-01T01:00:00Z","currentTime":"2026-01-01T01:00:00Z","nodeEligible":true,"healthy":true}`,
		wantLivez:   `200 {"lastUpdated":"2026-01-01T01:00:00Z","currentTime":"2026-01-01T01:00:00Z","healthy":true}`,
	}, {
		name:        "after a sync the clock restarts at the next queued change",
		events:      []event{updated(0), queued(10 * time.Second), updated(20 * time.Second), queued(30 * time.Second)},
		now:         90 * time.Second,
		node:        eligible,
		wantHealthz: `503 {"lastUpdated":"2026-01-01T00:00:20Z","currentTime":"2026-01-01T00:01:30Z","nodeEligible":true,"healthy":false}`,
		wantLivez:   `503 {"lastUpdated":"2026-01-01T00:00:20Z","currentTime":"2026-01-01T00:01:30Z","healthy":false}`,
	}, {
		name:        "node being deleted: /healthz fails, /livez does not",
		events:      []event{updated(0)},
		now:         time.Minute,
		node:        deleting,
		wantHealthz: `503 {"lastUpdated":"2026-01-01T00:00:00Z","currentTime":"2026-01-01T00:01:00Z","nodeEligible":false,"healthy":true}`,
		wantLivez:   `200 {"lastUpdated":"2026-01-01T00:01:00Z","currentTime":"2026-01-01T00:01:00Z","healthy":true}`,
	}, {
		name:        "node being deleted and stale",
		events:      []event{updated(0), queued(0)},
		now:         time.Minute,
		node:        deleting,
		wantHealthz: `503 {"lastUpdated":"2026-01-01T00:00:00Z","currentTime":"2026-01-01T00:01:00Z","nodeEligible":false,"healthy":false}`,
		wantLivez:   `503 {"lastUpdated":"2026-01-01T00:00:00Z","currentTime":"2026-01-01T00:01:00Z","healthy":false}`,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := testingclock.NewFakePassiveClock(epoch)
			s := New(clk, syncPeriod)
			setNode(s, tc.node)
			for _, e := range tc.events {
				clk.SetTime(epoch.Add(e.at))
				e.do(s)
			}
			clk.SetTime(epoch.Add(tc.now))
			h := s.Handler()
			if got := get(t, h, "/healthz"); got != tc.wantHealthz {
				t.Errorf("/healthz\n got: %s\nwant: %s", got, tc.wantHealthz)
			}
			if got := get(t, h, "/livez"); got != tc.wantLivez {
				t.Errorf("/livez\n got: %s\nwant: %s", got, tc.wantLivez)
			}
		})
	}
}

// get returns "code body" and checks the headers every answer carries.
func get(t *testing.T, h http.Handler, path string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if got := rec.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("%s: Content-Type %q", path, got)
	}
	if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options %q", path, got)
	}
	return fmt.Sprintf("%d %s", rec.Code, strings.TrimSpace(rec.Body.String()))
}

func TestNodeEligibilityChanges(t *testing.T) {
	clk := testingclock.NewFakePassiveClock(epoch)
	s := New(clk, syncPeriod)
	s.Updated()
	h := s.Handler()
	var codes []string
	for _, n := range []string{unseen, eligible, deleting, eligible} {
		setNode(s, n)
		codes = append(codes, strings.Fields(get(t, h, "/healthz"))[0])
	}
	if got, want := strings.Join(codes, " "), "503 200 503 200"; got != want {
		t.Errorf("codes as the node goes unseen, eligible, deleting, eligible:\n got: %s\nwant: %s", got, want)
	}
}

func TestOnServeAndOtherPaths(t *testing.T) {
	clk := testingclock.NewFakePassiveClock(epoch)
	s := New(clk, syncPeriod)
	var served []string
	s.OnServe(func(path string, code int) { served = append(served, fmt.Sprintf("%s %d", path, code)) })
	h := s.Handler()
	get(t, h, "/healthz")
	get(t, h, "/livez")

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("/metrics: code %d, want 404", rec.Code)
	}
	if want := []string{"/healthz 503", "/livez 200"}; !slices.Equal(served, want) {
		t.Errorf("OnServe saw %q, want %q", served, want)
	}
}

// With the node's families named, the answers carry kube-proxy's
// per-family status (each family's last sync and health), from the first
// Updated on; before it, none, as kube-proxy's proxiers have none yet.
func TestFamilyStatus(t *testing.T) {
	clk := testingclock.NewFakePassiveClock(epoch)
	s := New(clk, syncPeriod)
	s.SetFamilies([]string{"IPv4", "IPv6"})
	setNode(s, eligible)
	h := s.Handler()
	if got, want := get(t, h, "/livez"), `200 {"lastUpdated":"2026-01-01T00:00:00Z","currentTime":"2026-01-01T00:00:00Z","healthy":true}`; got != want {
		t.Errorf("before the first sync:\n got: %s\nwant: %s", got, want)
	}
	s.Updated()
	clk.SetTime(epoch.Add(10 * time.Second))
	s.QueuedUpdate()
	clk.SetTime(epoch.Add(time.Minute))
	if got, want := get(t, h, "/healthz"), `200 {"lastUpdated":"2026-01-01T00:01:00Z","currentTime":"2026-01-01T00:01:00Z","nodeEligible":true,"healthy":true,`+
		`"status":{"IPv4":{"lastUpdated":"2026-01-01T00:00:00Z","healthy":true},"IPv6":{"lastUpdated":"2026-01-01T00:00:00Z","healthy":true}}}`; got != want {
		t.Errorf("healthy:\n got: %s\nwant: %s", got, want)
	}
	clk.SetTime(epoch.Add(70 * time.Second))
	if got, want := get(t, h, "/livez"), `503 {"lastUpdated":"2026-01-01T00:00:00Z","currentTime":"2026-01-01T00:01:10Z","healthy":false,`+
		`"status":{"IPv4":{"lastUpdated":"2026-01-01T00:00:00Z","healthy":false},"IPv6":{"lastUpdated":"2026-01-01T00:00:00Z","healthy":false}}}`; got != want {
		t.Errorf("stale:\n got: %s\nwant: %s", got, want)
	}
}
