package healthcheck

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

// TestAnswer checks the exact bytes a load balancer reads, against
// kube-proxy v1.37's answers.
func TestAnswer(t *testing.T) {
	cases := []struct {
		name     string
		svc      types.NamespacedName
		count    int
		healthy  bool
		method   string
		path     string
		wantCode int
		wantBody string
	}{{
		name: "local endpoints and a healthy proxy: 200",
		svc:  svcA, count: 2, healthy: true, method: "GET", path: "/",
		wantCode: 200,
		wantBody: "{\n\t\"service\": {\n\t\t\"namespace\": \"default\",\n\t\t\"name\": \"web\"\n\t},\n\t\"localEndpoints\": 2,\n\t\"serviceProxyHealthy\": true\n}",
	}, {
		name: "no local endpoint: 503",
		svc:  svcA, count: 0, healthy: true, method: "GET", path: "/healthz",
		wantCode: 503,
		wantBody: "{\n\t\"service\": {\n\t\t\"namespace\": \"default\",\n\t\t\"name\": \"web\"\n\t},\n\t\"localEndpoints\": 0,\n\t\"serviceProxyHealthy\": true\n}",
	}, {
		name: "endpoints but the proxy is not syncing: 503",
		svc:  svcB, count: 3, healthy: false, method: "GET", path: "/any/path?x=1",
		wantCode: 503,
		wantBody: "{\n\t\"service\": {\n\t\t\"namespace\": \"shop\",\n\t\t\"name\": \"cart\"\n\t},\n\t\"localEndpoints\": 3,\n\t\"serviceProxyHealthy\": false\n}",
	}, {
		name: "any method",
		svc:  svcB, count: 1, healthy: true, method: "POST", path: "/",
		wantCode: 200,
		wantBody: "{\n\t\"service\": {\n\t\t\"namespace\": \"shop\",\n\t\t\"name\": \"cart\"\n\t},\n\t\"localEndpoints\": 1,\n\t\"serviceProxyHealthy\": true\n}",
	}, {
		name: "names are quoted as in kube-proxy",
		svc:  types.NamespacedName{Namespace: `a"b`, Name: "c\\d"}, count: 1, healthy: true, method: "GET", path: "/",
		wantCode: 200,
		wantBody: "{\n\t\"service\": {\n\t\t\"namespace\": \"a\\\"b\",\n\t\t\"name\": \"c\\\\d\"\n\t},\n\t\"localEndpoints\": 1,\n\t\"serviceProxyHealthy\": true\n}",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Config{ProxyHealthy: func() bool { return tc.healthy }})
			inst := &instance{port: 30000, service: tc.svc, eps: Endpoints{Count: [2]int{tc.count}}}
			s.ports[inst.port] = inst

			rec := httptest.NewRecorder()
			handler{s: s, inst: inst}.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			resp := rec.Result()
			body, _ := io.ReadAll(resp.Body)

			if resp.StatusCode != tc.wantCode {
				t.Errorf("code %d, want %d", resp.StatusCode, tc.wantCode)
			}
			if string(body) != tc.wantBody {
				t.Errorf("body:\n%s\nwant:\n%s", body, tc.wantBody)
			}
			wantHeaders := http.Header{
				"Content-Type":                     {"application/json"},
				"X-Content-Type-Options":           {"nosniff"},
				"X-Load-Balancing-Endpoint-Weight": {strconv.Itoa(tc.count)},
			}
			for k, v := range wantHeaders {
				if got := resp.Header.Values(k); len(got) != 1 || got[0] != v[0] {
					t.Errorf("header %s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestAnswerWhileClosing: a handler still running for a port that was
// just closed must not say "healthy".
func TestAnswerWhileClosing(t *testing.T) {
	s := New(Config{})
	inst := &instance{port: 30000, service: svcA, eps: Endpoints{Count: [2]int{2, 2}}}
	// Not in s.ports: closed.
	rec := httptest.NewRecorder()
	handler{s: s, inst: inst}.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("code %d, want 503", rec.Code)
	}
	want := "{\n\t\"service\": {\n\t\t\"namespace\": \"default\",\n\t\t\"name\": \"web\"\n\t},\n\t\"localEndpoints\": 0,\n\t\"serviceProxyHealthy\": true\n}"
	if rec.Body.String() != want {
		t.Errorf("body:\n%s\nwant:\n%s", rec.Body, want)
	}
}
