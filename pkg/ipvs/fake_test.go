package ipvs

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

var errBoom = errors.New("boom")

// op is one call on the fake; it returns a line for the transcript.
type op func(f *Fake) string

// result names an error by what callers test it for, then its text.
func result(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrExists):
		return "ErrExists: " + err.Error()
	case errors.Is(err, ErrNotFound):
		return "ErrNotFound: " + err.Error()
	case errors.Is(err, errBoom):
		return "boom: " + err.Error()
	}
	return "other: " + err.Error()
}

func svc(k ServiceKey, sched string) Service { return Service{ServiceKey: k, Scheduler: sched} }

func addService(s Service) op {
	return func(f *Fake) string { return fmt.Sprintf("add %s: %s", s.ServiceKey, result(f.AddService(s))) }
}

func updateService(s Service) op {
	return func(f *Fake) string { return fmt.Sprintf("update %s: %s", s.ServiceKey, result(f.UpdateService(s))) }
}

func deleteService(k ServiceKey) op {
	return func(f *Fake) string { return fmt.Sprintf("delete %s: %s", k, result(f.DeleteService(k))) }
}

func addDest(k ServiceKey, d Destination) op {
	return func(f *Fake) string {
		return fmt.Sprintf("add %s to %s: %s", d.AddrPort(), k, result(f.AddDestination(k, d)))
	}
}

func updateDest(k ServiceKey, d Destination) op {
	return func(f *Fake) string {
		return fmt.Sprintf("update %s of %s: %s", d.AddrPort(), k, result(f.UpdateDestination(k, d)))
	}
}

func deleteDest(k ServiceKey, d Destination) op {
	return func(f *Fake) string {
		return fmt.Sprintf("delete %s from %s: %s", d.AddrPort(), k, result(f.DeleteDestination(k, d)))
	}
}

func get(k ServiceKey) op {
	return func(f *Fake) string {
		v, ok, err := f.Get(k)
		if err != nil || !ok {
			return fmt.Sprintf("get %s: ok=%v %s", k, ok, result(err))
		}
		return fmt.Sprintf("get %s: ok=true\n%s", k, strings.TrimSuffix(strings.TrimPrefix(Format([]VirtualServer{v}, nil, true), headerCounters), "\n"))
	}
}

func failOn(k ServiceKey) op {
	return func(f *Fake) string {
		f.FailOn = map[ServiceKey]error{k: errBoom}
		return fmt.Sprintf("fail on %s", k)
	}
}

func TestFake(t *testing.T) {
	a := key(TCP, "10.96.0.10:80")
	b := key(UDP, "[fd00:10:96::a]:53")
	cases := []struct {
		name       string
		ops        []op
		transcript string
		dump       string
		writes     int
	}{{
		name: "adding a service that exists fails with ErrExists and keeps the first",
		ops:  []op{addService(svc(a, "rr")), addService(svc(a, "sh"))},
		transcript: `add TCP 10.96.0.10:80: ok
add TCP 10.96.0.10:80: ErrExists: add service TCP 10.96.0.10:80: already exists
`,
		dump:   header + "TCP  10.96.0.10:80 rr\n",
		writes: 2,
	}, {
		name: "updating or deleting a missing service fails with ErrNotFound",
		ops:  []op{updateService(svc(a, "rr")), deleteService(b)},
		transcript: `update TCP 10.96.0.10:80: ErrNotFound: update service TCP 10.96.0.10:80: not found
delete UDP [fd00:10:96::a]:53: ErrNotFound: delete service UDP [fd00:10:96::a]:53: not found
`,
		dump:   header,
		writes: 2,
	}, {
		name: "update replaces the settings and keeps the real servers",
		ops: []op{
			addService(svc(a, "rr")),
			addDest(a, dst("10.244.1.2:8080", 1)),
			updateService(Service{ServiceKey: a, Scheduler: "sh", Persistent: true, Timeout: 60}),
		},
		transcript: `add TCP 10.96.0.10:80: ok
add 10.244.1.2:8080 to TCP 10.96.0.10:80: ok
update TCP 10.96.0.10:80: ok
`,
		dump: header + `TCP  10.96.0.10:80 sh persistent 60
  -> 10.244.1.2:8080              Masq    1
`,
		writes: 3,
	}, {
		name: "real servers: add, add again, update weight, update and delete what is absent, delete",
		ops: []op{
			addService(svc(a, "rr")),
			addDest(a, dst("10.244.1.2:8080", 1)),
			addDest(a, dst("10.244.1.2:8080", 5)),
			addDest(a, dst("10.244.1.2:9090", 1)), // same address, other port: another real server
			updateDest(a, dst("10.244.1.2:8080", 3)),
			updateDest(a, dst("10.244.1.3:8080", 3)),
			deleteDest(a, dst("10.244.1.3:8080", 1)),
			deleteDest(a, dst("10.244.1.2:9090", 1)),
		},
		transcript: `add TCP 10.96.0.10:80: ok
add 10.244.1.2:8080 to TCP 10.96.0.10:80: ok
add 10.244.1.2:8080 to TCP 10.96.0.10:80: ErrExists: destination 10.244.1.2:8080 of TCP 10.96.0.10:80: already exists
add 10.244.1.2:9090 to TCP 10.96.0.10:80: ok
update 10.244.1.2:8080 of TCP 10.96.0.10:80: ok
update 10.244.1.3:8080 of TCP 10.96.0.10:80: ErrNotFound: destination 10.244.1.3:8080 of TCP 10.96.0.10:80: not found
delete 10.244.1.3:8080 from TCP 10.96.0.10:80: ErrNotFound: destination 10.244.1.3:8080 of TCP 10.96.0.10:80: not found
delete 10.244.1.2:9090 from TCP 10.96.0.10:80: ok
`,
		dump: header + `TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    3
`,
		writes: 8,
	}, {
		name: "real server writes on a missing service fail with ErrNotFound",
		ops: []op{
			addDest(b, dst("[fd00::1]:53", 1)),
			updateDest(b, dst("[fd00::1]:53", 1)),
			deleteDest(b, dst("[fd00::1]:53", 1)),
		},
		transcript: `add [fd00::1]:53 to UDP [fd00:10:96::a]:53: ErrNotFound: destination [fd00::1]:53 of UDP [fd00:10:96::a]:53: not found
update [fd00::1]:53 of UDP [fd00:10:96::a]:53: ErrNotFound: destination [fd00::1]:53 of UDP [fd00:10:96::a]:53: not found
delete [fd00::1]:53 from UDP [fd00:10:96::a]:53: ErrNotFound: destination [fd00::1]:53 of UDP [fd00:10:96::a]:53: not found
`,
		dump:   header,
		writes: 3,
	}, {
		name: "deleting a service drops its real servers; adding it again starts empty",
		ops: []op{
			addService(svc(a, "rr")),
			addDest(a, dst("10.244.1.2:8080", 1)),
			addDest(a, dst("10.244.1.3:8080", 1)),
			addService(svc(b, "rr")),
			addDest(b, dst("[fd00::1]:53", 1)),
			deleteService(a),
			addService(svc(a, "lc")),
			get(a),
		},
		transcript: `add TCP 10.96.0.10:80: ok
add 10.244.1.2:8080 to TCP 10.96.0.10:80: ok
add 10.244.1.3:8080 to TCP 10.96.0.10:80: ok
add UDP [fd00:10:96::a]:53: ok
add [fd00::1]:53 to UDP [fd00:10:96::a]:53: ok
delete TCP 10.96.0.10:80: ok
add TCP 10.96.0.10:80: ok
get TCP 10.96.0.10:80: ok=true
TCP  10.96.0.10:80 lc
`,
		dump: header + `TCP  10.96.0.10:80 lc
UDP  [fd00:10:96::a]:53 rr
  -> [fd00::1]:53                 Masq    1
`,
		writes: 7,
	}, {
		name: "FailOn fails every write to its key, first, and the writes are still counted",
		ops: []op{
			addService(svc(a, "rr")),
			failOn(a),
			addService(svc(a, "rr")), // would be ErrExists: FailOn answers first
			updateService(svc(a, "sh")),
			addDest(a, dst("10.244.1.2:8080", 1)),
			deleteService(a),
			addService(svc(b, "rr")),
			addDest(b, dst("[fd00::1]:53", 1)),
		},
		transcript: `add TCP 10.96.0.10:80: ok
fail on TCP 10.96.0.10:80
add TCP 10.96.0.10:80: boom: boom
update TCP 10.96.0.10:80: boom: boom
add 10.244.1.2:8080 to TCP 10.96.0.10:80: boom: boom
delete TCP 10.96.0.10:80: boom: boom
add UDP [fd00:10:96::a]:53: ok
add [fd00::1]:53 to UDP [fd00:10:96::a]:53: ok
`,
		dump: header + `TCP  10.96.0.10:80 rr
UDP  [fd00:10:96::a]:53 rr
  -> [fd00::1]:53                 Masq    1
`,
		writes: 7,
	}, {
		name: "Get of an absent key is ok=false without error, and reads are not writes",
		ops: []op{
			get(a),
			addService(svc(b, "rr")),
			get(a),
			get(b),
		},
		transcript: `get TCP 10.96.0.10:80: ok=false ok
add UDP [fd00:10:96::a]:53: ok
get TCP 10.96.0.10:80: ok=false ok
get UDP [fd00:10:96::a]:53: ok=true
UDP  [fd00:10:96::a]:53 rr
`,
		dump:   header + "UDP  [fd00:10:96::a]:53 rr\n",
		writes: 1,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFake()
			var tr strings.Builder
			for _, o := range tc.ops {
				tr.WriteString(o(f) + "\n")
			}
			if got := tr.String(); got != tc.transcript {
				t.Errorf("transcript:\n%s\nwant:\n%s", got, tc.transcript)
			}
			if got := f.Dump(); got != tc.dump {
				t.Errorf("dump:\n%s\nwant:\n%s", got, tc.dump)
			}
			if f.Writes != tc.writes {
				t.Errorf("Writes = %d, want %d", f.Writes, tc.writes)
			}
		})
	}
}

// Get and List hand out copies: changing them does not change the table.
// Counters set by traffic show in List (and so in status) but not in Dump.
func TestFakeCopiesAndCounters(t *testing.T) {
	a := key(TCP, "10.96.0.10:80")
	f := NewFake()
	for _, err := range []error{
		f.AddService(svc(a, "rr")),
		f.AddDestination(a, dst("10.244.1.2:8080", 1)),
		f.AddDestination(a, dst("10.244.1.3:8080", 1)),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	f.SetCounters(a, netip.MustParseAddrPort("10.244.1.3:8080"), 4, 9)
	f.SetCounters(key(TCP, "10.96.0.99:80"), netip.MustParseAddrPort("10.244.1.3:8080"), 1, 1) // no such service: ignored

	got, ok, err := f.Get(a)
	if err != nil || !ok {
		t.Fatalf("Get = ok %v, err %v", ok, err)
	}
	got.Scheduler = "sh"
	got.Destinations[0].Weight = 100
	listed, _ := f.List()
	listed[0].Destinations[1].Weight = 100
	listed[0].Destinations = listed[0].Destinations[:1]

	wantDump := header + `TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1
  -> 10.244.1.3:8080              Masq    1
`
	if d := f.Dump(); d != wantDump {
		t.Errorf("dump after changing copies:\n%s\nwant:\n%s", d, wantDump)
	}
	listed, _ = f.List()
	wantCounters := headerCounters + `TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1      0          0
  -> 10.244.1.3:8080              Masq    1      4          9
`
	if d := Format(listed, nil, true); d != wantCounters {
		t.Errorf("List with counters:\n%s\nwant:\n%s", d, wantCounters)
	}
	if f.Writes != 3 {
		t.Errorf("Writes = %d, want 3: reads and SetCounters are not writes", f.Writes)
	}
}
