// Command coredns is CoreDNS with only the plugins the test node's cluster
// DNS uses (hack/build-tools.sh dns): kubernetes, cache, errors, health,
// ready. Built in its own module, so CoreDNS's dependencies stay out of the
// product's go.mod, and without the other plugins, which would pull in
// cloud SDKs that take long to build.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	coremain.Run()
}
