package bench

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
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

// profileCase takes a CPU profile and an execution trace of ipvs-proxy
// over a churn case, and its heap profile before and after; the returned
// function waits for them. Files, with the case's part named by
// caseFileName: cpu-N-churn-R.pprof, trace-N-churn-R.out (for `go tool
// trace`), heap-N-churn-R-{0,1}.pprof (`go tool pprof
// -sample_index=alloc_space -base` of the two is what the case
// allocated). A CPU profile shows where a steady rate of changes spends
// the proxy's CPU; the trace shows where one change's event waited
// between the socket and the sync loop (a runnable goroutine without a
// processor, a collection's assist, a parked weak-pointer read), which a
// CPU profile cannot. Go serves each for a fixed time: an open-loop case
// or the case across a resync for its own length, a closed-loop case
// (back-to-back, a rollout) for fallback seconds, which may run past its
// end. The case across a resync also shows what a periodic resync
// allocates in the VM, its kernel read included, which the host's
// benchmarks cannot.
func profileCase(dir string, n int, c churnCase, fallback int) func() {
	base := strings.TrimSuffix(metricsURL, "/metrics") + "/debug/pprof/"
	seconds := int(c.Seconds)
	if seconds < 1 {
		seconds = max(1, fallback)
	}
	name := fmt.Sprintf("%d-%s", n, caseFileName(c))
	report := func(what string, err error) {
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s profile of %s: %v\n", what, c.Name, err)
		}
	}
	report("heap", fetch(base+"heap", filepath.Join(dir, "heap-"+name+"-0.pprof"), time.Minute))
	// Both run for the same seconds, side by side.
	during := func(endpoint, file string) <-chan error {
		ch := make(chan error, 1)
		go func() {
			ch <- fetch(base+fmt.Sprintf("%s?seconds=%d", endpoint, seconds), filepath.Join(dir, file), time.Duration(seconds)*time.Second+time.Minute)
		}()
		return ch
	}
	cpu := during("profile", "cpu-"+name+".pprof")
	traced := during("trace", "trace-"+name+".out")
	own := profileSelf(filepath.Join(dir, "cpu-bench-"+name+".pprof"), time.Duration(seconds)*time.Second)
	return func() {
		report("CPU", <-cpu)
		report("execution trace", <-traced)
		report("the bench's own CPU", <-own)
		// After a collection: a heap profile's allocations are those
		// up to the last finished cycle, so without one the case's last
		// seconds (a resync's read, in the case across one) would be
		// left out. Before the case, no collection is forced: it would
		// change the heap the case starts from.
		report("heap", fetch(base+"heap?gc=1", filepath.Join(dir, "heap-"+name+"-1.pprof"), time.Minute))
	}
}

// profileSelf takes a CPU profile of the bench process itself for d: the
// writer and the seers share the guest's vCPUs with the proxy under test,
// and under heavy churn they use as much of them as the proxy does.
func profileSelf(to string, d time.Duration) <-chan error {
	ch := make(chan error, 1)
	f, err := os.Create(to)
	if err != nil {
		ch <- err
		return ch
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		ch <- err
		return ch
	}
	time.AfterFunc(d, func() {
		pprof.StopCPUProfile()
		ch <- f.Close()
	})
	return ch
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

// caseFileName is a case's part of its profiles' file names.
func caseFileName(c churnCase) string {
	switch {
	case c.Name == resyncCaseName:
		return "resync"
	case c.Rate > 0:
		return fmt.Sprintf("churn-%.0f", c.Rate)
	case c.Chains > 1:
		return "rollout"
	default:
		return "back-to-back"
	}
}
