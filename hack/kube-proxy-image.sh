#!/usr/bin/env bash
# kube-proxy's own image, built here as the reference for test/node's
# migration test (no registry is reachable): kube-proxy from
# hack/build-tools.sh (the pinned k8s.io/kubernetes) in make image's Debian
# root file system (hack/image.sh --kube-proxy), as an OCI archive at
# bin/kube-proxy-image/kube-proxy.oci.tar. Prints NAME@DIGEST last.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export PATH="/usr/local/go/bin:$PATH"
bin="$(hack/build-tools.sh | tail -1)"
version="$("$bin/kube-proxy" --version | awk '{ print $2 }')"
IMAGE="${IMAGE:-localhost/ipvs-proxy-test/kube-proxy:$version}" exec hack/image.sh --kube-proxy "$bin/kube-proxy"
