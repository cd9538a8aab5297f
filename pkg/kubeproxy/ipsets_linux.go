//go:build linux

package kubeproxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// linuxIPSets talks to the kernel over netlink (vishvananda/netlink), so
// that ipvs-proxy's image needs no ipset binary.
type linuxIPSets struct{}

// NewLinuxIPSets returns the kernel's ipsets.
func NewLinuxIPSets() IPSets { return linuxIPSets{} }

// List asks the kernel for names only, as `ipset list -n` does. netlink's
// IpsetListAll would dump every member of every set, and log a line to
// stderr for each attribute newer than the library (bucketsize, initval:
// one per hash set on current kernels).
func (linuxIPSets) List() ([]string, error) {
	var err error
	for range dumpAttempts {
		var names []string
		names, err = listSetNames()
		if !errors.Is(err, nl.ErrDumpInterrupted) {
			if err != nil {
				return nil, fmt.Errorf("list ipsets: %w", err)
			}
			return names, nil
		}
	}
	return nil, fmt.Errorf("list ipsets: %w", err)
}

// dumpAttempts bounds the retries of a dump the kernel marked interrupted.
const dumpAttempts = 5

func listSetNames() ([]string, error) {
	req := nl.NewNetlinkRequest(nl.IPSET_CMD_LIST|(unix.NFNL_SUBSYS_IPSET<<8), nl.GetIpsetFlags(nl.IPSET_CMD_LIST))
	req.AddData(&nl.Nfgenmsg{NfgenFamily: uint8(unix.AF_NETLINK), Version: nl.NFNETLINK_V0})
	req.AddData(nl.NewRtAttr(nl.IPSET_ATTR_PROTOCOL, nl.Uint8Attr(nl.IPSET_PROTOCOL)))
	req.AddData(&nl.Uint32Attribute{Type: nl.IPSET_ATTR_FLAGS | nl.NLA_F_NET_BYTEORDER, Value: ipsetFlagListSetName})
	msgs, err := req.Execute(unix.NETLINK_NETFILTER, 0)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range msgs {
		if len(m) < nl.SizeofNfgenmsg {
			continue
		}
		// Names only should come one message a set; do not count on it.
		if name := setName(m[nl.SizeofNfgenmsg:]); name != "" && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// ipsetFlagListSetName is IPSET_FLAG_LIST_SETNAME of linux/netfilter/ipset/
// ip_set.h: list names only. vishvananda/netlink does not define it.
const ipsetFlagListSetName = 1 << 1

// setName finds IPSET_ATTR_SETNAME among a message's attributes.
func setName(b []byte) string {
	for len(b) >= 4 {
		n := int(binary.NativeEndian.Uint16(b[0:2]))
		typ := binary.NativeEndian.Uint16(b[2:4]) & nl.NLA_TYPE_MASK
		if n < 4 || n > len(b) {
			return ""
		}
		if typ == nl.IPSET_ATTR_SETNAME {
			return strings.TrimRight(string(b[4:n]), "\x00")
		}
		b = b[min((n+3)&^3, len(b)):]
	}
	return ""
}

func (linuxIPSets) Destroy(name string) error {
	err := guard(func() error { return netlink.IpsetDestroy(name) })
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOENT):
		// netlink v1.3.1 sends no NLM_F_EXCL, so the kernel does not report
		// a missing set; this is for a library that does.
		return fmt.Errorf("destroy ipset %s: %w", name, ErrNotFound)
	case errors.Is(err, nl.IPSetError(nl.IPSET_ERR_BUSY)):
		return fmt.Errorf("destroy ipset %s: set is in use by a kernel component", name)
	}
	return fmt.Errorf("destroy ipset %s: %w", name, err)
}

// guard turns a panic inside netlink into an error: v1.3.1's ipsetExecute
// asserts that every error is a syscall.Errno (ipset_linux.go), and an
// annotated kernel error (extended ack) is not one.
func guard(call func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("netlink ipset call failed: %v", p)
		}
	}()
	return call()
}
