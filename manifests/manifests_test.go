// Package manifests_test checks the deployment files against each other and
// against the code they run: the DaemonSet, ConfigMap and RBAC in this
// directory (decoded with client-go's scheme), the DaemonSet's command
// (parsed with pkg/options, as `ipvs-proxy run` parses it, with the
// ConfigMap's config.conf as --config), and the image's iptables wrapper
// (hack/image/iptables-wrapper) against fake iptables binaries.
package manifests_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/options"
	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

const (
	// repoRoot is the repository, seen from this package's directory.
	repoRoot = ".."
	// nodeName stands in for the downward API's spec.nodeName.
	nodeName = "node-1.example"
	// configKey is the ConfigMap key holding the KubeProxyConfiguration.
	configKey = "config.conf"
)

// objects is what the manifests hold, one of each kind.
type objects struct {
	ds  *appsv1.DaemonSet
	cm  *corev1.ConfigMap
	sa  *corev1.ServiceAccount
	cr  *rbacv1.ClusterRole
	crb *rbacv1.ClusterRoleBinding
}

// kustomization reads kustomization.yaml's resources.
func kustomization(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Resources  []string `json:"resources"`
	}
	if err := yaml.UnmarshalStrict(data, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Fatalf("kustomization.yaml: apiVersion %q kind %q, want kustomize.config.k8s.io/v1beta1 Kustomization", k.APIVersion, k.Kind)
	}
	return k.Resources
}

// load decodes every document of every file kustomization.yaml lists with
// client-go's scheme.
func load(t *testing.T) objects {
	t.Helper()
	return decode(t, false)
}

// decode is load; with strictly, it also reports fields the scheme does not
// know (a misspelled field, which the API server would drop or reject).
func decode(t *testing.T, strictly bool) objects {
	t.Helper()
	strict := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	var o objects
	seen := map[string]string{}
	for _, file := range kustomization(t) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("kustomization.yaml lists %s: %v", file, err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for i := 1; ; i++ {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if j, err := yaml.YAMLToJSON(doc); err == nil && string(j) == "null" {
				continue // only comments
			}
			where := fmt.Sprintf("%s, document %d", file, i)
			obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
			if err != nil {
				t.Fatalf("%s: client-go's scheme cannot decode it: %v", where, err)
			}
			if _, _, err := strict.Decode(doc, nil, nil); err != nil && strictly {
				t.Errorf("%s (%s): strict decoding: %v", where, gvk.Kind, err)
			}
			if prev, dup := seen[gvk.Kind]; dup {
				t.Fatalf("%s: a second %s (the first is in %s); this test expects one of each", where, gvk.Kind, prev)
			}
			seen[gvk.Kind] = where
			switch obj := obj.(type) {
			case *appsv1.DaemonSet:
				o.ds = obj
			case *corev1.ConfigMap:
				o.cm = obj
			case *corev1.ServiceAccount:
				o.sa = obj
			case *rbacv1.ClusterRole:
				o.cr = obj
			case *rbacv1.ClusterRoleBinding:
				o.crb = obj
			default:
				t.Fatalf("%s: unexpected kind %s: teach this test what to check about it", where, gvk)
			}
		}
	}
	for kind, got := range map[string]bool{
		"DaemonSet": o.ds != nil, "ConfigMap": o.cm != nil, "ServiceAccount": o.sa != nil,
		"ClusterRole": o.cr != nil, "ClusterRoleBinding": o.crb != nil,
	} {
		if !got {
			t.Fatalf("no %s in the files kustomization.yaml lists", kind)
		}
	}
	return o
}

// container is the DaemonSet's only container.
func container(t *testing.T, ds *appsv1.DaemonSet) *corev1.Container {
	t.Helper()
	cs := ds.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("DaemonSet %s has %d containers, want 1", ds.Name, len(cs))
	}
	return &cs[0]
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files = slices.DeleteFunc(files, func(f string) bool { return f == "kustomization.yaml" })
	listed := slices.Clone(kustomization(t))
	slices.Sort(files)
	slices.Sort(listed)
	if !slices.Equal(files, listed) {
		t.Errorf("kustomization.yaml lists %v, the directory has %v: `kubectl apply -k` would miss or fail on the difference", listed, files)
	}
}

func TestManifestsDecodeStrictly(t *testing.T) {
	decode(t, true)
}

func TestDaemonSetRunsOnEveryNodeAsNodeAgent(t *testing.T) {
	o := load(t)
	ds := o.ds
	spec := ds.Spec.Template.Spec
	if ds.Name != "ipvs-proxy" || ds.Namespace != "kube-system" {
		t.Errorf("DaemonSet is %s/%s, want kube-system/ipvs-proxy (system-node-critical pods are only admitted in kube-system)", ds.Namespace, ds.Name)
	}
	if !spec.HostNetwork {
		t.Error("DaemonSet: hostNetwork must be true: IPVS, kube-ipvs0 and the iptables rules live in the node's network namespace")
	}
	if spec.DNSPolicy == corev1.DNSClusterFirstWithHostNet {
		t.Error("DaemonSet: dnsPolicy ClusterFirstWithHostNet makes ipvs-proxy resolve names through cluster DNS, a Service that only works once ipvs-proxy has programmed it; use Default (or ClusterFirst, which means the same for a hostNetwork pod)")
	}
	if spec.PriorityClassName != "system-node-critical" {
		t.Errorf("DaemonSet: priorityClassName %q, want system-node-critical (the node's Services depend on it: it must not be evicted or preempted)", spec.PriorityClassName)
	}
	if !slices.ContainsFunc(spec.Tolerations, func(tl corev1.Toleration) bool {
		return tl.Operator == corev1.TolerationOpExists && tl.Key == "" && tl.Effect == ""
	}) {
		t.Errorf("DaemonSet: tolerations %+v do not tolerate every taint: want one with operator Exists and no key and no effect, as kube-proxy's", spec.Tolerations)
	}
	if got := spec.NodeSelector["kubernetes.io/os"]; got != "linux" {
		t.Errorf("DaemonSet: nodeSelector kubernetes.io/os is %q, want linux (IPVS is Linux only)", got)
	}
	if g := spec.TerminationGracePeriodSeconds; g == nil || *g != 30 {
		t.Errorf("DaemonSet: terminationGracePeriodSeconds %v, want 30", g)
	}
	us := ds.Spec.UpdateStrategy
	if us.Type != appsv1.RollingUpdateDaemonSetStrategyType || us.RollingUpdate == nil ||
		us.RollingUpdate.MaxUnavailable == nil || us.RollingUpdate.MaxUnavailable.String() != "1" {
		t.Errorf("DaemonSet: updateStrategy %+v, want RollingUpdate with maxUnavailable 1", us)
	}
	c := container(t, ds)
	if c.Image == "" {
		t.Error("DaemonSet: container has no image")
	}
	for name, want := range map[corev1.ResourceName]string{corev1.ResourceCPU: "100m", corev1.ResourceMemory: "64Mi"} {
		got, ok := c.Resources.Requests[name]
		if !ok || got.Cmp(resource.MustParse(want)) != 0 {
			t.Errorf("DaemonSet: %s request %v, want %s", name, got.String(), want)
		}
	}
	sel := ds.Spec.Selector
	if sel == nil || len(sel.MatchLabels) == 0 {
		t.Fatal("DaemonSet: no selector.matchLabels")
	}
	for k, v := range sel.MatchLabels {
		if ds.Spec.Template.Labels[k] != v {
			t.Errorf("DaemonSet: selector %s=%s does not match the pod template's labels %v", k, v, ds.Spec.Template.Labels)
		}
	}
}

func TestDaemonSetPrivileges(t *testing.T) {
	c := container(t, load(t).ds)
	sc := c.SecurityContext
	if sc != nil && sc.Privileged != nil && *sc.Privileged {
		return
	}
	var caps []corev1.Capability
	if sc != nil && sc.Capabilities != nil {
		caps = sc.Capabilities.Add
	}
	for _, want := range []corev1.Capability{"NET_ADMIN", "SYS_MODULE"} {
		if !slices.Contains(caps, want) {
			t.Errorf("DaemonSet: container is not privileged and does not add %s (capabilities.add %v): it cannot program IPVS and iptables (NET_ADMIN) or load ip_vs (SYS_MODULE)", want, caps)
		}
	}
}

// mountFor finds the volume mount holding file (the longest mountPath that
// is file or a directory above it) and its volume.
func mountFor(t *testing.T, ds *appsv1.DaemonSet, file string) (*corev1.VolumeMount, *corev1.Volume) {
	t.Helper()
	c := container(t, ds)
	var best *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if (file == m.MountPath || strings.HasPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/")) &&
			(best == nil || len(m.MountPath) > len(best.MountPath)) {
			best = &c.VolumeMounts[i]
		}
	}
	if best == nil {
		return nil, nil
	}
	for i, v := range ds.Spec.Template.Spec.Volumes {
		if v.Name == best.Name {
			return best, &ds.Spec.Template.Spec.Volumes[i]
		}
	}
	t.Fatalf("DaemonSet: volumeMount %s names no volume", best.Name)
	return nil, nil
}

func hostPathType(h *corev1.HostPathVolumeSource) string {
	if h.Type == nil {
		return ""
	}
	return string(*h.Type)
}

func TestDaemonSetHostMounts(t *testing.T) {
	ds := load(t).ds
	type want struct {
		mountPath, hostPath string
		readOnly            bool
		typ                 corev1.HostPathType // "" means any
		why                 string
	}
	for _, w := range []want{
		{"/lib/modules", "/lib/modules", true, "", "for `modprobe ip_vs`; read-only, as kube-proxy mounts it"},
		{"/run/xtables.lock", "/run/xtables.lock", false, corev1.HostPathFileOrCreate,
			"the lock iptables users on the node share; FileOrCreate, so a node where nothing took it yet still starts the pod"},
	} {
		m, v := mountFor(t, ds, w.mountPath)
		switch {
		case m == nil || m.MountPath != w.mountPath:
			t.Errorf("DaemonSet: nothing mounted at %s (%s)", w.mountPath, w.why)
		case v.HostPath == nil || v.HostPath.Path != w.hostPath:
			t.Errorf("DaemonSet: %s must be the host's %s (%s); volume %s is %+v", w.mountPath, w.hostPath, w.why, v.Name, v.VolumeSource)
		case m.ReadOnly != w.readOnly:
			t.Errorf("DaemonSet: %s mounted with readOnly %v, want %v (%s)", w.mountPath, m.ReadOnly, w.readOnly, w.why)
		case w.typ != "" && (v.HostPath.Type == nil || *v.HostPath.Type != w.typ):
			t.Errorf("DaemonSet: hostPath %s has type %q, want %s (%s)", w.hostPath, hostPathType(v.HostPath), w.typ, w.why)
		}
	}
}

// runFlags turns the container's command and args into `ipvs-proxy run`'s
// flags, expanding $(VAR) as the kubelet does, with nodeName for
// NODE_NAME, and checks that the binary is ipvs-proxy and the subcommand run.
func runFlags(t *testing.T, c *corev1.Container) (bin string, flags []string) {
	t.Helper()
	argv := append(slices.Clone(c.Command), c.Args...)
	if len(argv) < 2 || path.Base(argv[0]) != "ipvs-proxy" || argv[1] != "run" {
		t.Fatalf("DaemonSet: container runs %q, want `ipvs-proxy run ...`", argv)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	ref := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	for _, arg := range argv[2:] {
		arg = ref.ReplaceAllStringFunc(arg, func(m string) string {
			name := ref.FindStringSubmatch(m)[1]
			e, ok := env[name]
			switch {
			case !ok:
				t.Errorf("DaemonSet: %q uses $(%s), which the container's env does not define: the kubelet would pass it on literally", arg, name)
			case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName":
				return nodeName
			case e.ValueFrom == nil:
				return e.Value
			default:
				t.Errorf("DaemonSet: %q uses $(%s), whose value this test cannot know", arg, name)
			}
			return m
		})
		flags = append(flags, arg)
	}
	return argv[0], flags
}

// runOptions parses the DaemonSet's flags as `ipvs-proxy run` does, reads --config from the ConfigMap
// the pod mounts there, and completes and validates the result.
func runOptions(t *testing.T, o objects) *options.Options {
	t.Helper()
	_, flags := runFlags(t, container(t, o.ds))
	opts := options.NewOptions()
	fs := pflag.NewFlagSet("ipvs-proxy run", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	opts.AddFlags(fs)
	if err := fs.Parse(flags); err != nil {
		t.Fatalf("DaemonSet: `ipvs-proxy run` rejects the command line %q: %v", flags, err)
	}
	if fs.NArg() > 0 {
		t.Fatalf("DaemonSet: `ipvs-proxy run` takes no arguments, the command gives %q", fs.Args())
	}
	if opts.ConfigFile == "" {
		t.Fatal("DaemonSet: the command has no --config")
	}
	opts.ConfigFile = configFromMount(t, o, opts.ConfigFile)
	if err := opts.Complete(fs); err != nil {
		t.Fatalf("DaemonSet: --config (the ConfigMap's %s): %v", configKey, err)
	}
	if err := opts.Validate(); err != nil {
		t.Fatalf("DaemonSet: `ipvs-proxy run` would reject its flags and config:\n%v", err)
	}
	return opts
}

// configFromMount finds the ConfigMap key the pod sees at file and writes
// it to a temporary file, whose path it returns.
func configFromMount(t *testing.T, o objects, file string) string {
	t.Helper()
	m, v := mountFor(t, o.ds, file)
	if m == nil || v.ConfigMap == nil || v.ConfigMap.Name != o.cm.Name {
		t.Fatalf("DaemonSet: --config=%s is not in a mount of ConfigMap %s", file, o.cm.Name)
	}
	rel := strings.TrimPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/")
	if m.SubPath != "" {
		t.Fatalf("DaemonSet: the config mount uses subPath, which never sees ConfigMap updates; mount the directory")
	}
	key := rel
	if len(v.ConfigMap.Items) > 0 {
		key = ""
		for _, it := range v.ConfigMap.Items {
			if it.Path == rel {
				key = it.Key
			}
		}
		if key == "" {
			t.Fatalf("DaemonSet: --config=%s: volume %s projects no item at %s", file, v.Name, rel)
		}
	}
	data, ok := o.cm.Data[key]
	if !ok {
		t.Fatalf("DaemonSet: --config=%s is ConfigMap %s's key %q, which it does not have", file, o.cm.Name, key)
	}
	tmp := filepath.Join(t.TempDir(), rel)
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return tmp
}

func TestDaemonSetCommandIsAcceptedByRun(t *testing.T) {
	o := load(t)
	opts := runOptions(t, o)
	if opts.HostnameOverride != nodeName {
		t.Errorf("DaemonSet: --hostname-override is %q with NODE_NAME=%s: want the node's name from the downward API (spec.nodeName)", opts.HostnameOverride, nodeName)
	}
	for _, e := range container(t, o.ds).Env {
		if e.Name == "NODE_NAME" && (e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "spec.nodeName") {
			t.Errorf("DaemonSet: NODE_NAME must come from the downward API's spec.nodeName, is %+v", e)
		}
	}

	// The ownership record must outlive the pod, but not a reboot: in the
	// kernel (the default) it does; a --state-file must be on a hostPath.
	if opts.StateFile == "" {
		return
	}
	m, v := mountFor(t, o.ds, opts.StateFile)
	switch {
	case m == nil:
		t.Errorf("DaemonSet: --state-file %s is not on a mounted volume: a new pod would forget which virtual servers the old one made", opts.StateFile)
	case v.HostPath == nil || !strings.HasPrefix(v.HostPath.Path, "/run/"):
		t.Errorf("DaemonSet: --state-file %s must be on a hostPath under /run (kept across pod restarts, emptied by a reboot like the IPVS table), volume %s is %+v", opts.StateFile, v.Name, v.VolumeSource)
	case v.HostPath.Type == nil || *v.HostPath.Type != corev1.HostPathDirectoryOrCreate:
		t.Errorf("DaemonSet: hostPath %s has type %q, want DirectoryOrCreate (after a reboot it does not exist)", v.HostPath.Path, hostPathType(v.HostPath))
	case m.ReadOnly:
		t.Errorf("DaemonSet: --state-file %s is on a read-only mount", opts.StateFile)
	}
}

func TestDaemonSetProbes(t *testing.T) {
	o := load(t)
	c := container(t, o.ds)
	opts := runOptions(t, o)
	host, portStr, err := net.SplitHostPort(opts.HealthzBindAddress)
	if err != nil {
		t.Fatalf("healthz bind address %q: %v", opts.HealthzBindAddress, err)
	}
	port, _ := strconv.Atoi(portStr)
	bind, _ := netip.ParseAddr(host)

	check := func(kind string, p *corev1.Probe, wantPath, why string) {
		t.Helper()
		if p == nil || p.HTTPGet == nil {
			t.Errorf("DaemonSet: no %s httpGet probe (want %s on port %d: %s)", kind, wantPath, port, why)
			return
		}
		g := p.HTTPGet
		if g.Path != wantPath {
			t.Errorf("DaemonSet: %s probe on %s, want %s: %s", kind, g.Path, wantPath, why)
		}
		got := g.Port.IntValue()
		if g.Port.IntValue() == 0 { // a named port
			for _, cp := range c.Ports {
				if cp.Name == g.Port.String() {
					got = int(cp.ContainerPort)
				}
			}
		}
		if got != port {
			t.Errorf("DaemonSet: %s probe on port %s, but ipvs-proxy serves health on %s (healthzBindAddress)", kind, g.Port.String(), opts.HealthzBindAddress)
		}
		if g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP {
			t.Errorf("DaemonSet: %s probe scheme %s, the health server speaks HTTP", kind, g.Scheme)
		}
		// With hostNetwork an empty host is the node's IP, which only a
		// wildcard bind address is sure to cover.
		if !bind.IsUnspecified() && g.Host != host {
			t.Errorf("DaemonSet: %s probe host %q, but health listens on %s only: set host to %s", kind, g.Host, opts.HealthzBindAddress, host)
		}
	}
	check("liveness", c.LivenessProbe, "/livez", "/livez fails only when syncs are stuck, which a restart can fix")
	check("readiness", c.ReadinessProbe, "/healthz",
		"readiness follows /healthz, which also reports a node being deleted or drained, as load balancers see it")

	for _, cp := range c.Ports {
		if cp.Name == "healthz" && int(cp.ContainerPort) != port {
			t.Errorf("DaemonSet: container port healthz is %d, health is served on %d", cp.ContainerPort, port)
		}
	}
}

// TestAPIServerAddress checks the optional API server override: set from
// the ConfigMap, both keys or neither, and never required (the kubelet's
// KUBERNETES_SERVICE_* stay when the ConfigMap does not set them).
func TestAPIServerAddress(t *testing.T) {
	o := load(t)
	keys := map[string]string{}
	for _, e := range container(t, o.ds).Env {
		if e.Name != "KUBERNETES_SERVICE_HOST" && e.Name != "KUBERNETES_SERVICE_PORT" {
			continue
		}
		r := (*corev1.ConfigMapKeySelector)(nil)
		if e.ValueFrom != nil {
			r = e.ValueFrom.ConfigMapKeyRef
		}
		if r == nil || r.Name != o.cm.Name || r.Optional == nil || !*r.Optional {
			t.Errorf("DaemonSet: %s must be an optional key of ConfigMap %s, is %+v", e.Name, o.cm.Name, e)
			continue
		}
		keys[e.Name] = r.Key
	}
	if len(keys) == 1 {
		t.Errorf("DaemonSet: sets only one of KUBERNETES_SERVICE_HOST and _PORT (%v): the other would still be the kubernetes Service's", keys)
	}
	hostVal, hasHost := o.cm.Data[keys["KUBERNETES_SERVICE_HOST"]]
	portVal, hasPort := o.cm.Data[keys["KUBERNETES_SERVICE_PORT"]]
	if hasHost != hasPort {
		t.Errorf("ConfigMap %s: set both %s and %s, or neither", o.cm.Name, keys["KUBERNETES_SERVICE_HOST"], keys["KUBERNETES_SERVICE_PORT"])
	}
	if hasHost {
		if _, err := netip.ParseAddr(hostVal); err != nil && len(validation.IsDNS1123Subdomain(hostVal)) > 0 {
			t.Errorf("ConfigMap %s: API server host %q is neither an IP nor a DNS name", o.cm.Name, hostVal)
		}
	}
	if hasPort {
		if p, err := strconv.Atoi(portVal); err != nil || p < 1 || p > 65535 {
			t.Errorf("ConfigMap %s: API server port %q is not a port number", o.cm.Name, portVal)
		}
	}
}

func TestConfigMapIsAValidConfig(t *testing.T) {
	o := load(t)
	cm := o.cm
	if cm.Name != "ipvs-proxy" || cm.Namespace != "kube-system" {
		t.Errorf("ConfigMap is %s/%s, want kube-system/ipvs-proxy", cm.Namespace, cm.Name)
	}
	data, ok := cm.Data[configKey]
	if !ok {
		t.Fatalf("ConfigMap %s has no %s key", cm.Name, configKey)
	}
	cfg, warnings, err := options.DecodeConfig([]byte(data))
	if err != nil || len(warnings) > 0 {
		t.Fatalf("ConfigMap %s: %s does not decode as a KubeProxyConfiguration: %v %v", cm.Name, configKey, err, warnings)
	}
	if ignored := options.IgnoredFields(cfg); len(ignored) > 0 {
		t.Errorf("ConfigMap %s: %s sets fields ipvs-proxy ignores: %v", cm.Name, configKey, ignored)
	}
	for _, c := range []struct{ field, got, want string }{
		{"mode", string(cfg.Mode), "ipvs"},
		{"ipvs.scheduler", cfg.IPVS.Scheduler, "rr"},
		{"ipvs.syncPeriod", cfg.IPVS.SyncPeriod.Duration.String(), "30s"},
		{"ipvs.minSyncPeriod", cfg.IPVS.MinSyncPeriod.Duration.String(), "0s"},
		{"healthzBindAddress", cfg.HealthzBindAddress, "0.0.0.0:10256"},
		{"metricsBindAddress", cfg.MetricsBindAddress, "127.0.0.1:10249"},
	} {
		if c.got != c.want {
			t.Errorf("ConfigMap %s: %s is %q, want %q", cm.Name, c.field, c.got, c.want)
		}
	}

	// Through the same path `ipvs-proxy run --config` takes.
	path := filepath.Join(t.TempDir(), configKey)
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := options.NewOptions()
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	opts.AddFlags(fs)
	if err := fs.Parse([]string{"--config=" + path}); err != nil {
		t.Fatal(err)
	}
	if err := opts.Complete(fs); err != nil {
		t.Fatalf("ConfigMap %s: LoadConfig: %v", cm.Name, err)
	}
	if err := opts.Validate(); err != nil {
		t.Fatalf("ConfigMap %s: %s does not validate:\n%v", cm.Name, configKey, err)
	}
	if opts.Scheduler != "rr" || opts.SyncPeriod != 30*time.Second || opts.MinSyncPeriod != 0 ||
		len(opts.ClusterCIDRs) != 1 || opts.ClusterCIDRs[0] != netip.MustParsePrefix("10.244.0.0/16") {
		t.Errorf("ConfigMap %s: loaded as scheduler %q, sync %v, min sync %v, cluster CIDRs %v; want rr, 30s, 0s, [10.244.0.0/16]",
			cm.Name, opts.Scheduler, opts.SyncPeriod, opts.MinSyncPeriod, opts.ClusterCIDRs)
	}
}

// rbacGrant is one (API group, resource, verb).
type rbacGrant struct{ group, resource, verb string }

func TestRBACIsLeastPrivilege(t *testing.T) {
	o := load(t)
	sa, ds := o.sa, o.ds
	if sa.Namespace != ds.Namespace {
		t.Errorf("ServiceAccount %s is in %q, the DaemonSet in %q: a pod can only use its own namespace's", sa.Name, sa.Namespace, ds.Namespace)
	}
	spec := ds.Spec.Template.Spec
	if spec.ServiceAccountName != sa.Name {
		t.Errorf("DaemonSet: serviceAccountName %q, rbac.yaml's ServiceAccount is %q", spec.ServiceAccountName, sa.Name)
	}
	if a := spec.AutomountServiceAccountToken; a != nil && !*a {
		t.Error("DaemonSet: automountServiceAccountToken is false: ipvs-proxy authenticates with the mounted token")
	}
	if a := sa.AutomountServiceAccountToken; a != nil && !*a && spec.AutomountServiceAccountToken == nil {
		t.Error("ServiceAccount: automountServiceAccountToken is false: ipvs-proxy authenticates with the mounted token")
	}

	crb := o.crb
	if crb.RoleRef.Kind != "ClusterRole" || crb.RoleRef.APIGroup != rbacv1.GroupName || crb.RoleRef.Name != o.cr.Name {
		t.Errorf("ClusterRoleBinding %s: roleRef %+v, want ClusterRole %s", crb.Name, crb.RoleRef, o.cr.Name)
	}
	want := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: sa.Namespace}
	if len(crb.Subjects) != 1 || crb.Subjects[0] != want {
		t.Errorf("ClusterRoleBinding %s: subjects %+v, want only %+v", crb.Name, crb.Subjects, want)
	}

	got := map[rbacGrant]bool{}
	for i, r := range o.cr.Rules {
		if len(r.NonResourceURLs) > 0 {
			t.Errorf("ClusterRole %s rule %d grants nonResourceURLs %v", o.cr.Name, i, r.NonResourceURLs)
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					if g == "*" || res == "*" || v == "*" || strings.Contains(res, "/") {
						t.Errorf("ClusterRole %s rule %d grants %q on %q in group %q: no wildcards or subresources", o.cr.Name, i, v, res, g)
					}
					if res == "secrets" {
						t.Errorf("ClusterRole %s rule %d grants %q on secrets: ipvs-proxy reads no Secrets", o.cr.Name, i, v)
					}
					got[rbacGrant{g, res, v}] = true
				}
			}
		}
	}
	required := map[rbacGrant]bool{}
	for _, gr := range []struct{ group, resource string }{{"", "services"}, {"", "nodes"}, {"discovery.k8s.io", "endpointslices"}} {
		for _, v := range []string{"list", "watch"} {
			required[rbacGrant{gr.group, gr.resource, v}] = true
		}
	}
	for _, v := range []string{"create", "patch"} {
		required[rbacGrant{"", "events", v}] = true
	}
	// Nothing else: the informers never get one object, the Node is read
	// by a list, and Events go through core/v1's recorder only.
	allowed := map[rbacGrant]bool{}
	for g := range required {
		if !got[g] {
			t.Errorf("ClusterRole %s does not grant %q on %s (group %q): ipvs-proxy needs it", o.cr.Name, g.verb, g.resource, g.group)
		}
	}
	for g := range got {
		if !required[g] && !allowed[g] {
			t.Errorf("ClusterRole %s grants %q on %s (group %q), which ipvs-proxy does not use", o.cr.Name, g.verb, g.resource, g.group)
		}
	}
}

// ---- the image's iptables wrapper ----

var iptablesCommands = []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"}

// iptablesWrapper is hack/image/iptables-wrapper, which hack/image.sh
// installs as /usr/sbin/iptables-wrapper with every iptables command a link
// to it.
func iptablesWrapper(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "hack", "image", "iptables-wrapper"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestIPTablesWrapper runs the image's iptables wrapper in a fake
// /usr/sbin, with fake xtables binaries and fake rulesets, and checks the
// backend it picks and that it then runs the real command.
func TestIPTablesWrapper(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	wrapper := iptablesWrapper(t)
	const (
		hint   = "*mangle\n:KUBE-IPTABLES-HINT - [0:0]\nCOMMIT\n"
		rules1 = "*nat\n-A POSTROUTING -j MASQUERADE\nCOMMIT\n"
		rules3 = "*nat\n-A A -j ACCEPT\n-A B -j ACCEPT\n-A C -j ACCEPT\nCOMMIT\n"
	)
	for _, tc := range []struct {
		name          string
		legacyTables  string // /proc/net/ip_tables_names; "-" for none
		nft, legacy   string // iptables-*-save output
		want          string
		legacyNotRead bool
	}{
		{name: "no legacy tables", legacyTables: "-", legacy: hint + rules3, want: "nft", legacyNotRead: true},
		{name: "empty legacy tables file", legacyTables: "", legacy: hint + rules3, want: "nft", legacyNotRead: true},
		{name: "kubelet hint in legacy", legacyTables: "nat\nmangle\n", nft: rules3, legacy: hint, want: "legacy"},
		{name: "kubelet hint in nft", legacyTables: "nat\n", nft: hint, legacy: rules3, want: "nft"},
		{name: "more legacy rules", legacyTables: "nat\n", nft: rules1, legacy: rules3, want: "legacy"},
		{name: "as many rules", legacyTables: "nat\n", nft: rules1, legacy: rules1, want: "nft"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sbin := filepath.Join(dir, "sbin")
			proc := filepath.Join(dir, "proc")
			for _, d := range []string{sbin, filepath.Join(proc, "net")} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			write := func(name, content string, mode os.FileMode) {
				t.Helper()
				if err := os.WriteFile(name, []byte(content), mode); err != nil {
					t.Fatal(err)
				}
			}
			write(filepath.Join(sbin, "iptables-wrapper"), wrapper, 0o755)
			for _, c := range iptablesCommands {
				if err := os.Symlink("iptables-wrapper", filepath.Join(sbin, c)); err != nil {
					t.Fatal(err)
				}
			}
			for _, mode := range []string{"nft", "legacy"} {
				write(filepath.Join(sbin, "xtables-"+mode+"-multi"), "#!/bin/sh\necho \""+mode+" $(basename \"$0\") $*\"\n", 0o755)
				out := map[string]string{"nft": tc.nft, "legacy": tc.legacy}[mode]
				write(filepath.Join(dir, mode+".rules"), out, 0o644)
				for _, fam := range []string{"iptables", "ip6tables"} {
					// Only the IPv4 ruleset has rules; IPv6 is empty.
					script := "#!/bin/sh\ntouch " + filepath.Join(dir, mode+".read") + "\n"
					if fam == "iptables" {
						script += "cat " + filepath.Join(dir, mode+".rules") + "\n"
					}
					write(filepath.Join(sbin, fam+"-"+mode+"-save"), script, 0o755)
				}
			}
			if tc.legacyTables != "-" {
				write(filepath.Join(proc, "net", "ip_tables_names"), tc.legacyTables, 0o644)
			}

			run := func(name string, args ...string) string {
				t.Helper()
				cmd := exec.Command(filepath.Join(sbin, name), args...)
				cmd.Env = append(os.Environ(), "IPTABLES_WRAPPER_PROC="+proc)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("%s %v (sh is %s): %v\n%s", name, args, sh, err, stderr.String())
				}
				return string(out)
			}
			if got, want := run("iptables", "-t", "nat", "-S"), tc.want+" iptables -t nat -S\n"; got != want {
				t.Errorf("first iptables call printed %q, want %q (the %s backend)", got, want, tc.want)
			}
			for _, c := range iptablesCommands {
				link, err := os.Readlink(filepath.Join(sbin, c))
				if err != nil || link != "xtables-"+tc.want+"-multi" {
					t.Errorf("after the first call %s points at %q (%v), want xtables-%s-multi", c, link, err, tc.want)
				}
			}
			if got, want := run("ip6tables-restore", "--noflush"), tc.want+" ip6tables-restore --noflush\n"; got != want {
				t.Errorf("ip6tables-restore then printed %q, want %q", got, want)
			}
			if _, err := os.Stat(filepath.Join(dir, "legacy.read")); tc.legacyNotRead && err == nil {
				t.Error("the wrapper ran iptables-legacy-save on a node with no legacy tables: that loads the legacy modules")
			}
		})
	}
}
