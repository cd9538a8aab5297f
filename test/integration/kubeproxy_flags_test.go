package integration

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/options"
	"github.com/ipvs-proxy/ipvs-proxy/test/apiserver"
	"sigs.k8s.io/yaml"
)

var updateFlagList = flag.Bool("update", false, "rewrite pkg/options' list of kube-proxy's flags from the binary")

var flagListPath = filepath.Join("../../pkg/options", options.FlagListFile)

// TestKubeProxyFlagList: the list of kube-proxy's flags that pkg/options'
// tests check ipvs-proxy against is the real kube-proxy v1.37's: the names
// its --help shows, and the hidden (deprecated) ones, which it accepts.
// -update rewrites the list from the binary.
func TestKubeProxyFlagList(t *testing.T) {
	bin, err := apiserver.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	kubeProxy := filepath.Join(bin, "kube-proxy")
	if _, err := os.Stat(kubeProxy); err != nil {
		t.Fatalf("%v: build the test binaries first with hack/build-tools.sh, or set IPVS_PROXY_BIN", err)
	}
	help := kubeProxyRun(t, kubeProxy, "--help")
	var got []string
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9-]+)`).FindAllStringSubmatch(help, -1) {
		got = append(got, m[1])
	}
	slices.Sort(got)
	got = slices.Compact(got)
	if len(got) < 50 {
		t.Fatalf("kube-proxy --help shows %d flags, want more than 50:\n%s", len(got), help)
	}

	data, err := os.ReadFile(flagListPath)
	if err != nil {
		t.Fatal(err)
	}
	shown, hidden := options.ParseFlagList(data)
	if *updateFlagList {
		writeFlagList(t, data, got, hidden)
		return
	}
	if d := diffLines(shown, got); d != "" {
		t.Errorf("%s differs from kube-proxy --help (go test ./test/integration -run TestKubeProxyFlagList -update rewrites it):\n%s", flagListPath, d)
	}
	for _, name := range hidden {
		// An unknown flag is a parse error naming it; a known one parses
		// (or fails on its value) and --version exits 0.
		out := kubeProxyRun(t, kubeProxy, "--"+name+"=0", "--version")
		if strings.Contains(out, "unknown flag: --"+name) {
			t.Errorf("kube-proxy does not have the hidden flag --%s: %s", name, out)
		}
	}
}

func kubeProxyRun(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run() // the exit code of --help varies; the output is what counts
	return out.String()
}

// writeFlagList keeps the file's comment and hidden names, and writes the
// names --help shows.
func writeFlagList(t *testing.T, old []byte, shown, hidden []string) {
	var b strings.Builder
	for _, line := range strings.SplitAfter(string(old), "\n") {
		if strings.HasPrefix(line, "#") {
			b.WriteString(line)
		}
	}
	lines := slices.Clone(shown)
	for _, h := range hidden {
		lines = append(lines, h+" hidden")
	}
	slices.Sort(lines)
	b.WriteString(strings.Join(lines, "\n") + "\n")
	if err := os.WriteFile(flagListPath, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// diffLines lists what only want has (-) and what only got has (+).
func diffLines(want, got []string) string {
	var out []string
	for _, w := range want {
		if !slices.Contains(got, w) {
			out = append(out, "- "+w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			out = append(out, "+ "+g)
		}
	}
	return strings.Join(out, "\n")
}

// TestKubeProxyConfigFields: every field kube-proxy writes with
// --write-config-to (its whole KubeProxyConfiguration, defaulted) has an
// entry in pkg/options' KubeProxySettings, so the README's table covers
// the real binary's configuration and not only the Go type ipvs-proxy
// links.
func TestKubeProxyConfigFields(t *testing.T) {
	bin, err := apiserver.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "config.conf")
	out := kubeProxyRun(t, filepath.Join(bin, "kube-proxy"), "--write-config-to="+file)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("kube-proxy --write-config-to wrote nothing: %v\n%s", err, out)
	}
	var tree map[string]any
	if err := yaml.Unmarshal(data, &tree); err != nil {
		t.Fatal(err)
	}
	var leaves []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		m, ok := v.(map[string]any)
		if !ok {
			leaves = append(leaves, prefix)
			return
		}
		for k, child := range m {
			walk(strings.TrimPrefix(prefix+"."+k, "."), child)
		}
	}
	walk("", tree)
	if len(leaves) < 50 {
		t.Fatalf("kube-proxy wrote %d fields, want more than 50:\n%s", len(leaves), data)
	}
	for _, path := range leaves {
		if path == "apiVersion" || path == "kind" {
			continue
		}
		covered := slices.ContainsFunc(options.KubeProxySettings, func(s options.Setting) bool {
			return s.Field != "" && (path == s.Field || strings.HasPrefix(path, s.Field+"."))
		})
		if !covered {
			t.Errorf("kube-proxy's config field %s is not in pkg/options' KubeProxySettings", path)
		}
	}
}
