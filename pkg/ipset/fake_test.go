package ipset

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestFakeScenarios(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			f := NewFake()
			got, _, err := sc.run(f)
			if err != nil {
				t.Fatal(err)
			}
			if got != sc.wantDump {
				t.Errorf("dump:\n%s\nwant:\n%s", got, sc.wantDump)
			}
			if !slices.Equal(f.Log, sc.wantLog) || f.Writes != len(sc.wantLog) {
				t.Errorf("writes %d, log:\n%s\nwant:\n%s", f.Writes, strings.Join(f.Log, "\n"), strings.Join(sc.wantLog, "\n"))
			}
		})
	}
}

// One set that the kernel refuses must not keep the others from changing.
func TestFakeFailOnOneSet(t *testing.T) {
	f := NewFake()
	boom := errors.New("boom")
	f.FailOn[keep6] = boom
	var errs []string
	for _, s := range []Set{keepSet, keep6Set, hairpinSet} {
		if err := f.Ensure(s); err != nil {
			errs = append(errs, err.Error())
		}
	}
	for _, a := range []struct{ name, e string }{{keep, "10.0.0.1,tcp:80"}, {keep6, "fd00::1,tcp:80"}, {hairpin, "10.0.0.1,tcp:80,10.0.0.1"}} {
		if err := f.Add(a.name, entry(a.e)); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if err := f.Del(keep6, entry("fd00::1,tcp:80")); !errors.Is(err, boom) {
		t.Errorf("del: %v, want boom", err)
	}
	if err := f.Destroy(keep6); !errors.Is(err, boom) {
		t.Errorf("destroy: %v, want boom", err)
	}
	want := []string{
		"create ipset IPVS-PROXY-T-KEEP6 hash:ip,port family inet6: boom",
		"add fd00::1,tcp:80 to ipset IPVS-PROXY-T-KEEP6: boom",
	}
	if !slices.Equal(errs, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(errs, "\n"), strings.Join(want, "\n"))
	}
	got, _ := f.Dump()
	wantDump := `set IPVS-PROXY-T-HAIRPIN hash:ip,port,ip family inet
  10.0.0.1,tcp:80,10.0.0.1
set IPVS-PROXY-T-KEEP hash:ip,port family inet
  10.0.0.1,tcp:80
`
	if got != wantDump {
		t.Errorf("dump:\n%s\nwant:\n%s", got, wantDump)
	}
	if f.Writes != 8 {
		t.Errorf("writes %d, want 8 (3 creates, 3 adds, a delete, a destroy)", f.Writes)
	}
}

func TestFakeDestroyInUse(t *testing.T) {
	f := NewFake()
	f.InUse = func(name string) bool { return name == keep }
	for _, s := range []Set{keepSet, hairpinSet} {
		if err := f.Ensure(s); err != nil {
			t.Fatal(err)
		}
	}
	err := f.Destroy(keep)
	if !errors.Is(err, ErrInUse) || err.Error() != "destroy ipset IPVS-PROXY-T-KEEP: set is in use by a kernel component" {
		t.Errorf("destroy of a set in use: %v", err)
	}
	for _, name := range []string{hairpin, keep6} {
		if err := f.Destroy(name); err != nil {
			t.Errorf("destroy %s: %v", name, err)
		}
	}
	if got, _ := f.Dump(); got != "set IPVS-PROXY-T-KEEP hash:ip,port family inet\n" {
		t.Errorf("dump:\n%s", got)
	}
}

// What the proxier relies on: Entries returns values equal to those added,
// usable as map keys.
func TestFakeEntriesEqualWhatWasAdded(t *testing.T) {
	f := NewFake()
	added := []Entry{entry("10.0.0.2,udp:53,10.0.0.2"), entry("10.0.0.1,tcp:80,10.0.0.1")}
	if err := f.Ensure(hairpinSet); err != nil {
		t.Fatal(err)
	}
	for _, e := range added {
		if err := f.Add(hairpin, e); err != nil {
			t.Fatal(err)
		}
	}
	got, err := f.Entries(hairpin)
	if err != nil || !slices.Equal(got, []Entry{added[1], added[0]}) {
		t.Errorf("entries %v (err %v), want %v sorted", got, err, added)
	}
}
