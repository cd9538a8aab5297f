// Command ipvs-proxy is a Kubernetes service proxy that programs Linux IPVS,
// a drop-in replacement for kube-proxy's IPVS mode.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"
)

// usageError makes main exit 2, as for a bad flag.
type usageError struct{ error }

func main() {
	setGCPercent()
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	root := newRoot()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	klog.Flush()
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, "ipvs-proxy:", err)
	var ue usageError
	if errors.As(err, &ue) || isFlagError(err) {
		return 2
	}
	return 1
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "ipvs-proxy",
		Short: "Kubernetes service proxy on Linux IPVS, in place of kube-proxy",
		Long: `ipvs-proxy watches Services, EndpointSlices and its own Node and keeps this
node's IPVS table, the VIPs on its dummy interface (kube-ipvs0) and a constant
handful of iptables rules equal to what they ask for. It takes the place of
the kube-proxy DaemonSet and reads kube-proxy's flags and KubeProxyConfiguration:
with no command, it runs the proxy, as "ipvs-proxy run".`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	addRun(root)
	root.AddCommand(runCommand(), statusCommand(), cleanupCommand())
	return root
}

func isFlagError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown flag", "unknown shorthand flag", "invalid argument", "flag needs an argument", "unknown command"} {
		if len(msg) >= len(p) && msg[:len(p)] == p {
			return true
		}
	}
	return false
}
