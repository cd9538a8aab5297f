#!/usr/bin/env bash
# The whole test suite: unit tests, the API server integration tests and the
# end-to-end tests in a VM with a real kernel. It installs what it needs and
# fails, never skips, when something cannot run. With an argument (unit,
# integration, e2e) it runs that part only.
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
if [[ $what == all || $what == unit ]]; then
  phase "lint" hack/lint.sh
  phase "unit tests" go test -count=1 ./pkg/... ./cmd/... ./manifests/...
  # A smoke run of make bench, so the benchmarks cannot rot.
  phase "bench smoke" go test -run '^$' -bench 'EndpointChange/services=100$' -benchtime 10x ./pkg/proxier/
fi
# Packages that boot a VM or start an API server run one at a time: two
# cores, and each VM package boots one VM for all its cases.
case $what in
  all) pkgs=(./test/...) ;;
  integration) pkgs=(./test/apiserver/... ./test/integration/...) ;;
  e2e) pkgs=(./test/vm/... ./test/e2e/...) ;;
  *) pkgs=() ;;
esac
if (( ${#pkgs[@]} )); then
  phase "integration and VM tests" go test -count=1 -p 1 -timeout 45m -v "${pkgs[@]}"
fi
echo "=== timings"
printf '  %s\n' "${timings[@]}"
echo "  total: $(( $(date +%s) - t0 )) s"
