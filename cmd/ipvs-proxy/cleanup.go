package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/cleanup"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netif"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/proxier"
	"github.com/spf13/cobra"
)

func cleanupCommand() *cobra.Command {
	stateFile := ""
	kubeProxy, rulesOnly := false, false
	cmd := &cobra.Command{
		Use:   "cleanup",
		Short: "Remove everything ipvs-proxy made (and, with --kube-proxy, what kube-proxy left), nothing else",
		Long: `Remove ipvs-proxy's virtual servers (those on its dummy interface's addresses
and those it recorded on node addresses), its dummy interface and its iptables
chains. Virtual servers, addresses and rules it did not make are left alone.

With --kube-proxy, also remove what kube-proxy's IPVS or iptables mode left
behind when it was replaced: its KUBE-* chains and rules, its KUBE-* ipsets,
and the virtual servers on kube-ipvs0's addresses.

With --rules-only, remove only ipvs-proxy's iptables chains and ipsets, and
leave every virtual server and the dummy interface: for a node handed back
to kube-proxy, whose IPVS mode takes the virtual servers over and deletes
those it does not want on its own.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if kubeProxy && rulesOnly {
				return errors.New("--rules-only leaves IPVS alone; --kube-proxy removes kube-ipvs0's virtual servers: give one")
			}
			return runCleanup(stateFile, kubeProxy, rulesOnly)
		},
	}
	cmd.Flags().StringVar(&stateFile, "state-file", stateFile, "the file run's --state-file named, if it was given; by default the record is in the kernel sets IPVS-PROXY-OWNED(6)")
	cmd.Flags().BoolVar(&kubeProxy, "kube-proxy", false, "also remove kube-proxy's leftovers (chains, ipsets, kube-ipvs0)")
	cmd.Flags().BoolVar(&rulesOnly, "rules-only", false, "remove only ipvs-proxy's iptables chains and ipsets, no virtual server (a node going back to kube-proxy)")
	return cmd
}

func runCleanup(stateFile string, kubeProxy, rulesOnly bool) error {
	var kipvs *ipvs.Linux // none with --rules-only: IPVS (and its module) is not needed
	var err error
	if !rulesOnly {
		if kipvs, err = ipvs.NewLinux(); err != nil {
			return err
		}
		defer kipvs.Close()
	}
	link := netif.NewLinux(LinkName)
	var errs []error
	if kubeProxy {
		ipts, ierrs := cleanup.HostIPTables()
		errs = append(errs, ierrs...)
		c := &cleanup.Cleaner{IPTables: ipts, IPSets: cleanup.NewLinuxIPSets(), IPVS: kipvs, Link: link}
		removed, cerrs := c.Run()
		for _, r := range removed {
			fmt.Println("kube-proxy:", r)
		}
		errs = append(errs, cerrs...)
	}
	k := ownState{Link: link, IPTables: map[iptables.Family]iptables.Interface{}, Sets: ipset.NewLinux()}
	for _, fam := range []iptables.Family{iptables.IPv4, iptables.IPv6} {
		if ipt, err := iptables.NewLinux(fam); err == nil { // else no iptables of this family: nothing of ours there
			k.IPTables[fam] = ipt
		}
	}
	var owned *proxier.Owned // nil: leave IPVS alone
	if !rulesOnly {
		if owned, err = loadOwned(stateFile); err != nil {
			return err
		}
		k.IPVS = kipvs
	}
	removed, rerrs := removeOwn(k, owned)
	for _, r := range removed {
		fmt.Println(r)
	}
	errs = append(errs, rerrs...)
	if stateFile != "" {
		if err := os.Remove(stateFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ownState is the kernel where ipvs-proxy's own objects are.
type ownState struct {
	IPVS     ipvs.Interface
	Link     netif.Interface
	IPTables map[iptables.Family]iptables.Interface // the families the host has
	Sets     ipset.Interface
}

// removeOwn removes what ipvs-proxy made, and says what went: with the
// ownership record, its virtual servers and its dummy link (with none, IPVS
// is left alone: --rules-only), then its chains, then its sets, which the
// kernel destroys only once no rule names them.
func removeOwn(k ownState, owned *proxier.Owned) (removed []string, errs []error) {
	if owned != nil {
		removed, errs = proxier.Cleanup(k.IPVS, k.Link, owned)
	}
	for _, fam := range []iptables.Family{iptables.IPv4, iptables.IPv6} {
		if ipt := k.IPTables[fam]; ipt != nil {
			if err := ipt.Delete(); err != nil {
				errs = append(errs, err)
			} else {
				removed = append(removed, fmt.Sprintf("iptables %s: removed ipvs-proxy's chains", fam))
			}
		}
	}
	for _, s := range append(proxier.OwnedSets(), proxier.RecordSets()...) {
		if err := k.Sets.Destroy(s.Name); err != nil {
			errs = append(errs, err)
		} else {
			removed = append(removed, "ipset: destroy "+s.Name)
		}
	}
	return removed, errs
}
