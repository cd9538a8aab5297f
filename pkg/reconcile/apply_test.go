package reconcile

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

var errBoom = errors.New("boom")

// recorder logs every write Apply makes, to the IPVS table and to the
// addresses alike, in one log, so the order between them shows.
type recorder struct {
	log   []string
	table *ipvs.Fake
	// addrs is the dummy interface; addrErr answers a write to one address.
	addrs   map[netip.Addr]bool
	addrErr map[netip.Addr]error
	batches int // calls of Write
}

func newRecorder() *recorder {
	return &recorder{table: ipvs.NewFake(), addrs: map[netip.Addr]bool{}, addrErr: map[netip.Addr]error{}}
}

func (r *recorder) note(err error, format string, args ...any) error {
	line := fmt.Sprintf(format, args...)
	if err != nil {
		line += " -> " + err.Error()
	}
	r.log = append(r.log, line+"\n")
	return err
}

func (r *recorder) List() ([]ipvs.VirtualServer, error) { return r.table.List() }
func (r *recorder) Services() ([]ipvs.Service, error)   { return r.table.Services() }
func (r *recorder) Get(k ipvs.ServiceKey) (ipvs.VirtualServer, bool, error) {
	return r.table.Get(k)
}

func (r *recorder) AddService(s ipvs.Service) error {
	return r.note(r.table.AddService(s), "AddService %s", describe(s))
}

func (r *recorder) UpdateService(s ipvs.Service) error {
	return r.note(r.table.UpdateService(s), "UpdateService %s", describe(s))
}

func (r *recorder) DeleteService(k ipvs.ServiceKey) error {
	return r.note(r.table.DeleteService(k), "DeleteService %s", k)
}

func (r *recorder) AddDestination(k ipvs.ServiceKey, d ipvs.Destination) error {
	return r.note(r.table.AddDestination(k, d), "AddDestination %s %s weight %d", k, d.AddrPort(), d.Weight)
}

func (r *recorder) UpdateDestination(k ipvs.ServiceKey, d ipvs.Destination) error {
	return r.note(r.table.UpdateDestination(k, d), "UpdateDestination %s %s weight %d", k, d.AddrPort(), d.Weight)
}

func (r *recorder) DeleteDestination(k ipvs.ServiceKey, d ipvs.Destination) error {
	return r.note(r.table.DeleteDestination(k, d), "DeleteDestination %s %s", k, d.AddrPort())
}

// Write counts the batches Apply makes, then logs each op.
func (r *recorder) Write(ops []ipvs.Op) []error {
	r.batches++
	return ipvs.WriteEach(r, ops)
}

func (r *recorder) AddAddresses(as []netip.Addr) []error { return each(as, r.AddAddress) }

func (r *recorder) DeleteAddresses(as []netip.Addr) []error { return each(as, r.DeleteAddress) }

func each(as []netip.Addr, call func(netip.Addr) error) []error {
	errs := make([]error, len(as))
	for i, a := range as {
		errs[i] = call(a)
	}
	return errs
}

func (r *recorder) AddAddress(a netip.Addr) error {
	err := r.addrErr[a]
	if err == nil {
		r.addrs[a] = true
	}
	return r.note(err, "AddAddress %s", a)
}

func (r *recorder) DeleteAddress(a netip.Addr) error {
	err := r.addrErr[a]
	if err == nil {
		delete(r.addrs, a)
	}
	return r.note(err, "DeleteAddress %s", a)
}

var _ ipvs.Interface = &recorder{}
var _ Addresses = &recorder{}

// seed puts virtual servers in the table without logging.
func (r *recorder) seed(vss ...ipvs.VirtualServer) {
	for _, vs := range vss {
		if err := r.table.AddService(vs.Service); err != nil {
			panic(err)
		}
		for _, d := range vs.Destinations {
			if err := r.table.AddDestination(vs.ServiceKey, d); err != nil {
				panic(err)
			}
		}
	}
}

func (r *recorder) current() map[ipvs.ServiceKey]ipvs.VirtualServer {
	vss, _ := r.table.List()
	return servers(vss...)
}

func (r *recorder) addresses() string {
	var out []string
	for _, a := range slices.SortedFunc(maps.Keys(r.addrs), netip.Addr.Compare) {
		if r.addrs[a] {
			out = append(out, a.String())
		}
	}
	return strings.Join(out, " ")
}

func errorTexts(errs []error) string {
	var b strings.Builder
	for _, err := range errs {
		b.WriteString(err.Error() + "\n")
	}
	return b.String()
}

const header = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight\n"

func TestApply(t *testing.T) {
	cases := []struct {
		name string
		// seed is the kernel before; addrs the dummy interface before.
		seed  []ipvs.VirtualServer
		addrs []string
		// failOn makes every write to this key fail with errBoom.
		failOn  string
		addrErr map[string]error
		plan    func(r *recorder) Plan
		log     string
		errs    string
		counts  string
		dump    string
		addrsAf string
	}{{
		name: "additions, then updates, then deletions; addresses added and deleted after the virtual servers",
		seed: []ipvs.VirtualServer{
			server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080", "10.244.2.2:8080"),
			server("TCP 10.96.0.30:80 rr", "10.244.1.3:8080"),
		},
		addrs: []string{"10.96.0.10", "10.96.0.30"},
		plan: func(r *recorder) Plan {
			p := DiffAddresses(addrSet("10.96.0.10", "10.96.0.20"), r.addrs)
			p.Merge(DiffServers(servers(
				server("TCP 10.96.0.10:80 sh", "10.244.1.2:8080 weight 2"),
				server("TCP 10.96.0.20:80 rr", "10.244.1.4:8080"),
			), r.current(), nil))
			return p
		},
		log: `AddService TCP 10.96.0.20:80 rr
AddDestination TCP 10.96.0.20:80 10.244.1.4:8080 weight 1
UpdateService TCP 10.96.0.10:80 sh
UpdateDestination TCP 10.96.0.10:80 10.244.1.2:8080 weight 2
DeleteDestination TCP 10.96.0.10:80 10.244.2.2:8080
DeleteService TCP 10.96.0.30:80
AddAddress 10.96.0.20
DeleteAddress 10.96.0.30
`,
		counts: "{AddressesAdded:1 AddressesDeleted:1 ServicesAdded:1 ServicesUpdated:1 ServicesDeleted:1 DestinationsAdded:1 DestinationsUpdated:1 DestinationsDeleted:1 SetMembersAdded:0 SetMembersDeleted:0}",
		dump: header + `TCP  10.96.0.10:80 sh
  -> 10.244.1.2:8080              Masq    2
TCP  10.96.0.20:80 rr
  -> 10.244.1.4:8080              Masq    1
`,
		addrsAf: "10.96.0.10 10.96.0.20",
	}, {
		name: "already there on add and already gone on delete are success, and not counted",
		seed: []ipvs.VirtualServer{server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080")},
		addrErr: map[string]error{
			"10.96.0.10": fmt.Errorf("netlink: %w", ipvs.ErrExists),
			"10.96.0.30": fmt.Errorf("netlink: %w", ipvs.ErrNotFound),
		},
		plan: func(*recorder) Plan {
			// A plan made from a stale read: another sync did it already.
			return Plan{
				AddAddresses:       []netip.Addr{netip.MustParseAddr("10.96.0.10")},
				AddServices:        []ipvs.Service{server("TCP 10.96.0.10:80 rr").Service},
				AddDestinations:    []DestOp{{Key: server("TCP 10.96.0.10:80 rr").ServiceKey, Dest: dest("10.244.1.2:8080")}},
				DeleteDestinations: []DestOp{{Key: server("TCP 10.96.0.10:80 rr").ServiceKey, Dest: dest("10.244.9.9:8080")}},
				DeleteServices:     []ipvs.ServiceKey{server("TCP 10.96.0.30:80 rr").ServiceKey},
				DeleteAddresses:    []netip.Addr{netip.MustParseAddr("10.96.0.30")},
			}
		},
		log: `AddService TCP 10.96.0.10:80 rr -> add service TCP 10.96.0.10:80: already exists
AddDestination TCP 10.96.0.10:80 10.244.1.2:8080 weight 1 -> destination 10.244.1.2:8080 of TCP 10.96.0.10:80: already exists
DeleteDestination TCP 10.96.0.10:80 10.244.9.9:8080 -> destination 10.244.9.9:8080 of TCP 10.96.0.10:80: not found
DeleteService TCP 10.96.0.30:80 -> delete service TCP 10.96.0.30:80: not found
AddAddress 10.96.0.10 -> netlink: already exists
DeleteAddress 10.96.0.30 -> netlink: not found
`,
		counts: "{AddressesAdded:0 AddressesDeleted:0 ServicesAdded:0 ServicesUpdated:0 ServicesDeleted:0 DestinationsAdded:0 DestinationsUpdated:0 DestinationsDeleted:0 SetMembersAdded:0 SetMembersDeleted:0}",
		dump: header + `TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1
`,
	}, {
		name: "not found on an update is an error: the next sync must add it",
		plan: func(*recorder) Plan {
			return Plan{
				UpdateServices:     []ipvs.Service{server("TCP 10.96.0.10:80 sh").Service},
				UpdateDestinations: []DestOp{{Key: server("TCP 10.96.0.11:80 rr").ServiceKey, Dest: dest("10.244.1.2:8080 weight 3")}},
			}
		},
		log: `UpdateService TCP 10.96.0.10:80 sh -> update service TCP 10.96.0.10:80: not found
UpdateDestination TCP 10.96.0.11:80 10.244.1.2:8080 weight 3 -> destination 10.244.1.2:8080 of TCP 10.96.0.11:80: not found
`,
		errs: `update service TCP 10.96.0.10:80: not found
destination 10.244.1.2:8080 of TCP 10.96.0.11:80: not found
`,
		counts: "{AddressesAdded:0 AddressesDeleted:0 ServicesAdded:0 ServicesUpdated:0 ServicesDeleted:0 DestinationsAdded:0 DestinationsUpdated:0 DestinationsDeleted:0 SetMembersAdded:0 SetMembersDeleted:0}",
		dump:   header,
	}, {
		// The real servers' adds are in the same batch as their virtual
		// server's and fail with it; they are not reported again.
		name:   "a failing AddService fails its real servers, is one error, and the other services are applied",
		failOn: "TCP 10.96.0.10:80",
		plan: func(r *recorder) Plan {
			p := DiffAddresses(addrSet("10.96.0.10", "10.96.0.11"), r.addrs)
			p.Merge(DiffServers(servers(
				server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080", "10.244.2.2:8080"),
				server("TCP 10.96.0.11:80 rr", "10.244.1.3:8080"),
				server("UDP 10.96.0.10:53 rr", "10.244.1.4:53"),
			), r.current(), nil))
			return p
		},
		log: `AddService TCP 10.96.0.10:80 rr -> boom
AddService UDP 10.96.0.10:53 rr
AddService TCP 10.96.0.11:80 rr
AddDestination TCP 10.96.0.10:80 10.244.1.2:8080 weight 1 -> boom
AddDestination TCP 10.96.0.10:80 10.244.2.2:8080 weight 1 -> boom
AddDestination UDP 10.96.0.10:53 10.244.1.4:53 weight 1
AddDestination TCP 10.96.0.11:80 10.244.1.3:8080 weight 1
AddAddress 10.96.0.10
AddAddress 10.96.0.11
`,
		errs:   "boom\n",
		counts: "{AddressesAdded:2 AddressesDeleted:0 ServicesAdded:2 ServicesUpdated:0 ServicesDeleted:0 DestinationsAdded:2 DestinationsUpdated:0 DestinationsDeleted:0 SetMembersAdded:0 SetMembersDeleted:0}",
		dump: header + `UDP  10.96.0.10:53 rr
  -> 10.244.1.4:53                Masq    1
TCP  10.96.0.11:80 rr
  -> 10.244.1.3:8080              Masq    1
`,
		addrsAf: "10.96.0.10 10.96.0.11",
	}, {
		// 10.96.0.10 stays with the virtual server that could not be
		// deleted: off the link, that one would be no one's.
		name: "a failing write elsewhere is reported with its context and the rest goes on",
		seed: []ipvs.VirtualServer{
			server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080"),
			server("TCP 10.96.0.11:80 rr", "10.244.1.3:8080"),
		},
		addrs:   []string{"10.96.0.10", "10.96.0.11"},
		failOn:  "TCP 10.96.0.10:80",
		addrErr: map[string]error{"10.96.0.11": errBoom},
		plan: func(r *recorder) Plan {
			return DiffServers(nil, r.current(), nil).withAddresses(DiffAddresses[bool](nil, r.addrs))
		},
		log: `DeleteService TCP 10.96.0.10:80 -> boom
DeleteService TCP 10.96.0.11:80
DeleteAddress 10.96.0.11 -> boom
`,
		errs: `boom
delete address 10.96.0.11: boom
`,
		counts: "{AddressesAdded:0 AddressesDeleted:0 ServicesAdded:0 ServicesUpdated:0 ServicesDeleted:1 DestinationsAdded:0 DestinationsUpdated:0 DestinationsDeleted:0 SetMembersAdded:0 SetMembersDeleted:0}",
		dump: header + `TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1
`,
		addrsAf: "10.96.0.10 10.96.0.11",
	}, {
		name: "an empty plan writes nothing",
		seed: []ipvs.VirtualServer{server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080")},
		plan: func(r *recorder) Plan {
			return DiffServers(servers(server("TCP 10.96.0.10:80 rr", "10.244.1.2:8080")), r.current(), nil)
		},
		counts: "{AddressesAdded:0 AddressesDeleted:0 ServicesAdded:0 ServicesUpdated:0 ServicesDeleted:0 DestinationsAdded:0 DestinationsUpdated:0 DestinationsDeleted:0 SetMembersAdded:0 SetMembersDeleted:0}",
		dump: header + `TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1
`,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecorder()
			r.seed(tc.seed...)
			for _, a := range tc.addrs {
				r.addrs[netip.MustParseAddr(a)] = true
			}
			for a, err := range tc.addrErr {
				r.addrErr[netip.MustParseAddr(a)] = err
			}
			if tc.failOn != "" {
				r.table.FailOn = map[ipvs.ServiceKey]error{server(tc.failOn + " rr").ServiceKey: errBoom}
			}
			p := tc.plan(r)
			c, errs := Apply(r, r, p)
			if want := (p.Len() - len(p.AddAddresses) - len(p.DeleteAddresses) + writeChunk - 1) / writeChunk; r.batches != want {
				t.Errorf("Apply wrote to IPVS in %d batches, want %d", r.batches, want)
			}
			if got := strings.Join(r.log, ""); got != tc.log {
				t.Errorf("writes:\n%s\nwant:\n%s", got, tc.log)
			}
			if got := errorTexts(errs); got != tc.errs {
				t.Errorf("errors:\n%s\nwant:\n%s", got, tc.errs)
			}
			for _, err := range errs {
				if errors.Is(err, ipvs.ErrExists) {
					t.Errorf("error %q is ErrExists, which Apply should take as success", err)
				}
			}
			if got := fmt.Sprintf("%+v", c); got != tc.counts {
				t.Errorf("counts:\n%s\nwant:\n%s", got, tc.counts)
			}
			if got := r.table.Dump(); got != tc.dump {
				t.Errorf("IPVS after:\n%s\nwant:\n%s", got, tc.dump)
			}
			if got := r.addresses(); got != tc.addrsAf {
				t.Errorf("addresses after: %q, want %q", got, tc.addrsAf)
			}
		})
	}
}

// withAddresses merges an address plan into p, for cases written in one line.
func (p Plan) withAddresses(a Plan) Plan {
	p.Merge(a)
	return p
}

// After a successful Apply, diffing again finds nothing: the plan was complete.
func TestApplyConverges(t *testing.T) {
	r := newRecorder()
	r.seed(
		server("TCP 10.96.0.10:80 rr persistent 60", "10.244.1.2:8080", "10.244.2.2:8080"),
		server("UDP [fd00:10:96::a]:53 rr", "[fd00:244::1]:53"),
	)
	r.addrs[netip.MustParseAddr("fd00:10:96::a")] = true
	desired := servers(
		server("TCP 10.96.0.10:80 rr persistent 120", "10.244.2.2:8080 weight 4", "10.244.3.2:8080"),
		server("TCP [fd00:10:96::b]:443 mh", "[fd00:244::2]:8443"),
	)
	vips := addrSet("10.96.0.10", "fd00:10:96::b")
	p := DiffAddresses(vips, r.addrs)
	p.Merge(DiffServers(desired, r.current(), nil))
	c, errs := Apply(r, r, p)
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	if c.Writes() != p.Len() {
		t.Errorf("Counts.Writes() = %d, plan has %d writes:\n%s", c.Writes(), p.Len(), p)
	}
	want := header + `TCP  10.96.0.10:80 rr persistent 120
  -> 10.244.2.2:8080              Masq    4
  -> 10.244.3.2:8080              Masq    1
TCP  [fd00:10:96::b]:443 mh
  -> [fd00:244::2]:8443           Masq    1
`
	if got := r.table.Dump(); got != want {
		t.Errorf("IPVS after:\n%s\nwant:\n%s", got, want)
	}
	again := DiffAddresses(vips, r.addrs)
	again.Merge(DiffServers(desired, r.current(), nil))
	if s := again.String(); s != "" {
		t.Errorf("second plan is not empty:\n%s", s)
	}
}

func TestCounts(t *testing.T) {
	a := Counts{AddressesAdded: 1, ServicesAdded: 2, DestinationsAdded: 3, DestinationsDeleted: 4}
	b := Counts{AddressesAdded: 10, AddressesDeleted: 20, ServicesUpdated: 30, ServicesDeleted: 40, DestinationsUpdated: 50, DestinationsDeleted: 60}
	want := "{AddressesAdded:11 AddressesDeleted:20 ServicesAdded:2 ServicesUpdated:30 ServicesDeleted:40 DestinationsAdded:3 DestinationsUpdated:50 DestinationsDeleted:64 SetMembersAdded:0 SetMembersDeleted:0}"
	sum := a.Add(b)
	if got := fmt.Sprintf("%+v", sum); got != want {
		t.Errorf("Add:\n%s\nwant:\n%s", got, want)
	}
	if sum.Writes() != 220 {
		t.Errorf("Writes() = %d, want 220", sum.Writes())
	}
}

// A plan larger than one Write chunk is written in chunks, in order, and
// a virtual server whose add failed keeps its real servers' failures
// unreported whichever chunk they fall in.
func TestApplyInChunks(t *testing.T) {
	var want []ipvs.VirtualServer
	for i := range writeChunk {
		want = append(want, server(fmt.Sprintf("TCP 10.96.%d.%d:80 rr", i>>8, i&255), fmt.Sprintf("10.244.%d.%d:8080", i>>8, i&255)))
	}
	failing := server("TCP 10.97.0.1:80 rr", "10.244.99.1:8080", "10.244.99.2:8080")
	r := newRecorder()
	r.table.FailOn = map[ipvs.ServiceKey]error{failing.ServiceKey: errBoom}
	p := DiffServers(servers(append(want, failing)...), r.current(), nil)
	// The failing service last: in the second chunk, with real servers.
	for i, s := range p.AddServices {
		if s.ServiceKey == failing.ServiceKey {
			p.AddServices = append(append(p.AddServices[:i:i], p.AddServices[i+1:]...), s)
			break
		}
	}
	c, errs := Apply(r, r, p)
	if r.batches != 3 {
		t.Errorf("%d ops written in %d Writes, want 3", p.Len(), r.batches)
	}
	if got := errorTexts(errs); got != "boom\n" {
		t.Errorf("errors:\n%swant one boom", got)
	}
	if c.ServicesAdded != writeChunk || c.DestinationsAdded != writeChunk {
		t.Errorf("counts %+v, want %d services and real servers", c, writeChunk)
	}
	if got, wantDump := r.table.Dump(), ipvs.Format(want, nil, false); got != wantDump {
		t.Errorf("IPVS after differs from the %d wanted virtual servers (got %d bytes, want %d)", writeChunk, len(got), len(wantDump))
	}
}
