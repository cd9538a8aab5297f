package netif

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

const testLink = "kube-ipvs0"

// step is one call on an Interface; wantErr, when set, is a substring of
// the error it must return.
type step struct {
	do      func(Interface) error
	wantErr string
}

func ensure() step     { return step{do: Interface.EnsureLink} }
func deleteLink() step { return step{do: Interface.DeleteLink} }
func add(a string) step {
	return step{do: func(i Interface) error { return i.AddAddresses([]netip.Addr{addr(a)})[0] }}
}
func del(a string) step {
	return step{do: func(i Interface) error { return i.DeleteAddresses([]netip.Addr{addr(a)})[0] }}
}
func addAll(as ...string) step {
	return step{do: func(i Interface) error { return errors.Join(i.AddAddresses(addrs(as))...) }}
}
func delAll(as ...string) step {
	return step{do: func(i Interface) error { return errors.Join(i.DeleteAddresses(addrs(as))...) }}
}
func fails(s step, e string) step { s.wantErr = e; return s }

func addrs(ss []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, addr(s))
	}
	return out
}

func addr(s string) netip.Addr {
	if s == "" {
		return netip.Addr{}
	}
	return netip.MustParseAddr(s)
}

// scenario is a sequence of calls and the state it must leave, as Dump
// text. The same scenarios run against the fake here and against the
// kernel in linux_test.go, which is what keeps the fake honest.
type scenario struct {
	name     string
	steps    []step
	wantDump string
	// wantLog is the fake's write log; nil means none.
	wantLog []string
}

var scenarios = []scenario{{
	name:     "link absent",
	wantDump: "link kube-ipvs0 absent\n",
}, {
	name:     "ensure creates the link once, down",
	steps:    []step{ensure(), ensure()},
	wantDump: "link kube-ipvs0 dummy down\n",
	wantLog:  []string{"create link kube-ipvs0"},
}, {
	name:  "addresses of both families, sorted",
	steps: []step{ensure(), add("fd00:10:96::1"), add("10.96.0.10"), add("10.96.0.1")},
	wantDump: `link kube-ipvs0 dummy down
addr 10.96.0.1/32
addr 10.96.0.10/32
addr fd00:10:96::1/128
`,
	wantLog: []string{"create link kube-ipvs0", "add fd00:10:96::1/128", "add 10.96.0.10/32", "add 10.96.0.1/32"},
}, {
	name:     "adding an address twice succeeds",
	steps:    []step{ensure(), add("10.96.0.1"), add("10.96.0.1")},
	wantDump: "link kube-ipvs0 dummy down\naddr 10.96.0.1/32\n",
	wantLog:  []string{"create link kube-ipvs0", "add 10.96.0.1/32", "add 10.96.0.1/32"},
}, {
	name:     "an IPv4-mapped address is added as IPv4",
	steps:    []step{ensure(), add("::ffff:10.96.0.1"), add("10.96.0.1")},
	wantDump: "link kube-ipvs0 dummy down\naddr 10.96.0.1/32\n",
	wantLog:  []string{"create link kube-ipvs0", "add 10.96.0.1/32", "add 10.96.0.1/32"},
}, {
	name:     "adding to a missing link fails",
	steps:    []step{fails(add("10.96.0.1"), "link not found")},
	wantDump: "link kube-ipvs0 absent\n",
}, {
	name:     "an invalid address fails before any write",
	steps:    []step{ensure(), fails(add(""), "invalid address"), fails(del(""), "invalid address")},
	wantDump: "link kube-ipvs0 dummy down\n",
	wantLog:  []string{"create link kube-ipvs0"},
}, {
	name:     "deleting keeps the others; deleting again succeeds",
	steps:    []step{ensure(), add("10.96.0.1"), add("fd00:10:96::1"), del("10.96.0.1"), del("10.96.0.1"), del("fd00:10:96::2")},
	wantDump: "link kube-ipvs0 dummy down\naddr fd00:10:96::1/128\n",
	wantLog: []string{"create link kube-ipvs0", "add 10.96.0.1/32", "add fd00:10:96::1/128",
		"delete 10.96.0.1/32", "delete 10.96.0.1/32", "delete fd00:10:96::2/128"},
}, {
	name:     "deleting from a missing link succeeds without a write",
	steps:    []step{del("10.96.0.1")},
	wantDump: "link kube-ipvs0 absent\n",
}, {
	name:     "deleting the link drops its addresses; deleting again succeeds",
	steps:    []step{ensure(), add("10.96.0.1"), deleteLink(), deleteLink()},
	wantDump: "link kube-ipvs0 absent\n",
	wantLog:  []string{"create link kube-ipvs0", "add 10.96.0.1/32", "delete link kube-ipvs0"},
}, {
	name:     "a recreated link starts empty",
	steps:    []step{ensure(), add("10.96.0.1"), deleteLink(), ensure(), add("10.96.0.2")},
	wantDump: "link kube-ipvs0 dummy down\naddr 10.96.0.2/32\n",
	wantLog:  []string{"create link kube-ipvs0", "add 10.96.0.1/32", "delete link kube-ipvs0", "create link kube-ipvs0", "add 10.96.0.2/32"},
}, {
	name: "batched adds and deletes answer as the single ones",
	steps: []step{ensure(), addAll("fd00:10:96::1", "10.96.0.10", "10.96.0.1", "10.96.0.10", "::ffff:10.96.0.2"),
		delAll("10.96.0.10", "10.96.0.99", "10.96.0.10")},
	wantDump: "link kube-ipvs0 dummy down\naddr 10.96.0.1/32\naddr 10.96.0.2/32\naddr fd00:10:96::1/128\n",
	wantLog: []string{"create link kube-ipvs0", "add fd00:10:96::1/128", "add 10.96.0.10/32", "add 10.96.0.1/32", "add 10.96.0.10/32",
		"add 10.96.0.2/32", "delete 10.96.0.10/32", "delete 10.96.0.99/32", "delete 10.96.0.10/32"},
}, {
	name:     "a batched add with a bad address adds the others",
	steps:    []step{ensure(), fails(addAll("10.96.0.1", "", "10.96.0.2"), "invalid address")},
	wantDump: "link kube-ipvs0 dummy down\naddr 10.96.0.1/32\naddr 10.96.0.2/32\n",
	wantLog:  []string{"create link kube-ipvs0", "add 10.96.0.1/32", "add 10.96.0.2/32"},
}, {
	name:     "a batched add to a missing link fails; a batched delete succeeds",
	steps:    []step{fails(addAll("10.96.0.1"), "link not found"), delAll("10.96.0.1")},
	wantDump: "link kube-ipvs0 absent\n",
}}

// run applies the steps and returns the dump, or an error naming the first
// step that did not answer as expected.
func (sc scenario) run(i Interface) (string, error) {
	for n, s := range sc.steps {
		err := s.do(i)
		switch {
		case s.wantErr == "" && err != nil:
			return "", fmt.Errorf("step %d: unexpected error: %w", n, err)
		case s.wantErr != "" && err == nil:
			return "", fmt.Errorf("step %d: no error, want one containing %q", n, s.wantErr)
		case s.wantErr != "" && !strings.Contains(err.Error(), s.wantErr):
			return "", fmt.Errorf("step %d: error %q does not contain %q", n, err, s.wantErr)
		}
	}
	dump, err := i.Dump()
	if err != nil {
		return "", fmt.Errorf("dump: %w", err)
	}
	// Addresses must agree with the dump, since reconciling reads it.
	addrs, err := i.Addresses()
	if err != nil {
		return "", fmt.Errorf("addresses: %w", err)
	}
	if addrs == nil {
		return "", errors.New("addresses: nil, want an empty list")
	}
	var fromAddrs strings.Builder
	for _, a := range addrs {
		fmt.Fprintf(&fromAddrs, "addr %s\n", netip.PrefixFrom(a, a.BitLen()))
	}
	if _, rest, _ := strings.Cut(dump, "\n"); rest != fromAddrs.String() {
		return "", fmt.Errorf("Addresses() = %v, disagrees with the dump:\n%s", addrs, dump)
	}
	return dump, nil
}

// foreignLinkAddr is on the link of another type that foreignLink finds,
// put there by that link's owner.
const foreignLinkAddr = "10.96.0.1"

// foreignLink checks that every call that would change i's link, or read
// its addresses as ipvs-proxy's, refuses a link of type typ under the name,
// holding foreignLinkAddr, and that the link is left as it was.
func foreignLink(i Interface, typ string) error {
	refusal := fmt.Sprintf("link %s exists with type %s, not dummy", testLink, typ)
	var errs []error
	check := func(call string, err error) {
		if err == nil || !strings.HasSuffix(err.Error(), refusal) {
			errs = append(errs, fmt.Errorf("%s: error %v, want one ending %q", call, err, refusal))
		}
	}
	check("EnsureLink", i.EnsureLink())
	as, err := i.Addresses()
	check("Addresses", err)
	if as != nil {
		errs = append(errs, fmt.Errorf("Addresses: %v, want none", as))
	}
	for n, err := range i.AddAddresses(addrs([]string{"10.96.0.2", foreignLinkAddr})) {
		check(fmt.Sprintf("AddAddresses [%d]", n), err)
	}
	for n, err := range i.DeleteAddresses(addrs([]string{foreignLinkAddr, "10.96.0.3"})) {
		check(fmt.Sprintf("DeleteAddresses [%d]", n), err)
	}
	check("DeleteLink", i.DeleteLink())
	if st, err := i.Link(); err != nil || st == nil || st.Type != typ {
		errs = append(errs, fmt.Errorf("Link: %v, %v; want type %s", st, err, typ))
	}
	want := fmt.Sprintf("link %s %s down\naddr %s/32\n", testLink, typ, foreignLinkAddr)
	if dump, err := i.Dump(); err != nil || dump != want {
		errs = append(errs, fmt.Errorf("Dump: %v\n%s\nwant:\n%s", err, dump, want))
	}
	return errors.Join(errs...)
}
