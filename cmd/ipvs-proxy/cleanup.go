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
	kubeProxy := false
	cmd := &cobra.Command{
		Use:   "cleanup",
		Short: "Remove everything ipvs-proxy made (and, with --kube-proxy, what kube-proxy left), nothing else",
		Long: `Remove ipvs-proxy's virtual servers (those on its dummy interface's addresses
and those it recorded on node addresses), its dummy interface and its iptables
chains. Virtual servers, addresses and rules it did not make are left alone.

With --kube-proxy, also remove what kube-proxy's IPVS or iptables mode left
behind when it was replaced: its KUBE-* chains and rules, its KUBE-* ipsets,
and the virtual servers on kube-ipvs0's addresses.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return runCleanup(stateFile, kubeProxy) },
	}
	cmd.Flags().StringVar(&stateFile, "state-file", stateFile, "the file run's --state-file named, if it was given; by default the record is in the kernel sets IPVS-PROXY-OWNED(6)")
	cmd.Flags().BoolVar(&kubeProxy, "kube-proxy", false, "also remove kube-proxy's leftovers (chains, ipsets, kube-ipvs0)")
	return cmd
}

func runCleanup(stateFile string, kubeProxy bool) error {
	kipvs, err := ipvs.NewLinux()
	if err != nil {
		return err
	}
	defer kipvs.Close()
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
	owned, err := loadOwned(stateFile)
	if err != nil {
		return err
	}
	removed, perrs := proxier.Cleanup(kipvs, link, owned)
	for _, r := range removed {
		fmt.Println(r)
	}
	errs = append(errs, perrs...)
	for _, fam := range []iptables.Family{iptables.IPv4, iptables.IPv6} {
		ipt, err := iptables.NewLinux(fam)
		if err != nil {
			continue // no iptables of this family: nothing of ours there
		}
		if err := ipt.Delete(); err != nil {
			errs = append(errs, err)
		} else {
			fmt.Printf("iptables %s: removed ipvs-proxy's chains\n", fam)
		}
	}
	// The sets go after the rules that match on them: the kernel refuses to
	// destroy a set a rule still names.
	sets := ipset.NewLinux()
	for _, s := range append(proxier.OwnedSets(), proxier.RecordSets()...) {
		if err := sets.Destroy(s.Name); err != nil {
			errs = append(errs, err)
		} else {
			fmt.Println("ipset: destroy", s.Name)
		}
	}
	if stateFile != "" {
		if err := os.Remove(stateFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
