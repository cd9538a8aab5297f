package e2e

import (
	"github.com/ipvs-proxy/ipvs-proxy/internal/testobj"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
)

// sampleServices covers what the model can ask of the kernel: dual-stack
// clusterIPs, a NodePort, an externalIP, a LoadBalancer IP, persistence,
// UDP, SCTP and each scheduler.
func sampleServices() []model.ServiceInput {
	web := sampleWeb("10.244.0.2", "10.244.0.3")
	dns := model.ServiceInput{
		Service: model.ServiceFrom(svc("dns", []string{"10.96.0.10", "fd00:10:96::a"}, func(s *v1.Service) {
			s.Spec.Ports = []v1.ServicePort{{Name: "dns", Protocol: v1.ProtocolUDP, Port: 53}, {Name: "dns-tcp", Protocol: v1.ProtocolTCP, Port: 53}}
			s.Annotations = map[string]string{model.SchedulerAnnotation: "sh"}
		})),
		Slices: model.Slices(
			slice("dns", discovery.AddressTypeIPv4, []discovery.EndpointPort{port("dns", v1.ProtocolUDP, 5353), port("dns-tcp", v1.ProtocolTCP, 5353)}, "10.244.0.5", "10.244.0.6"),
			slice("dns", discovery.AddressTypeIPv6, []discovery.EndpointPort{port("dns", v1.ProtocolUDP, 5353), port("dns-tcp", v1.ProtocolTCP, 5353)}, "fd00:244::5"),
		),
	}
	sticky := model.ServiceInput{
		Service: model.ServiceFrom(svc("sticky", []string{"10.96.0.30"}, func(s *v1.Service) {
			s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](600)}}
			s.Spec.ExternalIPs = []string{"203.0.113.30"}
			s.Annotations = map[string]string{model.SchedulerAnnotation: "lc"}
		})),
		Slices: model.Slices(slice("sticky", discovery.AddressTypeIPv4, []discovery.EndpointPort{port("http", v1.ProtocolTCP, 8080)}, "10.244.0.7")),
	}
	lb := model.ServiceInput{
		Service: model.ServiceFrom(svc("lb", []string{"10.96.0.40"}, func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			s.Spec.Ports[0].NodePort = 30040
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
			s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "198.51.100.40"}}
			s.Annotations = map[string]string{model.SchedulerAnnotation: "wrr"}
		})),
		Slices: model.Slices(slice("lb", discovery.AddressTypeIPv4, []discovery.EndpointPort{port("http", v1.ProtocolTCP, 8080)}, "10.244.0.8")),
	}
	sig := model.ServiceInput{
		Service: model.ServiceFrom(svc("sig", []string{"10.96.0.50"}, func(s *v1.Service) {
			s.Spec.Ports = []v1.ServicePort{{Name: "sig", Protocol: v1.ProtocolSCTP, Port: 9000}}
			s.Annotations = map[string]string{model.SchedulerAnnotation: "mh"}
		})),
		Slices: model.Slices(slice("sig", discovery.AddressTypeIPv4, []discovery.EndpointPort{port("sig", v1.ProtocolSCTP, 9999)}, "10.244.0.9")),
	}
	return []model.ServiceInput{web, dns, sticky, lb, sig}
}

func sampleWeb(addrs ...string) model.ServiceInput {
	return model.ServiceInput{
		Service: model.ServiceFrom(svc("web", []string{"10.96.0.20"}, func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = 30020
		})),
		Slices: model.Slices(slice("web", discovery.AddressTypeIPv4, []discovery.EndpointPort{port("http", v1.ProtocolTCP, 8080)}, addrs...)),
	}
}

func svc(name string, ips []string, mutate ...func(*v1.Service)) *v1.Service {
	return testobj.Service("demo", name, ips, mutate...)
}

func slice(svc string, fam discovery.AddressType, ports []discovery.EndpointPort, addrs ...string) *discovery.EndpointSlice {
	return testobj.Slice("demo", svc+"-"+string(fam), svc, fam, ports, testobj.On("vm", addrs...)...)
}

var port = testobj.Port
