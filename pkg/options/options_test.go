package options

import (
	"os"
	"strings"
	"testing"
)

func TestDefaults(t *testing.T) {
	o, stage, err := parse()
	if err != nil {
		t.Fatalf("%s: %v", stage, err)
	}
	want := `ConfigFile = 
Kubeconfig = 
Master = 
HostnameOverride = 
Scheduler = rr
SyncPeriod = 30s
MinSyncPeriod = 0s
SyncCPUShare = 0.5
StrictARP = false
ExcludeCIDRs = []
TCPTimeout = 0s
TCPFinTimeout = 0s
UDPTimeout = 0s
NodePortAddresses = []
NodePortPrimary = false
ClusterCIDRs = []
DetectLocal = ClusterCIDR  
MasqueradeAll = false
HealthzBindAddress = 0.0.0.0:10256
MetricsBindAddress = 127.0.0.1:10249
StateFile = 
GracefulTerminationTimeout = 1m0s
MaxVirtualServersPerService = 1000
ServiceCIDRs = []
ProxyMode = 
FeatureGates = map[]
AllowExternalIPs = true
KubeAPIQPS = 0
KubeAPIBurst = 0
BindAddress = 
BindAddressHardFail = false
OOMScoreAdj = -999
Conntrack = {MaxPerCore:32768 Min:131072 TCPEstablishedTimeout:24h0m0s TCPCloseWaitTimeout:1h0m0s TCPBeLiberal:false UDPTimeout:0s UDPStreamTimeout:0s}
LogVerbosity = 0
Warnings = 
`
	diff(t, "defaults", want, dump(o))
}

func TestGoodFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string // dump lines that differ from the defaults
	}{
		{"kube-proxy names",
			[]string{"--kubeconfig=/k", "--master=https://10.0.0.1:6443", "--hostname-override=Node-A",
				"--ipvs-scheduler=wrr", "--ipvs-sync-period=1m", "--ipvs-min-sync-period=2s", "--ipvs-strict-arp",
				"--ipvs-tcp-timeout=15m", "--ipvs-tcpfin-timeout=2m", "--ipvs-udp-timeout=5m", "--masquerade-all",
				"--state-file=/var/lib/x", "--graceful-termination-timeout=0s"},
			[]string{"Kubeconfig = /k", "Master = https://10.0.0.1:6443", "HostnameOverride = Node-A",
				"Scheduler = wrr", "SyncPeriod = 1m0s", "MinSyncPeriod = 2s", "StrictARP = true",
				"TCPTimeout = 15m0s", "TCPFinTimeout = 2m0s", "UDPTimeout = 5m0s", "MasqueradeAll = true",
				"StateFile = /var/lib/x", "GracefulTerminationTimeout = 0s"}},
		{"detect-local by interface name prefix",
			[]string{"--detect-local-mode=InterfaceNamePrefix", "--pod-interface-name-prefix=veth"},
			[]string{"DetectLocal = InterfaceNamePrefix  veth"}},
		{"tenant limits",
			[]string{"--max-virtual-servers-per-service=50", "--service-cluster-ip-range=10.96.0.7/12,fd00:10:96::/108"},
			[]string{"MaxVirtualServersPerService = 50", "ServiceCIDRs = [10.96.0.0/12,fd00:10:96::/108]"}},
		{"CIDRs are masked, dual-stack",
			[]string{"--cluster-cidr=10.244.1.7/16, fd00:10:244::1/56"},
			[]string{"ClusterCIDRs = [10.244.0.0/16,fd00:10:244::/56]"}},
		{"repeated list flags append",
			[]string{"--ipvs-exclude-cidrs=10.1.0.0/16", "--ipvs-exclude-cidrs=10.2.0.0/16,10.3.0.0/16"},
			[]string{"ExcludeCIDRs = [10.1.0.0/16,10.2.0.0/16,10.3.0.0/16]"}},
		{"nodeport keywords all and localhost",
			[]string{"--nodeport-addresses=192.0.2.0/24,all,localhost"},
			[]string{"NodePortAddresses = [192.0.2.0/24,0.0.0.0/0,::/0,127.0.0.0/8,::1/128]"}},
		{"nodeport keyword primary",
			[]string{"--nodeport-addresses=primary,fd00::/64"},
			[]string{"NodePortAddresses = [fd00::/64]", "NodePortPrimary = true"}},
		{"empty scheduler is rr, as in kube-proxy",
			[]string{"--ipvs-scheduler="},
			nil},
		{"bind address without port gets the default port",
			[]string{"--healthz-bind-address=10.0.0.1", "--metrics-bind-address=::"},
			[]string{"HealthzBindAddress = 10.0.0.1:10256", "MetricsBindAddress = [::]:10249"}},
		{"empty bind address is the default",
			[]string{"--healthz-bind-address=", "--metrics-bind-address=[::1]:9999"},
			[]string{"MetricsBindAddress = [::1]:9999"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, stage, err := parse(tc.args...)
			if err != nil {
				t.Fatalf("%s: %v", stage, err)
			}
			diff(t, "options", defaultsDump(t, tc.want...), dump(o))
		})
	}
}

func TestBadFlags(t *testing.T) {
	const dns1123 = `not a valid Node name: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`
	for _, tc := range []struct {
		args  []string
		stage string
		want  string
	}{
		{[]string{"--ipvs-scheduler=fast"}, "validate",
			`invalid --ipvs-scheduler "fast": unknown IPVS scheduler "fast" (want one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos)`},
		{[]string{"--ipvs-sync-period=0"}, "validate",
			`invalid --ipvs-sync-period "0s": must be greater than 0`},
		{[]string{"--ipvs-min-sync-period=-1s"}, "validate",
			`invalid --ipvs-min-sync-period "-1s": must not be negative (0 syncs each change at once)`},
		{[]string{"--sync-cpu-share=0"}, "validate",
			`invalid --sync-cpu-share "0": want a share of one CPU, greater than 0 and at most 1 (1 turns the bound off)`},
		{[]string{"--sync-cpu-share=1.5"}, "validate",
			`invalid --sync-cpu-share "1.5": want a share of one CPU, greater than 0 and at most 1 (1 turns the bound off)`},
		{[]string{"--ipvs-min-sync-period=1m", "--ipvs-sync-period=30s"}, "validate",
			`invalid --ipvs-min-sync-period "1m0s": must not be greater than --ipvs-sync-period (30s)`},
		{[]string{"--ipvs-tcp-timeout=-1s", "--ipvs-tcpfin-timeout=-2s", "--ipvs-udp-timeout=-3s"}, "validate",
			`invalid --ipvs-tcp-timeout "-1s": must not be negative (0 leaves the kernel's value)
invalid --ipvs-tcpfin-timeout "-2s": must not be negative (0 leaves the kernel's value)
invalid --ipvs-udp-timeout "-3s": must not be negative (0 leaves the kernel's value)`},
		{[]string{"--ipvs-exclude-cidrs=10.0.0.0/33,10.1.0.0/16,bogus"}, "validate",
			`invalid --ipvs-exclude-cidrs "10.0.0.0/33": not a CIDR (want e.g. 10.96.0.0/12 or fd00::/108)
invalid --ipvs-exclude-cidrs "bogus": not a CIDR (want e.g. 10.96.0.0/12 or fd00::/108)`},
		{[]string{"--nodeport-addresses=10.0.0.1"}, "validate",
			`invalid --nodeport-addresses "10.0.0.1": not a CIDR (want e.g. 10.96.0.0/12 or fd00::/108)`},
		{[]string{"--cluster-cidr=all"}, "validate",
			`invalid --cluster-cidr "all": not a CIDR (want e.g. 10.96.0.0/12 or fd00::/108)`},
		{[]string{"--cluster-cidr=10.0.0.0/8,10.1.0.0/16"}, "validate",
			`invalid --cluster-cidr "10.0.0.0/8,10.1.0.0/16": want one CIDR, or one IPv4 and one IPv6 CIDR for dual-stack`},
		{[]string{"--healthz-bind-address=localhost:10256"}, "validate",
			`invalid --healthz-bind-address "localhost:10256": host "localhost" is not an IP address`},
		{[]string{"--metrics-bind-address=0.0.0.0:99999"}, "validate",
			`invalid --metrics-bind-address "0.0.0.0:99999": port "99999" is not a number from 1 to 65535`},
		{[]string{"--metrics-bind-address=[::1]"}, "validate",
			`invalid --metrics-bind-address "[::1]": want IP:port, e.g. 0.0.0.0:10256 or [::]:10256`},
		{[]string{"--hostname-override=node_1"}, "validate",
			`invalid --hostname-override "node_1": ` + dns1123},
		{[]string{"--detect-local-mode=BridgeInterface"}, "validate",
			`invalid --pod-bridge-interface "": must be set with detect-local-mode BridgeInterface`},
		{[]string{"--detect-local-mode=Magic"}, "validate",
			`invalid --detect-local-mode "Magic": want ClusterCIDR, NodeCIDR, BridgeInterface or InterfaceNamePrefix`},
		{[]string{"--max-virtual-servers-per-service=-1"}, "validate",
			`invalid --max-virtual-servers-per-service -1: must not be negative (0 means no cap)`},
		{[]string{"--service-cluster-ip-range=10.96.0.0/12,nonsense"}, "validate",
			`invalid --service-cluster-ip-range "nonsense": not a CIDR (want e.g. 10.96.0.0/12 or fd00::/108)`},
		{[]string{"--graceful-termination-timeout=-5s"}, "validate",
			`invalid --graceful-termination-timeout "-5s": must not be negative (0 deletes at once)`},
		{[]string{"--ipvs-sync-period=soon"}, "parse",
			`invalid argument "soon" for "--ipvs-sync-period" flag: must be a duration like "30s" or "5m"`},
		{[]string{"--proxy-mode=iptables"}, "validate",
			`invalid --proxy-mode "iptables": ipvs-proxy programs IPVS only: want "ipvs" or empty`},
		{[]string{"--scheduler=sh"}, "parse",
			`unknown flag: --scheduler`},
		// Every bad value at once, in a fixed order.
		{[]string{"--cluster-cidr=x", "--ipvs-scheduler=fast", "--ipvs-sync-period=-1s", "--ipvs-exclude-cidrs=y"}, "validate",
			`invalid --ipvs-scheduler "fast": unknown IPVS scheduler "fast" (want one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos)
invalid --ipvs-sync-period "-1s": must be greater than 0
invalid --ipvs-exclude-cidrs "y": not a CIDR (want e.g. 10.96.0.0/12 or fd00::/108)
invalid --cluster-cidr "x": not a CIDR (want e.g. 10.96.0.0/12 or fd00::/108)`},
		// A later use of the flag does not forget an earlier bad item.
		{[]string{"--cluster-cidr=x", "--cluster-cidr=10.0.0.0/8"}, "validate",
			`invalid --cluster-cidr "x": not a CIDR (want e.g. 10.96.0.0/12 or fd00::/108)`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, stage, err := parse(tc.args...)
			if err == nil {
				t.Fatalf("no error, want %s error:\n%s", tc.stage, tc.want)
			}
			if stage != tc.stage {
				t.Errorf("failed in %s, want %s", stage, tc.stage)
			}
			diff(t, "error", tc.want, err.Error())
		})
	}
}

func TestNodeName(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skipf("no host name: %v", err)
	}
	for _, tc := range []struct{ override, want string }{
		{"Node-A.Example.COM", "node-a.example.com"},
		{" worker-1 ", "worker-1"},
		{"", strings.ToLower(host)},
	} {
		o := NewOptions()
		o.HostnameOverride = tc.override
		got, err := o.NodeName()
		if err != nil || got != tc.want {
			t.Errorf("NodeName() with override %q = %q, %v; want %q", tc.override, got, err, tc.want)
		}
	}
}
