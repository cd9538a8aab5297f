package proxier

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/testobj"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
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

// writeLog records the kernel writes of IPVS and the sets, in order.
type writeLog struct{ lines []string }

type loggedIPVS struct {
	ipvs.Interface
	log *writeLog
}

func (l loggedIPVS) Write(ops []ipvs.Op) []error {
	for _, o := range ops {
		l.log.lines = append(l.log.lines, fmt.Sprintf("ipvs %v %v", o.Kind, o.Service.ServiceKey))
	}
	return l.Interface.Write(ops)
}

type loggedSets struct {
	ipset.Interface
	log *writeLog
}

func (l loggedSets) Add(set string, e ipset.Entry) error {
	l.log.lines = append(l.log.lines, "set add "+set+" "+e.String())
	return l.Interface.Add(set, e)
}

func (l loggedSets) Del(set string, e ipset.Entry) error {
	l.log.lines = append(l.log.lines, "set del "+set+" "+e.String())
	return l.Interface.Del(set, e)
}

// When the older holder of a colliding mark gives it up, the newcomer's
// short-circuit member is added only after its firewall-mark virtual
// server holds the newcomer's real servers: added before, as it was, the
// newcomer's in-cluster clients went to the old holder's pods until the
// virtual server's writes (a tenant could repeat that at will).
func TestShortCircuitMarkHandover(t *testing.T) {
	victimName, attackerName, mark := collidingNames(t, "shop", "evil")
	local := func(ns, name, clusterIP, external string, age int64, remote string, policy v1.ServiceExternalTrafficPolicy) model.ServiceInput {
		s := testobj.Service(ns, name, []string{clusterIP}, created(age), func(s *v1.Service) {
			s.Spec.ExternalIPs = []string{external}
			s.Spec.ExternalTrafficPolicy = policy
		})
		return input(s, testobj.Slice(ns, name+"-1", name, discovery.AddressTypeIPv4, testobj.HTTP(8080), testobj.On("node-b", remote)...))
	}
	victim := local("shop", victimName, "10.96.0.20", "203.0.113.1", 200, "10.244.2.2", v1.ServiceExternalTrafficPolicyLocal)
	attacker := local("evil", attackerName, "10.96.0.66", "203.0.113.66", 100, "10.244.2.66", v1.ServiceExternalTrafficPolicyLocal)
	gaveUp := local("evil", attackerName, "10.96.0.66", "203.0.113.66", 100, "10.244.2.66", v1.ServiceExternalTrafficPolicyCluster)
	k := newKernel()
	log := &writeLog{}
	owned, err := LoadOwned("")
	if err != nil {
		t.Fatal(err)
	}
	p := New(model.Options{NodeName: "node-a", Scheduler: "rr"}, loggedIPVS{k.ipvs, log}, k.link, loggedSets{k.sets, log}, owned)
	if res := p.SyncAll([]model.ServiceInput{victim, attacker}); len(res.Errors) > 0 {
		t.Fatal(res.Errors)
	}
	log.lines = nil
	if res := p.SyncServices(changesOf(gaveUp)); len(res.Errors) > 0 {
		t.Fatal(res.Errors)
	}
	fwm := fmt.Sprint(ipvs.FWMarkKey(mark, false))
	member := fmt.Sprintf("set add IPVS-PROXY-SHORT-CIRCUIT 203.0.113.1,tcp:80 skbmark 0x%x", mark)
	lastFWM, added := -1, -1
	for i, l := range log.lines {
		if strings.HasPrefix(l, "ipvs ") && strings.HasSuffix(l, " "+fwm) {
			lastFWM = i
		}
		if l == member {
			added = i
		}
	}
	if lastFWM < 0 || added < lastFWM {
		t.Errorf("the newcomer's member (line %d) must follow the last write to %s (line %d):\n%s", added, fwm, lastFWM, strings.Join(log.lines, "\n"))
	}
	if got := k.ipvs.Dump(); !strings.Contains(got, fmt.Sprintf("FWM  %d rr\n  -> 10.244.2.2:8080", mark)) {
		t.Errorf("the firewall-mark virtual server is not the newcomer's:\n%s", got)
	}
}
