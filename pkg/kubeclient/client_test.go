package kubeclient

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/streaming"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	restwatch "k8s.io/client-go/rest/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// request is what the fake API server saw of one request.
type request struct {
	method, path         string
	query                url.Values
	accept, ctype, agent string
	body                 []byte
}

// apiServer is an httptest server that records every request and answers
// with reply, which writes the response.
type apiServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen []request
}

func newAPIServer(t *testing.T, reply func(w http.ResponseWriter, r *http.Request, body []byte)) *apiServer {
	t.Helper()
	s := &apiServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.seen = append(s.seen, request{method: r.Method, path: r.URL.Path, query: r.URL.Query(),
			accept: r.Header.Get("Accept"), ctype: r.Header.Get("Content-Type"), agent: r.UserAgent(), body: body})
		s.mu.Unlock()
		reply(w, r, body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *apiServer) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.seen...)
}

func (s *apiServer) client(t *testing.T) *Client {
	t.Helper()
	c, err := New(&rest.Config{Host: s.URL, UserAgent: "ipvs-proxy-test", QPS: 50, Burst: 100})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var protobufInfo, _ = runtime.SerializerInfoForMediaType(Codecs.SupportedMediaTypes(), runtime.ContentTypeProtobuf)

// writeProtobuf answers with obj in protobuf, as the API server would.
func writeProtobuf(t *testing.T, w http.ResponseWriter, status int, obj runtime.Object, gv schema.GroupVersion) {
	b, err := runtime.Encode(Codecs.EncoderForVersion(protobufInfo.Serializer, gv), obj)
	if err != nil {
		t.Error(err)
		return
	}
	w.Header().Set("Content-Type", runtime.ContentTypeProtobuf)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func checkProtobufAccepted(t *testing.T, r request) {
	t.Helper()
	if want := "application/vnd.kubernetes.protobuf,application/json"; r.accept != want {
		t.Errorf("%s %s: Accept %q, want %q", r.method, r.path, r.accept, want)
	}
	if r.agent != "ipvs-proxy-test" {
		t.Errorf("%s %s: User-Agent %q, want the configured one", r.method, r.path, r.agent)
	}
}

func TestList(t *testing.T) {
	s := newAPIServer(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		switch r.URL.Path {
		case "/api/v1/services":
			writeProtobuf(t, w, http.StatusOK, &corev1.ServiceList{Items: []corev1.Service{
				{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}}}}, corev1.SchemeGroupVersion)
		case "/apis/discovery.k8s.io/v1/endpointslices":
			writeProtobuf(t, w, http.StatusOK, &discoveryv1.EndpointSliceList{Items: []discoveryv1.EndpointSlice{
				{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-1"}, AddressType: discoveryv1.AddressTypeIPv4}}}, discoveryv1.SchemeGroupVersion)
		default:
			http.NotFound(w, r)
		}
	})
	c := s.client(t)
	opts := metav1.ListOptions{LabelSelector: "!a"}
	svcs := &corev1.ServiceList{}
	if err := c.List(t.Context(), "services", opts, svcs); err != nil {
		t.Fatal(err)
	}
	slices := &discoveryv1.EndpointSliceList{}
	if err := c.List(t.Context(), "endpointslices", opts, slices); err != nil {
		t.Fatal(err)
	}
	if len(svcs.Items) != 1 || svcs.Items[0].Name != "web" || len(slices.Items) != 1 || slices.Items[0].Name != "web-1" {
		t.Errorf("listed %+v and %+v", svcs.Items, slices.Items)
	}
	for _, r := range s.requests() {
		checkProtobufAccepted(t, r)
		if got := r.query.Get("labelSelector"); got != "!a" {
			t.Errorf("%s: labelSelector %q, want !a", r.path, got)
		}
	}
}

// An informer on ListWatch fills its cache with one watch-list stream,
// client-go's default, not a list then a watch: the stream costs the API
// server and the proxy less memory on a cold start.
func TestListWatchStreamsWatchList(t *testing.T) {
	s := newAPIServer(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if r.URL.Path != "/api/v1/services" || r.URL.Query().Get("watch") != "true" {
			http.Error(w, "want a watch of Services", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", runtime.ContentTypeProtobuf+";stream=watch")
		w.WriteHeader(http.StatusOK)
		enc := restwatch.NewEncoder(
			streaming.NewEncoder(protobufInfo.StreamSerializer.Framer.NewFrameWriter(w), protobufInfo.StreamSerializer.Serializer),
			Codecs.EncoderForVersion(protobufInfo.Serializer, corev1.SchemeGroupVersion))
		events := []watch.Event{
			{Type: watch.Added, Object: &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", ResourceVersion: "4"}}},
			{Type: watch.Bookmark, Object: &corev1.Service{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "5",
				Annotations: map[string]string{metav1.InitialEventsAnnotationKey: "true"}}}},
		}
		for _, e := range events {
			if err := enc.Encode(&e); err != nil {
				t.Error(err)
				return
			}
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	c := s.client(t)
	inf := cache.NewSharedIndexInformer(c.ListWatch("services", func(o *metav1.ListOptions) { o.LabelSelector = "!a" }),
		&corev1.Service{}, 0, cache.Indexers{})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	go inf.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatalf("informer did not sync; requests: %+v", s.requests())
	}
	if keys := inf.GetStore().ListKeys(); len(keys) != 1 || keys[0] != "ns/web" {
		t.Errorf("cached %v, want ns/web", keys)
	}
	reqs := s.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want one watch-list stream: %+v", len(reqs), reqs)
	}
	r := reqs[0]
	checkProtobufAccepted(t, r)
	if r.query.Get("sendInitialEvents") != "true" || r.query.Get("labelSelector") != "!a" {
		t.Errorf("query %v, want a watch-list (sendInitialEvents=true) with the tweaked selector", r.query)
	}
}

// Events go to their own namespace in protobuf, and the recorder finds the
// kind of a Service in Scheme.
func TestEventSink(t *testing.T) {
	posted := make(chan *corev1.Event, 1)
	s := newAPIServer(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		ev := &corev1.Event{}
		if r.Method == http.MethodPost || r.Method == http.MethodPut {
			if err := runtime.DecodeInto(Codecs.UniversalDecoder(), body, ev); err != nil {
				t.Errorf("%s %s: %v", r.Method, r.URL.Path, err)
			}
		}
		if r.Method == http.MethodPost {
			posted <- ev
		}
		ev.Namespace, ev.Name = "ns", "web.1"
		writeProtobuf(t, w, http.StatusCreated, ev, corev1.SchemeGroupVersion)
	})
	c := s.client(t)
	b := record.NewBroadcaster(record.WithContext(t.Context()))
	b.StartRecordingToSink(c.EventSink())
	defer b.Shutdown()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "u1"}}
	b.NewRecorder(Scheme, corev1.EventSource{Component: "ipvs-proxy", Host: "node-a"}).
		Event(svc, corev1.EventTypeWarning, "IPVSProxySkipped", "bad endpoint")
	select {
	case ev := <-posted:
		got := []string{ev.InvolvedObject.APIVersion, string(ev.InvolvedObject.Kind), ev.InvolvedObject.Namespace,
			ev.InvolvedObject.Name, ev.Type, ev.Reason, ev.Message, ev.Source.Component, ev.Source.Host}
		want := []string{"v1", "Service", "ns", "web", "Warning", "IPVSProxySkipped", "bad endpoint", "ipvs-proxy", "node-a"}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("Event %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no Event posted")
	}

	sink := c.EventSink()
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web.1"}}
	if _, err := sink.Update(ev); err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Patch(ev, []byte(`{"count":2}`)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range s.requests() {
		checkProtobufAccepted(t, r)
		got = append(got, r.method+" "+r.path+" "+r.ctype)
	}
	want := []string{
		"POST /api/v1/namespaces/ns/events application/vnd.kubernetes.protobuf",
		"PUT /api/v1/namespaces/ns/events/web.1 application/vnd.kubernetes.protobuf",
		"PATCH /api/v1/namespaces/ns/events/web.1 application/strategic-merge-patch+json",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
