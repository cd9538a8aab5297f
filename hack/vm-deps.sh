#!/usr/bin/env bash
# Installs what the VM test harness (test/vm) needs: QEMU, a Debian kernel with its
# modules (IPVS, dummy, 9p, overlay ...), a static busybox for the initramfs, and the
# userspace tools the tests run inside the guest. Idempotent: does nothing when all of
# it is already there. Needs root (or sudo) and Debian's package archive.
set -euo pipefail

# runc and the CNI plugins (bridge, host-local, loopback in /usr/lib/cni) make the
# VM a real node for kubelet (test/node).
PACKAGES=(qemu-system-x86 linux-image-amd64 busybox-static iptables ipset ipvsadm
	conntrack iproute2 kmod xz-utils runc containernetworking-plugins nftables)

missing=()
for cmd in qemu-system-x86_64 ipvsadm iptables ipset conntrack ip modprobe xz runc nft; do
	command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 ||
		missing+=("$cmd")
done
# A kernel is usable only together with its modules directory.
kernel_ok=
for k in /boot/vmlinuz-*; do
	[ -e "$k" ] && [ -d "/lib/modules/${k#/boot/vmlinuz-}" ] && kernel_ok=1
done
[ -n "$kernel_ok" ] || missing+=("/boot/vmlinuz-* with /lib/modules")
# The initramfs needs a statically linked busybox (the busybox package is dynamic).
dpkg -s busybox-static >/dev/null 2>&1 && [ -x /bin/busybox ] || missing+=("busybox-static")
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] || missing+=("/usr/lib/cni plugins")

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || {
		echo "vm-deps: missing ${missing[*]}; need root or sudo to install ${PACKAGES[*]}" >&2
		exit 1
	}
	SUDO=sudo
fi

echo "vm-deps: missing ${missing[*]}; installing ${PACKAGES[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update -qq >/tmp/vm-deps-apt.log 2>&1 ||
	! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		"${PACKAGES[@]}" >>/tmp/vm-deps-apt.log 2>&1; then
	tail -n 20 /tmp/vm-deps-apt.log >&2
	echo "vm-deps: apt-get failed installing ${PACKAGES[*]} (full log: /tmp/vm-deps-apt.log)" >&2
	exit 1
fi

# Check again: a package that installed but left something out is still a failure.
for cmd in qemu-system-x86_64 ipvsadm iptables ipset conntrack ip modprobe xz runc nft; do
	PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || {
		echo "vm-deps: $cmd still missing after install" >&2
		exit 1
	}
done
ls /boot/vmlinuz-* >/dev/null 2>&1 || { echo "vm-deps: no /boot/vmlinuz-* after install" >&2; exit 1; }
[ -x /usr/lib/cni/bridge ] || { echo "vm-deps: no /usr/lib/cni/bridge after install" >&2; exit 1; }
echo "vm-deps: done"
