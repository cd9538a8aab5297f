// Package status renders the live IPVS table for `ipvs-proxy status`: the
// ipvsadm -Ln layout the fakes also print, labelled with the Service port
// each virtual server belongs to, or as JSON.
package status

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/model"
)

// Labels maps a virtual server to its Service port ("ns/name:port").
type Labels map[ipvs.ServiceKey]string

// Ours is what makes a virtual server ipvs-proxy's, read as the running
// proxy reads it: the addresses on its dummy link (kube-ipvs0), and the
// keys its ownership record holds (virtual servers it made on node
// addresses, which never go on the link).
type Ours struct {
	LinkAddrs map[netip.Addr]bool
	Recorded  map[ipvs.ServiceKey]bool
}

// LabelsFor builds the labels from the same model that programs the kernel,
// with the same precedence rule: of two Services that want one key, the
// label names the one that holds it.
//
// A key is labelled only if it is ipvs-proxy's by the proxier's rule
// (pkg/proxier's foreign and foreignIn): one of its firewall marks, an
// address on its dummy link, a key its record holds, or a Service's own
// clusterIP, which the proxier claims (and puts back on the link) even
// when the address has gone from the link. Anywhere else the kernel's
// virtual server is another tool's, which the proxier leaves alone and
// skips the Service for ("... ipvs-proxy did not create; skipped"), so
// status does not name the Service on it either.
func LabelsFor(b *model.Builder, inputs []model.ServiceInput, ours Ours) Labels {
	type holder struct {
		e model.Entry
		p model.Precedence
	}
	held := map[ipvs.ServiceKey]holder{}
	allocated := map[ipvs.ServiceKey]bool{}
	for _, in := range inputs {
		st := b.Service(in)
		for _, e := range st.Entries {
			if h, ok := held[e.ServiceKey]; !ok || model.Wins(e, st.Precedence, h.e, h.p) {
				held[e.ServiceKey] = holder{e, st.Precedence}
			}
			// A clusterIP: allocated, not chosen (pkg/proxier's allocatedVIP).
			if !e.Chosen && e.FWMark == 0 && slices.Contains(st.VIPs, e.Addr) {
				allocated[e.ServiceKey] = true
			}
		}
	}
	l := make(Labels, len(held))
	for k, h := range held {
		if ours.has(k) || allocated[k] {
			l[k] = h.e.Owner.String()
		}
	}
	return l
}

func (o Ours) has(k ipvs.ServiceKey) bool {
	if k.FWMark != 0 {
		return ipvs.OwnedMark(k.FWMark)
	}
	return o.LinkAddrs[k.Addr] || o.Recorded[k]
}

// SourceRanges says which sources may reach each LoadBalancer virtual
// server of a Service with loadBalancerSourceRanges; "" when it has none.
func SourceRanges(st model.ServiceState) string {
	if len(st.Firewall) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("loadBalancerSourceRanges: only these sources reach the LoadBalancer IPs (the node itself when one of its addresses is in them; its connections come from the LB IP):\n")
	for _, fw := range st.Firewall {
		var from []string
		for _, r := range st.SourceRanges {
			if r.SetMember == fw {
				from = append(from, r.Source.String())
			}
		}
		if len(from) == 0 {
			from = []string{"nobody (no valid range of this family)"}
		}
		fmt.Fprintf(&b, "  %s %s from %s\n", fw.Proto, netip.AddrPortFrom(fw.Addr, fw.Port), strings.Join(from, ", "))
	}
	return b.String()
}

// ShortCircuit says which firewall-mark virtual server serves in-cluster
// clients of each externalTrafficPolicy Local address; "" when none.
func ShortCircuit(st model.ServiceState) string {
	if len(st.ShortCircuit) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("externalTrafficPolicy Local: this node's pods and the node itself reach every endpoint through these addresses, by the firewall-mark virtual server named:\n")
	for _, m := range st.ShortCircuit {
		fmt.Fprintf(&b, "  %s %s -> %s\n", m.Proto, netip.AddrPortFrom(m.Addr, m.Port), ipvs.FWMarkKey(m.Mark, m.Addr.Is6()))
	}
	return b.String()
}

// Text is the ipvsadm -Ln layout; labels may be nil (API unreachable).
func Text(vss []ipvs.VirtualServer, labels Labels, counters bool) string {
	var label func(ipvs.ServiceKey) string
	if labels != nil {
		label = func(k ipvs.ServiceKey) string { return labels[k] }
	}
	return ipvs.Format(vss, label, counters)
}

type jsonServer struct {
	Protocol    string     `json:"protocol"`
	Address     string     `json:"address"`
	Port        uint16     `json:"port"`
	Scheduler   string     `json:"scheduler"`
	Persistent  bool       `json:"persistent"`
	Timeout     uint32     `json:"timeout,omitempty"`
	FWMark      uint32     `json:"fwmark,omitempty"`
	Service     string     `json:"service,omitempty"`
	RealServers []jsonReal `json:"realServers"`
}

type jsonReal struct {
	Address       string `json:"address"`
	Port          uint16 `json:"port"`
	Forward       string `json:"forward"`
	Weight        int32  `json:"weight"`
	ActiveConns   uint32 `json:"activeConns"`
	InactiveConns uint32 `json:"inactiveConns"`
}

// JSON is the same table as a JSON array, sorted like Text.
func JSON(vss []ipvs.VirtualServer, labels Labels) (string, error) {
	out := []jsonServer{}
	for _, vs := range ipvs.Sorted(vss) {
		s := jsonServer{Protocol: string(vs.Proto), Address: vs.Addr.String(), Port: vs.Port, Scheduler: vs.Scheduler,
			Persistent: vs.Persistent, Timeout: vs.Timeout, FWMark: vs.FWMark, Service: labels[vs.ServiceKey], RealServers: []jsonReal{}}
		for _, d := range vs.Destinations {
			s.RealServers = append(s.RealServers, jsonReal{Address: d.Addr.String(), Port: d.Port, Forward: d.Forward.String(), Weight: d.Weight,
				ActiveConns: d.ActiveConns, InactiveConns: d.InactiveConns})
		}
		out = append(out, s)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode status as JSON: %w", err)
	}
	return string(b) + "\n", nil
}

// Explain prints, per endpoint, whether and why it is programmed.
func Explain(es []model.Explanation) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s %-28s %-12s %-62s %s\n", "PORT", "ENDPOINT", "NODE", "CLUSTER-IP", "EXTERNAL")
	for _, e := range es {
		node := e.Node
		if node == "" {
			node = "-"
		}
		fmt.Fprintf(&b, "%-10s %-28s %-12s %-62s %s\n", e.Port, e.Endpoint, node, e.Internal, e.External)
	}
	return b.String()
}

// Problems lists what the builder reported about the Service (an address
// refused, a port skipped, the cap reached); "" when nothing. Conflicts
// with other Services (an address another one holds) are settled by the
// running proxy across Services, and are in the Service's Events.
func Problems(st model.ServiceState) string {
	if len(st.Problems) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("problems (conflicts with other Services are in the Service's Events):\n")
	for _, p := range st.Problems {
		fmt.Fprintf(&b, "  %s\n", p)
	}
	return b.String()
}
