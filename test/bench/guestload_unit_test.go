package bench

import (
	"errors"
	"testing"
)

func TestParseSchedstat(t *testing.T) {
	const domains = "domain0 03 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	for _, tc := range []struct {
		name, text string
		want       guestLoad
		err        bool
	}{{
		name: "two vCPUs: run time and run delay summed, domains and pcount left out",
		text: "version 15\ntimestamp 4295\ncpu0 0 0 900 400 500 300 1500000000 250000000 77\n" + domains +
			"cpu1 0 0 800 300 400 200 2000000000 500000000 66\n" + domains,
		want: guestLoad{busyS: 3.5, waitS: 0.75, cpus: 2},
	}, {
		name: "an older version counts in jiffies",
		text: "version 14\ntimestamp 4295\ncpu0 0 0 900 400 500 300 150 25 77\n",
		err:  true,
	}, {
		name: "no version",
		text: "cpu0 0 0 900 400 500 300 150 25 77\n",
		err:  true,
	}, {
		name: "no cpu lines",
		text: "version 15\ntimestamp 4295\n",
		err:  true,
	}, {
		name: "short line",
		text: "version 15\ncpu0 0 0 900 400 500 300 150\n",
		err:  true,
	}, {
		name: "not a number",
		text: "version 15\ncpu0 0 0 900 400 500 300 x 25 77\n",
		err:  true,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSchedstat(tc.text)
			if tc.err {
				if err == nil {
					t.Fatalf("want an error, got %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestGuestLoadInCaseCell(t *testing.T) {
	c := CaseResult{Name: "churn 200/s", Latencies: []float64{0.1, 0.2}, WallS: 10, CPUS: 5, SysS: 2,
		GuestBusyS: 15, GuestWaitS: 4, GuestCPUs: 2, BenchS: 3}
	got := caseCell(&c, 90, false)
	want := "100 ms / 200 ms / 200 ms (2 changes); CPU 50 % (system 20 %); guest: its 2 vCPUs 75 % busy, runnable tasks waited 40 % of one, the bench's own process 30 % of one"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestSetGuest: the case's figures are the difference of two readings,
// and a reading that failed leaves them out of its cell rather than a
// difference from zero.
func TestSetGuest(t *testing.T) {
	before := guestLoad{busyS: 100, waitS: 40, benchS: 7, cpus: 2}
	now := guestLoad{busyS: 115, waitS: 44, benchS: 10, cpus: 2}
	var r CaseResult
	r.setGuest(before, now, nil)
	if r.GuestBusyS != 15 || r.GuestWaitS != 4 || r.BenchS != 3 || r.GuestCPUs != 2 {
		t.Errorf("got busy %v, wait %v, bench %v, cpus %d; want 15, 4, 3, 2", r.GuestBusyS, r.GuestWaitS, r.BenchS, r.GuestCPUs)
	}
	r = CaseResult{Name: "churn 50/s"}
	r.setGuest(guestLoad{}, now, errors.New("no /proc/schedstat before the case"))
	if r.GuestCPUs != 0 || r.GuestBusyS != 0 || r.BenchS != 0 {
		t.Errorf("after a failed reading: %+v, want no guest figures", r)
	}
}
