package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	discovery "k8s.io/api/discovery/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// informerSeer is the floor under every proxy's latency: a bare client-go
// informer on the bench's EndpointSlices in the same guest, on the same
// API server, that notes when its handler sees each version of a slice. A
// proxy's informer cannot hear of a write sooner; the rest of a proxy's
// latency is its own.
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

func (s *informerSeer) note(obj any) {
	sl, ok := obj.(*discovery.EndpointSlice)
	if !ok {
		return
	}
	now := time.Now()
	s.mu.Lock()
	s.at[sl.Name+"/"+sl.ResourceVersion] = now
	s.mu.Unlock()
}

// runInformerFloor runs the churn cases against the informer floor.
func (g *guest) runInformerFloor(n int, want table) (Run, error) {
	r := Run{N: n, Proxy: informerName, CapS: g.p.ChangeCap.Seconds()}
	ctx, cancel := context.WithCancel(context.Background())
	s := &informerSeer{at: map[string]time.Time{}}
	f := informers.NewSharedInformerFactoryWithOptions(g.client, 0, informers.WithNamespace(benchNS))
	defer func() {
		cancel()
		f.Shutdown()
	}()
	inf := f.Discovery().V1().EndpointSlices().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    s.note,
		UpdateFunc: func(_, obj any) { s.note(obj) },
	}); err != nil {
		return r, err
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return r, fmt.Errorf("the informer did not sync")
	}
	w := g.newWriter(n, want)
	for _, c := range churnCases(g.p, n) {
		res, err := w.runCase(ctx, c, s, g.p.ChangeCap, 0)
		r.Cases = append(r.Cases, res)
		if err != nil {
			return r, fmt.Errorf("%s: %w", c.Name, err)
		}
	}
	return r, nil
}
