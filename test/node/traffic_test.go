//go:build conformance

package node

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Client traffic from the node to a Service while its proxy is swapped:
// short HTTP requests (a new connection each), one long-lived TCP connection
// that exchanges a line periodically, and a stream of numbered UDP
// datagrams. Each runs until its context ends and then reports a figure.

// shortInterval is the pause between short requests and between datagrams.
const shortInterval = 20 * time.Millisecond

// longInterval is the pause between the long-lived connection's exchanges.
const longInterval = 200 * time.Millisecond

// answerTimeout bounds one request, one exchange and one datagram's answer:
// longer than the few seconds the emulated VM stalls at times (seen while
// pods start), so that only a broken connection counts.
const answerTimeout = 10 * time.Second

// streamFigures is what one stream saw.
type streamFigures struct {
	Sent, Failed int           // requests, exchanges or datagrams; failed: no answer
	LongestGap   time.Duration // longest time between two successful answers
	Errors       []string      // the first few distinct errors
	Survived     bool          // the long-lived connection: no exchange failed
}

func (f streamFigures) String() string {
	s := fmt.Sprintf("%d sent, %d failed, longest gap %s", f.Sent, f.Failed, f.LongestGap.Round(time.Millisecond))
	if len(f.Errors) > 0 {
		s += fmt.Sprintf(" (errors: %s)", strings.Join(f.Errors, "; "))
	}
	return s
}

// recorder keeps a stream's figures as answers come.
type recorder struct {
	mu          sync.Mutex
	f           streamFigures
	lastSuccess time.Time
}

func newRecorder() *recorder { return &recorder{lastSuccess: time.Now()} }

func (r *recorder) sent() { r.mu.Lock(); r.f.Sent++; r.mu.Unlock() }

func (r *recorder) success(at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.f.LongestGap = max(r.f.LongestGap, at.Sub(r.lastSuccess))
	r.lastSuccess = at
}

func (r *recorder) failure(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.f.Failed++
	if msg := err.Error(); len(r.f.Errors) < 3 && !containsString(r.f.Errors, msg) {
		r.f.Errors = append(r.f.Errors, msg)
	}
}

// figures ends the stream at end: the time from the last answer to end
// counts as a gap too, so a stream that stopped answering shows it.
func (r *recorder) figures(end time.Time) streamFigures {
	r.success(end)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// shortRequests sends GET /hostname to addr every shortInterval, one
// connection each, until ctx ends.
func shortRequests(ctx context.Context, addr string) streamFigures {
	r := newRecorder()
	tick := time.NewTicker(shortInterval)
	defer tick.Stop()
	for ctx.Err() == nil {
		r.sent()
		if _, err := httpGet("http://" + addr + "/hostname"); err != nil {
			r.failure(err)
		} else {
			r.success(time.Now())
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	return r.figures(time.Now())
}

// longConnection opens one TCP connection to an echo server at addr and
// sends a numbered line every longInterval, each to be echoed within
// answerTimeout, until ctx ends. It stops at the first failure: the
// connection is then lost (Survived false).
func longConnection(ctx context.Context, addr string) streamFigures {
	r := newRecorder()
	c, err := net.DialTimeout("tcp", addr, answerTimeout)
	if err != nil {
		r.sent()
		r.failure(err)
		return r.figures(time.Now())
	}
	defer c.Close()
	in := bufio.NewReader(c)
	for i := 0; ctx.Err() == nil; i++ {
		r.sent()
		line := strconv.Itoa(i) + "\n"
		c.SetDeadline(time.Now().Add(answerTimeout)) //nolint:errcheck
		if _, err := c.Write([]byte(line)); err != nil {
			r.failure(err)
			return r.figures(time.Now())
		}
		got, err := in.ReadString('\n')
		if err == nil && got != line {
			err = fmt.Errorf("echo %q, want %q", got, line)
		}
		if err != nil {
			r.failure(err)
			return r.figures(time.Now())
		}
		r.success(time.Now())
		select {
		case <-ctx.Done():
		case <-time.After(longInterval):
		}
	}
	f := r.figures(time.Now())
	f.Survived = true
	return f
}

// udpStream sends a numbered datagram to an echo server at addr every
// shortInterval from one socket until ctx ends; a datagram whose echo has
// not come back within answerTimeout of the end is lost.
func udpStream(ctx context.Context, addr string) streamFigures {
	r := newRecorder()
	c, err := net.Dial("udp", addr)
	if err != nil {
		r.sent()
		r.failure(err)
		return r.figures(time.Now())
	}
	defer c.Close()
	var mu sync.Mutex
	answered := map[int]bool{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return // closed at the end; refusals show as lost datagrams
			}
			seq, err := strconv.Atoi(string(buf[:n]))
			if err != nil {
				continue
			}
			mu.Lock()
			if !answered[seq] {
				answered[seq] = true
				r.success(time.Now())
			}
			mu.Unlock()
		}
	}()
	tick := time.NewTicker(shortInterval)
	defer tick.Stop()
	sent := 0
	for ctx.Err() == nil {
		r.sent()
		c.Write([]byte(strconv.Itoa(sent))) //nolint:errcheck // a refused send shows as a lost datagram
		sent++
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	end := time.Now()
	time.Sleep(answerTimeout)
	f := r.figures(end)
	c.Close()
	<-done
	mu.Lock()
	defer mu.Unlock()
	f.Failed = sent - len(answered)
	return f
}

// traffic is a set of streams running together.
type traffic struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	figures map[string]streamFigures
}

// startTraffic starts each stream (by name) on its own goroutine.
func startTraffic(streams map[string]func(context.Context) streamFigures) *traffic {
	ctx, cancel := context.WithCancel(context.Background())
	tr := &traffic{cancel: cancel, figures: map[string]streamFigures{}}
	for name, stream := range streams {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			f := stream(ctx)
			tr.mu.Lock()
			tr.figures[name] = f
			tr.mu.Unlock()
		}()
	}
	return tr
}

// stop ends every stream and returns their figures by name.
func (tr *traffic) stop() map[string]streamFigures {
	tr.cancel()
	tr.wg.Wait()
	return tr.figures
}
