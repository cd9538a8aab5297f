package main

import (
	"context"
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

	if err := serve(t.Context(), "healthz", addr, h, true); err == nil || !strings.Contains(err.Error(), "healthz server") {
		t.Errorf("hard fail with the port held: %v, want the healthz server's error", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := serve(ctx, "healthz", addr, h, false); err != nil {
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
