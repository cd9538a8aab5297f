// Package cleanup removes what kube-proxy leaves on a node when the node
// moves to ipvs-proxy (`ipvs-proxy cleanup --kube-proxy`, and at start
// with --cleanup-kube-proxy-rules): the leftovers of its IPVS mode and of
// its iptables mode, and nothing else. It decides what is kube-proxy's;
// the kernel writes go through pkg/iptables (Remover), pkg/ipset
// (Remover), pkg/ipvs and pkg/netif, like every other write of ipvs-proxy.
//
// What is removed, in this order:
//
//  1. iptables and ip6tables, nft and legacy (HostIPTables), tables nat,
//     filter and mangle: every rule in a builtin chain (PREROUTING, INPUT,
//     FORWARD, OUTPUT, POSTROUTING) whose -j or -g target is one of the
//     chains below; then those chains are flushed; then deleted, in one
//     iptables-restore per table. The chains, per table, are the exact
//     names in names.go (KUBE-SERVICES, KUBE-POSTROUTING, KUBE-MARK-MASQ,
//     ...) and, in nat only, the per-Service chains of iptables mode:
//     KUBE-SVC-, KUBE-SVL-, KUBE-EXT-,
//     KUBE-FW-, KUBE-SEP- and the older KUBE-XLB- followed by exactly the
//     16-character base32 hash kube-proxy puts there.
//  2. ipsets with one of kube-proxy's exact names (names.go), IPv4 and
//     IPv6 ("KUBE-6-" spelling): only after step 1, because the kernel
//     refuses to destroy a set that a rule still matches on.
//  3. IPVS virtual servers whose address is on the link kube-ipvs0, with
//     their real servers. ipvs-proxy adopts that link for its own VIPs, so
//     this step and step 4 run only when the caller gives Cleaner.Link.
//  4. The link kube-ipvs0 itself, with its addresses; only if it is a dummy
//     link, and only once no virtual server is left on its addresses, since
//     they are what ties a virtual server to kube-proxy on a later run.
//
// What is never touched: kubelet's chains (KUBE-KUBELET-CANARY,
// KUBE-IPTABLES-HINT, filter KUBE-FIREWALL and the INPUT/OUTPUT jumps to it,
// and the nat KUBE-MARK-DROP older kubelets made), any chain, rule or set of
// another program, even one named KUBE-something that is not on the lists,
// rules in non-builtin chains of other programs (a chain of ours that such a
// rule still jumps to stays, emptied, and Run reports it), and every virtual
// server not attributed as above. kube-proxy's own cleanup flushes all of
// IPVS (kube-router#770); this one does not. kube-proxy's nftables mode is
// not covered: its nftables tables are left as they are.
//
// Run keeps going past errors and returns them with one line per removal;
// on a clean node it finds nothing and writes nothing, so it can be re-run.
//
// Virtual servers on node IPs stay. kube-proxy's IPVS mode puts a NodePort
// on every local address but the dummy link's, and records nothing that
// tells them from another program's virtual servers, so removing them
// could remove someone else's.
package cleanup
