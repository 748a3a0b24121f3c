#!/usr/bin/env bash
# Builds Prometheus' promtool from its Go module and prints the binary's path.
# The result is cached in ~/.cache/venta-toolchain/promtool-<version>/bin and reused when present.
# Prometheus 3.x tags its Go module v0.3MM.P for release 3.MM.P (v0.316.0 is Prometheus 3.16.0).
set -euo pipefail

module_version="${PROMTOOL_MODULE_VERSION:-v0.316.0}"
release="3.${module_version#v0.3}"
cache_root="${VENTA_TOOLCHAIN_ROOT:-$HOME/.cache/venta-toolchain}"
bin_dir="$cache_root/promtool-$module_version/bin"
promtool="$bin_dir/promtool"

if [[ -x "$promtool" ]] && "$promtool" --version >/dev/null 2>&1; then
  echo "$promtool"
  exit 0
fi

command -v go >/dev/null 2>&1 || { echo "build-promtool.sh: Go is needed to build promtool" >&2; exit 1; }

# Build into a scratch folder beside the cache and rename the binary in at the end (same filesystem,
# so the rename is atomic): an interrupted build never leaves a half-written promtool behind.
mkdir -p "$cache_root"
scratch="$(mktemp -d "$cache_root/.promtool-build.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
started=$SECONDS
echo "build-promtool.sh: building promtool $release (module $module_version); this takes several minutes" >&2
# remove_all_sd leaves out every service-discovery plugin (the cloud SDKs are most of the build time);
# the rule checks and rule unit tests this repo runs use none of them.
GOWORK=off CGO_ENABLED=0 GOBIN="$scratch" nice -n 19 go install -trimpath -tags remove_all_sd \
  -ldflags "-s -w -X github.com/prometheus/common/version.Version=$release" \
  "github.com/prometheus/prometheus/cmd/promtool@$module_version" >&2
mkdir -p "$bin_dir"
mv "$scratch/promtool" "$promtool"
echo "build-promtool.sh: built in $((SECONDS - started)) s" >&2
echo "$promtool"
