#!/usr/bin/env bash
# make conformance: Kubernetes' own Service e2e tests on the real test node,
# under kube-proxy v1.37 in IPVS mode (kubeadm's DaemonSet) and under
# ipvs-proxy (the same DaemonSet with only its image changed), run by the
# ginkgo CLI on CONFORMANCE_PROCS processes (default 2) (test/node
# TestConformance), and the live migration between them
# (TestMigration), both built with the `conformance` tag so make test never
# compiles them. Writes $CONFORMANCE_RESULTS/results.md (default
# bin/conformance): one row per e2e test with its outcome under each proxy,
# the counts per proxy, and the migration's figures (migration.md) if
# TestMigration wrote them. The JUnit reports and logs stay beside it.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export PATH="/usr/local/go/bin:$PATH"
export CONFORMANCE_RESULTS="$(realpath -m "${CONFORMANCE_RESULTS:-$ROOT/bin/conformance}")"

log() { echo "conformance: $(date +%H:%M:%S) $*" >&2; }

# The agnhost image carries curl, wget and OpenBSD's nc from this host's Debian.
missing=()
for pkg in curl:/usr/bin/curl wget:/usr/bin/wget netcat-openbsd:/bin/nc.openbsd busybox-static:/bin/busybox; do
	[[ -x ${pkg#*:} ]] || missing+=("${pkg%%:*}")
done
if ((${#missing[@]})); then
	log "installing ${missing[*]}"
	apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
fi
hack/vm-deps.sh
for set in "" node e2e; do
	hack/build-tools.sh $set >/dev/null
done

# Results of an earlier run would mix into the table.
rm -rf "$CONFORMANCE_RESULTS"
mkdir -p "$CONFORMANCE_RESULTS"
log "running the e2e tests and the migration in the VM; results in $CONFORMANCE_RESULTS"
rc=0
go test -tags conformance -count=1 -v -timeout 120m -run '^Test(Conformance|Migration)$' ./test/node/ || rc=$?

{
	echo "# make conformance: $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD)"
	echo
	if ls "$CONFORMANCE_RESULTS"/junit_*.xml >/dev/null 2>&1; then
		echo "## Kubernetes' [sig-network] Services e2e tests"
		echo
		go run ./hack/conformance-table -results "$CONFORMANCE_RESULTS"
	else
		echo "No e2e report: TestConformance did not get as far as the e2e tests."
	fi
	if [[ -f $CONFORMANCE_RESULTS/migration.md ]]; then
		echo
		cat "$CONFORMANCE_RESULTS/migration.md"
	fi
} >"$CONFORMANCE_RESULTS/results.md"
cat "$CONFORMANCE_RESULTS/results.md"
log "go test exit code $rc; table in $CONFORMANCE_RESULTS/results.md"
exit $rc
