#!/usr/bin/env bash
# The whole test suite: unit tests, the API server integration tests and the
# end-to-end tests in a VM with a real kernel. It installs what it needs
# (hack/vm-deps.sh, hack/build-tools.sh) and fails when that fails. With an
# argument (unit, integration, e2e) it runs that part only.
#
# What can still skip, and why:
# - The unit tests against the host kernel (pkg/{cleanup,conntrack,ipset,
#   iptables,netif}, in a network namespace of their own) skip when
#   not root, without network namespaces, ipset or iptables binaries. Under
#   CI=true they fail instead (test/netnstest.Skipf); the VM tests cover the
#   same kernel paths.
# - pkg/netif's kernel test skips, under CI too, where the kernel has no
#   dummy links: the development and CI machines' kernel lacks CONFIG_DUMMY.
#   The VM's kernel runs netif against its fake (TestGuestKernelMatchesFakes).
# - Skips that do not depend on the machine: TestDemo runs only under make
#   demo; the VM packages' host half and guest half each skip in the
#   other's process.
# - Environment probes that skip even under CI: the IPv6 health check test
#   without ::1, the hostname test without a host name, the sysctl test
#   without /proc/sys, a manifests test without sh. (The conntrack traffic
#   test needs nft, which vm-deps.sh installs: without it, it fails under CI.)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
what="${1:-all}"
t0=$(date +%s)
timings=()
phase() { # name command...
  local name=$1 s; shift
  s=$(date +%s)
  echo "=== $name"
  "$@"
  timings+=("$name: $(( $(date +%s) - s )) s")
}

phase "install VM packages" hack/vm-deps.sh
if [[ $what == all || $what == integration || $what == e2e ]]; then
  phase "build kube-apiserver, etcd, kube-proxy" hack/build-tools.sh
fi
if [[ $what == all || $what == e2e ]]; then
  phase "build kubelet, containerd, controllers (test/node)" hack/build-tools.sh node
fi
if [[ $what == all || $what == unit ]]; then
  phase "lint" hack/lint.sh
  phase "unit tests" go test -count=1 ./pkg/... ./cmd/... ./manifests/... ./hack/...
  # A smoke run of make bench, so the benchmarks cannot rot.
  phase "bench smoke" go test -run '^$' -bench 'EndpointChange/services=100$' -benchtime 10x ./pkg/proxier/
fi
# Packages that boot a VM or start an API server run one at a time: two
# cores, and each VM package boots one VM for all its cases.
case $what in
  all) pkgs=(./test/...) ;;
  integration) pkgs=(./test/apiserver/... ./test/integration/...) ;;
  e2e) pkgs=(./test/vm/... ./test/e2e/... ./test/node/...) ;;
  *) pkgs=() ;;
esac
# A guest kernel that stalls (test/vm's ErrKernelStall: under TCG it has
# wedged a guest before any test step ran) fails its package at once; that
# package, and only for that reason, runs once more, and the summary says so.
retried=()
vm_packages() { # packages...
  local pkg log status list failed=()
  # On its own line, so that set -e stops the script when go list fails:
  # in the loop's word list its failure would leave nothing to run, and
  # the phase would pass having tested nothing.
  list=$(go list "$@")
  if [[ -z $list ]]; then
    echo "FAIL: no packages in $*"
    return 1
  fi
  log=$(mktemp)
  for pkg in $list; do
    status=0
    go test -count=1 -timeout 45m -v "$pkg" 2>&1 | tee "$log" || status=$?
    if (( status != 0 )) && grep -q "$stall_marker" "$log"; then
      echo "=== $pkg failed on a guest kernel stall (above): running it once more"
      retried+=("$pkg")
      status=0
      go test -count=1 -timeout 45m -v "$pkg" 2>&1 | tee "$log" || status=$?
    fi
    (( status == 0 )) || failed+=("$pkg")
  done
  rm -f "$log"
  if (( ${#failed[@]} )); then
    echo "FAIL: ${failed[*]}"
    return 1
  fi
}
stall_marker="vm: the guest kernel stalled" # test/vm.StallMarker
if (( ${#pkgs[@]} )); then
  phase "integration and VM tests" vm_packages "${pkgs[@]}"
fi
echo "=== timings"
printf '  %s\n' "${timings[@]}"
if (( ${#retried[@]} )); then
  echo "  run twice after a guest kernel stall: ${retried[*]}"
fi
echo "  total: $(( $(date +%s) - t0 )) s"
