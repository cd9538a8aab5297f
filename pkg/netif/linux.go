//go:build linux

package netif

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/nlbatch"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// dumpAttempts bounds the retries of a netlink dump that the kernel marked
// interrupted (NLM_F_DUMP_INTR: the table changed while it was being read;
// netlink v1.3+ then returns partial results with ErrDumpInterrupted).
const dumpAttempts = 5

// linux keeps one netlink socket for its requests: a full sync adds an
// address per Service, and a socket per request (the package-level
// netlink functions) costs more than the request. The sync loop and a
// periodic resync's read (proxier.ReadKernel) call it at once, and a
// Handle shares one socket and sequence number between its requests, so
// mu holds the Handle for one request at a time.
type linux struct {
	name string
	mu   sync.Mutex
	h    *netlink.Handle
	sock *nlbatch.Socket // AddAddresses and DeleteAddresses, the sync loop's only; opened on first use
	// dumps reads addresses (dumpAddrs), under mu; opened on first use.
	dumps *nlbatch.Socket

	// linkType is the only type of link under name that it acts on:
	// "dummy". Tests give loopback's "device", on kernels that cannot make
	// dummy links.
	linkType string
}

// handle runs one request on the Handle, which it holds for that long.
func handle[T any](l *linux, request func(h *netlink.Handle) (T, error)) (T, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return request(l.h)
}

// NewLinux returns the Interface for the dummy link linkName over netlink.
func NewLinux(linkName string) Interface {
	return newLinux(linkName, "dummy")
}

func newLinux(linkName, linkType string) *linux {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		h = &netlink.Handle{} // a socket per request, as the package functions do
	}
	return &linux{name: linkName, linkType: linkType, h: h}
}

// ours returns the link, nil without error when it does not exist, or the
// refusal of a link of another type (see the package doc).
func (l *linux) ours() (netlink.Link, error) {
	link, err := l.link()
	if err != nil || link == nil {
		return nil, err
	}
	if t := link.Type(); t != l.linkType {
		return nil, notDummy(l.name, t, l.linkType)
	}
	return link, nil
}

// link returns the link, or nil without error when it does not exist.
func (l *linux) link() (netlink.Link, error) {
	link, err := handle(l, func(h *netlink.Handle) (netlink.Link, error) { return h.LinkByName(l.name) })
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, nil
		}
		return nil, fmt.Errorf("look up link %s: %w", l.name, err)
	}
	return link, nil
}

func (l *linux) EnsureLink() error {
	// Another kind of link under our name is not ours to fill with VIPs.
	link, err := l.ours()
	if err != nil || link != nil {
		return err
	}
	l.mu.Lock()
	err = l.h.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: l.name}})
	l.mu.Unlock()
	if err != nil && !errors.Is(err, unix.EEXIST) { // EEXIST: created meanwhile
		return fmt.Errorf("create dummy link %s: %w", l.name, err)
	}
	return nil
}

func (l *linux) DeleteLink() error {
	link, err := l.ours()
	if err != nil || link == nil {
		return err
	}
	l.mu.Lock()
	err = l.h.LinkDel(link)
	l.mu.Unlock()
	if err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete link %s: %w", l.name, err)
	}
	return nil
}

// prefixes lists every address on the link, with the kernel's prefix length.
func (l *linux) prefixes(link netlink.Link) ([]netip.Prefix, error) {
	addrs, err := retryDump("list addresses of "+l.name, func() ([]linkAddr, error) { return l.dumpAddrs(link.Attrs().Index) })
	if err != nil {
		return nil, err
	}
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.prefix)
	}
	return sortedPrefixes(out), nil
}

func (l *linux) Addresses() ([]netip.Addr, error) {
	// Another kind of link's addresses are not ours: read as ours, the
	// virtual servers on them would be taken for ipvs-proxy's.
	link, err := l.ours()
	if err != nil {
		return nil, err
	}
	if link == nil {
		return []netip.Addr{}, nil
	}
	ps, err := l.prefixes(link)
	if err != nil {
		return nil, err
	}
	out := []netip.Addr{}
	for _, p := range ps {
		if !p.Addr().Is6() || !p.Addr().IsLinkLocalUnicast() {
			out = append(out, p.Addr())
		}
	}
	return out, nil
}

func (l *linux) HostAddresses() ([]HostAddress, error) {
	links, err := retryDump("list links", func() ([]netlink.Link, error) {
		return handle(l, func(h *netlink.Handle) ([]netlink.Link, error) { return h.LinkList() })
	})
	if err != nil {
		return nil, err
	}
	names := map[int]string{}
	for _, link := range links {
		names[link.Attrs().Index] = link.Attrs().Name
	}
	// One dump of all addresses rather than one per link.
	addrs, err := retryDump("list addresses", func() ([]linkAddr, error) { return l.dumpAddrs(0) })
	if err != nil {
		return nil, err
	}
	out := []HostAddress{}
	for _, a := range addrs {
		name, ok := names[a.index]
		if !ok || name == l.name { // !ok: the link came after the link dump
			continue
		}
		out = append(out, HostAddress{Link: name, Addr: a.prefix.Addr()})
	}
	sortHostAddresses(out)
	return out, nil
}

func (l *linux) Link() (*LinkState, error) {
	link, err := l.link()
	if link == nil || err != nil {
		return nil, err
	}
	return linkState(link), nil
}

func linkState(link netlink.Link) *LinkState {
	return &LinkState{Type: link.Type(), Up: link.Attrs().Flags&net.FlagUp != 0}
}

func (l *linux) Dump() (string, error) {
	link, err := l.link()
	if err != nil {
		return "", err
	}
	if link == nil {
		return Format(l.name, nil, nil), nil
	}
	ps, err := l.prefixes(link)
	if err != nil {
		return "", err
	}
	return Format(l.name, linkState(link), ps), nil
}

// retryDump runs a netlink dump again while the kernel reports it
// interrupted, and never returns the partial result of an interrupted one.
func retryDump[T any](what string, dump func() (T, error)) (T, error) {
	var zero T
	for range dumpAttempts {
		v, err := dump()
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return zero, fmt.Errorf("%s: %w", what, err)
		}
	}
	return zero, fmt.Errorf("%s: interrupted %d times in a row: %w", what, dumpAttempts, netlink.ErrDumpInterrupted)
}
