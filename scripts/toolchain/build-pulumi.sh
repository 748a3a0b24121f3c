#!/usr/bin/env bash
# Builds the Pulumi engine from Go modules into a cache outside the repo (scripts/toolchain/engine.sh
# runs it when no official release can be downloaded):
#   pulumi                        the CLI and engine (github.com/pulumi/pulumi/pkg/v3)
#   pulumi-language-python-exec   the program launcher script shipped in github.com/pulumi/pulumi/sdk/v3
#   pulumi-resource-kubernetes    the kubernetes provider (github.com/pulumi/pulumi-kubernetes/provider/v4)
#   pulumi-language-python        built from scripts/toolchain/plugins (the upstream module is not served)
#   pulumi-resource-random        built from scripts/toolchain/plugins (the upstream module is not served)
# Output: $VENTA_TOOLCHAIN_ROOT/pulumi-<versions>/bin (default root ~/.cache/venta-toolchain).
# A finished build leaves a .complete marker and is reused; delete the folder to rebuild.
# Prints the folder holding the binaries on its last line.
#   --check   print that folder if it is complete, exit 1 otherwise (never builds)
set -euo pipefail

# The nearest CLI release to the locked Python SDK (pulumi 3.272.0) that the module proxy serves:
# pkg/v3 v3.271.0 to v3.273.0 are refused. A newer CLI runs an older SDK's programs.
PULUMI_VERSION="${PULUMI_VERSION:-3.274.1}"
# The only version of the kubernetes provider module the proxy serves (a 2026-01-15 commit of the
# 4.x line; the locked SDK is pulumi-kubernetes 4.34.2). Plugins found on PATH are used whatever
# version the SDK asks for.
K8S_PROVIDER_VERSION="${K8S_PROVIDER_VERSION:-v4.0.0-20260115033456-f47bc2d6f199}"

HERE="$(cd "$(dirname "$0")" && pwd)"
PLUGINS="$HERE/plugins"
plugins_hash=$(cd "$PLUGINS" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) \
    -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)
ROOT="${VENTA_TOOLCHAIN_ROOT:-$HOME/.cache/venta-toolchain}"
DEST="$ROOT/pulumi-v$PULUMI_VERSION-k8s-${K8S_PROVIDER_VERSION##*-}-plugins-$plugins_hash"
BIN="$DEST/bin"
# shellcheck source=scripts/toolchain/parts.sh
source "$HERE/parts.sh"
reuse_built "$DEST" toolchain scripts/toolchain/build-pulumi.sh "${1:-}"

# Module and build caches of their own, so the build is reproducible from empty and its disk use
# is visible (and removable) in one place.
export GOWORK=off CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-trimpath -modcacherw" GOPROXY="${GOPROXY:-https://proxy.golang.org}"
export GOMODCACHE="$ROOT/go/mod" GOCACHE="$ROOT/go/build"
NICE=(nice -n 19)
WORK="$DEST/work"
rm -rf "$WORK" && mkdir -p "$BIN" "$WORK"
started=$(date +%s)
log() { echo "[pulumi-toolchain] $(( $(date +%s) - started ))s $*" >&2; }
# Go's own output (downloads, compiler notes) goes to a log beside the binaries; the terminal gets
# one line per stage, and the log's tail when a stage fails.
BUILD_LOG="$DEST/build.log"
: > "$BUILD_LOG"
trap 'echo "[pulumi-toolchain] failed; the end of $BUILD_LOG:" >&2; tail -n 30 "$BUILD_LOG" >&2' ERR

build_cli() {
    local dir="$WORK/cli" sdk
    mkdir -p "$dir" && cd "$dir"
    go mod init local/pulumi-cli >/dev/null 2>&1
    # pkg/v3's own replace for the clipboard fork; its `sdk/v3 => ../sdk` is covered by requiring
    # the sdk/v3 release of the same version.
    go mod edit -replace github.com/atotto/clipboard=github.com/tgummerer/clipboard@v0.0.0-20241001131231-d02d263e614e
    go get "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@v$PULUMI_VERSION" "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION"
    "${NICE[@]}" go build -tags osusergo,grpcnotrace \
        -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
        -o "$BIN/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
    sdk=$(go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
    install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$BIN/"
}

build_plugins() {
    cd "$PLUGINS"
    "${NICE[@]}" go build -mod=readonly \
        -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION -X main.version=4.21.4" \
        -o "$BIN/" ./cmd/pulumi-language-python ./cmd/pulumi-resource-random
}

build_kubernetes() {
    local mod=github.com/pulumi/pulumi-kubernetes/provider/v4 dir="$WORK/kubernetes" src version
    src=$(go mod download -json "$mod@$K8S_PROVIDER_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
    cp -r "$src" "$dir" && chmod -R u+w "$dir" && cd "$dir"
    # `sdk/v4 => ../sdk` points outside the module zip: use the published sdk/v4 it requires.
    go mod edit -dropreplace github.com/pulumi/pulumi-kubernetes/sdk/v4
    version="${K8S_PROVIDER_VERSION#v}"
    # main.go embeds files that `go generate` writes and the zip leaves out: the schema with its
    # version set, and the terraform mapping, both compacted.
    python3 - "$version" cmd/pulumi-resource-kubernetes <<'PY'
import json, pathlib, sys
version, folder = sys.argv[1], pathlib.Path(sys.argv[2])
schema = json.loads((folder / "schema.json").read_text())
schema["version"] = version
(folder / "schema-embed.json").write_text(json.dumps(schema, separators=(",", ":")))
mapping = json.loads((folder / "terraform-mapping.json").read_text())
(folder / "terraform-mapping-embed.json").write_text(json.dumps(mapping, separators=(",", ":")))
PY
    "${NICE[@]}" go build -mod=mod \
        -ldflags "-s -w -X $mod/pkg/version.Version=$version" \
        -o "$BIN/pulumi-resource-kubernetes" ./cmd/pulumi-resource-kubernetes
}

# Cold times measured on 2 cores with nothing else running (docs/ci-budget.md keeps the table).
log "building the pulumi CLI v$PULUMI_VERSION (usually about 4 min cold)"
(build_cli) >>"$BUILD_LOG" 2>&1
log "building pulumi-language-python and pulumi-resource-random from scripts/toolchain/plugins (usually about 30 s)"
(build_plugins) >>"$BUILD_LOG" 2>&1
log "building pulumi-resource-kubernetes ${K8S_PROVIDER_VERSION#v} (usually about 8 min cold)"
(build_kubernetes) >>"$BUILD_LOG" 2>&1
rm -rf "$WORK"
"$BIN/pulumi" version >/dev/null
touch "$DEST/.complete"
log "done in $(( $(date +%s) - started ))s: $(du -sh "$BIN" | cut -f1) of binaries; Go caches: $(du -sh "$ROOT/go/" | cut -f1)"
echo "$BIN"
