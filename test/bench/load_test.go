package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// The host loads Services when the guest asks for them, through two files
// in the shared work directory: the guest writes the size it wants to
// wantFile, the host answers in loadedFile with the size now loaded (or
// "error: ..."). Loading on the host is native speed; the guest's TCG
// would take minutes for 10,000 objects. Sizes grow one set: size 1,000
// adds 900 Services to size 100's, so both proxies at a size see exactly
// the same objects, and no proxy ever sees a later size's.
const (
	wantFile    = "want"
	loadedFile  = "loaded"
	resultsFile = "results.json"
	loadWorkers = 32 // concurrent creates; the admin client allows 500/s
)

type loader struct {
	client kubernetes.Interface
	work   string
	loaded int
}

// prepare creates the Node both proxies run as (there is no kubelet) and
// the namespace of the bench's Services.
func (l *loader) prepare(ctx context.Context) error {
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: benchNode},
		Status: v1.NodeStatus{Addresses: []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: kubeNodeIP}}}}
	if _, err := l.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create Node: %w", err)
	}
	ns := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: benchNS}}
	if _, err := l.client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace: %w", err)
	}
	return nil
}

// serve answers the guest's requests until ctx ends.
func (l *loader) serve(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
		data, err := os.ReadFile(filepath.Join(l.work, wantFile))
		if err != nil {
			continue // not asked yet
		}
		want, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || want <= l.loaded {
			continue // half-written, or already answered
		}
		start := time.Now()
		answer := strconv.Itoa(want)
		if err := l.load(ctx, l.loaded, want); err != nil {
			answer = "error: " + err.Error()
		} else {
			fmt.Printf("bench host: loaded Services %d..%d (× %d endpoints) in %s\n",
				l.loaded, want-1, endpoints, time.Since(start).Round(100*time.Millisecond))
			l.loaded = want
		}
		if err := writeFileAtomic(filepath.Join(l.work, loadedFile), answer); err != nil {
			return err
		}
		if strings.HasPrefix(answer, "error") {
			return errors.New(answer)
		}
	}
}

// load creates Services from..to-1, each with one EndpointSlice of 10
// ready endpoints on other nodes (a node hosts few of a cluster's pods).
func (l *loader) load(ctx context.Context, from, to int) error {
	idx := make(chan int)
	errs := make(chan error, loadWorkers)
	var wg sync.WaitGroup
	for w := 0; w < loadWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				if err := l.create(ctx, i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
feed:
	for i := from; i < to; i++ {
		select {
		case idx <- i:
		case err = <-errs:
			break feed
		}
	}
	close(idx)
	wg.Wait()
	close(errs)
	if err != nil {
		return err
	}
	return <-errs // nil when no worker failed
}

func (l *loader) create(ctx context.Context, i int) error {
	name := svcName(i)
	svc := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: benchNS},
		Spec: v1.ServiceSpec{Type: v1.ServiceTypeClusterIP, Ports: []v1.ServicePort{
			{Name: "http", Protocol: v1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	sl := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name + "-1", Namespace: benchNS, Labels: map[string]string{discovery.LabelServiceName: name}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(v1.ProtocolTCP), Port: ptr.To[int32](8080)}},
	}
	for j := 0; j < endpoints; j++ {
		sl.Endpoints = append(sl.Endpoints, discovery.Endpoint{Addresses: []string{endpointAddr(i, j)},
			NodeName: ptr.To(fmt.Sprintf("peer-%d", j)), Conditions: discovery.EndpointConditions{Ready: ptr.To(true)}})
	}
	err := retryCreate(ctx, func() error {
		_, err := l.client.CoreV1().Services(benchNS).Create(ctx, svc, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("create Service %s: %w", name, err)
	}
	err = retryCreate(ctx, func() error {
		_, err := l.client.DiscoveryV1().EndpointSlices(benchNS).Create(ctx, sl, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("create EndpointSlice %s: %w", sl.Name, err)
	}
	return nil
}

// retryCreate retries what a loaded API server answers under a burst
// (throttling, timeouts); AlreadyExists means an earlier try got through.
func retryCreate(ctx context.Context, create func() error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = create(); err == nil || apierrors.IsAlreadyExists(err) {
			return nil
		}
		if !apierrors.IsTooManyRequests(err) && !apierrors.IsServerTimeout(err) &&
			!apierrors.IsTimeout(err) && !apierrors.IsInternalError(err) && !apierrors.IsServiceUnavailable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 500 * time.Millisecond):
		}
	}
	return err
}

// writeFileAtomic writes through a rename, so the other side of the 9p
// share never reads half a file.
func writeFileAtomic(path, data string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
