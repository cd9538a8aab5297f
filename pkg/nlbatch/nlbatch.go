//go:build linux

// Package nlbatch sends many netlink requests in one system call. The
// kernel's netlink_rcv_skb runs every message of one sendmsg in turn, and
// answers a message only when it fails or asks for an acknowledgement. So
// a batch asks for one acknowledgement, on its last message, and the
// failures in between arrive as errors carrying their own sequence numbers.
//
// One request per round trip (what moby/ipvs and netlink's own calls do)
// costs a system call, a context switch and a reply each: in the test VM,
// 55,000 IPVS writes took 26 s that way and 4 s in batches. It is the same
// kernel work in the same order; only the round trips go.
package nlbatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"sync"
	"time"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// Limits of one sendmsg. Every message of a batch could fail, and each
// failure is a reply queued on our socket before we read any: the
// receive buffer must hold them all, or the kernel drops the rest and
// we cannot tell which writes were done (see ErrLost).
const (
	maxMessages = 256
	recvBuffer  = 4 << 20 // asked for; without CAP_NET_ADMIN the kernel caps it
	replyWait   = time.Minute
	// receiveBuffer holds one read of answers: the kernel fills a netlink
	// read up to a page or, for dumps, up to 32 KiB.
	receiveBuffer = 64 << 10
)

// maxBytes bounds one sendmsg (the kernel refuses more than its socket
// send buffer); a variable so a test can make batches end by size.
var maxBytes = 64 << 10

// ErrLost is the error of each request whose answer the kernel dropped
// (ENOBUFS: our receive buffer overflowed). Whether it was done is
// unknown; the caller's next full read of the kernel will tell.
var ErrLost = errors.New("netlink answer lost (receive buffer overflow); result unknown")

// Socket is one netlink socket. It is safe for concurrent use: each Exec
// holds it.
type Socket struct {
	mu  sync.Mutex
	s   *nl.NetlinkSocket
	seq uint32
	// buf receives Query's answers, reused: a change-by-change sync reads
	// each changed virtual server, and netlink's own Receive copies every
	// read into a new buffer that moby/ipvs then parses into more.
	buf []byte
	// kernel is the address every request goes to, made once: a
	// sockaddr given to a send escapes to the heap. That, the address
	// recvfrom returns (see receive) and a slice of parsed messages per
	// read were most of the 24 allocations that reading one virtual server
	// back took (2 now); each allocation showed in the proxy's CPU in the
	// emulated test VM.
	kernel *unix.SockaddrNetlink
	// out is Exec's send buffer, kept between calls for the same reason.
	out []byte
}

// Open opens a socket of a netlink protocol (unix.NETLINK_GENERIC,
// NETLINK_ROUTE, NETLINK_NETFILTER) in the current network namespace.
func Open(protocol int) (*Socket, error) {
	s, err := nl.GetNetlinkSocketAt(netns.None(), netns.None(), protocol)
	if err != nil {
		return nil, fmt.Errorf("open netlink socket: %w", err)
	}
	fd := s.GetFd()
	// Failures come back with the request's header only, not its body.
	if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1); err != nil {
		s.Close()
		return nil, fmt.Errorf("netlink socket: set NETLINK_CAP_ACK: %w", err)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, recvBuffer) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, recvBuffer)
	}
	if err := s.SetReceiveTimeout(&unix.Timeval{Sec: int64(replyWait / time.Second)}); err != nil {
		s.Close()
		return nil, fmt.Errorf("netlink socket: set receive timeout: %w", err)
	}
	return &Socket{s: s, seq: uint32(time.Now().UnixNano()), buf: make([]byte, receiveBuffer),
		kernel: &unix.SockaddrNetlink{Family: unix.AF_NETLINK}}, nil
}

func (s *Socket) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.s.Close()
}

// Requests adapts requests built with netlink's nl package to Exec.
func Requests(request func(i int) *nl.NetlinkRequest) func(int) []byte {
	return func(i int) []byte { return request(i).Serialize() }
}

// Exec sends n requests in order and returns each one's error: nil when
// the kernel did it, a unix.Errno when it refused it, ErrLost or a socket
// error when the answer never came. message(i) returns the i-th request,
// serialized, header included, when its batch is sent, so a sync of 55,000
// writes never holds them all; Exec owns the bytes from then on. Their
// flags are kept except NLM_F_ACK, which Exec sets on the last message of
// each batch only, and their sequence numbers are Exec's.
func (s *Socket) Exec(n int, message func(i int) []byte) []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := klog.V(4); v.Enabled() {
		// Only then: the log line's arguments are allocations of their own.
		start := time.Now()
		defer func() { v.InfoS("Netlink batch", "requests", n, "took", time.Since(start)) }()
	}
	errs := make([]error, n)
	// The send buffer is kept for the next Exec.
	buf := s.out[:0]
	defer func() { s.out = buf[:0] }()
	var next []byte // serialized request(first), carried over from the batch before
	for first := 0; first < n; {
		buf = buf[:0]
		last, lastLen := first, 0
		for ; last < n && last-first < maxMessages; last++ {
			msg := next
			if msg == nil {
				msg = message(last)
				setFlags(msg, flags(msg)&^unix.NLM_F_ACK)
			}
			next = nil
			if last > first && len(buf)+len(msg) > maxBytes {
				next = msg // the first of the next batch
				break
			}
			s.seq++
			setSeq(msg, s.seq)
			buf = append(buf, msg...)
			lastLen = len(msg)
		}
		ack(buf[len(buf)-lastLen:])
		s.exchange(buf, s.seq-uint32(last-first)+1, errs[first:last])
		first = last
	}
	return errs
}

// The fields of a serialized struct nlmsghdr: len u32, type u16, flags
// u16, seq u32, pid u32.
func setSeq(msg []byte, seq uint32) { binary.NativeEndian.PutUint32(msg[8:12], seq) }

func flags(msg []byte) uint16 { return binary.NativeEndian.Uint16(msg[6:8]) }

func setFlags(msg []byte, f uint16) { binary.NativeEndian.PutUint16(msg[6:8], f) }

func ack(msg []byte) { setFlags(msg, flags(msg)|unix.NLM_F_ACK) }

// exchange sends one batch and reads until the last request's ack.
func (s *Socket) exchange(buf []byte, base uint32, errs []error) {
	fail := func(err error) {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	}
	if err := unix.Sendto(s.s.GetFd(), buf, 0, s.kernel); err != nil {
		fail(fmt.Errorf("netlink send: %w", err))
		return
	}
	for {
		answers, err := s.receive()
		if errors.Is(err, unix.ENOBUFS) {
			// Answers were dropped; the final ack may be too. Nothing
			// below tells which, so every request not yet answered is
			// unknown. Drain what is queued so the next batch starts clean.
			fail(ErrLost)
			s.drain()
			return
		}
		if err != nil {
			fail(fmt.Errorf("netlink receive: %w", err))
			return
		}
		for m, err := range messages(answers) {
			if err != nil {
				fail(fmt.Errorf("netlink receive: %w", err))
				return
			}
			i := int(m.seq - base) // wraps like the sequence numbers
			if m.typ != unix.NLMSG_ERROR || i >= len(errs) || len(m.data) < 4 {
				continue // not ours: a stale answer from an earlier batch
			}
			if code := int32(binary.NativeEndian.Uint32(m.data[:4])); code != 0 {
				errs[i] = unix.Errno(-code)
			}
			if i == len(errs)-1 {
				return
			}
		}
	}
}

// message is one netlink message of an answer: its header's fields and
// its payload, which points into the receive buffer.
type message struct {
	typ, flags uint16
	seq        uint32
	data       []byte
}

// messages yields each message of one read, as syscall.ParseNetlinkMessage
// splits it but without making a slice of them: a malformed one ends the
// read with an error.
func messages(b []byte) iter.Seq2[message, error] {
	return func(yield func(message, error) bool) {
		for len(b) >= unix.NLMSG_HDRLEN {
			l := int(binary.NativeEndian.Uint32(b[0:4]))
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				yield(message{}, fmt.Errorf("malformed netlink message of %d bytes in %d", l, len(b)))
				return
			}
			m := message{
				typ:   binary.NativeEndian.Uint16(b[4:6]),
				flags: binary.NativeEndian.Uint16(b[6:8]),
				seq:   binary.NativeEndian.Uint32(b[8:12]),
				data:  b[unix.NLMSG_HDRLEN:l],
			}
			if !yield(m, nil) {
				return
			}
			b = b[min(len(b), (l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1)):]
		}
	}
}

// drain reads without waiting until the socket is empty.
func (s *Socket) drain() {
	fd := s.s.GetFd()
	for {
		if _, _, err := unix.Recvfrom(fd, s.buf, unix.MSG_DONTWAIT); err != nil && !errors.Is(err, unix.ENOBUFS) {
			return
		}
	}
}

// receive reads the next answers into s.buf; they are valid until the
// next receive. netlink opens the socket non-blocking, so it waits in
// poll, for replyWait at most. It reads with read(2), not recvfrom: the
// sender's address, which nothing here looks at, is one allocation a read.
func (s *Socket) receive() ([]byte, error) {
	fd := s.s.GetFd()
	// The deadline is set at the first wait, not before the first read:
	// the kernel answers most requests within the send, and a clock read
	// per answer was 3 % of the proxy's CPU at 50 changes/s in the test VM.
	var deadline time.Time
	for {
		n, err := unix.Read(fd, s.buf)
		switch {
		case err == nil && n < unix.NLMSG_HDRLEN:
			return nil, fmt.Errorf("short netlink answer (%d bytes)", n)
		case err == nil:
			return s.buf[:n], nil
		case errors.Is(err, unix.EINTR):
			continue
		case !errors.Is(err, unix.EAGAIN):
			return nil, err
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(replyWait)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, unix.EAGAIN
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, int(left/time.Millisecond)+1); err != nil && !errors.Is(err, unix.EINTR) {
			return nil, err
		}
	}
}

// Query sends one request that is answered with data (a get, or a dump
// with NLM_F_DUMP set) and calls each with every answer's payload, which
// is valid only during the call. The kernel's refusal is a unix.Errno; a
// dump the kernel marked interrupted (NLM_F_DUMP_INTR: the table changed
// while it was read) ends with nl.ErrDumpInterrupted, after every answer.
func (s *Socket) Query(msg []byte, each func(payload []byte) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	seq := s.seq
	setSeq(msg, seq)
	if err := unix.Sendto(s.s.GetFd(), msg, 0, s.kernel); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	more, err := s.answers(seq, each)
	if !more || flags(msg)&unix.NLM_F_DUMP != unix.NLM_F_DUMP {
		return err
	}
	// A dump stopped in the middle still runs in the kernel, which runs
	// one dump per socket and refuses the next with EBUSY until this one
	// is read to its end.
	if ferr := s.finish(seq); ferr != nil {
		return fmt.Errorf("%w (and the dump left running blocks the socket's next one: %w)", err, ferr)
	}
	return err
}

// answers reads the answers to request seq into each, up to their end or
// the first error. more is whether answers may still come that the socket
// can read: each or a malformed message stopped it, not the end or a
// failed receive.
func (s *Socket) answers(seq uint32, each func(payload []byte) error) (more bool, err error) {
	interrupted := false
	for {
		answers, err := s.receive()
		if err != nil {
			return false, fmt.Errorf("netlink receive: %w", err)
		}
		for m, err := range messages(answers) {
			if err != nil {
				return true, fmt.Errorf("netlink receive: %w", err)
			}
			if m.seq != seq {
				continue // a stale answer to an earlier request
			}
			interrupted = interrupted || m.flags&unix.NLM_F_DUMP_INTR != 0
			switch m.typ {
			case unix.NLMSG_DONE:
				// netlink_dump_done puts the error that ended a dump,
				// if one did, where an NLMSG_ERROR has it.
				if code := status(m.data); code < 0 {
					return false, unix.Errno(-code)
				}
				if interrupted {
					return false, nl.ErrDumpInterrupted
				}
				return false, nil
			case unix.NLMSG_ERROR:
				if code := status(m.data); code != 0 {
					return false, unix.Errno(-code)
				}
				return false, nil
			}
			if err := each(m.data); err != nil {
				return m.flags&unix.NLM_F_MULTI != 0 && !endsIn(answers, seq), err
			}
			if m.flags&unix.NLM_F_MULTI == 0 {
				return false, nil
			}
		}
	}
}

// endsIn reports whether answers hold the end (NLMSG_DONE or NLMSG_ERROR)
// of request seq: the kernel may put a dump's end in the read with its
// last answers, and finish, which reads on, would then wait for nothing.
func endsIn(answers []byte, seq uint32) bool {
	for m, err := range messages(answers) {
		if err != nil {
			return false
		}
		if m.seq == seq && (m.typ == unix.NLMSG_DONE || m.typ == unix.NLMSG_ERROR) {
			return true
		}
	}
	return false
}

// status is the error code (0 or a negative errno) at the start of an
// NLMSG_ERROR or NLMSG_DONE payload; 0 when there is none.
func status(data []byte) int32 {
	if len(data) < 4 {
		return 0
	}
	return int32(binary.NativeEndian.Uint32(data[:4]))
}

// finish reads and drops the rest of dump seq, up to its NLMSG_DONE or
// NLMSG_ERROR, without waiting: while a dump runs, the kernel queues its
// next part as each read takes the one before (netlink_recvmsg), so an
// empty socket means it has ended, its end lost with the rest of a
// malformed read. Waiting for more there held the caller for replyWait.
// A receive error other than that ends it too: the socket cannot be read.
func (s *Socket) finish(seq uint32) error {
	fd := s.s.GetFd()
	for {
		n, err := unix.Read(fd, s.buf) // the socket is non-blocking (see receive)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return fmt.Errorf("netlink receive: %w", err)
		}
		if endsIn(s.buf[:n], seq) {
			return nil
		}
	}
}

// nlaTypeMask clears NLA_F_NESTED and NLA_F_NET_BYTEORDER from a type.
const nlaTypeMask = 0x3fff

// Attrs calls f with each netlink attribute in b (its type without the
// nested and byte-order flags, and its value, valid as long as b).
func Attrs(b []byte, f func(typ uint16, value []byte)) error {
	for len(b) >= unix.SizeofNlAttr {
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		if l < unix.SizeofNlAttr || l > len(b) {
			return errors.New("malformed netlink attribute")
		}
		f(binary.NativeEndian.Uint16(b[2:4])&nlaTypeMask, b[unix.SizeofNlAttr:l])
		b = b[min(len(b), (l+unix.NLA_ALIGNTO-1)&^(unix.NLA_ALIGNTO-1)):]
	}
	return nil
}
