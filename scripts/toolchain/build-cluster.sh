#!/usr/bin/env bash
# Builds a local Kubernetes control plane from Go modules for the e2e cluster tests (scripts/test.sh builds it when missing):
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd, kwok and kwokctl.
# Output: $VENTA_TOOLCHAIN_ROOT/cluster-<versions>/bin (default root ~/.cache/venta-toolchain).
# A finished build leaves a .complete marker and is reused; delete the folder to rebuild.
# Prints the folder holding the binaries on its last line.
#   --check   print that folder if it is complete, exit 1 otherwise (never builds)
set -euo pipefail

# The program's objects are validated against 1.31. v1.31.13, not .14: the module proxy answers
# "403 not available" for k8s.io/kube-scheduler, kube-controller-manager and endpointslice v0.31.14.
K8S_VERSION="${K8S_VERSION:-v1.31.13}"
ETCD_VERSION="${ETCD_VERSION:-v3.5.21}"   # the 3.5 line Kubernetes 1.31 supports
KWOK_VERSION="${KWOK_VERSION:-v0.7.0}"

HERE="$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source=scripts/toolchain/parts.sh
source "$HERE/parts.sh"
# shellcheck source=scripts/toolchain/kubernetes-module.sh
source "$HERE/kubernetes-module.sh"

ROOT="${VENTA_TOOLCHAIN_ROOT:-$HOME/.cache/venta-toolchain}"
DEST="$ROOT/cluster-k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION"
BIN="$DEST/bin"
reuse_built "$DEST" "control plane" scripts/toolchain/build-cluster.sh "${1:-}"

export GOWORK=off CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod
NICE=(nice -n 19)
WORK="$DEST/work"
mkdir -p "$BIN" "$WORK"

build_kubernetes() {
    kubernetes_build "$WORK/kubernetes" "$K8S_VERSION" "$BIN" selinux,notest \
        kube-apiserver kube-controller-manager kube-scheduler kubectl
}

build_etcd() {
    local dir="$WORK/etcd"
    rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
    go mod init local/etcd-build >&2
    # server/v3's replaces point at sibling modules tagged at the same version, so requiring
    # them all at that version reproduces the release's build list.
    "${NICE[@]}" go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
    "${NICE[@]}" go build -p 2 -trimpath -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3
}

build_kwok() {
    # The release already carries its own version; only the default Kubernetes version moves.
    local ld="-s -w -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${K8S_VERSION#v}"
    GOBIN="$BIN" "${NICE[@]}" go install -p 2 -trimpath -ldflags "$ld" \
        "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
}

build_parts "$DEST" cluster-toolchain \
    "etcd=about 1.5 min" "kwok=about 3 min" "kubernetes=about 6 min"
