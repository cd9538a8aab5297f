package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// envInformerChild makes the bench binary the informer floor's process
// (TestInformerFloorProcess).
const envInformerChild = "BENCH_INFORMER_CHILD"

// informerSeer is the floor under every proxy's latency and CPU: a bare
// client-go informer on the bench's EndpointSlices in the same guest, on
// the same API server, in a process of its own, that notes when its
// handler sees each version of a slice. A proxy's informer cannot hear of
// a write sooner, nor decode it for less; the rest of a proxy's latency
// and CPU is its own.
type informerSeer struct {
	mu sync.Mutex
	at map[string]time.Time // name/resourceVersion → when the handler ran
}

func (s *informerSeer) seen(pd *pending) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.at[pd.slice+"/"+pd.version]
	return at, ok
}

// read takes the child's lines ("seen NAME/VERSION UNIXNANO", then
// "synced" once its cache has synced) until it exits, and closes ended
// then; synced is closed at that line. Any other line (the test
// framework's, a failure) goes to stderr.
func (s *informerSeer) read(r io.Reader, synced, ended chan<- struct{}) {
	defer close(ended)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 1 && f[0] == "synced":
			close(synced)
		case len(f) == 3 && f[0] == "seen":
			ns, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				continue
			}
			s.mu.Lock()
			s.at[f[1]] = time.Unix(0, ns)
			s.mu.Unlock()
		default:
			fmt.Fprintf(os.Stderr, "informer floor: %s\n", sc.Text())
		}
	}
}

// TestInformerFloorProcess is the informer floor's process: the bench
// binary started again by runInformerFloor, with the proxies' client
// settings (protobuf, as both proxies ask for), writing one line per
// event on stdout until its stdin closes.
func TestInformerFloorProcess(t *testing.T) {
	if os.Getenv(envInformerChild) == "" {
		t.Skip("the informer floor's process, started by the bench in the VM")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv(envAdminConfig))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	note := func(obj any) {
		sl, ok := obj.(*discovery.EndpointSlice)
		if !ok {
			return
		}
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, "seen %s/%s %d\n", sl.Name, sl.ResourceVersion, now.UnixNano())
		out.Flush() //nolint:errcheck // the parent reads until we exit
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(benchNS))
	defer func() {
		cancel() // Shutdown waits for the informers, which stop with ctx
		f.Shutdown()
	}()
	inf := f.Discovery().V1().EndpointSlices().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    note,
		UpdateFunc: func(_, obj any) { note(obj) },
	}); err != nil {
		t.Fatal(err)
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("the informer did not sync")
	}
	mu.Lock()
	fmt.Fprintln(out, "synced")
	out.Flush() //nolint:errcheck
	mu.Unlock()
	io.Copy(io.Discard, os.Stdin) //nolint:errcheck // EOF: the bench is done with us
}

// informerCommand starts the bench binary again as the informer floor's
// process, with the environment the proxies get (plan.ProxyEnv): a Go
// runtime setting such as GOGC changes a watcher's CPU and latency alike,
// and the floor must be the same program's floor.
func informerCommand(p plan) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestInformerFloorProcess$")
	cmd.Env = append(append(os.Environ(), p.ProxyEnv...), envInformerChild+"=1")
	cmd.Stderr = os.Stderr
	return cmd
}

// runInformerFloor runs the churn cases against the informer floor, with
// its process's CPU in each.
func (g *guest) runInformerFloor(n int, want table) (r Run, err error) {
	r = Run{N: n, Proxy: informerName, CapS: g.p.ChangeCap.Seconds()}
	cmd := informerCommand(g.p)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return r, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return r, err
	}
	if err := cmd.Start(); err != nil {
		return r, fmt.Errorf("start the informer floor: %w", err)
	}
	defer func() {
		stdin.Close()
		// Its cases are measured; its exit says nothing more, but it
		// must not hold up the proxies' runs.
		done := make(chan struct{})
		go func() {
			cmd.Wait() //nolint:errcheck
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill() //nolint:errcheck
			<-done
			if err == nil {
				err = fmt.Errorf("the informer floor did not exit 30 s after its stdin closed; killed")
			}
		}
	}()
	s := &informerSeer{at: map[string]time.Time{}}
	synced, ended := make(chan struct{}), make(chan struct{})
	go s.read(stdout, synced, ended)
	select {
	case <-synced:
	case <-ended:
		return r, fmt.Errorf("the informer floor exited before its cache synced")
	case <-time.After(10 * time.Minute):
		return r, fmt.Errorf("the informer floor did not sync in 10 minutes")
	}
	proc := &process{cmd: cmd}
	w := g.newWriter(n, want)
	if err := w.prefetch(context.Background()); err != nil {
		return r, err
	}
	for _, c := range churnCases(g.p, n) {
		api0, apiOK := apiSliceUpdates(g.client)
		cpu0 := readCPU(proc)
		load0, load0Err := readGuestLoad()
		// A change the floor never showed fails the run (errUnseen): the
		// floor is what every proxy is judged against.
		res, err := w.runCase(context.Background(), c, s, g.p.ChangeCap, 0)
		res.setCPU(cpu0, readCPU(proc))
		res.noteGuest(load0, load0Err)
		res.ServerS = serverMean(g.client, api0, apiOK)
		r.Cases = append(r.Cases, res)
		if err != nil {
			return r, fmt.Errorf("%s: %w", c.Name, err)
		}
	}
	return r, nil
}
