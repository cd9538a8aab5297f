#!/usr/bin/env bash
# Builds the test-only binaries (kube-apiserver, etcd, kube-proxy) from the
# pinned module in hack/tools into a cache directory, and prints that directory
# on its last line. Rebuilds only when a binary is missing or the pin changed
# (stamp = hash of hack/tools/go.mod + go.sum + the Go version).
#
#   hack/build-tools.sh              build if needed, print the bin dir last
#   hack/build-tools.sh --print-dir  only print the bin dir
#
# Cold, on 2 cores, this takes ~10-15 minutes; run it niced in the background.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="$ROOT/hack/tools"
CACHE="${IPVS_PROXY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ipvs-proxy}"
BIN="$CACHE/bin"

if [[ "${1:-}" == "--print-dir" ]]; then
	echo "$BIN"
	exit 0
elif [[ $# -gt 0 ]]; then
	echo "usage: $0 [--print-dir]" >&2
	exit 2
fi

log() { echo "build-tools: $(date +%H:%M:%S) $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v go >/dev/null || die "go is not on PATH"
mkdir -p "$BIN"

# Two runs at once (a test and CI, two shells) must not interleave writes.
exec 9>"$CACHE/.build.lock"
if command -v flock >/dev/null; then
	flock 9 || die "cannot lock $CACHE/.build.lock"
fi

stamp="$(cat "$TOOLS/go.mod" "$TOOLS/go.sum" <(go env GOVERSION) | sha256sum | cut -d' ' -f1)"
old_stamp="$(cat "$BIN/.stamp" 2>/dev/null || true)"

# name -> package; kube-proxy is the reference implementation we compare with.
declare -A PKG=(
	[kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
	[etcd]=go.etcd.io/etcd/server/v3
	[kube-proxy]=k8s.io/kubernetes/cmd/kube-proxy
)
ORDER=(kube-apiserver kube-proxy etcd)

# Stamp Kubernetes's version into the binaries as a release build would, so
# /version and the logs say v1.37.x rather than v0.0.0-master.
k8s_version="$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$TOOLS/go.mod")"
[[ -n "$k8s_version" ]] || die "k8s.io/kubernetes not found in $TOOLS/go.mod"
major="${k8s_version#v}"; major="${major%%.*}"
minor="${k8s_version#v*.}"; minor="${minor%%.*}"
ldflags="-s -w"
for v in gitVersion=$k8s_version gitMajor=$major gitMinor=$minor gitTreeState=clean; do
	ldflags+=" -X k8s.io/component-base/version.$v -X k8s.io/client-go/pkg/version.$v"
done

total_start=$SECONDS
built=0
for name in "${ORDER[@]}"; do
	if [[ -x "$BIN/$name" && "$stamp" == "$old_stamp" ]]; then
		log "$name is up to date"
		continue
	fi
	log "building $name (${PKG[$name]}) ..."
	start=$SECONDS
	# Build to a temporary name so an interrupted build never leaves a
	# truncated binary that a later run would take as up to date.
	(cd "$TOOLS" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" \
		-o "$BIN/.$name.tmp" "${PKG[$name]}") || die "go build ${PKG[$name]} failed"
	mv -f "$BIN/.$name.tmp" "$BIN/$name"
	log "built $name in $((SECONDS - start)) s"
	built=$((built + 1))
done
echo "$stamp" > "$BIN/.stamp"
if [[ $built -gt 0 ]]; then log "built $built binaries in $((SECONDS - total_start)) s total"; fi
echo "$BIN"
