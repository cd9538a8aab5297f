#!/usr/bin/env bash
# make demo: a throwaway cluster on this machine. A real kube-apiserver and
# etcd on the host's loopback, a QEMU VM booting Debian's kernel (real IPVS)
# with ipvs-proxy in it watching that API server, the sample Services from
# manifests/examples, ipvs-proxy's status, and traffic showing which pod
# answered each request. Everything is torn down at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
t0=$(date +%s)
step() { echo; echo "=== [$1] $2 ($(( $(date +%s) - t0 )) s)"; }

step 1/4 "installing what is missing: QEMU, Debian's kernel, ipvsadm, iptables, ipset"
hack/vm-deps.sh
step 2/4 "building kube-apiserver, etcd and kube-proxy from the Go module proxy (about 10-15 minutes the first time, cached after)"
hack/build-tools.sh
step 3/4 "building ipvs-proxy and the demo"
make build
go test -count=1 -run XXX ./test/e2e/ >/dev/null
step 4/4 "running the demo"
set +e
IPVS_PROXY_DEMO=1 go test -count=1 -timeout 20m -run '^TestDemo$' -v ./test/e2e/ 2>&1 |
  grep -v -E '^(=== RUN|=== NAME|--- (PASS|SKIP)|PASS$|ok )'
status=${PIPESTATUS[0]}
set -e
echo
echo "=== demo finished in $(( $(date +%s) - t0 )) s (exit $status)"
exit "$status"
