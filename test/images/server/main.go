// Command server is the test node's pod server image, a small static stand-in
// for agnhost netexec (no registry is reachable here): over HTTP it answers
// /hostname with the pod's host name (its name), /clientip with the client's
// address as it saw it, /healthz with "ok", and / with the host name too.
// With --tcp-echo-port it echoes what each TCP connection sends back on it,
// for as long as the connection lasts; with --udp-echo-port it answers each
// datagram with the same datagram.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
)

func main() {
	port := flag.Int("http-port", 8080, "HTTP port")
	tcpEcho := flag.Int("tcp-echo-port", 0, "TCP echo port (0: none)")
	udpEcho := flag.Int("udp-echo-port", 0, "UDP echo port (0: none)")
	flag.Parse()
	host, err := os.Hostname()
	if err != nil {
		log.Fatal(err)
	}
	if *tcpEcho != 0 {
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", *tcpEcho))
		if err != nil {
			log.Fatal(err)
		}
		go serveTCPEcho(l)
	}
	if *udpEcho != 0 {
		c, err := net.ListenPacket("udp", fmt.Sprintf(":%d", *udpEcho))
		if err != nil {
			log.Fatal(err)
		}
		go serveUDPEcho(c)
	}
	text := func(s func(*http.Request) string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, s(r)) }
	}
	name := text(func(*http.Request) string { return host })
	http.Handle("/", name)
	http.Handle("/hostname", name)
	http.Handle("/clientip", text(func(r *http.Request) string { return r.RemoteAddr }))
	http.Handle("/healthz", text(func(*http.Request) string { return "ok" }))
	log.Printf("serving on :%d as %s", *port, host)
	log.Fatal(http.ListenAndServe(fmt.Sprintf(":%d", *port), nil))
}

func serveTCPEcho(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			defer c.Close()
			n, err := io.Copy(c, c)
			log.Printf("tcp echo %s: %d bytes, ended: %v", c.RemoteAddr(), n, err)
		}()
	}
}

func serveUDPEcho(c net.PacketConn) {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := c.WriteTo(buf[:n], from); err != nil {
			log.Printf("udp echo to %s: %v", from, err)
		}
	}
}
