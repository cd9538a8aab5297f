#!/usr/bin/env bash
# The images the test node's pods run besides ipvs-proxy's own (make image):
# no registry is reachable, so they are built here from test/images and
# written as OCI archives that `ctr -n k8s.io images import` takes:
#
#   bin/node-images/pause.oci.tar    localhost/ipvs-proxy-test/pause:3.10.2, the pod sandbox
#                                    (containerd's pinned sandbox image on the node)
#   bin/node-images/server.oci.tar   localhost/ipvs-proxy-test/server:1, an HTTP server
#                                    answering its host name (agnhost netexec's /hostname),
#                                    and TCP and UDP echo servers when asked
#
# Each is one layer of one static binary, written by hack/image (go-containerregistry)
# with the commit's time, so the same commit and Go release give the same digests.
# Prints "NAME@DIGEST" per image.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export PATH="/usr/local/go/bin:$PATH"
OUT="$ROOT/bin/node-images"
REPO=localhost/ipvs-proxy-test
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd hack/image && go build -o "$work/image" .)
mkdir -p "$OUT"
# name tag entrypoint: one image per line.
while read -r name tag entrypoint; do
	CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -buildid=" -o "$work/$name" "./test/images/$name"
	rm -f "$OUT/$name.oci.tar"
	"$work/image" -file "$work/$name=$entrypoint" -entrypoint "$entrypoint" -name "$REPO/$name:$tag" \
		-epoch "$SOURCE_DATE_EPOCH" -comment "test/images/$name" -oci-archive "$OUT/$name.oci.tar"
done <<'IMAGES'
pause 3.10.2 /pause
server 1 /server
IMAGES
