#!/usr/bin/env bash
# Builds the test-only binaries from the pinned module in hack/tools into a
# cache directory, and prints that directory on its last line. Rebuilds a
# binary only when it is missing or what it is built from changed (its stamp:
# a hash of hack/tools/go.mod + go.sum, or of hack/containerd's and the build
# tags, and the Go version).
#
#   hack/build-tools.sh              kube-apiserver, etcd, kube-proxy (the tests' API server and reference)
#   hack/build-tools.sh node         kubelet, kubectl, kube-controller-manager, kube-scheduler (DaemonSets,
#                                    Deployments and EndpointSlices need them), containerd, its runc shim
#                                    and ctr: a real node (test/node, in make test)
#   hack/build-tools.sh e2e          e2e.test, upstream's e2e tests, the ginkgo CLI that runs them on
#                                    parallel processes, agnhost, their test image's binary
#                                    (test/images/agnhost of the same module), and CoreDNS, the
#                                    cluster DNS they need (hack/coredns): make conformance
#   hack/build-tools.sh --print-dir  only print the bin dir
#
# Cold, on 2 cores, each set takes many minutes; run it niced in the background.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="$ROOT/hack/tools"
CACHE="${IPVS_PROXY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ipvs-proxy}"
BIN="$CACHE/bin"

set_name=tools
case "${1:-}" in
--print-dir) echo "$BIN"; exit 0 ;;
"") ;;
node | e2e) set_name=$1 ;;
*) echo "usage: $0 [--print-dir | node | e2e]" >&2; exit 2 ;;
esac

log() { echo "build-tools: $(date +%H:%M:%S) $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v go >/dev/null || die "go is not on PATH"
mkdir -p "$BIN"

# Two runs at once (a test and CI, two shells) must not interleave writes.
exec 9>"$CACHE/.build.lock"
if command -v flock >/dev/null; then
	flock 9 || die "cannot lock $CACHE/.build.lock"
fi

# containerd is built in its own module, hack/containerd, at its own
# version: kubelet v1.37 needs containerd 2.x (Debian 12 has 1.6), and v2.1.4
# is the one Kubernetes v1.37's own test clusters install
# (cluster/gce/config-default.sh). The tags leave out the btrfs, devmapper
# and zfs snapshotters: the node uses overlayfs, and btrfs needs cgo.
CONTAINERD="$ROOT/hack/containerd"
CONTAINERD_TAGS="no_btrfs no_devmapper no_zfs"
containerd_version="$(awk '$1 == "require" && $2 == "github.com/containerd/containerd/v2" { print $3; exit }' "$CONTAINERD/go.mod")"
[[ -n "$containerd_version" ]] || die "containerd not found in $CONTAINERD/go.mod"

# CoreDNS, in its own module hack/coredns at its own version, with only the
# plugins the test node's cluster DNS uses.
COREDNS="$ROOT/hack/coredns"

tools_stamp="$(cat "$TOOLS/go.mod" "$TOOLS/go.sum" <(go env GOVERSION) | sha256sum | cut -d' ' -f1)"
coredns_stamp="$(cat "$COREDNS/go.mod" "$COREDNS/go.sum" "$COREDNS/main.go" <(go env GOVERSION) | sha256sum | cut -d' ' -f1)"
containerd_stamp="$(cat "$CONTAINERD/go.mod" "$CONTAINERD/go.sum" <(echo "$CONTAINERD_TAGS") <(go env GOVERSION) | sha256sum | cut -d' ' -f1)"

# name -> package; kube-proxy is the reference implementation we compare with.
declare -A PKG=(
	[kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
	[etcd]=go.etcd.io/etcd/server/v3
	[kube-proxy]=k8s.io/kubernetes/cmd/kube-proxy
	[kubelet]=k8s.io/kubernetes/cmd/kubelet
	[kubectl]=k8s.io/kubernetes/cmd/kubectl
	[kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
	[kube-scheduler]=k8s.io/kubernetes/cmd/kube-scheduler
	[e2e.test]=k8s.io/kubernetes/test/e2e
	[ginkgo]=github.com/onsi/ginkgo/v2/ginkgo
	[agnhost]=k8s.io/kubernetes/test/images/agnhost
	[coredns]=github.com/ipvs-proxy/ipvs-proxy/hack/coredns
	[containerd]=github.com/containerd/containerd/v2/cmd/containerd
	[ctr]=github.com/containerd/containerd/v2/cmd/ctr
	[containerd-shim-runc-v2]=github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2
)
case $set_name in
tools) ORDER=(kube-apiserver kube-proxy etcd) ;;
node) ORDER=(kubelet kubectl kube-controller-manager kube-scheduler containerd containerd-shim-runc-v2 ctr) ;;
e2e) ORDER=(e2e.test ginkgo agnhost coredns) ;;
esac

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

# build NAME OUT: one binary, as its kind is built.
build() {
	case $1 in
	containerd | ctr | containerd-shim-runc-v2)
		(cd "$CONTAINERD" && CGO_ENABLED=0 go build -trimpath -tags "$CONTAINERD_TAGS" \
			-ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$containerd_version" \
			-o "$2" "${PKG[$1]}")
		;;
	coredns)
		(cd "$COREDNS" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$2" .)
		;;
	e2e.test)
		(cd "$TOOLS" && CGO_ENABLED=0 go test -c -trimpath -ldflags "$ldflags" -o "$2" "${PKG[$1]}")
		;;
	agnhost)
		# agnhost needs one module more (ishidawataru/sctp) than hack/tools'
		# go.sum has. A copy of go.mod with go.sum plus agnhost.sum keeps
		# hack/tools, and so every other binary's stamp, unchanged.
		local mod
		mod="$(mktemp -d)"
		cp "$TOOLS/go.mod" "$mod/go.mod"
		cat "$TOOLS/go.sum" "$TOOLS/agnhost.sum" >"$mod/go.sum"
		(cd "$TOOLS" && CGO_ENABLED=0 go build -modfile="$mod/go.mod" -trimpath -ldflags "$ldflags" -o "$2" "${PKG[$1]}")
		local rc=$?
		rm -rf "$mod"
		return $rc
		;;
	*)
		(cd "$TOOLS" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$2" "${PKG[$1]}")
		;;
	esac
}

total_start=$SECONDS
built=0
for name in "${ORDER[@]}"; do
	case $name in
	containerd | ctr | containerd-shim-runc-v2) stamp=$containerd_stamp ;;
	coredns) stamp=$coredns_stamp ;;
	agnhost) stamp="$(cat <(echo "$tools_stamp") "$TOOLS/agnhost.sum" | sha256sum | cut -d' ' -f1)" ;;
	*) stamp=$tools_stamp ;;
	esac
	if [[ -x "$BIN/$name" && "$stamp" == "$(cat "$BIN/.$name.stamp" 2>/dev/null)" ]]; then
		log "$name is up to date"
		continue
	fi
	log "building $name (${PKG[$name]}) ..."
	start=$SECONDS
	# Build to a temporary name so an interrupted build never leaves a
	# truncated binary that a later run would take as up to date.
	build "$name" "$BIN/.$name.tmp" || die "building $name (${PKG[$name]}) failed"
	mv -f "$BIN/.$name.tmp" "$BIN/$name"
	echo "$stamp" >"$BIN/.$name.stamp"
	log "built $name in $((SECONDS - start)) s"
	built=$((built + 1))
done
if [[ $built -gt 0 ]]; then log "built $built binaries in $((SECONDS - total_start)) s total"; fi
echo "$BIN"
