#!/usr/bin/env bash
# Builds what a real node of the e2e control plane runs (tests/node; scripts/test.sh builds it when
# missing), from the same Kubernetes release as the control plane (build-cluster.sh):
#   kubelet, kube-proxy          k8s.io/kubernetes/cmd/<name>
#   kube-router                  github.com/cloudnativelabs/kube-router/v2 (run with its firewall only:
#                                the NetworkPolicy enforcer)
#   coredns                      github.com/coredns/coredns with only the plugins a cluster DNS needs
#   pause                        the pod sandbox, Kubernetes' build/pause/linux/pause.c, linked statically
# containerd, runc and the CNI plugins are Debian's packages (scripts/setup.sh).
# Output: $VENTA_TOOLCHAIN_ROOT/node-<versions>/bin (default root ~/.cache/venta-toolchain), reused
# once complete (a .complete marker); delete the folder to rebuild. Prints that folder last.
#   --check   print that folder if it is complete, exit 1 otherwise (never builds)
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.31.13}"          # the control plane's (build-cluster.sh)
KUBE_ROUTER_VERSION="${KUBE_ROUTER_VERSION:-v2.1.0}"
COREDNS_VERSION="${COREDNS_VERSION:-v1.14.7}"
PAUSE_VERSION="3.10"                             # what kubeadm pins for Kubernetes 1.31
# CoreDNS plugins in the order of its plugin.cfg (the order they handle a query).
COREDNS_PLUGINS=(ready health errors log loadbalance cache kubernetes)

HERE="$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source=scripts/toolchain/parts.sh
source "$HERE/parts.sh"
# shellcheck source=scripts/toolchain/kubernetes-module.sh
source "$HERE/kubernetes-module.sh"

ROOT="${VENTA_TOOLCHAIN_ROOT:-$HOME/.cache/venta-toolchain}"
recipe=$(printf '%s\n' "$PAUSE_VERSION" "${COREDNS_PLUGINS[@]}" | sha256sum | cut -c1-8)
DEST="$ROOT/node-k8s-$K8S_VERSION-kube-router-$KUBE_ROUTER_VERSION-coredns-$COREDNS_VERSION-$recipe"
BIN="$DEST/bin"
reuse_built "$DEST" "node binaries" scripts/toolchain/build-node.sh "${1:-}"

# The Go caches are the control plane build's own (Go's defaults), so the Kubernetes packages it
# compiled are reused here.
export GOWORK=off CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod
NICE=(nice -n 19)
WORK="$DEST/work"
mkdir -p "$BIN" "$WORK"

build_kubernetes() {
    # The proxy serves no k8s.io/kube-proxy v0.31.12 or later ("403 ... This module version is not
    # available."). That module holds only kube-proxy's configuration types, identical in every
    # v0.31 release served (v0.31.0 to v0.31.11 differ only in go.mod).
    STAGING_PINS="k8s.io/kube-proxy=v0.31.11" kubernetes_build "$WORK/kubernetes" "$K8S_VERSION" "$BIN" selinux,notest kubelet kube-proxy
}

build_kube_router() {
    local ld="-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION"
    GOBIN="$BIN" "${NICE[@]}" go install -p 2 -trimpath -ldflags "$ld" \
        "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION"
}

build_coredns() {
    # CoreDNS' own main links every plugin (cloud SDKs included); a main that imports only the
    # plugins the cluster DNS uses and lists them as its directives is how CoreDNS documents a
    # smaller build.
    local dir="$WORK/coredns" plugin
    rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
    go mod init local/coredns-build >&2
    {
        printf 'package main\n\nimport (\n'
        printf '\t"github.com/coredns/coredns/core/dnsserver"\n'
        printf '\t"github.com/coredns/coredns/coremain"\n'
        for plugin in "${COREDNS_PLUGINS[@]}"; do
            printf '\t_ "github.com/coredns/coredns/plugin/%s"\n' "$plugin"
        done
        printf ')\n\nfunc main() {\n\tdnsserver.Directives = []string{'
        printf '"%s", ' "${COREDNS_PLUGINS[@]}"
        printf '}\n\tcoremain.Run()\n}\n'
    } > main.go
    "${NICE[@]}" go get "github.com/coredns/coredns@$COREDNS_VERSION" >&2
    "${NICE[@]}" go mod tidy >&2
    "${NICE[@]}" go build -p 2 -trimpath -ldflags "-s -w" -o "$BIN/coredns" .
}

build_pause() {
    local source
    source="$(go env GOMODCACHE)/k8s.io/kubernetes@$K8S_VERSION/build/pause/linux/pause.c"
    [[ -f "$source" ]] || go mod download "k8s.io/kubernetes@$K8S_VERSION"
    "${NICE[@]}" gcc -Os -Wall -Werror -static "-DVERSION=v$PAUSE_VERSION-venta" -o "$BIN/pause" "$source"
}

# Cold times on 2 cores right after build-cluster.sh (docs/ci-budget.md); Kubernetes takes about
# 10 min instead when the control plane's packages are not in the Go build cache.
build_parts "$DEST" node-toolchain \
    "pause=a second" "kubernetes=about 1 min" "kube_router=about 4 min" "coredns=about 2 min"
