#!/usr/bin/env bash
# The images Kubernetes' e2e tests run on the test node (make conformance),
# built here since no registry is reachable, as OCI archives that
# `ctr -n k8s.io images import` takes:
#
#   bin/node-images/agnhost.oci.tar   localhost/e2e-test-images/agnhost:2.66.1: the real agnhost
#       (hack/build-tools.sh e2e) with what the Service tests run inside it:
#       busybox's tools, dash as sh, GNU wget, curl and OpenBSD's nc (the -v,
#       -t and -u the tests use; busybox's nc has none), from this host's Debian.
#       Entrypoint /agnhost, default argument pause, as upstream's image.
#       The e2e framework asks for it by that name under the image list
#       test/node/testdata/repo-list.yaml.
#   bin/node-images/coredns.oci.tar   localhost/ipvs-proxy-test/coredns:1.15.0, the cluster DNS
#       (hack/coredns), its Corefile in test/node/testdata/coredns.yaml's ConfigMap.
#
# The pause image the framework asks for is hack/node-images.sh's, already
# named as repo-list.yaml maps it. Prints "NAME@DIGEST" per image; the last
# line is agnhost's.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export PATH="/usr/local/go/bin:$PATH"
OUT="$ROOT/bin/node-images"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}"
BIN="$(hack/build-tools.sh --print-dir)"
for f in agnhost coredns; do
	[[ -x "$BIN/$f" ]] || { echo "$BIN/$f missing: run hack/build-tools.sh e2e" >&2; exit 1; }
done
for f in /bin/busybox /usr/bin/curl /bin/nc.openbsd /usr/bin/wget; do
	[[ -x "$f" ]] || { echo "$f missing: apt-get install busybox-static curl netcat-openbsd wget" >&2; exit 1; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd hack/image && go build -o "$work/image" .)
mkdir -p "$OUT"

# image ROOT NAME ENTRYPOINT CMD: an image of the directory ROOT, its tar
# sorted and owned by root so the same files give the same digest.
image() {
	tar --sort=name --numeric-owner --owner=0 --group=0 --mtime="@$SOURCE_DATE_EPOCH" \
		-C "$1" -cf "$work/rootfs.tar" .
	rm -f "$OUT/$2.oci.tar"
	"$work/image" -rootfs "$work/rootfs.tar" -name "$3" -epoch "$SOURCE_DATE_EPOCH" \
		-entrypoint "$4" -cmd "$5" -comment "hack/conformance-images.sh $2" \
		-oci "$work/$2.oci" -oci-archive "$OUT/$2.oci.tar"
}

root="$work/coredns"
mkdir -p "$root"
cp "$BIN/coredns" "$root/coredns"
image "$root" coredns localhost/ipvs-proxy-test/coredns:1.15.0 /coredns "-conf /etc/coredns/Corefile"

root="$work/agnhost"
mkdir -p "$root/bin" "$root/usr/bin" "$root/etc" "$root/tmp" "$root/lib64"
chmod 1777 "$root/tmp"
cp "$BIN/agnhost" "$root/agnhost"
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
	[[ $applet == nc || $applet == wget || $applet == busybox ]] || ln -s busybox "$root/bin/$applet"
done
# sh is Debian's dash: busybox's sh runs its own applets before PATH, and
# its nc has no -v, -t or -u.
rm "$root/bin/sh"
cp /bin/dash "$root/bin/sh"
cp /usr/bin/curl "$root/usr/bin/curl"
cp /bin/nc.openbsd "$root/bin/nc"
# busybox's wget, a static glibc binary, dies of a segmentation fault in
# this image (its name lookup, even of an address); GNU wget does not.
cp /usr/bin/wget "$root/bin/wget"
# The dynamic binaries' libraries, where their loader looks for them.
for lib in $(ldd /bin/dash /usr/bin/curl /bin/nc.openbsd /usr/bin/wget | awk '$3 ~ /^\// { print $3 } $1 ~ /^\/lib64/ { print $1 }' | sort -u); do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
image "$root" agnhost localhost/e2e-test-images/agnhost:2.66.1 /agnhost pause
