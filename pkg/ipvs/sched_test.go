package ipvs

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSchedFlags(t *testing.T) {
	for _, tc := range []struct {
		sched, names string
		flags        uint32
		err          string
	}{
		{"sh", "sh-fallback,sh-port", 0x18, ""},
		{"sh", " sh-port ", 0x10, ""},
		{"mh", "mh-fallback", 0x08, ""},
		{"mh", "mh-port,mh-fallback", 0x18, ""},
		{"sh", "mh-port", 0, `unknown flag "mh-port" for scheduler sh (want sh-fallback, sh-port)`},
		{"sh", "sh-port,", 0, `unknown flag "" for scheduler sh (want sh-fallback, sh-port)`},
		{"rr", "sh-port", 0, `scheduler "rr" has no flags (only sh and mh do)`},
	} {
		flags, err := ParseSchedFlags(tc.sched, strings.Split(tc.names, ","))
		if flags != tc.flags || fmt.Sprint(err) != tc.err && !(err == nil && tc.err == "") {
			t.Errorf("ParseSchedFlags(%s, %q) = %#x, %v; want %#x, %s", tc.sched, tc.names, flags, err, tc.flags, tc.err)
		}
		if err == nil {
			if back := strings.Join(SchedFlagNames(tc.sched, flags), ","); back != strings.Join(canonical(tc.names), ",") {
				t.Errorf("SchedFlagNames(%s, %#x) = %s", tc.sched, flags, back)
			}
		}
	}
	if got := strings.Join(SchedFlagNames("dh", SchedFlag1|SchedFlag3), ","); got != "flag-1,flag-3" {
		t.Errorf("SchedFlagNames(dh) = %s, want ipvsadm's flag-1,flag-3", got)
	}
}

// canonical is names in flag order, as SchedFlagNames gives them.
func canonical(names string) []string {
	var out []string
	for _, n := range []string{"sh-fallback", "sh-port", "mh-fallback", "mh-port"} {
		if strings.Contains(names, n) {
			out = append(out, n)
		}
	}
	return out
}

func TestFormatSchedFlags(t *testing.T) {
	vs := VirtualServer{Service: Service{ServiceKey: ServiceKey{Addr: netip.MustParseAddr("10.96.0.10"), Proto: TCP, Port: 80},
		Scheduler: "sh", SchedFlags: SchedFlag1 | SchedFlag2, Persistent: true, Timeout: 60}}
	want := "TCP  10.96.0.10:80 sh (sh-fallback,sh-port) persistent 60\n"
	if got := Format([]VirtualServer{vs}, nil, false); !strings.HasSuffix(got, want) {
		t.Errorf("Format:\n%s\nwant the line %q", got, want)
	}
	other := vs.Service
	other.SchedFlags = SchedFlag1
	if vs.SameSettings(other) {
		t.Error("SameSettings ignores the scheduler's flags: a changed flag would never be written")
	}
}

func TestSchedulerAvailable(t *testing.T) {
	root := t.TempDir()
	const kernel = "6.1.0-28-amd64"
	write := func(path, body string) {
		t.Helper()
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("sys/module/ip_vs_rr/refcnt", "1\n")
	write("lib/modules/"+kernel+"/modules.dep", "kernel/net/netfilter/ipvs/ip_vs.ko: kernel/net/netfilter/nf_conntrack.ko\n"+
		"kernel/net/netfilter/ipvs/ip_vs_wlc.ko: kernel/net/netfilter/ipvs/ip_vs.ko\n"+
		"kernel/net/netfilter/ipvs/ip_vs_mh.ko.xz: kernel/net/netfilter/ipvs/ip_vs.ko\n")
	write("lib/modules/"+kernel+"/modules.builtin", "kernel/net/netfilter/ipvs/ip_vs_sh.ko\n")
	for _, tc := range []struct{ name, err string }{
		{"rr", ""},  // loaded
		{"wlc", ""}, // loadable
		{"mh", ""},  // loadable, compressed
		{"sh", ""},  // built in
		{"twos", "IPVS scheduler twos is not available: no ip_vs_twos in /sys/module, nor in " + root + "/lib/modules/" + kernel + "/modules.builtin or modules.dep"},
		{"fast", "unknown IPVS scheduler \"fast\" (want one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos)"},
	} {
		err := SchedulerAvailable(root, kernel, tc.name)
		if got := fmt.Sprint(err); tc.err == "" && err != nil || tc.err != "" && got != tc.err {
			t.Errorf("SchedulerAvailable(%s) = %v, want %q", tc.name, err, tc.err)
		}
		if errors.Is(err, ErrSchedulerUnknown) {
			t.Errorf("SchedulerAvailable(%s) cannot tell, with the module lists there: %v", tc.name, err)
		}
	}
	// Without /lib/modules (a container that does not mount it) it cannot
	// tell, unless the module is loaded.
	if err := SchedulerAvailable(root, "5.10.0-other", "wlc"); !errors.Is(err, ErrSchedulerUnknown) {
		t.Errorf("without module lists: %v, want ErrSchedulerUnknown", err)
	}
	if err := SchedulerAvailable(root, "5.10.0-other", "rr"); err != nil {
		t.Errorf("a loaded module without module lists: %v", err)
	}
}
