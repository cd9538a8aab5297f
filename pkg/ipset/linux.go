//go:build linux

package ipset

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/nlbatch"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// revision is the set type revision ipvs-proxy creates, for both types:
// the one netlink v1.3.1 picks by default. It knows sctp, and every kernel
// since 2.6.39 has it. Later revisions add counters, comments, skbinfo and
// bucketsize, none of which ipvs-proxy uses, and bucketsize's two header
// attributes make netlink's IpsetList log a line each to stderr.
const revision = 1

// maxElements is the most members a set ipvs-proxy creates may hold. The
// kernel's default, 65,536, is a limit the sets shared by every Service
// reach in a large cluster (IPVS-PROXY-SERVICE-PORTS holds every VIP:port,
// IPVS-PROXY-SOURCE-RANGES every Service's ranges × LB IP:ports), and a
// full set refuses the next Service's members. A hash set allocates for
// the members it holds, not for its limit. Sets made before (by an older
// ipvs-proxy) keep their limit until `ipvs-proxy cleanup` removes them.
const maxElements = 1 << 20

// skbinfoRevision is the first revision of hash:ip,port with skbinfo
// (Linux 3.19), for Set.SkbInfo; bucketsize came one revision later.
const skbinfoRevision = 5

// dumpAttempts bounds the retries of a dump the kernel marked interrupted.
const dumpAttempts = 5

// linux keeps one netlink socket for every request: a full sync adds
// thousands of members, and a socket per request (the package-level
// netlink functions) costs more than the request itself. The sync loop and
// a periodic resync's read (proxier.ReadKernel: Entries) call it at once,
// and a Handle shares one socket and sequence number between its
// requests, so mu holds the Handle for one request at a time.
type linux struct {
	mu   *sync.Mutex
	h    *netlink.Handle
	sock *nlbatch.Socket // AddAll and DelAll, the sync loop's only; opened on first use
}

// call makes one request on the Handle, holding it for that long.
func (l linux) call(request func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return guard(request)
}

// NewLinux returns the kernel's sets over netlink, so ipvs-proxy's image
// needs no ipset binary.
func NewLinux() Interface {
	h, err := netlink.NewHandle(unix.NETLINK_NETFILTER)
	if err != nil {
		h = &netlink.Handle{} // a socket per request, as the package functions do
	}
	return &linux{mu: &sync.Mutex{}, h: h}
}

var _ Remover = &linux{}

// NewLinuxRemover is NewLinux for Remover's one use, `ipvs-proxy cleanup`.
func NewLinuxRemover() Remover { return NewLinux().(*linux) }

func (l linux) Ensure(s Set) error {
	if err := checkSet(s); err != nil {
		return err
	}
	// Read first: a sync that finds the set in place writes nothing.
	h, err := readHeader(s.Name)
	if errors.Is(err, ErrNotFound) {
		opts := netlink.IpsetCreateOptions{Family: unix.AF_INET, Revision: revision, MaxElements: maxElements}
		if s.SkbInfo {
			opts.Revision, opts.Skbinfo = skbinfoRevision, true
		}
		if s.IPv6 {
			opts.Family = unix.AF_INET6
		}
		err = l.call(func() error { return l.h.IpsetCreate(s.Name, string(s.Type), opts) })
		if !errors.Is(err, unix.EEXIST) { // EEXIST: created meanwhile; look at it
			if err != nil {
				return fmt.Errorf("create ipset %s %s family %s: %w", s.Name, s.Type, family(s.IPv6), err)
			}
			return nil
		}
		h, err = readHeader(s.Name)
	}
	if err != nil {
		return fmt.Errorf("ensure ipset %s: %w", s.Name, err)
	}
	if got, ok := h.set(); !ok || got != s {
		return existsAs(s, h.typ, h.familyName())
	}
	return nil
}

func (l linux) Entries(name string) ([]Entry, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	hs, es, err := dump(name, false)
	if err != nil {
		return nil, fmt.Errorf("list ipset %s: %w", name, err)
	}
	if len(hs) != 1 {
		return nil, fmt.Errorf("list ipset %s: kernel answered %d headers for one set", name, len(hs))
	}
	if _, ok := hs[0].set(); !ok {
		return nil, fmt.Errorf("list ipset %s: type %s family %s is not one ipvs-proxy makes", name, hs[0].typ, hs[0].familyName())
	}
	if es == nil {
		es = []Entry{} // an empty set is a list, as the fake's
	}
	sortEntries(es)
	return es, nil
}

// Add and Del go through the batch socket too, one member to a batch: a
// change-by-change sync writes a member or two (a local endpoint's
// hairpin entry), and netlink's IpsetAdd and IpsetDel built each request
// as attribute trees and read its answer into fresh buffers, a fifth of
// the CPU of such a sync in the emulated test VM. The message is the
// same (entryRequest), without NLM_F_EXCL as `ipset -exist` sends it: a
// member already present (add) or absent (del) is success.
func (l *linux) Add(name string, e Entry) error {
	return l.AddAll(name, []Entry{e})[0]
}

// Del's missing set is success, as DelAll's is.
func (l *linux) Del(name string, e Entry) error {
	return l.DelAll(name, []Entry{e})[0]
}

func (l linux) Destroy(name string) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("destroy: %w", err)
	}
	if err := l.destroy(name); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("destroy ipset %s: %w", name, err)
	}
	return nil
}

// destroy is Destroy for any name. netlink sends no NLM_F_EXCL here, so
// the kernel answers success for a missing set; ErrNotFound is for a
// library that does send it.
func (l linux) destroy(name string) error {
	return kernelError(l.call(func() error { return l.h.IpsetDestroy(name) }))
}

func (l *linux) DestroySets(match func(name string) bool) ([]string, []error) {
	names, err := HostSetNames()
	if err != nil {
		return nil, []error{err}
	}
	return destroySets(names, match, l.destroy)
}

// HostSetNames lists the names of every set on the host, any program's,
// without their members: to tell whether another proxy left its sets.
func HostSetNames() ([]string, error) {
	hs, err := headers("")
	if err != nil {
		return nil, fmt.Errorf("list ipsets: %w", err)
	}
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = h.name
	}
	return names, nil
}

func (l linux) Dump() (string, error) {
	hs, err := headers("")
	if err != nil {
		return "", fmt.Errorf("list ipsets: %w", err)
	}
	var sets []Contents
	for _, h := range hs {
		if checkName(h.name) != nil {
			continue // not ours: not even its members are read
		}
		s, ok := h.set()
		if !ok {
			return "", fmt.Errorf("ipset %s: type %s family %s is not one ipvs-proxy makes", h.name, h.typ, h.familyName())
		}
		es, err := l.Entries(h.name)
		if errors.Is(err, ErrNotFound) {
			continue // destroyed since the list
		}
		if err != nil {
			return "", err
		}
		sets = append(sets, Contents{Set: s, Entries: es})
	}
	return Format(sets), nil
}

// kernelError turns the kernel's answers that callers act on into this
// package's errors.
func kernelError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOENT):
		return ErrNotFound
	case errors.Is(err, nl.IPSetError(nl.IPSET_ERR_PROTOCOL)), errors.Is(err, nl.IPSetError(nl.IPSET_ERR_SKBINFO)):
		// checkEntry has ruled out every other malformed entry.
		return ErrMismatch
	case errors.Is(err, nl.IPSetError(nl.IPSET_ERR_BUSY)):
		return ErrInUse
	}
	return err
}

// guard turns a panic inside netlink into an error: v1.3.1's ipsetExecute
// asserts that every error is a syscall.Errno, and neither an interrupted
// dump (ErrDumpInterrupted) nor an error annotated with the kernel's
// extended ack message is one.
func guard(call func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("netlink ipset call failed: %v", p)
		}
	}()
	return call()
}

// header is what the kernel says of a set besides its members.
type header struct {
	name, typ string
	family    uint8
	skbinfo   bool
}

// set returns h as a Set, false if it is no kind ipvs-proxy makes.
func (h header) set() (Set, bool) {
	s := Set{Name: h.name, Type: Type(h.typ), IPv6: h.family == unix.AF_INET6, SkbInfo: h.skbinfo}
	ok := checkSet(s) == nil && (h.family == unix.AF_INET || h.family == unix.AF_INET6)
	return s, ok
}

func (h header) familyName() string {
	switch h.family {
	case unix.AF_INET, unix.AF_INET6:
		return family(h.family == unix.AF_INET6)
	}
	return fmt.Sprint(h.family)
}

// ipsetFlagListHeader is IPSET_FLAG_LIST_HEADER of linux/netfilter/ipset/
// ip_set.h: list name, type and family but no members, as `ipset list -t`
// does. vishvananda/netlink does not define it.
const ipsetFlagListHeader = 1 << 2

// readHeader reads the header of the named set; ErrNotFound if it is missing.
func readHeader(name string) (header, error) {
	hs, err := headers(name)
	if err != nil {
		return header{}, err
	}
	if len(hs) != 1 || hs[0].name != name {
		return header{}, fmt.Errorf("kernel answered %d headers for one set", len(hs))
	}
	return hs[0], nil
}

// headers reads the headers of the named set, or of every set when name is
// "", without their members, as `ipset list -t` does.
func headers(name string) ([]header, error) {
	hs, _, err := dump(name, true)
	return hs, err
}

// dump lists the named set (every set when name is "") with its members
// unless headerOnly. It is ipvs-proxy's own reader, not netlink's
// IpsetList: that one reads every member even for a header, cannot read a
// member's mark (skbinfo), and logs a line to stderr for every attribute
// newer than the library (bucketsize and initval, on sets that the ipset
// binary made, and each member's mark).
func dump(name string, headerOnly bool) ([]header, []Entry, error) {
	var err error
	for range dumpAttempts {
		var hs []header
		var es []Entry
		hs, es, err = dumpOnce(name, headerOnly)
		if !errors.Is(err, nl.ErrDumpInterrupted) {
			return hs, es, err
		}
	}
	return nil, nil, fmt.Errorf("interrupted %d times in a row: %w", dumpAttempts, err)
}

// maxPresize bounds the list dumpOnce makes from a header's count.
const maxPresize = 1 << 20

func dumpOnce(name string, headerOnly bool) ([]header, []Entry, error) {
	req := nl.NewNetlinkRequest(nl.IPSET_CMD_LIST|(unix.NFNL_SUBSYS_IPSET<<8), nl.GetIpsetFlags(nl.IPSET_CMD_LIST))
	req.AddData(&nl.Nfgenmsg{NfgenFamily: uint8(unix.AF_NETLINK), Version: nl.NFNETLINK_V0})
	req.AddData(nl.NewRtAttr(nl.IPSET_ATTR_PROTOCOL, nl.Uint8Attr(nl.IPSET_PROTOCOL)))
	if name != "" {
		req.AddData(nl.NewRtAttr(nl.IPSET_ATTR_SETNAME, nl.ZeroTerminated(name)))
	}
	if headerOnly {
		req.AddData(&nl.Uint32Attribute{Type: nl.IPSET_ATTR_FLAGS | nl.NLA_F_NET_BYTEORDER, Value: ipsetFlagListHeader})
	}
	// Each message is parsed as it arrives: a set of 50,000 members is
	// megabytes of messages, which Execute would hold until the last.
	// ExecuteIter, unlike netlink's ipsetExecute, returns errors without
	// asserting their type, so there is nothing to guard.
	var out []header
	var entries []Entry
	var parseErr error
	err := req.ExecuteIter(unix.NETLINK_NETFILTER, 0, func(m []byte) bool {
		if len(m) < nl.SizeofNfgenmsg {
			return true
		}
		var h header
		for typ, val := range attributes(m[nl.SizeofNfgenmsg:]) {
			switch {
			case typ == nl.IPSET_ATTR_SETNAME:
				h.name = strings.TrimRight(string(val), "\x00")
			case typ == nl.IPSET_ATTR_TYPENAME:
				h.typ = strings.TrimRight(string(val), "\x00")
			case typ == nl.IPSET_ATTR_FAMILY && len(val) == 1:
				h.family = val[0]
			case typ == nl.IPSET_ATTR_DATA:
				for typ, val := range attributes(val) {
					switch {
					case typ == nl.IPSET_ATTR_CADT_FLAGS && len(val) == 4:
						h.skbinfo = binary.BigEndian.Uint32(val)&nl.IPSET_FLAG_WITH_SKBINFO != 0
					case typ == nl.IPSET_ATTR_ELEMENTS && len(val) == 4 && name != "" && !headerOnly && entries == nil:
						// The header's count of members (kernels
						// since 4.x), so that the list is made once.
						entries = make([]Entry, 0, min(binary.BigEndian.Uint32(val), maxPresize))
					}
				}
			case typ == nl.IPSET_ATTR_ADT:
				for typ, val := range attributes(val) {
					if typ != nl.IPSET_ATTR_DATA {
						continue
					}
					e, err := parseEntry(val)
					if err != nil {
						parseErr = err
						return false
					}
					entries = append(entries, e)
				}
			}
		}
		// The kernel repeats the name in every message of a set's dump;
		// only the first carries the header's data.
		switch {
		case h.name == "":
		case len(out) == 0 || out[len(out)-1].name != h.name:
			out = append(out, h)
		case h.skbinfo:
			out[len(out)-1].skbinfo = true
		}
		return true
	})
	if parseErr != nil {
		return nil, nil, parseErr
	}
	if err != nil {
		return nil, nil, kernelError(err)
	}
	return out, entries, nil
}

// parseEntry reads one member's attributes: addresses of 4 or 16 bytes by
// the set's family, protocol number and port present except in hash:ip,
// the net's length for hash:ip,port,net (a host's too), the mark as
// mark<<32|mask.
func parseEntry(b []byte) (Entry, error) {
	var e Entry
	var proto, cidr2 uint8
	var hasProto bool
	var ip2 netip.Addr
	for typ, val := range attributes(b) {
		switch typ {
		case nl.IPSET_ATTR_IP, nl.IPSET_ATTR_IP2:
			for _, v := range attributes(val) {
				a, ok := netip.AddrFromSlice(v)
				if !ok {
					return Entry{}, fmt.Errorf("unreadable member address % x", v)
				}
				if typ == nl.IPSET_ATTR_IP {
					e.IP = a
				} else {
					ip2 = a
				}
			}
		case nl.IPSET_ATTR_PORT:
			if len(val) == 2 {
				e.Port = binary.BigEndian.Uint16(val)
			}
		case nl.IPSET_ATTR_PROTO:
			if len(val) == 1 {
				proto, hasProto = val[0], true
			}
		case nl.IPSET_ATTR_CIDR2:
			if len(val) == 1 {
				cidr2 = val[0]
			}
		case nl.IPSET_ATTR_SKBMARK:
			if len(val) == 8 {
				e.Mark = uint32(binary.BigEndian.Uint64(val) >> 32)
			}
		}
	}
	if !e.IP.IsValid() {
		return Entry{}, errors.New("member without an address")
	}
	if hasProto {
		for name, n := range protocols {
			if n == proto {
				e.Proto = name
			}
		}
		if e.Proto == "" {
			return Entry{}, fmt.Errorf("member %s with protocol %d, which ipvs-proxy does not add", e.IP, proto)
		}
	}
	switch {
	case cidr2 != 0:
		if e.Net = netip.PrefixFrom(ip2, int(cidr2)); !e.Net.IsValid() {
			return Entry{}, fmt.Errorf("member %s with unreadable net %s/%d", e.IP, ip2, cidr2)
		}
	case ip2.IsValid():
		e.IP2 = ip2
	}
	return e, nil
}

// attributes walks netlink attributes, type flags masked off. (nl's
// ParseAttributes runs a goroutine that leaks if the reader stops early.)
func attributes(b []byte) func(yield func(uint16, []byte) bool) {
	return func(yield func(uint16, []byte) bool) {
		for len(b) >= 4 {
			n := int(binary.NativeEndian.Uint16(b[0:2]))
			if n < 4 || n > len(b) {
				return
			}
			if !yield(binary.NativeEndian.Uint16(b[2:4])&nl.NLA_TYPE_MASK, b[4:n]) {
				return
			}
			b = b[min((n+3)&^3, len(b)):]
		}
	}
}
