package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"k8s.io/klog/v2"
)

// serveRetry is how long a server that cannot listen, or that stopped,
// waits before it tries again: kube-proxy's 5 s.
var serveRetry = 5 * time.Second

// listen opens a server's socket; tests replace it.
var listen = net.Listen

// errServerFailed is the cause a server gives hardFail.
var errServerFailed = errors.New("HTTP server failed")

// serve runs an HTTP server until ctx ends. With hardFail set
// (--bind-address-hard-fail), a server that cannot listen is an error that
// stops the proxy, and one that fails later calls hardFail, as kube-proxy
// stops then. Without it, as in kube-proxy, the proxy goes on and the
// server tries again every serveRetry until it can listen: while kube-proxy
// still holds the health port during a migration, say, ipvs-proxy's server
// takes the port over as soon as it is free, instead of never answering.
func serve(ctx context.Context, name, addr string, h http.Handler, hardFail context.CancelCauseFunc) error {
	if addr == "" {
		return nil
	}
	ln, err := listen("tcp", addr)
	if err != nil && hardFail != nil {
		return fmt.Errorf("%w: %s server: %w", errServerFailed, name, err)
	}
	go func() {
		for {
			if err != nil {
				klog.ErrorS(err, "HTTP server cannot listen; trying again", "server", name, "address", addr, "in", serveRetry)
			} else {
				err = serveOn(ctx, ln, addr, h)
				if ctx.Err() != nil {
					return
				}
				if hardFail != nil {
					hardFail(fmt.Errorf("%w: %s server stopped: %w", errServerFailed, name, err))
					return
				}
				klog.ErrorS(err, "HTTP server stopped; starting it again", "server", name, "address", addr, "in", serveRetry)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(serveRetry):
			}
			ln, err = listen("tcp", addr)
		}
	}()
	return nil
}

// serveOn serves on ln until ctx ends (then shuts the server down and
// returns nil) or the server fails.
func serveOn(ctx context.Context, ln net.Listener, addr string, h http.Handler) error {
	srv := newHTTPServer(addr, h)
	stop := context.AfterFunc(ctx, func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	})
	defer stop()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newHTTPServer bounds every phase of a connection, so that slow or idle
// clients cannot pile up connections on the health and metrics ports; the
// write bound leaves room for a 30 s CPU profile under --profiling.
func newHTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 60 * time.Second}
}
