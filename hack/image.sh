#!/usr/bin/env bash
# make image: ipvs-proxy's container image, built without Docker, and its
# digest on the last line.
#
#   1. the static binary, built as `make build` does, with -trimpath and no
#      build id, so its bytes depend only on the commit and the Go release;
#   2. a Debian root file system from Debian's archive (mmdebstrap, variant
#      essential: the Essential:yes packages, no apt) with what the binary runs:
#      iptables (nft and legacy back ends, behind hack/image/iptables-wrapper),
#      ipset, kmod (modprobe), conntrack, and ipvsadm for debugging;
#   3. hack/image (go-containerregistry) turns it into an OCI image: the OCI
#      layout bin/image/oci and the same as one file, bin/image/ipvs-proxy.oci.tar
#      (`ctr -n k8s.io images import` takes it and keeps the digest).
#
# Reproducible: SOURCE_DATE_EPOCH is the commit's time unless set, which makes
# mmdebstrap's output and the image's dates fixed. The package versions are
# whatever the archive serves (bookworm, bookworm-updates, bookworm-security;
# no snapshot archive is reachable from here): bin/image/packages.txt lists
# them, and the run warns when they differ from hack/image/packages.txt, the
# list the last recorded digest was built from. With the same commit, Go
# release and package list, the digest is the same.
#
#   IMAGE=registry.example/ipvs-proxy:v1 hack/image.sh   another name and tag
#   hack/image.sh --update-packages   also rewrite hack/image/packages.txt
#   hack/image.sh --kube-proxy BIN    the same root file system with kube-proxy BIN at
#                                     /usr/local/bin/kube-proxy instead of ipvs-proxy, in
#                                     bin/kube-proxy-image (hack/kube-proxy-image.sh)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export PATH="/usr/local/go/bin:$PATH"

update_packages=false
kube_proxy=""
case "${1:-}" in
"") ;;
--update-packages) update_packages=true ;;
--kube-proxy) kube_proxy="${2:?--kube-proxy needs the binary}" ;;
*) echo "usage: $0 [--update-packages | --kube-proxy BIN]" >&2; exit 2 ;;
esac

log() { echo "image: $(date +%H:%M:%S) $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

OUT="$ROOT/bin/image"
ARCHIVE=ipvs-proxy.oci.tar
ENTRYPOINT=/usr/local/bin/ipvs-proxy
COMMENT="Debian root file system and ipvs-proxy"
CACHE="${IPVS_PROXY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ipvs-proxy}"
DEBS="$CACHE/image-debs"
SUITE=bookworm
PACKAGES=iptables,ipset,kmod,conntrack,ipvsadm

[[ $(id -u) == 0 ]] || die "mmdebstrap's root mode needs root"
if ! command -v mmdebstrap >/dev/null; then
	log "installing mmdebstrap"
	apt-get install -y --no-install-recommends mmdebstrap >/dev/null ||
		{ apt-get update >/dev/null && apt-get install -y --no-install-recommends mmdebstrap >/dev/null; } ||
		die "cannot install mmdebstrap"
fi

revision="$(git rev-parse HEAD)"
if [[ -z $kube_proxy && -n "$(git status --porcelain)" ]]; then
	log "WARNING: the tree has uncommitted changes: the digest stands for no commit"
	revision+="-dirty"
fi
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}"
IMAGE="${IMAGE:-ghcr.io/ipvs-proxy/ipvs-proxy:$(git rev-parse --short=12 HEAD)}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$DEBS"

if [[ -z $kube_proxy ]]; then
	log "building the binary"
	CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -buildid=" -o "$work/ipvs-proxy" ./cmd/ipvs-proxy
	# The binary at its own name, and at kube-proxy's path so that kubeadm's
	# DaemonSet needs only its image changed.
	install_binary="install -m 0755 $work/ipvs-proxy \"\$1\"/usr/local/bin/ipvs-proxy && ln -s ipvs-proxy \"\$1\"/usr/local/bin/kube-proxy"
else
	# kube-proxy's image as upstream shapes it: the binary at
	# /usr/local/bin/kube-proxy over a root file system with what its IPVS
	# mode execs (iptables behind the wrapper, ipset, kmod, conntrack).
	OUT="$ROOT/bin/kube-proxy-image"
	ARCHIVE=kube-proxy.oci.tar
	ENTRYPOINT=/usr/local/bin/kube-proxy
	COMMENT="Debian root file system and kube-proxy"
	revision="$("$kube_proxy" --version | awk '{ print $2 }')"
	[[ -n $revision ]] || die "$kube_proxy --version printed no version"
	install_binary="install -m 0755 $kube_proxy \"\$1\"/usr/local/bin/kube-proxy"
fi
(cd hack/image && go build -o "$work/image" .)

log "building the Debian root file system (mmdebstrap $SUITE)"
iptables_cmds="iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore"
# The hooks run outside the chroot with "$1" its root. The .deb cache lives
# outside it (the man page's sync-in/sync-out recipe) so a rebuild downloads
# nothing that has not changed; essential/unlink is skipped so that the
# essential packages reach the cache too. hostname and resolv.conf come from
# the host: the runtime replaces both, so the image carries neither.
TMPDIR="$work" mmdebstrap --mode=root --variant=essential --include="$PACKAGES" \
	--components=main --skip=essential/unlink \
	--dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--dpkgopt='path-exclude=/usr/share/info/*' \
	--setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
	--setup-hook="sync-in $DEBS /var/cache/apt/archives/" \
	--customize-hook="sync-out /var/cache/apt/archives $DEBS" \
	--customize-hook='rm -f "$1"/etc/hostname "$1"/etc/resolv.conf' \
	--customize-hook="$install_binary" \
	--customize-hook="install -m 0755 $ROOT/hack/image/iptables-wrapper \"\$1\"/usr/sbin/iptables-wrapper" \
	--customize-hook="for c in $iptables_cmds; do ln -sf iptables-wrapper \"\$1\"/usr/sbin/\$c; done" \
	--customize-hook="chroot \"\$1\" dpkg-query -W -f '\${Package} \${Version}\n' > $work/packages.txt" \
	"$SUITE" "$work/rootfs.tar" \
	"deb http://deb.debian.org/debian $SUITE main" \
	"deb http://deb.debian.org/debian $SUITE-updates main" \
	"deb http://deb.debian.org/debian-security $SUITE-security main" \
	>"$work/mmdebstrap.log" 2>&1 || { tail -30 "$work/mmdebstrap.log" >&2; die "mmdebstrap failed"; }

rm -rf "$OUT"
mkdir -p "$OUT"
sort "$work/packages.txt" >"$OUT/packages.txt"
if $update_packages; then
	cp "$OUT/packages.txt" hack/image/packages.txt
elif ! diff -u hack/image/packages.txt "$OUT/packages.txt" >&2; then
	log "WARNING: Debian's archive now serves other package versions than hack/image/packages.txt (above): the digest differs from one built with those"
fi

log "writing the image"
"$work/image" -rootfs "$work/rootfs.tar" -name "$IMAGE" -epoch "$SOURCE_DATE_EPOCH" \
	-revision "$revision" -entrypoint "$ENTRYPOINT" -comment "$COMMENT" \
	-oci "$OUT/oci" -oci-archive "$OUT/$ARCHIVE" >"$work/ref"
log "OCI layout $OUT/oci, OCI archive $OUT/$ARCHIVE ($(du -h "$OUT/$ARCHIVE" | cut -f1))"
cat "$work/ref"
