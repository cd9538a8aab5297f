package cleanup

import "errors"

// The cases of TestCleanIPTables, also used by TestRunOnNode: rule sets as
// iptables-save prints them, and exactly what cleaning them must leave.

// A user chain and a rule of another program that jump into kube-proxy's
// chains, so the kernel refuses to delete the one still referenced.
const foreignJumpsIn = `
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SERVICES - [0:0]
:MY-PORTALS - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A PREROUTING -j MY-PORTALS
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ
-A MY-PORTALS -d 10.96.0.0/12 -j KUBE-SERVICES
COMMIT
`

// IPVS mode of about v1.22: LoadBalancerSourceRanges in a nat KUBE-FIREWALL
// that jumps to KUBE-MARK-DROP, while filter KUBE-FIREWALL is kubelet's.
const olderIPVSMode = `
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-LOAD-BALANCER - [0:0]
:KUBE-MARK-DROP - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SERVICES - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-FIREWALL -m comment --comment "Kubernetes service load balancer ip + port + source cidr for packet filter purpose" -m set --match-set KUBE-LOAD-BALANCER-SOURCE-CIDR dst,dst,src -j RETURN
-A KUBE-FIREWALL -j KUBE-MARK-DROP
-A KUBE-LOAD-BALANCER -m comment --comment "Kubernetes service load balancer ip + port for load balancer with sourceRange" -m set --match-set KUBE-LOAD-BALANCER-FW dst,dst -j KUBE-FIREWALL
-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ
-A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -m mark --mark 0x4000/0x4000 -j MASQUERADE
-A KUBE-SERVICES -m comment --comment "Kubernetes service lb portal" -m set --match-set KUBE-LOAD-BALANCER dst,dst -j KUBE-LOAD-BALANCER
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-FORWARD - [0:0]
-A INPUT -j KUBE-FIREWALL
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A OUTPUT -j KUBE-FIREWALL
-A KUBE-FIREWALL -m comment --comment "kubernetes firewall for dropping marked packets" -m mark --mark 0x8000/0x8000 -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
COMMIT
`

const emptyMangle = `*mangle
:PREROUTING ACCEPT
:INPUT ACCEPT
:FORWARD ACCEPT
:OUTPUT ACCEPT
:POSTROUTING ACCEPT
COMMIT
`

const kubeletMangle = `*mangle
:PREROUTING ACCEPT
:INPUT ACCEPT
:FORWARD ACCEPT
:OUTPUT ACCEPT
:POSTROUTING ACCEPT
:KUBE-IPTABLES-HINT -
:KUBE-KUBELET-CANARY -
COMMIT
`

var iptablesCases = []struct {
	name   string
	binary string
	rules  string           // "file:NAME" or iptables-save text
	failOn map[string]error // FakeIPTables.FailOn
	// wantRemoved and wantErrs are the report lines; wantDump is what is
	// left, which must be exactly what is not kube-proxy's.
	wantRemoved, wantErrs, wantDump string
}{
	{
		name:   "IPVS mode, IPv4",
		binary: "iptables",
		rules:  "file:kube-proxy-ipvs.rules",
		wantRemoved: `
iptables nat: delete rule -A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
iptables nat: delete rule -A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
iptables nat: delete rule -A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
iptables nat: delete chain KUBE-LOAD-BALANCER
iptables nat: delete chain KUBE-MARK-MASQ
iptables nat: delete chain KUBE-NODE-PORT
iptables nat: delete chain KUBE-POSTROUTING
iptables nat: delete chain KUBE-SERVICES
iptables filter: delete rule -A INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER
iptables filter: delete rule -A INPUT -m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL
iptables filter: delete rule -A INPUT -m comment --comment "kubernetes health check rules" -j KUBE-NODE-PORT
iptables filter: delete rule -A FORWARD -m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL
iptables filter: delete rule -A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
iptables filter: delete rule -A OUTPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-OUT-FILTER
iptables filter: delete chain KUBE-FORWARD
iptables filter: delete chain KUBE-IPVS-FILTER
iptables filter: delete chain KUBE-IPVS-OUT-FILTER
iptables filter: delete chain KUBE-NODE-PORT
iptables filter: delete chain KUBE-PROXY-FIREWALL
iptables filter: delete chain KUBE-SOURCE-RANGES-FIREWALL
`,
		wantDump: `*nat
:PREROUTING ACCEPT
:INPUT ACCEPT
:OUTPUT ACCEPT
:POSTROUTING ACCEPT
:DOCKER -
:KUBE-KUBELET-CANARY -
:KUBE-MARK-DROP -
:KUBE-SVC-MYAPP -
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A PREROUTING -d 192.168.1.10/32 -p tcp -m tcp --dport 8443 -j KUBE-SVC-MYAPP
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
-A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000
-A KUBE-SVC-MYAPP -p tcp -j DNAT --to-destination 192.168.1.20:8443
COMMIT
*filter
:INPUT ACCEPT
:FORWARD DROP
:OUTPUT ACCEPT
:DOCKER -
:DOCKER-ISOLATION-STAGE-1 -
:DOCKER-ISOLATION-STAGE-2 -
:DOCKER-USER -
:KUBE-FIREWALL -
:KUBE-KUBELET-CANARY -
:KUBERNETES-MYAPP -
-A INPUT -j KUBE-FIREWALL
-A INPUT -p tcp -m tcp --dport 8443 -j KUBERNETES-MYAPP
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
-A OUTPUT -j KUBE-FIREWALL
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -j RETURN
-A DOCKER-USER -j RETURN
-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
-A KUBERNETES-MYAPP -s 10.0.0.0/8 -j ACCEPT
-A KUBERNETES-MYAPP -j DROP
COMMIT
` + kubeletMangle,
	},
	{
		name:   "IPVS mode, IPv6",
		binary: "ip6tables",
		rules:  "file:kube-proxy-ipvs6.rules",
		wantRemoved: `
ip6tables nat: delete rule -A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
ip6tables nat: delete rule -A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
ip6tables nat: delete rule -A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
ip6tables nat: delete chain KUBE-LOAD-BALANCER
ip6tables nat: delete chain KUBE-MARK-MASQ
ip6tables nat: delete chain KUBE-NODE-PORT
ip6tables nat: delete chain KUBE-POSTROUTING
ip6tables nat: delete chain KUBE-SERVICES
ip6tables filter: delete rule -A INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER
ip6tables filter: delete rule -A INPUT -m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL
ip6tables filter: delete rule -A INPUT -m comment --comment "kubernetes health check rules" -j KUBE-NODE-PORT
ip6tables filter: delete rule -A FORWARD -m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL
ip6tables filter: delete rule -A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
ip6tables filter: delete rule -A OUTPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-OUT-FILTER
ip6tables filter: delete chain KUBE-FORWARD
ip6tables filter: delete chain KUBE-IPVS-FILTER
ip6tables filter: delete chain KUBE-IPVS-OUT-FILTER
ip6tables filter: delete chain KUBE-NODE-PORT
ip6tables filter: delete chain KUBE-PROXY-FIREWALL
ip6tables filter: delete chain KUBE-SOURCE-RANGES-FIREWALL
`,
		wantDump: `*nat
:PREROUTING ACCEPT
:INPUT ACCEPT
:OUTPUT ACCEPT
:POSTROUTING ACCEPT
:KUBE-KUBELET-CANARY -
COMMIT
*filter
:INPUT ACCEPT
:FORWARD ACCEPT
:OUTPUT ACCEPT
:KUBE-KUBELET-CANARY -
:KUBERNETES-MYAPP -
-A INPUT -j KUBERNETES-MYAPP
-A KUBERNETES-MYAPP -s fd00:1::/64 -p tcp -m tcp --dport 8443 -j ACCEPT
COMMIT
` + kubeletMangle,
	},
	{
		name:   "iptables mode",
		binary: "iptables",
		rules:  "file:kube-proxy-iptables.rules",
		wantRemoved: `
iptables nat: delete rule -A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
iptables nat: delete rule -A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
iptables nat: delete rule -A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
iptables nat: delete chain KUBE-EXT-CDGGSHYLG3RE2FKL
iptables nat: delete chain KUBE-MARK-MASQ
iptables nat: delete chain KUBE-NODEPORTS
iptables nat: delete chain KUBE-POSTROUTING
iptables nat: delete chain KUBE-PROXY-CANARY
iptables nat: delete chain KUBE-SEP-AFGSLHOD2HFNCBX4
iptables nat: delete chain KUBE-SEP-FIMWYXOJBPP32KI5
iptables nat: delete chain KUBE-SERVICES
iptables nat: delete chain KUBE-SVC-CDGGSHYLG3RE2FKL
iptables nat: delete chain KUBE-SVC-NPX46M4PTMTKRN6Y
iptables filter: delete rule -A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
iptables filter: delete rule -A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS
iptables filter: delete rule -A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
iptables filter: delete rule -A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
iptables filter: delete rule -A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
iptables filter: delete rule -A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
iptables filter: delete rule -A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
iptables filter: delete rule -A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
iptables filter: delete rule -A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
iptables filter: delete chain KUBE-EXTERNAL-SERVICES
iptables filter: delete chain KUBE-FORWARD
iptables filter: delete chain KUBE-NODEPORTS
iptables filter: delete chain KUBE-PROXY-CANARY
iptables filter: delete chain KUBE-PROXY-FIREWALL
iptables filter: delete chain KUBE-SERVICES
iptables mangle: delete chain KUBE-PROXY-CANARY
`,
		wantDump: `*nat
:PREROUTING ACCEPT
:INPUT ACCEPT
:OUTPUT ACCEPT
:POSTROUTING ACCEPT
:KUBE-KUBELET-CANARY -
COMMIT
*filter
:INPUT ACCEPT
:FORWARD ACCEPT
:OUTPUT ACCEPT
:KUBE-FIREWALL -
:KUBE-KUBELET-CANARY -
-A INPUT -j KUBE-FIREWALL
-A OUTPUT -j KUBE-FIREWALL
-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
COMMIT
` + kubeletMangle,
	},
	{
		name:   "older IPVS mode: nat KUBE-FIREWALL goes, kubelet's filter KUBE-FIREWALL and KUBE-MARK-DROP stay",
		binary: "iptables",
		rules:  olderIPVSMode,
		wantRemoved: `
iptables nat: delete rule -A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
iptables nat: delete rule -A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
iptables nat: delete rule -A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
iptables nat: delete chain KUBE-FIREWALL
iptables nat: delete chain KUBE-LOAD-BALANCER
iptables nat: delete chain KUBE-MARK-MASQ
iptables nat: delete chain KUBE-POSTROUTING
iptables nat: delete chain KUBE-SERVICES
iptables filter: delete rule -A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
iptables filter: delete chain KUBE-FORWARD
`,
		wantDump: `*nat
:PREROUTING ACCEPT
:INPUT ACCEPT
:OUTPUT ACCEPT
:POSTROUTING ACCEPT
:KUBE-MARK-DROP -
-A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000
COMMIT
*filter
:INPUT ACCEPT
:FORWARD ACCEPT
:OUTPUT ACCEPT
:KUBE-FIREWALL -
-A INPUT -j KUBE-FIREWALL
-A OUTPUT -j KUBE-FIREWALL
-A KUBE-FIREWALL -m comment --comment "kubernetes firewall for dropping marked packets" -m mark --mark 0x8000/0x8000 -j DROP
COMMIT
` + emptyMangle,
	},
	{
		name:   "a chain of another program still jumps to KUBE-SERVICES",
		binary: "iptables",
		rules:  foreignJumpsIn,
		wantRemoved: `
iptables nat: delete rule -A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
iptables nat: delete chain KUBE-MARK-MASQ
`,
		wantErrs: `
iptables nat: delete chain KUBE-SERVICES: chain KUBE-SERVICES in table nat is in use by MY-PORTALS
`,
		wantDump: `*nat
:PREROUTING ACCEPT
:INPUT ACCEPT
:OUTPUT ACCEPT
:POSTROUTING ACCEPT
:KUBE-SERVICES -
:MY-PORTALS -
-A PREROUTING -j MY-PORTALS
-A MY-PORTALS -d 10.96.0.0/12 -j KUBE-SERVICES
COMMIT
*filter
:INPUT ACCEPT
:FORWARD ACCEPT
:OUTPUT ACCEPT
COMMIT
` + emptyMangle,
	},
	{
		name:   "a jump that cannot be removed leaves its table whole",
		binary: "iptables",
		rules:  olderIPVSMode,
		failOn: map[string]error{"nat OUTPUT": errors.New("xtables lock held")},
		wantRemoved: `
iptables nat: delete rule -A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
iptables nat: delete rule -A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
iptables filter: delete rule -A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
iptables filter: delete chain KUBE-FORWARD
`,
		wantErrs: `
iptables nat: delete rule -A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES: xtables lock held
iptables nat: 5 chains left in place because a jump to them could not be removed
`,
		wantDump: `*nat
:PREROUTING ACCEPT
:INPUT ACCEPT
:OUTPUT ACCEPT
:POSTROUTING ACCEPT
:KUBE-FIREWALL -
:KUBE-LOAD-BALANCER -
:KUBE-MARK-DROP -
:KUBE-MARK-MASQ -
:KUBE-POSTROUTING -
:KUBE-SERVICES -
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-FIREWALL -m comment --comment "Kubernetes service load balancer ip + port + source cidr for packet filter purpose" -m set --match-set KUBE-LOAD-BALANCER-SOURCE-CIDR dst,dst,src -j RETURN
-A KUBE-FIREWALL -j KUBE-MARK-DROP
-A KUBE-LOAD-BALANCER -m comment --comment "Kubernetes service load balancer ip + port for load balancer with sourceRange" -m set --match-set KUBE-LOAD-BALANCER-FW dst,dst -j KUBE-FIREWALL
-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ
-A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -m mark --mark 0x4000/0x4000 -j MASQUERADE
-A KUBE-SERVICES -m comment --comment "Kubernetes service lb portal" -m set --match-set KUBE-LOAD-BALANCER dst,dst -j KUBE-LOAD-BALANCER
COMMIT
*filter
:INPUT ACCEPT
:FORWARD ACCEPT
:OUTPUT ACCEPT
:KUBE-FIREWALL -
-A INPUT -j KUBE-FIREWALL
-A OUTPUT -j KUBE-FIREWALL
-A KUBE-FIREWALL -m comment --comment "kubernetes firewall for dropping marked packets" -m mark --mark 0x8000/0x8000 -j DROP
COMMIT
` + emptyMangle,
	},
}
