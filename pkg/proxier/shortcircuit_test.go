package proxier

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/testobj"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// collidingNames finds two Service names in the given namespaces whose
// port "http" gets the same short-circuit mark: what a hostile tenant
// would search for (about 5,000 hashes for 24 bits).
func collidingNames(t *testing.T, victimNS, attackerNS string) (victim, attacker string, mark uint32) {
	t.Helper()
	seen := map[uint32]string{}
	for i := range 1 << 20 {
		ns, n := victimNS, fmt.Sprintf("svc-%d", i)
		if i%2 == 1 {
			ns = attackerNS
		}
		m := model.ShortCircuitMark(model.PortName{NamespacedName: types.NamespacedName{Namespace: ns, Name: n}, Port: "http"}, ipvs.TCP)
		if other, ok := seen[m]; ok && strings.HasPrefix(other, victimNS+"/") != (ns == victimNS) {
			if ns == victimNS {
				return n, strings.TrimPrefix(other, attackerNS+"/"), m
			}
			return strings.TrimPrefix(other, victimNS+"/"), n, m
		}
		seen[m] = ns + "/" + n
	}
	t.Fatal("no colliding names in 2^20 tries")
	return "", "", 0
}

// A tenant names its Service so that its short-circuit mark collides with
// an older Service's: the older one keeps the mark, its firewall-mark
// virtual server and its set member; the newcomer's in-cluster clients
// get the Local behaviour (no short-circuit) and the newcomer is told.
// The order of the syncs does not matter.
func TestShortCircuitMarkCollision(t *testing.T) {
	victimName, attackerName, mark := collidingNames(t, "shop", "evil")
	local := func(ns, name, clusterIP, external string, age int64, remote string) model.ServiceInput {
		s := testobj.Service(ns, name, []string{clusterIP}, created(age), func(s *v1.Service) {
			s.Spec.ExternalIPs = []string{external}
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		})
		return input(s, testobj.Slice(ns, name+"-1", name, discovery.AddressTypeIPv4, testobj.HTTP(8080), testobj.On("node-b", remote)...))
	}
	victim := local("shop", victimName, "10.96.0.20", "203.0.113.1", 100, "10.244.2.2")
	attacker := local("evil", attackerName, "10.96.0.66", "203.0.113.66", 200, "10.244.2.66")
	want := ipvsHeader + fmt.Sprintf(`FWM  %d rr
  -> 10.244.2.2:8080              Masq    1
TCP  10.96.0.20:80 rr
  -> 10.244.2.2:8080              Masq    1
TCP  10.96.0.66:80 rr
  -> 10.244.2.66:8080             Masq    1
TCP  203.0.113.1:80 rr
TCP  203.0.113.66:80 rr
`, mark)
	wantSet := fmt.Sprintf("set IPVS-PROXY-SHORT-CIRCUIT hash:ip,port family inet skbinfo\n  203.0.113.1,tcp:80 skbmark 0x%x\n", mark)
	problem := fmt.Sprintf("http: the firewall mark %d of its externalTrafficPolicy Local short-circuit is another Service's", mark)
	for _, order := range [][]model.ServiceInput{{victim, attacker}, {attacker, victim}} {
		k := newKernel()
		p := k.proxier(t, "")
		p.SyncAll(nil) // the start: the link and the sets
		// One by one, the newcomer first or last, then a full resync.
		var res Result
		for _, in := range order {
			res = p.SyncServices(changesOf(in))
			if len(res.Errors) > 0 {
				t.Fatal(res.Errors)
			}
		}
		for i, r := range []Result{res, p.SyncAll(order)} {
			if got := k.ipvs.Dump(); got != want {
				t.Errorf("%s first: ipvs:\n%s\nwant:\n%s", order[0].Service.Namespace, got, want)
			}
			sets := k.dump(t)
			if i := strings.Index(sets, "set IPVS-PROXY-SHORT-CIRCUIT "); i < 0 || !strings.HasPrefix(sets[i:], wantSet+"set ") {
				t.Errorf("%s first: sets:\n%s\nwant:\n%s", order[0].Service.Namespace, sets, wantSet)
			}
			// The full sync reports every Service's problems.
			if got := strings.Join(r.Problems[nameOf(attacker)], "; "); i == 1 && !strings.Contains(got, problem) {
				t.Errorf("attacker's problems %q, want %q", got, problem)
			}
		}
	}
}

// The rules let through exactly the marks the model makes: iptables
// spells ipvs's form of them.
func TestShortCircuitRulesMatchTheMarks(t *testing.T) {
	want := fmt.Sprintf("0x%x/0x%x", ipvs.OwnedMarkValue, ipvs.OwnedMarkMask)
	if got := iptables.ShortCircuitMark + "/" + iptables.ShortCircuitMask; got != want {
		t.Errorf("iptables matches %s, the marks are %s", got, want)
	}
}
