package model

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// TestServiceFrom prints what the compact form keeps of Services that set
// every field, read or not: the fields the model reads, whole, and nothing
// else. Every other model test builds its Services through ServiceFrom, so
// a field dropped here that the model reads fails those too.
func TestServiceFrom(t *testing.T) {
	proxyMode, vipMode := v1.LoadBalancerIPModeProxy, v1.LoadBalancerIPModeVIP
	full := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "uid-1", ResourceVersion: "7", Generation: 3,
			CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))),
			Labels:            map[string]string{"app": "web"},
			Annotations: map[string]string{SchedulerAnnotation: "sh", SchedulerFlagsAnnotation: "sh-port",
				SourceRangesAnnotation: "192.0.2.0/24", "kubectl.kubernetes.io/last-applied-configuration": `{"big":"copy"}`},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
			OwnerReferences: []metav1.OwnerReference{{Kind: "Deployment", Name: "web"}}},
		Spec: v1.ServiceSpec{
			Type: v1.ServiceTypeLoadBalancer, ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10", "fd00::10"},
			IPFamilies: []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}, IPFamilyPolicy: ptr.To(v1.IPFamilyPolicyPreferDualStack),
			Selector: map[string]string{"app": "web"},
			Ports: []v1.ServicePort{
				{Name: "http", Protocol: v1.ProtocolTCP, AppProtocol: ptr.To("http"), Port: 80, TargetPort: intstr.FromString("web"), NodePort: 30080},
				{Name: "dns", Protocol: v1.ProtocolUDP, Port: 53, NodePort: 30053},
			},
			ExternalIPs:              []string{"198.51.100.7"},
			LoadBalancerSourceRanges: []string{"203.0.113.0/24"},
			LoadBalancerIP:           "203.0.113.9",
			ExternalTrafficPolicy:    v1.ServiceExternalTrafficPolicyLocal,
			InternalTrafficPolicy:    ptr.To(v1.ServiceInternalTrafficPolicyLocal),
			HealthCheckNodePort:      32000,
			SessionAffinity:          v1.ServiceAffinityClientIP,
			SessionAffinityConfig:    &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To(int32(600))}},
			PublishNotReadyAddresses: true,
			TrafficDistribution:      ptr.To(v1.ServiceTrafficDistributionPreferSameZone),
		},
		Status: v1.ServiceStatus{
			LoadBalancer: v1.LoadBalancerStatus{Ingress: []v1.LoadBalancerIngress{
				{IP: "203.0.113.9"}, {IP: "203.0.113.10", IPMode: &proxyMode}, {IP: "203.0.113.11", IPMode: &vipMode}, {Hostname: "lb.example"}}},
			Conditions: []metav1.Condition{{Type: "Ready"}}},
	}
	for _, tc := range []struct {
		name string
		svc  *v1.Service
		want string
	}{
		{"every field set", full, "{NamespacedName:ns/web UID:uid-1 Created:2026-01-02 02:04:05 +0000 UTC Type:LoadBalancer " +
			"ClusterIP:10.96.0.10 ClusterIPs:[10.96.0.10 fd00::10] ExternalIPs:[198.51.100.7] IngressIPs:[203.0.113.9 203.0.113.11] " +
			"LoadBalancerSourceRanges:[203.0.113.0/24] ExternalTrafficPolicy:Local InternalTrafficPolicy:Local HealthCheckNodePort:32000 " +
			"ClientIPAffinity:true AffinityTimeout:600 Ports:[{Name:http Protocol:TCP Port:80 NodePort:30080} {Name:dns Protocol:UDP Port:53 NodePort:30053}] " +
			"Annotations:map[ipvs-proxy.io/scheduler:sh ipvs-proxy.io/scheduler-flags:sh-port service.beta.kubernetes.io/load-balancer-source-ranges:192.0.2.0/24]}"},
		{"single stack: clusterIPs says no more than clusterIP", &v1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "ns"},
			Spec:       v1.ServiceSpec{ClusterIP: "10.96.0.11", ClusterIPs: []string{"10.96.0.11"}, SessionAffinity: v1.ServiceAffinityNone}},
			"{NamespacedName:ns/api UID: Created:0001-01-01 00:00:00 +0000 UTC Type: ClusterIP:10.96.0.11 ClusterIPs:nil ExternalIPs:nil IngressIPs:nil " +
				"LoadBalancerSourceRanges:nil ExternalTrafficPolicy: InternalTrafficPolicy: HealthCheckNodePort:0 ClientIPAffinity:false AffinityTimeout:0 Ports:nil Annotations:nil}"},
		{"clusterIPs that disagree with clusterIP are kept", &v1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "odd", Namespace: "ns"},
			Spec:       v1.ServiceSpec{ClusterIP: "10.96.0.12", ClusterIPs: []string{"10.96.0.13"}}},
			"{NamespacedName:ns/odd UID: Created:0001-01-01 00:00:00 +0000 UTC Type: ClusterIP:10.96.0.12 ClusterIPs:[10.96.0.13] ExternalIPs:nil IngressIPs:nil " +
				"LoadBalancerSourceRanges:nil ExternalTrafficPolicy: InternalTrafficPolicy: HealthCheckNodePort:0 ClientIPAffinity:false AffinityTimeout:0 Ports:nil Annotations:nil}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := dumpService(ServiceFrom(tc.svc)); got != tc.want {
				t.Errorf("ServiceFrom:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
	if ServiceFrom(nil) != nil {
		t.Error("ServiceFrom(nil) is not nil")
	}
	// A clone shares nothing the caller could change.
	s := ServiceFrom(full)
	c := s.Clone()
	c.ClusterIPs[0], c.ExternalIPs[0], c.IngressIPs[0], c.LoadBalancerSourceRanges[0] = "x", "x", "x", "x"
	c.Ports[0].Port, c.Annotations[SchedulerAnnotation] = 1, "x"
	if got, want := dumpService(s), dumpService(ServiceFrom(full)); got != want {
		t.Errorf("changing the clone changed the original:\n%s", got)
	}
}

// dumpService prints every field as Name:value ("%+v" would print the
// String of the embedded name alone).
func dumpService(s *Service) string {
	v := reflect.ValueOf(*s)
	f := make([]string, v.NumField())
	for i := range f {
		fv := v.Field(i)
		if (fv.Kind() == reflect.Slice || fv.Kind() == reflect.Map) && fv.IsNil() {
			f[i] = v.Type().Field(i).Name + ":nil" // an empty one prints [] or map[]
			continue
		}
		f[i] = fmt.Sprintf("%s:%+v", v.Type().Field(i).Name, fv)
	}
	return "{" + strings.Join(f, " ") + "}"
}
