package vm

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"time"
)

// lastOutput passes the guest's output on and remembers its last line and
// when it came. A run that times out then says where the guest went quiet:
// a guest test stuck in one step for many minutes and a guest that never
// started look alike from the host otherwise.
type lastOutput struct {
	w       io.Writer
	now     func() time.Time
	mu      sync.Mutex
	partial []byte // the line being written, until its newline
	line    string // the last whole non-empty line
	at      time.Time
}

// maxLine is as much of one line as lastOutput keeps.
const maxLine = 4096

func newLastOutput(w io.Writer, now func() time.Time) *lastOutput {
	return &lastOutput{w: w, now: now}
}

func (o *lastOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	o.partial = append(o.partial, p...)
	for {
		i := bytes.IndexByte(o.partial, '\n')
		if i < 0 {
			break
		}
		if l := bytes.TrimSpace(o.partial[:i]); len(l) > 0 {
			o.line, o.at = string(l[max(0, len(l)-maxLine):]), o.now()
		}
		o.partial = o.partial[i+1:]
	}
	if len(o.partial) > maxLine {
		// Output without newlines: keep the end of it, not all of it.
		o.partial = append(o.partial[:0], o.partial[len(o.partial)-maxLine:]...)
	}
	o.mu.Unlock()
	return o.w.Write(p)
}

// describe says what the guest last printed and how long before end.
func (o *lastOutput) describe(end time.Time) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.line == "" {
		return "the guest printed no line"
	}
	return fmt.Sprintf("the guest's last line, %s before the end: %s", end.Sub(o.at).Round(time.Second), o.line)
}
