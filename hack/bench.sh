#!/usr/bin/env bash
# make bench: first the Go benchmarks of build + diff + apply through the fake
# kernel, cold and for one endpoint change, at 100 to 50,000 Services (10
# endpoints each), with kernel writes per operation, and a periodic resync
# in steps with its longest step (bench/results.txt); the endpoint change
# again on the VM's real kernel, the proxier alone, with the sync loop's
# CPU per change (test/kernelbench, bench/results-kernel.txt). Then
# the side-by-side run on a real kernel in the VM (test/bench): kube-proxy
# v1.37 IPVS (started with flags only, and with a config file as kubeadm
# starts it) and ipvs-proxy at BENCH_SIZES Services (default
# 100,1000,5000), ipvs-proxy alone at BENCH_IPVS_ONLY_SIZES (default 10000;
# empty skips it), against one API server, with a bare moby/ipvs loop as
# the floor for kernel writes and a bare client-go informer as the floor
# for latency. Besides spaced changes, each proxy meets the churn cases
# (test/bench/cases_test.go): back-to-back changes, steady churn at 10, 50
# and 200 changes/s, and a rollout of 50 Services (bench/results-vm.md;
# the proxies' logs and the raw results in bench/vm-logs/). Both go into
# bench/results.md. Its caps are printed with the table (BENCH_CHANGES,
# BENCH_CHANGE_CAP, BENCH_KUBE_PROXY_BUDGET change them:
# test/bench/plan_test.go); kube-proxy's budget applies to each of its
# churn cases too.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
mkdir -p bench
{
  go test -run '^$' -bench 'SyncAll' -benchmem -benchtime "${COLD_BENCHTIME:-2x}" -timeout 30m ./pkg/proxier/
  go test -run '^$' -bench 'EndpointChange' -benchmem -benchtime "${CHANGE_BENCHTIME:-2000x}" -timeout 30m ./pkg/proxier/
  go test -run '^$' -bench 'ResyncStep' -benchmem -benchtime "${RESYNC_BENCHTIME:-3x}" -timeout 30m ./pkg/proxier/
} | tee bench/results.txt

hack/vm-deps.sh
hack/build-tools.sh >/dev/null # kube-apiserver, etcd and kube-proxy, the reference
rm -rf bench/results-vm.md bench/vm-logs
vm=0
# The same endpoint change, the proxier alone on the VM's kernel.
go test -run '^$' -bench . -benchtime "${KERNEL_BENCHTIME:-1000x}" -timeout 30m ./test/kernelbench/ 2>&1 |
  tee bench/results-kernel.txt || vm=$?
BENCH_SIZES="${BENCH_SIZES:-100,1000,5000}" BENCH_OUT="$PWD/bench/results-vm.md" \
  go test -count=1 -v -run '^TestVM$' -timeout "${BENCH_TIMEOUT:-240m}" ./test/bench/ 2>&1 | tee bench/vm.log || vm=$?

# The VM table is written even when a run failed, with what was measured.
{
  echo "# make bench, $(date -u +%Y-%m-%dT%H:%MZ), $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo
  echo "## Go benchmarks: model + diff + apply through the fake kernel"
  echo
  echo '```'
  cat bench/results.txt
  echo '```'
  echo
  echo "## Go benchmark: one endpoint change, the proxier alone on the VM's kernel"
  echo
  echo '```'
  cat bench/results-kernel.txt
  echo '```'
  echo
  if [[ -f bench/results-vm.md ]]; then cat bench/results-vm.md; else echo "(the VM bench wrote no table: see bench/vm.log)"; fi
} > bench/results.md
echo "wrote bench/results.md"
exit "$vm"
