#!/usr/bin/env bash
# Builds kube-score from its Go module and prints the binary's path (the last line of its output).
# The result is cached in ~/.cache/venta-toolchain/kube-score-<version>/bin and reused when present.
# One progress line on stderr when it builds; nothing but the path when it is cached.
set -euo pipefail

version="${KUBE_SCORE_VERSION:-v1.20.0}"
cache_root="${VENTA_TOOLCHAIN_ROOT:-$HOME/.cache/venta-toolchain}"
bin_dir="$cache_root/kube-score-$version/bin"
kube_score="$bin_dir/kube-score"

if [[ -x "$kube_score" ]] && "$kube_score" version >/dev/null 2>&1; then
  echo "$kube_score"
  exit 0
fi

command -v go >/dev/null 2>&1 || { echo "build-kube-score.sh: Go is needed to build kube-score" >&2; exit 1; }

# Build into a scratch folder beside the cache and rename the binary in at the end (same filesystem,
# so the rename is atomic): an interrupted build never leaves a half-written kube-score behind.
mkdir -p "$cache_root"
scratch="$(mktemp -d "$cache_root/.kube-score-build.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
started=$SECONDS
GOWORK=off CGO_ENABLED=0 GOBIN="$scratch" nice -n 19 go install -trimpath \
  -ldflags "-s -w -X main.version=${version#v}" \
  "github.com/zegl/kube-score/cmd/kube-score@$version" >"$scratch/build.log" 2>&1 \
  || { cat "$scratch/build.log" >&2; echo "build-kube-score.sh: build failed" >&2; exit 1; }
mkdir -p "$bin_dir"
mv "$scratch/kube-score" "$kube_score"
echo "build-kube-score.sh: built kube-score $version in $((SECONDS - started)) s" >&2
echo "$kube_score"
