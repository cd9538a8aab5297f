# syntax=docker/dockerfile:1
#
# The ipvs-proxy image: `docker build -t ghcr.io/ipvs-proxy/ipvs-proxy:latest .`
# (the name manifests/daemonset.yaml uses; a placeholder until there is a
# registry). Needs BuildKit (the default since Docker 23) for the
# here-document and COPY --chmod below.
#
# NOTE: this file has never been built: the machines ipvs-proxy is developed
# on have no Docker daemon. manifests/manifests_test.go checks what it can
# without one: that the paths it COPYs and builds exist and are not excluded
# by .dockerignore, that the build context holds every package the binary
# imports, that the image installs iptables and the other tools, that the
# binary lands where the DaemonSet's command finds it, and it runs the
# iptables wrapper below against fake iptables binaries.

# ---- build ----
# golang:1.26 is the newest 1.26.x; go.mod asks for 1.26.8 or later, and the
# golang images set GOTOOLCHAIN=local, so an older base image fails loudly.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd/ ./cmd/
COPY pkg/ ./pkg/
# Set by BuildKit for `docker buildx build --platform ...`; empty (the
# builder's own platform) otherwise.
ARG TARGETOS TARGETARCH
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/ipvs-proxy ./cmd/ipvs-proxy

# ---- image ----
FROM debian:bookworm-slim
# iptables: the masquerade rules (run) and kube-proxy's leftovers (cleanup
#   --kube-proxy); the package has both the nft and the legacy backend.
# ipset: kube-proxy's leftover sets (cleanup --kube-proxy).
# ipvsadm, conntrack: for debugging with `kubectl exec`.
# kmod: modprobe, to load ip_vs when the node has not (with /lib/modules
#   mounted from the host).
RUN apt-get update \
    && apt-get install -y --no-install-recommends iptables ipset ipvsadm conntrack kmod \
    && rm -rf /var/lib/apt/lists/*

# The iptables backend must be the one the node uses, or ipvs-proxy's rules
# land in a different ruleset from kubelet's and the CNI plugin's. Debian's
# `iptables` is iptables-nft; nodes with iptables-legacy exist. As in
# kube-proxy's image (kubernetes-sigs/iptables-wrappers), every iptables
# command starts as this wrapper; its first run picks the node's backend,
# points the commands at it, and runs the real command.
#   nft    - when the node has no legacy tables, or kubelet's hint chain
#            (KUBE-IPTABLES-HINT, or KUBE-KUBELET-CANARY) is in nft;
#   legacy - when the hint chain is in legacy, or, with no hint, when the
#            legacy rulesets have more rules than the nft ones.
# IPTABLES_WRAPPER_PROC is for tests only (a fake /proc).
COPY --chmod=0755 <<"EOF" /usr/sbin/iptables-wrapper
#!/bin/sh
sbin=$(dirname "$0")
proc=${IPTABLES_WRAPPER_PROC:-/proc}
if [ -n "$IPTABLES_WRAPPER_RAN" ]; then
    echo "iptables-wrapper: $0 still runs the wrapper after choosing a backend" >&2
    exit 1
fi

has_hint() { # $1: nft or legacy
    for fam in iptables ip6tables; do
        "$sbin/$fam-$1-save" -t mangle 2>/dev/null |
            grep -q -e '^:KUBE-IPTABLES-HINT ' -e '^:KUBE-KUBELET-CANARY ' && return 0
    done
    return 1
}
rules() { # $1: nft or legacy
    { "$sbin/iptables-$1-save"; "$sbin/ip6tables-$1-save"; } 2>/dev/null | grep -c '^-'
}

mode=nft
# Only look at legacy when it has tables: iptables-legacy-save would load
# the legacy modules, and on an nft node they should stay unloaded.
if grep -q . "$proc/net/ip_tables_names" "$proc/net/ip6_tables_names" 2>/dev/null; then
    if has_hint nft; then
        mode=nft
    elif has_hint legacy; then
        mode=legacy
    elif [ "$(rules legacy)" -gt "$(rules nft)" ]; then
        mode=legacy
    fi
fi

for cmd in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    # Atomic replacement: ipvs-proxy may run two of these at once.
    ln -s "xtables-$mode-multi" "$sbin/.$cmd.$$" && mv -fT "$sbin/.$cmd.$$" "$sbin/$cmd" || {
        echo "iptables-wrapper: cannot point $sbin/$cmd at xtables-$mode-multi" >&2
        exit 1
    }
done
export IPTABLES_WRAPPER_RAN=1
exec "$0" "$@"
EOF
RUN for cmd in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do \
        ln -sf iptables-wrapper "/usr/sbin/$cmd"; \
    done

COPY --from=build /out/ipvs-proxy /usr/local/bin/ipvs-proxy
# kube-proxy's path too: kubeadm's DaemonSet runs
# `/usr/local/bin/kube-proxy --config=... --hostname-override=...`, and
# with this link only its image has to change.
RUN ln -s ipvs-proxy /usr/local/bin/kube-proxy
ENTRYPOINT ["ipvs-proxy"]
