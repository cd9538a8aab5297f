package node

import (
	"os"
	"path/filepath"
	"testing"
)

// TestTestLines: what a failed node run repeats of the guest's output
// keeps the tests' own lines and a timeout's panic, not the rest.
func TestTestLines(t *testing.T) {
	guest := `=== RUN   TestGuestNode
    guest_test.go:40: containerd up in 5.4s
time="2026-12-03T16:37:01Z" level=info msg="importing"
    guest_test.go:40: imported pause.oci.tar in 1.1s
panic: test timed out after 20s
	running tests:
		TestGuestNode (20s)

goroutine 7 [running]:
os/exec.(*Cmd).Wait(0x22ed27e92820)
	/usr/local/go/src/os/exec/exec.go:930 +0x45
	/work/main/test/node/kubelet_test.go:168 +0xf6
	/work/main/test/node/kubelet_test.go:100 +0x185
`
	path := filepath.Join(t.TempDir(), "guest.log")
	if err := os.WriteFile(path, []byte(guest), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		n    int
		want string
	}{
		{10, `    guest_test.go:40: containerd up in 5.4s
    guest_test.go:40: imported pause.oci.tar in 1.1s
panic: test timed out after 20s
	running tests:
	/work/main/test/node/kubelet_test.go:168 +0xf6
	/work/main/test/node/kubelet_test.go:100 +0x185`},
		{2, `	/work/main/test/node/kubelet_test.go:168 +0xf6
	/work/main/test/node/kubelet_test.go:100 +0x185`},
	} {
		if got := testLines(path, tc.n); got != tc.want {
			t.Errorf("testLines(%d):\n%s\nwant:\n%s", tc.n, got, tc.want)
		}
	}
	if got, want := testLines(filepath.Join(t.TempDir(), "none"), 5), "open "; len(got) < len(want) || got[:len(want)] != want {
		t.Errorf("testLines of a missing file = %q, want its error", got)
	}
}
