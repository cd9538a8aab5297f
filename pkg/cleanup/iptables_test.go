package cleanup

import "testing"

func TestCleanIPTables(t *testing.T) {
	for _, tc := range iptablesCases {
		t.Run(tc.name, func(t *testing.T) {
			f := loadRules(t, tc.binary, tc.rules)
			failOn(f, tc.failOn)
			r := &report{}
			cleanIPTables(f, r)
			diff(t, "removed", joinLines(r.removed), joinLines(lines(tc.wantRemoved)))
			diff(t, "errors", errStrings(r.errs), joinLines(lines(tc.wantErrs)))
			diff(t, "left", saved(f), tc.wantDump)

			// Once clean, a second run finds nothing to do and writes nothing.
			if len(r.errs) == 0 {
				before := len(f.Log())
				again := &report{}
				cleanIPTables(f, again)
				if writes := len(f.Log()) - before; len(again.removed)+len(again.errs) != 0 || writes != 0 {
					t.Errorf("second run: removed %q, errors %v, %d writes", again.removed, again.errs, writes)
				}
			}
		})
	}
}
