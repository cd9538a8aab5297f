// Command server is the test node's pod server image, a small static stand-in
// for agnhost netexec (no registry is reachable here): over HTTP it answers
// /hostname with the pod's host name (its name), /clientip with the client's
// address as it saw it, /healthz with "ok", and / with the host name too.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	port := flag.Int("http-port", 8080, "HTTP port")
	flag.Parse()
	host, err := os.Hostname()
	if err != nil {
		log.Fatal(err)
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
