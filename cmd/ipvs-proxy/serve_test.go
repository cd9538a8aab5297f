package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A server whose port another process holds (kube-proxy's health port
// during a migration) answers once the port is free; with hardFail the
// proxy stops instead; when the proxy stops, the port is let go.
func TestServeRetries(t *testing.T) {
	defer func(d time.Duration) { serveRetry = d }(serveRetry)
	serveRetry = 20 * time.Millisecond
	holder, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := holder.Addr().String()
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ours") })

	_, fail := context.WithCancelCause(t.Context())
	defer fail(nil)
	if err := serve(t.Context(), "healthz", addr, h, fail); err == nil || !strings.Contains(err.Error(), "healthz server") {
		t.Errorf("hard fail with the port held: %v, want the healthz server's error", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := serve(ctx, "healthz", addr, h, nil); err != nil {
		t.Fatalf("soft fail with the port held: %v, want nil", err)
	}
	time.Sleep(5 * serveRetry) // a few failed tries
	holder.Close()
	client := http.Client{Timeout: time.Second}
	var got string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && got != "ours"; time.Sleep(10 * time.Millisecond) {
		if resp, err := client.Get("http://" + addr + "/"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got = string(b)
		}
	}
	if got != "ours" {
		t.Fatalf("after the port was freed the server answered %q, want %q", got, "ours")
	}

	cancel()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the port is still held after the proxy stopped: %v", err)
		}
	}
}

// failingListener accepts nothing: the server on it stops at once.
type failingListener struct{ net.Listener }

func (failingListener) Accept() (net.Conn, error) { return nil, errors.New("accept failed") }

// With --bind-address-hard-fail a server that stops after it started
// stops the proxy (its context's cause), as kube-proxy's does.
func TestServeHardFailStopsLater(t *testing.T) {
	defer func(l func(string, string) (net.Listener, error)) { listen = l }(listen)
	listen = func(network, addr string) (net.Listener, error) {
		ln, err := net.Listen(network, addr)
		return failingListener{ln}, err
	}
	ctx, fail := context.WithCancelCause(t.Context())
	defer fail(nil)
	if err := serve(ctx, "metrics", "127.0.0.1:0", http.NotFoundHandler(), fail); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
		if cause := context.Cause(ctx); !errors.Is(cause, errServerFailed) || !strings.Contains(cause.Error(), "metrics server stopped") {
			t.Errorf("cause %v, want the metrics server's failure", cause)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy goes on after its hard-fail server stopped")
	}
}
