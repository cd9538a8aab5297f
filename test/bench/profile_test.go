package bench

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// profileColdStart asks ipvs-proxy's pprof for a CPU profile of the first
// seconds of its cold start, from as soon as its metrics server answers,
// and returns the function to call at convergence: it takes a heap
// profile (after a collection, so that in-use is what is live) and waits for the CPU profile to end (Go serves one at a time,
// for a fixed time). Both land in dir as cpu-N.pprof and heap-N.pprof.
func profileColdStart(t *testing.T, dir string, n int, seconds int) func() {
	limit := time.Duration(seconds) * time.Second
	base := strings.TrimSuffix(metricsURL, "/metrics") + "/debug/pprof/"
	done := make(chan struct{})
	go func() {
		defer close(done)
		deadline := time.Now().Add(30 * time.Second)
		for {
			err := fetch(base+fmt.Sprintf("profile?seconds=%d", seconds), filepath.Join(dir, fmt.Sprintf("cpu-%d.pprof", n)), limit+time.Minute)
			if err == nil || time.Now().After(deadline) {
				if err != nil {
					t.Logf("CPU profile: %v", err)
				}
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return func() {
		if err := fetch(base+"heap?gc=1", filepath.Join(dir, fmt.Sprintf("heap-%d.pprof", n)), time.Minute); err != nil {
			t.Logf("heap profile: %v", err)
		}
		<-done
	}
}

// profileCase takes a CPU profile of ipvs-proxy over an open-loop churn
// case (cpu-N-churn-R.pprof), to show where a steady rate of changes
// spends the proxy's CPU, and its heap profile before and after
// (heap-N-churn-R-{0,1}.pprof: `go tool pprof -sample_index=alloc_space
// -base` of the two is what the case allocated); the returned function
// waits for them. The case across a resync is profiled too (cpu-N-resync,
// heap-N-resync-{0,1}): what a periodic resync allocates in the VM, its
// kernel read included, which the host's benchmarks cannot show; it also
// gets an execution trace (trace-N-resync.out, for `go tool trace`).
func profileCase(dir string, n int, c churnCase) func() {
	base := strings.TrimSuffix(metricsURL, "/metrics") + "/debug/pprof/"
	seconds := max(1, int(c.Seconds))
	name := fmt.Sprintf("%d-churn-%.0f", n, c.Rate)
	if c.Name == resyncCaseName {
		name = fmt.Sprintf("%d-resync", n)
	}
	report := func(what string, err error) {
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s profile of %s: %v\n", what, c.Name, err)
		}
	}
	report("heap", fetch(base+"heap", filepath.Join(dir, "heap-"+name+"-0.pprof"), time.Minute))
	done := make(chan error, 1)
	go func() {
		done <- fetch(base+fmt.Sprintf("profile?seconds=%d", seconds), filepath.Join(dir, "cpu-"+name+".pprof"), time.Duration(seconds)*time.Second+time.Minute)
	}()
	// The case across a resync also gets an execution trace: where a
	// change's event waits between the socket and the sync loop while the
	// resync runs (a runnable goroutine without a processor, a
	// collection's assist, or nothing in the process at all) is what a
	// CPU profile cannot show.
	traced := make(chan error, 1)
	if c.Name == resyncCaseName {
		go func() {
			traced <- fetch(base+fmt.Sprintf("trace?seconds=%d", seconds), filepath.Join(dir, "trace-"+name+".out"), time.Duration(seconds)*time.Second+time.Minute)
		}()
	} else {
		traced <- nil
	}
	return func() {
		report("CPU", <-done)
		report("execution trace", <-traced)
		// After a collection: a heap profile's allocations are those
		// up to the last finished cycle, so without one the case's last
		// seconds (a resync's read, in the case across one) would be
		// left out. Before the case, no collection is forced: it would
		// change the heap the case starts from.
		report("heap", fetch(base+"heap?gc=1", filepath.Join(dir, "heap-"+name+"-1.pprof"), time.Minute))
	}
}

func fetch(url, to string, timeout time.Duration) error {
	c := http.Client{Timeout: timeout}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s: %s", url, resp.Status, body)
	}
	f, err := os.Create(to)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}
