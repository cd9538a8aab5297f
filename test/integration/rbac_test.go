package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	v1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
)

// TestLeastPrivilege proves that the other tests would fail if
// manifests/rbac.yaml lacked a permission the daemon needs. For each
// permission, a ServiceAccount gets the manifests' ClusterRole minus that
// one verb, and a daemon runs as it beside one running as the manifests'
// account (the control), through the checks the other tests make: the
// kernel converges at start and after changes, an Event is created and, on
// a repeat, patched, the Node's taint reaches /healthz, Run returns nil,
// and the API refused nothing. The control must pass every check; a daemon
// missing a permission it needs must fail at least one, and the test
// prints which. Permissions the daemon turns out not to need are reported.
func TestLeastPrivilege(t *testing.T) {
	c := startCluster(t)
	ctx := t.Context()
	role, err := c.admin.RbacV1().ClusterRoles().Get(ctx, proxySA, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("ClusterRole %s from manifests/rbac.yaml: %v", proxySA, err)
	}
	c.createService(t, service("web", "10.96.0.10"))
	c.createSlice(t, slice("web-1", "web", httpPort(8080), ep{Addr: "10.244.1.2"}))

	type perm struct{ group, resource, verb string }
	cases := []struct {
		name    string
		without []perm
		// needed: the daemon cannot work without it, so some check must
		// fail. Otherwise the case only reports what happens.
		needed bool
	}{
		{name: "watch nodes", without: []perm{{"", "nodes", "watch"}}, needed: true},
		{name: "watch services", without: []perm{{"", "services", "watch"}}, needed: true},
		{name: "watch endpointslices", without: []perm{{"discovery.k8s.io", "endpointslices", "watch"}}, needed: true},
		{name: "create events", without: []perm{{"", "events", "create"}}, needed: true},
		{name: "patch events", without: []perm{{"", "events", "patch"}}, needed: true},
		// Not needed against this API server: client-go v0.37's informers
		// fill their caches with a watch that sends the initial objects
		// (WatchListClient, on by default since v1.35) and LIST only when
		// the server cannot do that, as API servers before v1.32 cannot.
		// The manifests keep list for them.
		{name: "list nodes", without: []perm{{"", "nodes", "list"}}},
		{name: "list services", without: []perm{{"", "services", "list"}}},
		{name: "list endpointslices", without: []perm{{"discovery.k8s.io", "endpointslices", "list"}}},
	}

	type runner struct {
		name   string
		needed bool
		p      *proxy
		caught []string // checks that failed
	}
	runners := []*runner{{name: "control (manifests/rbac.yaml)", p: startProxy(t, c.proxyAccount(t), time.Minute)}}
	for i, tc := range cases {
		rules := role.Rules
		for _, p := range tc.without {
			rules = withoutVerb(rules, p.group, p.resource, p.verb)
		}
		acct := c.accountWith(t, fmt.Sprintf("ipvs-proxy-x%d", i), rules, tc.without[0].group, tc.without[0].resource, tc.without[0].verb)
		runners = append(runners, &runner{name: "without " + tc.name, needed: tc.needed, p: startProxy(t, acct, time.Minute)})
	}
	started := time.Now()

	// Each check runs for every runner at once; a crippled daemon waits
	// out the timeout, so keep it short: the control converges in
	// milliseconds.
	const timeout = 4 * time.Second
	// A runner that failed a check has shown what it had to: later checks
	// skip it (all must end it, though), so each costs one timeout at most.
	check := func(what string, all bool, fn func(r *runner) error) {
		t.Helper()
		var wg sync.WaitGroup
		for _, r := range runners {
			if len(r.caught) > 0 && !all {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := fn(r); err != nil {
					r.caught = append(r.caught, what+": "+summary(err))
				}
			}()
		}
		wg.Wait()
		if ctl := runners[0]; len(ctl.caught) > 0 {
			t.Fatalf("the control failed %s", strings.Join(ctl.caught, "; "))
		}
	}
	kernel := func(want string) func(r *runner) error {
		return func(r *runner) error { _, err := r.p.converge(timeout, want); return err }
	}
	event := func(minCount int32) func(r *runner) error {
		return func(r *runner) error {
			_, err := c.findEvent(ctx, timeout, r.p.account.name, "late", minCount, `"fastest"`)
			return err
		}
	}

	check("converge at start", false, kernel(header+kubernetesVS+`TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1
link kube-ipvs0 dummy down
addr 10.96.0.1/32
addr 10.96.0.10/32
`))
	t.Logf("all daemons checked at start %v after they started", time.Since(started).Round(time.Millisecond))

	// Created while the daemons run, so only a watch (or a relist) sees
	// them; the Event comes from a partial sync.
	c.replaceSlice(t, slice("web-1", "web", httpPort(8080), ep{Addr: "10.244.1.2"}, ep{Addr: "10.244.1.3"}))
	c.createService(t, service("late", "10.96.0.20", func(s *v1.Service) {
		s.Annotations = map[string]string{model.SchedulerAnnotation: "fastest"}
	}))
	late := header + kubernetesVS + `TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.1.3:8080              Masq    1
TCP  10.96.0.20:80 rr
link kube-ipvs0 dummy down
addr 10.96.0.1/32
addr 10.96.0.10/32
addr 10.96.0.20/32
`
	check("converge after changes", false, kernel(late))
	check("Event created", false, event(1))

	// The same problem again: the broadcaster patches the Event's count.
	c.updateService(t, "late", func(s *v1.Service) { s.Annotations[model.SchedulerAnnotation] = "sh" })
	check("converge after a fix", false, kernel(strings.Replace(late, "TCP  10.96.0.20:80 rr", "TCP  10.96.0.20:80 sh", 1)))
	c.updateService(t, "late", func(s *v1.Service) { s.Annotations[model.SchedulerAnnotation] = "fastest" })
	check("converge after the same fault", false, kernel(late))
	check("Event count patched", false, event(2))

	// Node changes come only through the node informer.
	c.taintNode(t, "ToBeDeletedByClusterAutoscaler")
	check("/healthz 503 once the Node is tainted", false, func(r *runner) error {
		return wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
			code, _ := r.p.healthz()
			return code == 503, nil
		})
	})

	check("Run returns nil, nothing refused", true, func(r *runner) error { return r.p.shutdown() })

	for _, r := range runners[1:] {
		switch {
		case len(r.caught) > 0:
			t.Logf("%s: caught by\n    %s", r.name, strings.Join(r.caught, "\n    "))
		case r.needed:
			t.Errorf("%s: every check passed: the tests would not notice this permission missing from manifests/rbac.yaml", r.name)
		default:
			t.Logf("%s: every check passed: the daemon does not need it here", r.name)
		}
	}
}

// accountWith makes a ServiceAccount in kube-system bound to a ClusterRole
// with these rules, and returns a client config holding its token. It waits
// until the authorizer denies the given verb, so the daemon starts with the
// role in force.
func (c *cluster) accountWith(t *testing.T, name string, rules []rbacv1.PolicyRule, group, resource, deniedVerb string) account {
	t.Helper()
	ctx := t.Context()
	meta := metav1.ObjectMeta{Name: name}
	if _, err := c.admin.CoreV1().ServiceAccounts("kube-system").Create(ctx, &v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ServiceAccount %s: %v", name, err)
	}
	if _, err := c.admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: meta, Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ClusterRole %s: %v", name, err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: meta,
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: "kube-system"}},
	}
	if _, err := c.admin.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ClusterRoleBinding %s: %v", name, err)
	}
	tok, err := c.admin.CoreV1().ServiceAccounts("kube-system").CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s: %v", name, err)
	}
	// The authorizer learns of new bindings through informers: wait until
	// it allows what the role keeps (list services, unless that is the
	// verb removed) and denies the verb removed.
	user := "system:serviceaccount:kube-system:" + name
	review := func(group, resource, verb string) (bool, error) {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Group: group, Resource: resource, Verb: verb, Namespace: ns},
		}}
		res, err := c.admin.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			return false, err
		}
		return res.Status.Allowed, nil
	}
	kept := "services"
	if resource == "services" {
		kept = "nodes"
	}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		allowed, err := review("", kept, "watch")
		if err != nil || !allowed {
			return false, err
		}
		denied, err := review(group, resource, deniedVerb)
		return !denied, err
	})
	if err != nil {
		t.Fatalf("RBAC for %s never took effect (want watch %s allowed, %s %s denied): %v", name, kept, deniedVerb, resource, err)
	}
	cfg := &rest.Config{
		Host: c.URL, BearerToken: tok.Status.Token,
		TLSClientConfig: rest.TLSClientConfig{CAFile: c.CAFile},
		UserAgent:       "ipvs-proxy-integration", QPS: 50, Burst: 100,
	}
	return account{name: name, cfg: cfg}
}

// withoutVerb returns rules that grant everything rules do except verb on
// group/resource.
func withoutVerb(rules []rbacv1.PolicyRule, group, resource, verb string) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, r := range rules {
		if !slices.Contains(r.APIGroups, group) || !slices.Contains(r.Resources, resource) || !slices.Contains(r.Verbs, verb) {
			out = append(out, r)
			continue
		}
		// Split r into: its other resources, unchanged; this resource in
		// its other groups, unchanged; this resource in this group, minus
		// the verb.
		if others := without(r.Resources, resource); len(others) > 0 {
			x := *r.DeepCopy()
			x.Resources = others
			out = append(out, x)
		}
		if groups := without(r.APIGroups, group); len(groups) > 0 {
			x := *r.DeepCopy()
			x.APIGroups, x.Resources = groups, []string{resource}
			out = append(out, x)
		}
		if verbs := without(r.Verbs, verb); len(verbs) > 0 {
			x := *r.DeepCopy()
			x.APIGroups, x.Resources, x.Verbs = []string{group}, []string{resource}, verbs
			out = append(out, x)
		}
	}
	return out
}

func without(list []string, s string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(x string) bool { return x == s })
}

func (c *cluster) taintNode(t *testing.T, key string) {
	t.Helper()
	node, err := c.admin.CoreV1().Nodes().Get(t.Context(), nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get Node %s: %v", nodeName, err)
	}
	node.Spec.Taints = append(node.Spec.Taints, v1.Taint{Key: key, Effect: v1.TaintEffectNoSchedule})
	if _, err := c.admin.CoreV1().Nodes().Update(t.Context(), node, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("taint Node %s: %v", nodeName, err)
	}
}

// summary is err's first line, and for a refusal the first request
// refused, cut short.
func summary(err error) string {
	lines := strings.Split(err.Error(), "\n")
	s := lines[0]
	if strings.HasPrefix(s, "the API refused") && len(lines) > 1 {
		s += " " + lines[1]
	}
	if len(s) > 400 {
		s = s[:400] + "..."
	}
	return s
}
