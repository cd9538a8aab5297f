package vm

import (
	"errors"
	"os"
	"strings"
)

// StallMarker begins the text of every ErrKernelStall failure. hack/test.sh
// looks for it in a failed package's output: a package that failed on it
// is run once more, and said so.
const StallMarker = "vm: the guest kernel stalled"

// ErrKernelStall is Run's error when the guest kernel panicked on an RCU
// stall (see Config.StallTimeout). Under TCG this has been the emulator's
// doing, not the command's: it came before any step of the command that
// could have caused it.
var ErrKernelStall = errors.New(StallMarker)

// kernelStalled reports whether the console log at path ends in the panic
// that panic_on_rcu_stall raises.
func kernelStalled(path string) bool {
	data, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(data), "Kernel panic - not syncing: RCU Stall")
}
