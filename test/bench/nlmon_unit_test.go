package bench

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// TestTapFilter runs the tap's socket filter on buffers as the nlmon tap
// shows them (host-order netlink headers): requests are kept whole,
// answers, dumps' parts, acks and notifications dropped.
func TestTapFilter(t *testing.T) {
	vm, err := bpf.NewVM(requestsOnly())
	if err != nil {
		t.Fatal(err)
	}
	msg := func(typ, flags uint16, payload int) []byte {
		b := make([]byte, unix.NLMSG_HDRLEN+payload)
		binary.NativeEndian.PutUint32(b[0:4], uint32(len(b)))
		binary.NativeEndian.PutUint16(b[4:6], typ)
		binary.NativeEndian.PutUint16(b[6:8], flags)
		binary.NativeEndian.PutUint32(b[8:12], 7)
		return b
	}
	batch := append(msg(unix.NFNL_MSG_BATCH_BEGIN, unix.NLM_F_REQUEST, 4), msg(0xa06, unix.NLM_F_REQUEST|unix.NLM_F_CREATE, 60)...)
	for _, tc := range []struct {
		name string
		buf  []byte
		keep bool
	}{
		{"a write (set real server)", msg(0x1c, unix.NLM_F_REQUEST|unix.NLM_F_ACK, 40), true},
		{"a dump's request", msg(0x1c, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 20), true},
		{"a batch of requests", batch, true},
		{"the bench's marker", msg(unix.RTM_GETLINK, unix.NLM_F_REQUEST, 16), true},
		{"a dump's part", append(msg(0x1c, unix.NLM_F_MULTI, 100), msg(0x1c, unix.NLM_F_MULTI, 100)...), false},
		{"a dump's end", msg(unix.NLMSG_DONE, unix.NLM_F_MULTI, 4), false},
		{"an ack", msg(unix.NLMSG_ERROR, 0, 20), false},
		{"an ack with its extended flags", msg(unix.NLMSG_ERROR, unix.NLM_F_CAPPED|unix.NLM_F_ACK_TLVS, 20), false},
		{"a notification", msg(unix.RTM_NEWADDR, 0, 40), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := vm.Run(tc.buf)
			if err != nil {
				t.Fatal(err)
			}
			n = min(n, len(tc.buf)) // the kernel's packet_rcv keeps at most the buffer
			want := 0
			if tc.keep {
				want = len(tc.buf)
			}
			if n != want {
				t.Errorf("kept %d bytes of %d, want %d", n, len(tc.buf), want)
			}
		})
	}
}

// TestTapMissedIPVS: a change the kernel shows with no IPVS write on the
// tap fails ipvs-proxy's run; one the tap was not read for, or a capped
// one, is judged elsewhere.
func TestTapMissedIPVS(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Change
		want bool
	}{
		{"two IPVS writes", Change{Netlink: map[string]int{kindIPVS: 2}}, false},
		{"nothing on the tap", Change{Netlink: map[string]int{}}, true},
		{"only other writes", Change{Netlink: map[string]int{kindIPSet: 1}}, true},
		{"tap not read", Change{}, false},
		{"capped", Change{Capped: true, Netlink: map[string]int{}}, false},
	} {
		if got := tapMissedIPVS(tc.c); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
