//go:build linux

package nlbatch

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/test/netnstest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// newAddr is RTM_NEWADDR for a /32 on the link with this index; with
// NLM_F_EXCL an address already there is refused with EEXIST.
func newAddr(index int, a netip.Addr) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	msg := nl.NewIfAddrmsg(unix.AF_INET)
	msg.Index, msg.Prefixlen = uint32(index), 32
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFA_LOCAL, a.AsSlice()))
	req.AddData(nl.NewRtAttr(unix.IFA_ADDRESS, a.AsSlice()))
	return req
}

func addrAt(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}) }

// TestExecAgainstTheKernel sends more requests than one batch holds, by
// count and by bytes, with failures in the middle of batches and on the
// last message of one, and checks both the errors Exec reports and what
// the kernel then holds.
func TestExecAgainstTheKernel(t *testing.T) {
	netnstest.Enter(t)
	testExec(t)
}

// The same, with batches that end by size (25 messages of 40 bytes)
// rather than by count.
func TestExecBatchesBySize(t *testing.T) {
	netnstest.Enter(t)
	defer func(b int) { maxBytes = b }(maxBytes)
	maxBytes = 1000
	testExec(t)
}

func testExec(t *testing.T) {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	const n = 1000 // about 4 batches by count; each message is 40 bytes
	const missingLink = 9999
	var reqs []*nl.NetlinkRequest
	want := map[int]error{}
	for i := 0; i < n; i++ {
		switch {
		case i == 300, i == maxMessages-1: // the second: the last of the first batch, the one that acks
			reqs = append(reqs, newAddr(missingLink, addrAt(i)))
			want[i] = unix.ENODEV
		case i == 700:
			reqs = append(reqs, newAddr(lo.Attrs().Index, addrAt(10))) // added at i == 10
			want[i] = unix.EEXIST
		default:
			reqs = append(reqs, newAddr(lo.Attrs().Index, addrAt(i)))
		}
	}
	errs := s.Exec(len(reqs), Requests(func(i int) *nl.NetlinkRequest { return reqs[i] }))
	if len(errs) != n {
		t.Fatalf("Exec returned %d errors for %d requests", len(errs), n)
	}
	var got []string
	for i, err := range errs {
		if err != nil || want[i] != nil {
			got = append(got, fmt.Sprintf("%d: %v", i, err))
		}
	}
	wantText := []string{"255: no such device", "300: no such device", "700: file exists"}
	if !slices.Equal(got, wantText) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantText, "\n"))
	}
	for i, e := range want {
		if !errors.Is(errs[i], e) {
			t.Errorf("request %d: %v, want errors.Is %v", i, errs[i], e)
		}
	}

	addrs, err := netlink.AddrList(lo, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	have := map[netip.Addr]bool{}
	for _, a := range addrs {
		ip, _ := netip.AddrFromSlice(a.IP.To4())
		have[ip] = true
	}
	var wrong []string
	for i := 0; i < n; i++ {
		if i == 700 {
			continue // it named addrAt(10)
		}
		if wanted := want[i] == nil; have[addrAt(i)] != wanted {
			wrong = append(wrong, fmt.Sprintf("%s: present %v, want %v", addrAt(i), have[addrAt(i)], wanted))
		}
	}
	if len(wrong) > 0 {
		t.Errorf("kernel state differs:\n%s", strings.Join(wrong, "\n"))
	}
	// The 997 added, not one more: a new namespace's lo is down and has
	// no 127.0.0.1.
	if len(addrs) != n-3 {
		t.Errorf("lo holds %d IPv4 addresses, want %d", len(addrs), n-3)
	}

	// A second Exec on the same socket starts clean: no stale answers.
	if errs := s.Exec(1, Requests(func(int) *nl.NetlinkRequest { return newAddr(lo.Attrs().Index, addrAt(n)) })); errs[0] != nil {
		t.Errorf("a later batch: %v", errs[0])
	}
}

func TestExecEmpty(t *testing.T) {
	netnstest.Enter(t)
	s, err := Open(unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if errs := s.Exec(0, nil); len(errs) != 0 {
		t.Errorf("Exec(0, nil) = %v", errs)
	}
}

// TestQuery dumps the addresses of a fresh network namespace through
// Query, and gets a link that does not exist: the kernel's answer, then
// its refusal.
func TestQuery(t *testing.T) {
	netnstest.Enter(t)
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	s, err := Open(unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	req := nl.NewNetlinkRequest(unix.RTM_GETADDR, unix.NLM_F_DUMP)
	req.AddData(nl.NewIfAddrmsg(unix.AF_INET))
	var got []string
	if err := s.Query(req.Serialize(), func(p []byte) error {
		attrs, err := nl.ParseRouteAttr(p[unix.SizeofIfAddrmsg:])
		if err != nil {
			return err
		}
		for _, a := range attrs {
			if a.Attr.Type == unix.IFA_LOCAL {
				ip, _ := netip.AddrFromSlice(a.Value)
				got = append(got, ip.String())
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"127.0.0.1"}; !slices.Equal(got, want) {
		t.Errorf("addresses: got %v, want %v", got, want)
	}

	get := nl.NewNetlinkRequest(unix.RTM_GETLINK, 0)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = 1 << 30
	get.AddData(msg)
	if err := s.Query(get.Serialize(), func([]byte) error { return nil }); !errors.Is(err, unix.ENODEV) {
		t.Errorf("get of a missing link: %v, want ENODEV", err)
	}
}

// TestQueryAllocates nothing of its own: a change-by-change sync reads
// each changed virtual server through Query, and in the emulated test VM
// every allocation on that path showed in the proxy's CPU. The request's
// bytes and the caller's callback are the caller's.
func TestQueryAllocatesNothing(t *testing.T) {
	netnstest.Enter(t)
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(lo); err != nil { // gives it 127.0.0.1, for the dump
		t.Fatal(err)
	}
	s, err := Open(unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	get := nl.NewNetlinkRequest(unix.RTM_GETLINK, 0)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = 1 // lo
	get.AddData(msg)
	req := get.Serialize()
	dump := nl.NewNetlinkRequest(unix.RTM_GETADDR, unix.NLM_F_DUMP)
	dump.AddData(nl.NewIfAddrmsg(unix.AF_UNSPEC))
	dumpReq := dump.Serialize()
	answers := 0
	count := func([]byte) error { answers++; return nil }
	for name, r := range map[string][]byte{"get": req, "dump": dumpReq} {
		answers = 0
		if err := s.Query(r, count); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if answers == 0 {
			t.Fatalf("%s: no answer", name)
		}
		if n := testing.AllocsPerRun(100, func() {
			if err := s.Query(r, count); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: Query made %.1f allocations a call, want 0", name, n)
		}
	}
}

// TestQueryDumpEndsInError: a dump the kernel ends with an error puts it
// in its NLMSG_DONE (netlink_dump_done), which Query must return. With
// NETLINK_GET_STRICT_CHK, rtnetlink's address dump refuses a request with
// a prefix length set, with EINVAL, only there.
func TestQueryDumpEndsInError(t *testing.T) {
	netnstest.Enter(t)
	s, err := Open(unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := unix.SetsockoptInt(s.s.GetFd(), unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, 1); err != nil {
		netnstest.Skipf(t, "kernel without NETLINK_GET_STRICT_CHK: %v", err)
	}
	req := nl.NewNetlinkRequest(unix.RTM_GETADDR, unix.NLM_F_DUMP)
	msg := nl.NewIfAddrmsg(unix.AF_INET)
	msg.Prefixlen = 8
	req.AddData(msg)
	answers := 0
	err = s.Query(req.Serialize(), func([]byte) error { answers++; return nil })
	if !errors.Is(err, unix.EINVAL) {
		t.Errorf("dump refused in its NLMSG_DONE: %v after %d answers, want EINVAL", err, answers)
	}
}

// addrDump fills lo with n addresses, through Exec, and returns an
// RTM_GETADDR dump of them: about 400 answers a read, so the dump spans
// several reads, and the kernel fills each only when the one before is
// read.
func addrDump(t *testing.T, s *Socket, n int) []byte {
	t.Helper()
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	for i, err := range s.Exec(n, Requests(func(i int) *nl.NetlinkRequest { return newAddr(lo.Attrs().Index, addrAt(i)) })) {
		if err != nil {
			t.Fatalf("add %s: %v", addrAt(i), err)
		}
	}
	req := nl.NewNetlinkRequest(unix.RTM_GETADDR, unix.NLM_F_DUMP)
	req.AddData(nl.NewIfAddrmsg(unix.AF_INET))
	return req.Serialize()
}

var errStop = errors.New("stop")

// TestQueryStoppedEarly: when each fails, Query returns its error, and the
// socket serves the next dumps. The kernel runs one dump per socket; one
// left in the middle refuses the next with EBUSY.
func TestQueryStoppedEarly(t *testing.T) {
	netnstest.Enter(t)
	s, err := Open(unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 3000
	dump := addrDump(t, s, n)
	get := nl.NewNetlinkRequest(unix.RTM_GETLINK, 0)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = 1 // lo
	get.AddData(msg)

	for _, c := range []struct {
		name   string
		req    []byte
		stopAt int // the answer each fails on, from 1
	}{
		{"dump, first answer", dump, 1},
		{"dump, in a later read", dump, 1500},
		{"dump, last answer", dump, n},
		// Not a dump: nothing to finish, and no NLMSG_DONE to wait for.
		{"get", get.Serialize(), 1},
	} {
		answers := 0
		start := time.Now()
		err := s.Query(c.req, func([]byte) error {
			if answers++; answers == c.stopAt {
				return errStop
			}
			return nil
		})
		if err != errStop {
			t.Errorf("%s: Query returned %v, want each's error", c.name, err)
		}
		if took := time.Since(start); took > replyWait/2 {
			t.Errorf("%s: Query took %v", c.name, took)
		}
		for i := range 3 {
			answers := 0
			if err := s.Query(dump, func([]byte) error { answers++; return nil }); err != nil || answers != n {
				t.Errorf("%s: dump %d after it: %v, %d answers, want %d", c.name, i+1, err, answers, n)
			}
		}
	}
}

// TestQueryStoppedEarlyCannotFinish: when the socket cannot be read to the
// dump's end, Query says so, besides each's error. Here each puts a
// directory where the socket's descriptor was: read(2) fails with EISDIR.
func TestQueryStoppedEarlyCannotFinish(t *testing.T) {
	netnstest.Enter(t)
	s, err := Open(unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dump := addrDump(t, s, 3000)
	err = s.Query(dump, func([]byte) error {
		dir, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(dir)
		if err := unix.Dup3(dir, s.s.GetFd(), unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		return errStop
	})
	if !errors.Is(err, errStop) || !errors.Is(err, unix.EISDIR) {
		t.Errorf("Query returned %v, want each's error and the failed read (EISDIR)", err)
	}
}
