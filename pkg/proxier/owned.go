package proxier

import (
	"bufio"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// Owned records the virtual servers ipvs-proxy made on addresses it does not
// own: NodePorts on node IPs, and externalIPs that are node IPs. Those on the
// dummy interface's addresses are ours by where they sit and need no record.
// The record is written before the kernel is, so a crash cannot leave a
// virtual server of ours unrecorded. It is kept in the kernel itself, in the
// ipsets RecordSets (LoadOwnedInSets): like IPVS state it survives a
// restart of the proxy's container and not a reboot, with nothing to mount;
// or in a file (LoadOwned), which must then outlive the container too.
type Owned struct {
	path string          // the file, or "" (sets, or memory only)
	sets ipset.Interface // the kernel sets, or nil
	keys map[ipvs.ServiceKey]bool
}

// RecordSets are the kernel sets that hold the record: type hash:ip,port,
// one per family.
func RecordSets() []ipset.Set {
	return []ipset.Set{{Name: ipset.Prefix + "OWNED", Type: ipset.HashIPPort}, {Name: ipset.Prefix + "OWNED6", Type: ipset.HashIPPort, IPv6: true}}
}

// LoadOwnedInSets reads the record from the kernel sets, making them if
// they are missing.
func LoadOwnedInSets(sets ipset.Interface) (*Owned, error) {
	o := &Owned{sets: sets, keys: map[ipvs.ServiceKey]bool{}}
	for _, s := range RecordSets() {
		if err := sets.Ensure(s); err != nil {
			return nil, fmt.Errorf("read ownership record: %w", err)
		}
		es, err := sets.Entries(s.Name)
		if err != nil {
			return nil, fmt.Errorf("read ownership record: %w", err)
		}
		for _, e := range es {
			o.keys[entryKey(e)] = true
		}
	}
	return o, nil
}

// LoadOwned reads the record; a missing file is an empty record.
func LoadOwned(path string) (*Owned, error) {
	o := &Owned{path: path, keys: map[ipvs.ServiceKey]bool{}}
	if path == "" {
		return o, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return o, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ownership record: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, err := parseKey(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("read ownership record %s: %w", path, err)
		}
		o.keys[k] = true
	}
	return o, sc.Err()
}

func (o *Owned) Has(k ipvs.ServiceKey) bool { return o.keys[k] }

// Keys returns the recorded keys, sorted.
func (o *Owned) Keys() []ipvs.ServiceKey {
	out := make([]ipvs.ServiceKey, 0, len(o.keys))
	for k := range o.keys {
		out = append(out, k)
	}
	slices.SortFunc(out, ipvs.CompareKeys)
	return out
}

// Map returns a copy of the record, for Set.
func (o *Owned) Map() map[ipvs.ServiceKey]bool {
	if o.keys == nil {
		return map[ipvs.ServiceKey]bool{}
	}
	return maps.Clone(o.keys)
}

// Set replaces the record and saves it when it changed. The record in
// memory changes only once the file is saved: a key that could not be
// saved is not taken as recorded, so the caller does not write its
// virtual server and tries again on a later sync.
func (o *Owned) Set(keys map[ipvs.ServiceKey]bool) error {
	if sameKeys(o.keys, keys) {
		return nil
	}
	if err := o.save(keys); err != nil {
		return err
	}
	o.keys = keys
	return nil
}

func sameKeys(a, b map[ipvs.ServiceKey]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func (o *Owned) save(keys map[ipvs.ServiceKey]bool) error {
	if o.sets != nil {
		return o.saveInSets(keys)
	}
	if o.path == "" {
		return nil
	}
	sorted := slices.SortedFunc(maps.Keys(keys), ipvs.CompareKeys)
	var b strings.Builder
	for _, k := range sorted {
		fmt.Fprintf(&b, "%s %s\n", k.Proto, netip.AddrPortFrom(k.Addr, k.Port))
	}
	if err := os.MkdirAll(filepath.Dir(o.path), 0o755); err != nil {
		return fmt.Errorf("save ownership record: %w", err)
	}
	tmp := o.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("save ownership record: %w", err)
	}
	if err := os.Rename(tmp, o.path); err != nil {
		return fmt.Errorf("save ownership record: %w", err)
	}
	return nil
}

func parseKey(line string) (ipvs.ServiceKey, error) {
	proto, ap, ok := strings.Cut(strings.TrimSpace(line), " ")
	if !ok {
		return ipvs.ServiceKey{}, fmt.Errorf("bad line %q", line)
	}
	addrPort, err := netip.ParseAddrPort(ap)
	if err != nil {
		return ipvs.ServiceKey{}, fmt.Errorf("bad line %q: %w", line, err)
	}
	switch p := ipvs.Protocol(proto); p {
	case ipvs.TCP, ipvs.UDP, ipvs.SCTP:
		return ipvs.ServiceKey{Addr: addrPort.Addr(), Proto: p, Port: addrPort.Port()}, nil
	}
	return ipvs.ServiceKey{}, fmt.Errorf("bad protocol in line %q", line)
}

// saveInSets writes the difference between the record and keys: a few
// members, not the whole record.
func (o *Owned) saveInSets(keys map[ipvs.ServiceKey]bool) error {
	entry := func(k ipvs.ServiceKey) (string, ipset.Entry) {
		set := RecordSets()[0].Name
		if k.Addr.Is6() {
			set = RecordSets()[1].Name
		}
		return set, ipset.Entry{IP: k.Addr, Proto: strings.ToLower(string(k.Proto)), Port: k.Port}
	}
	var errs []error
	for k := range keys {
		if !o.keys[k] {
			set, e := entry(k)
			errs = append(errs, o.sets.Add(set, e))
		}
	}
	for k := range o.keys {
		if !keys[k] {
			set, e := entry(k)
			errs = append(errs, o.sets.Del(set, e))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("save ownership record: %w", err)
	}
	return nil
}
