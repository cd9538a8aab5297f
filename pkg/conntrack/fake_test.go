package conntrack

import (
	"slices"
	"testing"
)

func newTableFake(t *testing.T) *Fake {
	t.Helper()
	entries, err := ParseEntries(table)
	if err != nil {
		t.Fatal(err)
	}
	return NewFake(entries...)
}

func TestFakeScenarios(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			f := newTableFake(t)
			n, err := f.DeleteFlows(sc.flows)
			if got := errString(err); got != sc.wantErr {
				t.Errorf("error:\n%s\nwant:\n%s", got, sc.wantErr)
			}
			if n != sc.wantDeleted {
				t.Errorf("deleted %d, want %d", n, sc.wantDeleted)
			}
			if got, want := f.String(), sc.wantDump(); got != want {
				t.Errorf("remaining:\n%s\nwant:\n%s", got, want)
			}
			// What was recorded as deleted is exactly what left the table.
			if got, want := Format(f.Deleted), gone(t, sc); got != want {
				t.Errorf("recorded deletions:\n%s\nwant:\n%s", got, want)
			}
			if len(f.Calls) != 1 || !slices.Equal(f.Calls[0], sc.flows) {
				t.Errorf("calls %v, want one with %v", f.Calls, sc.flows)
			}
		})
	}
}

func gone(t *testing.T, sc scenario) string {
	t.Helper()
	var es []Entry
	for _, g := range sc.wantGone {
		e, err := parseEntry(g)
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	return Format(es)
}

// Deleting is idempotent, and entries that arrive later are matched too:
// the proxier may retry a flow on the next sync.
func TestFakeRepeatAndAdd(t *testing.T) {
	f := newTableFake(t)
	fl := []Flow{flow("UDP", "10.96.0.10:53", "10.244.2.6:53")}
	if n, err := f.DeleteFlows(fl); n != 1 || err != nil {
		t.Fatalf("first call: %d, %v", n, err)
	}
	if n, err := f.DeleteFlows(fl); n != 0 || err != nil {
		t.Fatalf("second call: %d, %v", n, err)
	}
	late, _ := ParseEntries("udp src=10.0.0.9 dst=10.96.0.10 sport=41000 dport=53 src=10.244.2.6 dst=10.0.0.9 sport=53 dport=41000")
	f.Add(late...)
	if n, err := f.DeleteFlows(fl); n != 1 || err != nil {
		t.Fatalf("third call: %d, %v", n, err)
	}
	want := "udp src=10.0.0.2 dst=10.96.0.10 sport=40001 dport=53 src=10.244.2.6 dst=10.0.0.2 sport=53 dport=40001\n" +
		"udp src=10.0.0.9 dst=10.96.0.10 sport=41000 dport=53 src=10.244.2.6 dst=10.0.0.9 sport=53 dport=41000\n"
	if got := Format(f.Deleted); got != want {
		t.Errorf("deleted:\n%s\nwant:\n%s", got, want)
	}
	if len(f.Calls) != 3 {
		t.Errorf("%d calls recorded, want 3", len(f.Calls))
	}
}
