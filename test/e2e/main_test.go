// Package e2e proves ipvs-proxy on a real kernel: every test here runs inside
// one QEMU VM booting Debian's kernel (see test/vm), where IPVS, dummy links,
// netfilter and network namespaces are real.
package e2e

import (
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/test/vm"
)

func TestMain(m *testing.M) { vm.Main(m) }
