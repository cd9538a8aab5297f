#!/usr/bin/env bash
# make bench: Go benchmarks of build + diff + apply through the fake kernel,
# cold and for one endpoint change, at 100 to 50,000 Services (10 endpoints
# each), with kernel writes per operation. Results go to bench/results.txt.
# The side-by-side run against kube-proxy in the VM is not built yet.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
mkdir -p bench
{
  go test -run '^$' -bench 'SyncAll' -benchmem -benchtime "${COLD_BENCHTIME:-2x}" -timeout 30m ./pkg/proxier/
  go test -run '^$' -bench 'EndpointChange' -benchmem -benchtime "${CHANGE_BENCHTIME:-2000x}" -timeout 30m ./pkg/proxier/
} | tee bench/results.txt
