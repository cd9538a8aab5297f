package vm

// The guest boots from a small initramfs: a static busybox, the handful of modules
// needed to reach the host's root over 9p, and the /init script below. Everything
// else (iptables, ipvsadm, the test binary itself) comes from the host's root file
// system, shared read-only and made writable with an overlay.
//
// Why not github.com/hugelgupf/vmtest: it builds its guest from u-root's Go commands
// and a Go init that expects 9p and virtio drivers to be built into the kernel;
// Debian's kernel has them as modules, which must be loaded before the root is
// reachable, and the tests need the host's own iptables/ipvsadm in a chroot. What is
// left of it that fits (a qemu command line) is a few lines here.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Per-run input reaches /init through the "ctl" share, a host temp dir:
//
//	run.sh     the command, its environment and directory (see runScript)
//	shares     one "TAG GUESTPATH" line per extra read-write share
//	modprobe   the module names to load in the chroot (see guestModprobeList), one
//	           line per modprobe process to run in parallel
//
// and /init leaves there:
//
//	exitcode   the command's exit status; its absence means the run failed
//	error      why /init gave up, when it did
//	times      guest uptime at each stage, for the host's timing line
//
// The initramfs is therefore the same for every run, and cached.
const initScript = `#!/bin/busybox sh
# PID 1 of the ipvs-proxy test VM; written by test/vm/initramfs.go.
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

CTL=
fail() {
	echo "vm-init: $*" >/dev/console
	[ -n "$CTL" ] && echo "$*" >"$CTL/error"
	sync
	poweroff -f
	sleep 10
	exit 1
}
stage() { read -r up _ </proc/uptime; echo "$1 $up" >>/ctl/times; }

for m in $(cat /etc/modules); do
	insmod "/lib/modules/$m.ko" || fail "insmod $m failed"
done

P9="trans=virtio,version=9p2000.L,msize=262144"
mount -t 9p -o "$P9" ctl /ctl || fail "cannot mount the ctl share"
CTL=/ctl
stage init

# The host's root, read-only, under a tmpfs upper layer: the guest can write
# anywhere, and all of it is thrown away at power-off.
mount -t 9p -o "$P9,ro" hostroot /host || fail "cannot mount the host root over 9p"
mount -t tmpfs -o mode=0755 rw /rw && mkdir /rw/upper /rw/work || fail "cannot mount tmpfs"
mount -t overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
	fail "cannot mount the overlay root"
R=/newroot
mount -t proc proc $R/proc &&
	mount -t sysfs sysfs $R/sys &&
	mount -t devtmpfs devtmpfs $R/dev &&
	mkdir -p $R/dev/pts $R/dev/shm &&
	mount -t devpts -o newinstance,ptmxmode=0666 devpts $R/dev/pts &&
	mount -t tmpfs shm $R/dev/shm &&
	mount -t tmpfs -o mode=0755 run $R/run &&
	mkdir -p $R/run/ipvs-proxy-vm &&
	cp /ctl/run.sh $R/run/ipvs-proxy-vm/run.sh || fail "cannot prepare the chroot"

while read -r tag path; do
	[ -n "$tag" ] || continue
	mkdir -p "$R$path" && mount -t 9p -o "$P9" "$tag" "$R$path" ||
		fail "cannot mount share $tag at $path"
done </ctl/shares

hostname ipvs-proxy-vm
ip link set lo up
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 &&
	ip route add default via 10.0.2.2 || fail "cannot configure eth0"

# The project's modules, from the host's /lib/modules (same kernel version): one
# modprobe per line of the list, at once, to keep every vCPU busy. Failures of single
# modules are ignored. /sbin/modprobe, not modprobe: this busybox prefers its own
# applets, and its modprobe ignores softdeps and is several times slower.
stage modprobe
while read -r mods; do
	PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot $R /sbin/modprobe -a -q $mods &
done </ctl/modprobe
wait

# The command's output goes to a virtio serial port, not the console: console lines
# get lost in long runs, the port has flow control.
OUT=
for p in /sys/class/virtio-ports/*; do
	[ "$(cat "$p/name" 2>/dev/null)" = ipvs-proxy-out ] && OUT=/dev/${p##*/}
done
[ -n "$OUT" ] || fail "no virtio serial port named ipvs-proxy-out"

stage command
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	chroot $R /bin/sh /run/ipvs-proxy-vm/run.sh >"$OUT" 2>&1 </dev/null
echo $? >/ctl/exitcode
stage end
sync
poweroff -f
`

// initramfs returns the path of a cached initramfs for k, building it when the cache
// has none for this content. The file name carries the kernel version and a hash of
// everything in the archive, so a changed script, busybox or module makes a new one.
func initramfs(k kernel) (string, error) {
	busybox, err := findBusybox()
	if err != nil {
		return "", err
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return "", fmt.Errorf("reading busybox: %w", err)
	}
	modPaths, err := resolveModules(k.Version, initramfsModules)
	if err != nil {
		return "", err
	}
	type file struct {
		name string
		perm uint32
		data []byte
	}
	var names []string
	files := []file{{"init", 0o755, []byte(initScript)}, {"bin/busybox", 0o755, bb}}
	for _, p := range modPaths {
		data, err := readModule(p)
		if err != nil {
			return "", err
		}
		n := moduleName(p)
		names = append(names, n)
		files = append(files, file{"lib/modules/" + n + ".ko", 0o644, data})
	}
	files = append(files, file{"etc/modules", 0o644, []byte(strings.Join(names, "\n") + "\n")})

	var buf bytes.Buffer
	c := &cpioWriter{w: &buf}
	for _, d := range []string{"bin", "dev", "etc", "lib", "lib/modules", "proc", "sys",
		"ctl", "host", "rw", "newroot", "tmp"} {
		c.Dir(d)
	}
	// The kernel opens /dev/console for init's stdio before anything is mounted.
	c.CharDev("dev/console", 5, 1)
	for _, f := range files {
		c.File(f.name, f.perm, f.data)
	}
	if err := c.Close(); err != nil {
		return "", err
	}

	sum := sha256.Sum256(buf.Bytes())
	dir, err := cacheDir()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("initramfs-%s-%s.cpio", k.Version, hex.EncodeToString(sum[:8])))
	if _, err := os.Stat(path); err == nil {
		now := time.Now()
		os.Chtimes(path, now, now) // in use: keep it out of pruneCache's reach
		return path, nil
	}
	// Write and rename, so concurrent test packages never see half a file.
	tmp, err := os.CreateTemp(dir, "initramfs-*.tmp")
	if err != nil {
		return "", fmt.Errorf("caching initramfs: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return "", fmt.Errorf("caching initramfs: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("caching initramfs: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("caching initramfs: %w", err)
	}
	pruneCache(dir, path)
	return path, nil
}

// pruneCache removes initramfs images unused for a week (each is a few MB). Newer ones
// stay: another work tree may be booting one right now.
func pruneCache(dir, keep string) {
	old, _ := filepath.Glob(filepath.Join(dir, "initramfs-*.cpio"))
	for _, p := range old {
		if st, err := os.Stat(p); err == nil && p != keep && time.Since(st.ModTime()) > 7*24*time.Hour {
			os.Remove(p)
		}
	}
}

// cacheDir is ${XDG_CACHE_HOME:-$HOME/.cache}/ipvs-proxy, or a temp dir without a home.
func cacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "ipvs-proxy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating cache dir: %w", err)
	}
	return dir, nil
}
