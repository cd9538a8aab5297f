package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/options"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/proxier"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/status"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/watch"
	"github.com/spf13/cobra"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

type statusFlags struct {
	kubeconfig, master, hostname, output, service, metricsAddr, stateFile string
	counters                                                              bool
}

func statusCommand() *cobra.Command {
	f := statusFlags{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print this node's IPVS table, labelled with the Service each entry belongs to",
		Long: `Print the live IPVS table in the layout of ipvsadm -Ln. When the API server is
reachable, each virtual server ipvs-proxy made is labelled namespace/name:port
(another tool's is not, even at an address and port a Service names: the proxy
leaves it alone); when it is not, the table is printed unlabelled and a note
says so.

With --service NS/NAME, only that Service's virtual servers are printed, and
each of its endpoints is listed with the reason it is or is not programmed.`,
		Example: `  ipvs-proxy status
  ipvs-proxy status --counters
  ipvs-proxy status --output json
  ipvs-proxy status --service default/kubernetes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.output != "text" && f.output != "json" {
				return usageError{fmt.Errorf("invalid --output %q: want text or json", f.output)}
			}
			if f.service != "" && !strings.Contains(f.service, "/") {
				return usageError{fmt.Errorf("invalid --service %q: want NAMESPACE/NAME", f.service)}
			}
			return runStatus(cmd.Context(), f)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig used to label entries with Service names (in-cluster config when empty)")
	fs.StringVar(&f.master, "master", "", "API server address; overrides the kubeconfig's")
	fs.StringVar(&f.hostname, "hostname-override", "", "this node's name, for the Local traffic policies in --service explanations")
	fs.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	fs.StringVar(&f.service, "service", "", "show only this Service (NAMESPACE/NAME) and why each endpoint is or is not programmed")
	fs.BoolVar(&f.counters, "counters", false, "add the active and inactive connection counters")
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", options.DefaultMetricsBindAddress,
		"the running proxy's --metrics-bind-address, where --service reads the settings it builds Services with")
	fs.StringVar(&f.stateFile, "state-file", "", "the running proxy's --state-file, if it was given: its record of the virtual servers it made on node addresses; "+
		"by default the record is in the kernel sets IPVS-PROXY-OWNED(6)")
	return cmd
}

func runStatus(ctx context.Context, f statusFlags) error {
	kipvs, err := ipvs.NewLinux()
	if err != nil {
		return err
	}
	defer kipvs.Close()
	vss, err := kipvs.List()
	if err != nil {
		return err
	}
	opts := runningOptions(ctx, f)
	var labels status.Labels
	var builder *model.Builder
	inputs, zone, err := readServices(ctx, f, opts.NodeName)
	if err != nil {
		fmt.Fprintf(os.Stderr, "note: cannot read Services from the API server, entries are unlabelled: %v\n", err)
	} else {
		// The node's addresses and zone are read now, as the running
		// proxy follows them.
		if hs, err := netif.NewLinux(LinkName).HostAddresses(); err == nil {
			for _, h := range hs {
				opts.NodeIPs = append(opts.NodeIPs, h.Addr)
			}
		}
		opts.Zone = zone
		builder = model.NewBuilder(opts)
		labels = status.LabelsFor(builder, inputs, readOurs(netif.NewLinux(LinkName), ipset.NewLinux(), f.stateFile))
	}
	if f.service != "" {
		vss = onlyService(vss, labels, f.service)
	}
	if f.output == "json" {
		out, err := status.JSON(vss, labels)
		if err != nil {
			return err
		}
		fmt.Print(out)
		return nil
	}
	fmt.Print(status.Text(vss, labels, f.counters))
	if f.service != "" && builder != nil {
		for _, in := range inputs {
			if in.Service.Namespace+"/"+in.Service.Name == f.service {
				fmt.Println()
				fmt.Print(status.Explain(builder.Explain(in)))
				st := builder.Service(in)
				fmt.Print(status.SourceRanges(st))
				fmt.Print(status.ShortCircuit(st))
				fmt.Print(status.Problems(st))
			}
		}
	}
	return nil
}

// runningOptions are the options the running proxy builds Services with,
// read from its metrics server, with --hostname-override over its node
// name. Without them (no proxy, an older one, a metrics server elsewhere)
// they are the defaults, and a note says what that leaves out.
func runningOptions(ctx context.Context, f statusFlags) model.Options {
	opts, err := fetchBuildOptions(ctx, f.metricsAddr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "note: cannot read the running proxy's settings (%v); explanations assume the defaults: "+
			"NodePorts on every node address, externalIPs allowed, no cluster or Service CIDR, no per-Service cap, "+
			"every scheduler available, IPv6 programmed\n", err)
		opts = model.Options{Scheduler: options.DefaultScheduler}
	}
	if f.hostname != "" || opts.NodeName == "" {
		name := f.hostname
		if name == "" {
			name, _ = os.Hostname()
		}
		opts.NodeName = strings.ToLower(name) // as the daemon names its Node
	}
	return opts
}

// readOurs reads what makes a virtual server ipvs-proxy's as the running
// proxy does (loadOwned, and its reads of the dummy link), but only reads:
// missing record sets are an empty record, not made. What cannot be read
// is left out, with a note: entries are then left unlabelled rather than
// claimed for a Service that the proxy may have skipped.
func readOurs(link netif.Interface, sets ipset.Interface, stateFile string) status.Ours {
	ours := status.Ours{LinkAddrs: map[netip.Addr]bool{}, Recorded: map[ipvs.ServiceKey]bool{}}
	if addrs, err := link.Addresses(); err != nil {
		fmt.Fprintf(os.Stderr, "note: cannot read %s's addresses, the virtual servers on them are unlabelled: %v\n", LinkName, err)
	} else {
		for _, a := range addrs {
			ours.LinkAddrs[a] = true
		}
	}
	var owned *proxier.Owned
	var err error
	if stateFile != "" {
		owned, err = proxier.LoadOwned(stateFile)
	} else {
		owned, err = proxier.LoadOwnedInSets(readOnlySets{sets})
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "note: cannot read the ownership record, the virtual servers on node addresses are unlabelled: %v\n", err)
	} else {
		ours.Recorded = owned.Map()
	}
	return ours
}

// readOnlySets lets LoadOwnedInSets read the record without making its
// sets: Ensure leaves a missing set missing, and Entries reads it as
// empty. status calls nothing else on it.
type readOnlySets struct{ ipset.Interface }

func (readOnlySets) Ensure(ipset.Set) error { return nil }

func (s readOnlySets) Entries(name string) ([]ipset.Entry, error) {
	es, err := s.Interface.Entries(name)
	if errors.Is(err, ipset.ErrNotFound) {
		return nil, nil
	}
	return es, err
}

func onlyService(vss []ipvs.VirtualServer, labels status.Labels, svc string) []ipvs.VirtualServer {
	var out []ipvs.VirtualServer
	for _, vs := range vss {
		l := labels[vs.ServiceKey]
		if l == svc || strings.HasPrefix(l, svc+":") {
			out = append(out, vs)
		}
	}
	return out
}

// readServices lists Services and slices once, and reads this node's zone
// label; status is a one-shot command, so no informers. A Node it cannot
// read leaves the zone empty, with a note: the explanations then treat
// zone hints as the daemon does on a node without a zone.
func readServices(ctx context.Context, f statusFlags, nodeName string) ([]model.ServiceInput, string, error) {
	client, err := newClient(f.kubeconfig, f.master, 0, 0)
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var services, slicesOpts metav1.ListOptions // what the daemon watches
	watch.SelectServices(&services)
	watch.SelectSlices(&slicesOpts)
	svcs := &v1.ServiceList{}
	if err := client.List(ctx, "services", services, svcs); err != nil {
		return nil, "", fmt.Errorf("list Services: %w", err)
	}
	slices := &discovery.EndpointSliceList{}
	if err := client.List(ctx, "endpointslices", slicesOpts, slices); err != nil {
		return nil, "", fmt.Errorf("list EndpointSlices: %w", err)
	}
	zone := ""
	switch node, err := client.Node(ctx, nodeName); {
	case err != nil:
		fmt.Fprintf(os.Stderr, "note: cannot read Node %s, explanations assume no zone: %v\n", nodeName, err)
	case node == nil:
		fmt.Fprintf(os.Stderr, "note: no Node %s, explanations assume no zone\n", nodeName)
	default:
		zone = node.Labels[v1.LabelTopologyZone]
	}
	bySvc := map[types.NamespacedName][]*discovery.EndpointSlice{}
	for i := range slices.Items {
		s := &slices.Items[i]
		n := types.NamespacedName{Namespace: s.Namespace, Name: s.Labels[discovery.LabelServiceName]}
		bySvc[n] = append(bySvc[n], s)
	}
	out := make([]model.ServiceInput, 0, len(svcs.Items))
	for i := range svcs.Items {
		s := &svcs.Items[i]
		out = append(out, model.ServiceInput{Service: model.ServiceFrom(s), Slices: model.Slices(bySvc[types.NamespacedName{Namespace: s.Namespace, Name: s.Name}]...)})
	}
	return out, zone, nil
}
