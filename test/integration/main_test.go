package integration

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"k8s.io/klog/v2"
)

// daemonLog keeps every line klog writes in this process: the daemons,
// their informers and their Event broadcasters all log through klog, and a
// request the API refused shows nowhere else (see proxy.forbidden).
var daemonLog logCapture

func TestMain(m *testing.M) {
	// Lines still go to stderr (alsologtostderr), once each (one_output),
	// and to daemonLog instead of klog's default log files.
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	for _, kv := range [][2]string{{"logtostderr", "false"}, {"alsologtostderr", "true"}, {"one_output", "true"}} {
		if err := fs.Set(kv[0], kv[1]); err != nil {
			fmt.Fprintf(os.Stderr, "klog flag %s: %v\n", kv[0], err)
			os.Exit(2)
		}
	}
	klog.SetOutput(&daemonLog)
	os.Exit(m.Run())
}

type logCapture struct {
	mu    sync.Mutex
	lines []string
	part  string // a line not yet ended
}

func (c *logCapture) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	text := c.part + string(b)
	lines := strings.Split(text, "\n")
	c.part = lines[len(lines)-1]
	c.lines = append(c.lines, lines[:len(lines)-1]...)
	return len(b), nil
}

// mark is the number of lines so far, for since.
func (c *logCapture) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.lines)
}

func (c *logCapture) since(mark int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines[mark:]...)
}
