package kubeproxy

import (
	"slices"
	"testing"
)

func TestSplitAndFormatArgs(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
	}{
		{`-A INPUT -j KUBE-FIREWALL`, []string{"-A", "INPUT", "-j", "KUBE-FIREWALL"}},
		{`-A X -m comment --comment "kubernetes service portals" -j Y`, []string{"-A", "X", "-m", "comment", "--comment", "kubernetes service portals", "-j", "Y"}},
		{`-A X -m comment --comment "say \"hi\" \\ bye" -j Y`, []string{"-A", "X", "-m", "comment", "--comment", `say "hi" \ bye`, "-j", "Y"}},
		{`-A X -m comment --comment "" -j Y`, []string{"-A", "X", "-m", "comment", "--comment", "", "-j", "Y"}},
		{`-A X  ! -s 10.0.0.0/8`, []string{"-A", "X", "!", "-s", "10.0.0.0/8"}},
	} {
		got, err := splitArgs(tc.line)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("splitArgs(%s) = %q, %v; want %q", tc.line, got, err, tc.want)
			continue
		}
		if back, _ := splitArgs(formatArgs(got)); !slices.Equal(back, got) {
			t.Errorf("formatArgs(%q) = %s does not read back", got, formatArgs(got))
		}
	}
	if _, err := splitArgs(`-A X --comment "open`); err == nil {
		t.Errorf("unterminated quote read without error")
	}
}

func TestCleanIPTables(t *testing.T) {
	for _, tc := range iptablesCases {
		t.Run(tc.name, func(t *testing.T) {
			f := loadRules(t, tc.binary, tc.rules)
			f.FailOn = tc.failOn
			r := &report{}
			cleanIPTables(f, r)
			diff(t, "removed", joinLines(r.removed), joinLines(lines(tc.wantRemoved)))
			diff(t, "errors", errStrings(r.errs), joinLines(lines(tc.wantErrs)))
			diff(t, "left", f.Dump(), tc.wantDump)

			// Once clean, a second run finds nothing to do and writes nothing.
			if len(r.errs) == 0 {
				f.Writes = 0
				again := &report{}
				cleanIPTables(f, again)
				if len(again.removed)+len(again.errs) != 0 || f.Writes != 0 {
					t.Errorf("second run: removed %q, errors %v, %d writes", again.removed, again.errs, f.Writes)
				}
			}
		})
	}
}
