package cleanup

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
)

// The IPVS table of a node kube-proxy ran on, with others' virtual servers.
const nodeIPVS = `
TCP 10.96.0.1:443 -> 192.168.1.10:6443
UDP 10.96.0.10:53 -> 10.244.1.3:53
TCP 10.96.0.10:53 -> 10.244.1.3:53
TCP 192.0.2.10:80 -> 10.244.1.7:8080
TCP [fd00:10:96::1]:443 -> [fd00:1::10]:6443
TCP 192.168.1.10:30080 -> 10.244.1.5:8080 10.244.2.6:8080
TCP 172.17.0.1:30080 -> 10.244.1.5:8080 10.244.2.6:8080
TCP [fd00:1::10]:30080 -> [fd00:10:244:1::5]:8080
TCP 192.168.1.10:30443 -> 192.168.1.10:6443
TCP 192.168.1.10:30999
TCP 192.168.1.10:31500 -> 10.244.1.9:80
TCP 192.168.1.10:30500 -> 192.168.1.30:8080
TCP 192.168.1.10:8080 -> 10.244.1.5:8080
TCP 192.168.1.100:80 -> 192.168.1.21:80 192.168.1.22:80
TCP 10.20.0.5:30080 -> 10.244.1.5:8080
`

// Virtual servers that are not on kube-ipvs0, so never removed: a NodePort
// to host-network endpoints, one without endpoints, another program's on
// a node IP inside the NodePort range, one to pods on a port outside it, a
// keepalived VIP, and one on an address that is not the node's.
const othersIPVS = `
TCP  192.168.1.10:8080 rr
  -> 10.244.1.5:8080 Masq 1
TCP  10.20.0.5:30080 rr
  -> 10.244.1.5:8080 Masq 1
TCP  192.168.1.10:30443 rr
  -> 192.168.1.10:6443 Masq 1
TCP  192.168.1.10:30500 rr
  -> 192.168.1.30:8080 Masq 1
TCP  192.168.1.10:30999 rr
TCP  192.168.1.100:80 rr
  -> 192.168.1.21:80 Masq 1
  -> 192.168.1.22:80 Masq 1
`

// kube-proxy's NodePorts as far as can be told, and ipvs-proxy's own: on
// node IPs, and so left too (kube-proxy records nothing that tells them
// from another program's).
const nodePortsIPVS = `
TCP  172.17.0.1:30080 rr
  -> 10.244.1.5:8080 Masq 1
  -> 10.244.2.6:8080 Masq 1
TCP  192.168.1.10:30080 rr
  -> 10.244.1.5:8080 Masq 1
  -> 10.244.2.6:8080 Masq 1
TCP  [fd00:1::10]:30080 rr
  -> [fd00:10:244:1::5]:8080 Masq 1
`

const ipvsProxyIPVS = `
TCP  192.168.1.10:31500 rr
  -> 10.244.1.9:80 Masq 1
`

// kube-proxy's virtual servers on the addresses of kube-ipvs0.
const linkIPVS = `
TCP  10.96.0.1:443 rr
  -> 192.168.1.10:6443 Masq 1
TCP  10.96.0.10:53 rr
  -> 10.244.1.3:53 Masq 1
UDP  10.96.0.10:53 rr
  -> 10.244.1.3:53 Masq 1
TCP  192.0.2.10:80 rr
  -> 10.244.1.7:8080 Masq 1
TCP  [fd00:10:96::1]:443 rr
  -> [fd00:1::10]:6443 Masq 1
`

const linkVirtualServersRemoved = `
ipvs: delete TCP 10.96.0.1:443
ipvs: delete TCP 10.96.0.10:53
ipvs: delete UDP 10.96.0.10:53
ipvs: delete TCP 192.0.2.10:80
ipvs: delete TCP [fd00:10:96::1]:443
`

var (
	linkAddrs = []string{"10.96.0.1", "10.96.0.10", "192.0.2.10", "fd00:10:96::1"}
	hostAddrs = []string{"eth0 192.168.1.10", "eth0 192.168.1.100", "docker0 172.17.0.1", "eth0 fd00:1::10", "lo 127.0.0.1"}
)

// listFails is an IPVS table that cannot be read.
type listFails struct {
	IPVS
	err error
}

func (f listFails) List() ([]ipvs.VirtualServer, error) { return nil, f.err }

// linkAs makes a link read as another kind of link.
type linkAs struct {
	netif.Interface
	kind string
}

func (l linkAs) Link() (*netif.LinkState, error) {
	return &netif.LinkState{Type: l.kind, Up: true}, nil
}

func TestCleanIPVSAndLink(t *testing.T) {
	for _, tc := range []struct {
		name   string
		noLink bool
		wrap   func(IPVS, Link) (IPVS, Link)
		failOn map[ipvs.ServiceKey]error
		// wantRemoved and wantErrs are report lines; wantIPVS and wantLink
		// the dumps left.
		wantRemoved, wantErrs, wantIPVS, wantLink string
	}{
		{
			name:        "by default only what sits on kube-ipvs0 goes",
			wantRemoved: linkVirtualServersRemoved + "link: delete kube-ipvs0",
			wantIPVS:    othersIPVS + nodePortsIPVS + ipvsProxyIPVS,
			wantLink:    "link kube-ipvs0 absent\n",
		},
		{
			name:     "without kube-ipvs0 nothing is kube-proxy's",
			noLink:   true,
			wantIPVS: othersIPVS + nodePortsIPVS + ipvsProxyIPVS + linkIPVS,
			wantLink: "link kube-ipvs0 absent\n",
		},
		{
			name:   "a virtual server on the link that cannot be deleted keeps the link",
			failOn: map[ipvs.ServiceKey]error{{Addr: netip.MustParseAddr("10.96.0.1"), Proto: ipvs.TCP, Port: 443}: errors.New("device busy")},
			wantRemoved: `
ipvs: delete TCP 10.96.0.10:53
ipvs: delete UDP 10.96.0.10:53
ipvs: delete TCP 192.0.2.10:80
ipvs: delete TCP [fd00:10:96::1]:443
`,
			wantErrs: `
ipvs: device busy
link: left in place while virtual servers may remain on its addresses, which are what marks them as kube-proxy's; run again
`,
			wantIPVS: othersIPVS + nodePortsIPVS + ipvsProxyIPVS + `
TCP  10.96.0.1:443 rr
  -> 192.168.1.10:6443 Masq 1
`,
			wantLink: "link kube-ipvs0 dummy down\naddr 10.96.0.1/32\naddr 10.96.0.10/32\naddr 192.0.2.10/32\naddr fd00:10:96::1/128\n",
		},
		{
			name: "IPVS that cannot be read keeps the link",
			wrap: func(v IPVS, l Link) (IPVS, Link) {
				return listFails{v, errors.New("netlink: operation not permitted")}, l
			},
			wantErrs: `
ipvs: list virtual servers: netlink: operation not permitted
link: left in place while virtual servers may remain on its addresses, which are what marks them as kube-proxy's; run again
`,
			wantIPVS: othersIPVS + nodePortsIPVS + ipvsProxyIPVS + linkIPVS,
			wantLink: "link kube-ipvs0 dummy down\naddr 10.96.0.1/32\naddr 10.96.0.10/32\naddr 192.0.2.10/32\naddr fd00:10:96::1/128\n",
		},
		{
			// Nor are the virtual servers on its addresses.
			name: "a link of another kind under the name is not kube-proxy's",
			wrap: func(v IPVS, l Link) (IPVS, Link) {
				return v, linkAs{l.(netif.Interface), "bridge"}
			},
			wantErrs: "link: kube-ipvs0 is a bridge link, not kube-proxy's dummy: left in place",
			wantIPVS: linkIPVS + othersIPVS + nodePortsIPVS + ipvsProxyIPVS,
			wantLink: "link kube-ipvs0 dummy down\naddr 10.96.0.1/32\naddr 10.96.0.10/32\naddr 192.0.2.10/32\naddr fd00:10:96::1/128\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := ipvs.NewFake()
			loadIPVS(t, v, nodeIPVS)
			v.FailOn = tc.failOn
			l := newLink(t, linkAddrs, hostAddrs)
			if tc.noLink {
				if err := l.DeleteLink(); err != nil {
					t.Fatal(err)
				}
			}
			var vi IPVS = v
			var li Link = l
			if tc.wrap != nil {
				vi, li = tc.wrap(v, l)
			}
			c := &Cleaner{IPVS: vi, Link: li}
			removed, errs := c.Run()
			diff(t, "removed", joinLines(removed), joinLines(lines(tc.wantRemoved)))
			diff(t, "errors", errStrings(errs), joinLines(lines(tc.wantErrs)))
			diff(t, "ipvs left", v.Dump(), ipvsDump(tc.wantIPVS))
			d, _ := l.Dump()
			diff(t, "link left", d, tc.wantLink)
		})
	}
}
