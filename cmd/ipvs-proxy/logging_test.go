package main

import (
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
)

// TestLoggingFeatureGates: the logging gates, as flags or in the file,
// reach the logging configuration's validation on the command's own path
// (--write-config-to exits after logging is applied), as in kube-proxy.
func TestLoggingFeatureGates(t *testing.T) {
	gateFile := filepath.Join(t.TempDir(), "gate.conf")
	if err := os.WriteFile(gateFile, []byte(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
featureGates:
  LoggingAlphaOptions: true
logging:
  options:
    text:
      infoBufferSize: 1Ki
      splitStream: true
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"the gate and an alpha option as flags", []string{"--feature-gates=LoggingAlphaOptions=true", "--log-text-split-stream"}, 0},
		{"the gate and alpha options in the file", []string{"--config=" + gateFile}, 0},
		{"an alpha option without the gate", []string{"--log-text-split-stream"}, 2},
		{"the flag's gates win over the file's", []string{"--config=" + gateFile, "--feature-gates=LoggingAlphaOptions=false"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Logging is applied once per process; let each run apply it.
			if err := logsapi.ResetForTest(nil); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = logsapi.ResetForTest(nil) })
			out := filepath.Join(t.TempDir(), "written.conf")
			if got := run(append(tc.args, "--hostname-override=node-1", "--write-config-to="+out)); got != tc.want {
				t.Errorf("exit code %d, want %d", got, tc.want)
			}
		})
	}
}

// TestDebugFlags: under --profiling, PUT /debug/flags/v sets klog's
// verbosity, as kube-proxy's metrics server does; without it the path is
// not found, rather than answered with the metrics.
func TestDebugFlags(t *testing.T) {
	var klogFlags flag.FlagSet
	klog.InitFlags(&klogFlags)
	v := klogFlags.Lookup("v")
	defer func(old string) { _ = v.Value.Set(old) }(v.Value.String())
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "metrics") })
	for _, tc := range []struct {
		name       string
		profiling  bool
		method     string
		path, body string
		wantCode   int
		wantV      string // klog's -v after the request
	}{
		{"PUT sets the verbosity", true, http.MethodPut, "/debug/flags/v", "5", http.StatusOK, "5"},
		{"a bad value is refused", true, http.MethodPut, "/debug/flags/v", "loud", http.StatusBadRequest, "0"},
		{"only PUT", true, http.MethodGet, "/debug/flags/v", "", http.StatusNotAcceptable, "0"},
		{"the flags' index", true, http.MethodGet, "/debug/flags/", "", http.StatusOK, "0"},
		{"pprof", true, http.MethodGet, "/debug/pprof/", "", http.StatusOK, "0"},
		{"the metrics beside them", true, http.MethodGet, "/metrics", "", http.StatusOK, "0"},
		{"no flags without profiling", false, http.MethodPut, "/debug/flags/v", "5", http.StatusNotFound, "0"},
		{"no pprof without profiling", false, http.MethodGet, "/debug/pprof/", "", http.StatusNotFound, "0"},
		{"the metrics without profiling", false, http.MethodGet, "/metrics", "", http.StatusOK, "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := v.Value.Set("0"); err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(withDebug(metrics, tc.profiling))
			defer srv.Close()
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantCode {
				t.Errorf("%s %s: %d %q, want %d", tc.method, tc.path, resp.StatusCode, body, tc.wantCode)
			}
			if isMetrics := string(body) == "metrics"; isMetrics != (tc.path == "/metrics") {
				t.Errorf("%s %s answered %q", tc.method, tc.path, body)
			}
			if got := v.Value.String(); got != tc.wantV {
				t.Errorf("klog -v = %s, want %s", got, tc.wantV)
			}
		})
	}
}
