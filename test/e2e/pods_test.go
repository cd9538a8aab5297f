package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// podServer is one pod's server process on its own port, which the test
// can stop the way a pod's process exits: listeners and every open
// connection close at once. (serve's servers on 8080 live as long as the
// VM.)
type podServer struct {
	mu    sync.Mutex
	ln    net.Listener
	pc    net.PacketConn
	conns map[net.Conn]bool
	done  bool
}

// startPod answers like serve: "<pod> <client address>" per line, and
// "<pod> <client address> <datagram>" per datagram.
func startPod(t *testing.T, pod string, port int) *podServer {
	t.Helper()
	s := &podServer{conns: map[net.Conn]bool{}}
	err := inNetns(pod, func() error {
		var err error
		if s.ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port)); err != nil {
			return err
		}
		s.pc, err = net.ListenPacket("udp", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		t.Fatalf("start %s:%d: %v", pod, port, err)
	}
	go func() {
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			if !s.track(c) {
				c.Close()
				return
			}
			go func() {
				defer s.untrack(c)
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					fmt.Fprintf(c, "%s %s\n", pod, c.RemoteAddr())
				}
			}()
		}
	}()
	go func() {
		buf := make([]byte, 512)
		for {
			n, addr, err := s.pc.ReadFrom(buf)
			if err != nil {
				return
			}
			// The datagram's own text goes back too: a client numbering
			// its datagrams sees which were lost.
			s.pc.WriteTo([]byte(fmt.Sprintf("%s %s %s\n", pod, addr, strings.TrimSpace(string(buf[:n])))), addr) //nolint:errcheck
		}
	}()
	t.Cleanup(s.Stop)
	return s
}

func (s *podServer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return false
	}
	s.conns[c] = true
	return true
}

func (s *podServer) untrack(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	c.Close()
}

// Stop is the pod's process exiting.
func (s *podServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	s.done = true
	s.ln.Close()
	s.pc.Close()
	for c := range s.conns {
		c.Close()
	}
}

// podState is an endpoint as the EndpointSlice controller writes it.
type podState struct {
	pod         string
	node        string // default: this node
	terminating bool   // still serving, no longer ready
}

// slice writes the Service's IPv4 slice with these endpoints on
// targetPort, with their conditions.
func (w *world) slice(s *v1.Service, targetPort int32, eps ...podState) {
	w.t.Helper()
	sl := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: w.ns, Name: s.Name + "-ipv4", Labels: map[string]string{discovery.LabelServiceName: s.Name}},
		AddressType: discovery.AddressTypeIPv4,
	}
	for _, p := range s.Spec.Ports {
		sl.Ports = append(sl.Ports, discovery.EndpointPort{Name: ptr.To(p.Name), Protocol: ptr.To(p.Protocol), Port: ptr.To(targetPort)})
	}
	for _, e := range eps {
		node := e.node
		if node == "" {
			node = nodeName
		}
		sl.Endpoints = append(sl.Endpoints, discovery.Endpoint{
			Addresses: []string{fmt.Sprintf("10.244.0.%d", pods[e.pod])}, NodeName: ptr.To(node),
			Conditions: discovery.EndpointConditions{Ready: ptr.To(!e.terminating), Serving: ptr.To(true), Terminating: ptr.To(e.terminating)},
		})
	}
	ctx := context.Background()
	_, err := w.client.DiscoveryV1().EndpointSlices(w.ns).Update(ctx, sl, metav1.UpdateOptions{})
	if err != nil {
		_, err = w.client.DiscoveryV1().EndpointSlices(w.ns).Create(ctx, sl, metav1.CreateOptions{})
	}
	if err != nil {
		w.t.Fatalf("write EndpointSlice %s: %v", sl.Name, err)
	}
}

// rsOn is a real server line on another target port than rs's 8080.
func rsOn(pod string, port, weight int) string {
	return fmt.Sprintf("10.244.0.%d:%d Masq %d", pods[pod], port, weight)
}

func podOf(line string) string { p, _, _ := strings.Cut(strings.TrimSpace(line), " "); return p }
