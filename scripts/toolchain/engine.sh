#!/usr/bin/env bash
# Provides the Pulumi engine (CLI, Python language host, kubernetes and random plugins) that `venta`
# and the tests run, and records where it is in .venv/pulumi-engine for `venta` to find by itself.
# In order of preference:
#   1. a `pulumi` on PATH at or above the locked Python SDK's version (same major version 3);
#   2. the pinned official release from Pulumi's download server, its SHA-256 checked against the
#      release's published checksums before anything is unpacked, plugins by `pulumi plugin install`;
#   3. built from Go modules (scripts/toolchain/build-pulumi.sh), when the server cannot be reached.
# A second run reuses what the first one made and takes a second or two.
# Prints the folder holding `pulumi` (and the plugins it needs) on its last line.
set -euo pipefail
cd "$(dirname "$0")/../.."

# The official release pinned for download: the same version the offline build makes.
PULUMI_RELEASE="${PULUMI_RELEASE:-3.274.1}"
K8S_PLUGIN_VERSION="${K8S_PLUGIN_VERSION:-4.34.2}"      # the locked pulumi-kubernetes SDK's
RANDOM_PLUGIN_VERSION="${RANDOM_PLUGIN_VERSION:-4.21.4}" # the locked pulumi-random SDK's
RELEASES_URL="${PULUMI_RELEASES_URL:-https://get.pulumi.com/releases/sdk}"
CHECKSUMS_URL="${PULUMI_CHECKSUMS_URL:-https://github.com/pulumi/pulumi/releases/download/v$PULUMI_RELEASE}"
ROOT="${VENTA_TOOLCHAIN_ROOT:-$HOME/.cache/venta-toolchain}"
RECORD="${VENTA_ENGINE_RECORD:-.venv/pulumi-engine}"  # read by venta (venta/engine_location.py)

say() { echo "setup: $*" >&2; }

# The minimum: the locked SDK's version (the Automation API refuses an older CLI).
minimum=$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("pulumi"))')

at_least_minimum() { # $1: a version like v3.274.1 or 3.274.1
    .venv/bin/python - "$1" "$minimum" <<'PY'
import sys
def parts(v):
    core = v.lstrip("v").split("-")[0].split("+")[0]
    return tuple(int(p) for p in core.split("."))
found, least = parts(sys.argv[1]), parts(sys.argv[2])
sys.exit(0 if found[0] == least[0] and found >= least else 1)
PY
}

record() { # $1: the bin folder; $2: how it was obtained
    mkdir -p "$(dirname "$RECORD")"
    printf '%s\n%s\n' "$1" "$2" > "$RECORD"
    say "Pulumi engine $("$1/pulumi" version 2>/dev/null) ($2) in $1"
    echo "$1"
    exit 0
}

from_path() {
    local found version
    found=$(command -v pulumi 2>/dev/null) || return 1
    version=$(pulumi version 2>/dev/null) || { say "the pulumi on PATH ($found) does not run"; return 1; }
    if at_least_minimum "$version"; then
        record "$(dirname "$(readlink -f "$found")")" "found on PATH"
    fi
    say "the pulumi on PATH ($found) is $version, older than the locked SDK's $minimum (or not major 3):" \
        "not used; providing v$PULUMI_RELEASE instead"
    return 1
}

downloaded_bin() { echo "$ROOT/pulumi-v$PULUMI_RELEASE-release/bin"; }

from_release() {
    local dest bin archive work expected actual
    dest="$ROOT/pulumi-v$PULUMI_RELEASE-release"
    bin=$(downloaded_bin)
    [[ -f "$dest/.complete" ]] && record "$bin" "official release, downloaded earlier"
    archive="pulumi-v$PULUMI_RELEASE-linux-x64.tar.gz"
    if ! curl -fsS --connect-timeout 5 --max-time 10 -o /dev/null -I "$RELEASES_URL/$archive" 2>/dev/null; then
        say "Pulumi's download server cannot be reached ($RELEASES_URL): the engine comes from Go modules"
        return 1
    fi
    say "downloading the official Pulumi v$PULUMI_RELEASE (about 10 s)"
    rm -rf "$dest" && mkdir -p "$dest"
    work=$(mktemp -d "$dest/.download.XXXXXX")
    curl -fsSL --retry 2 -o "$work/$archive" "$RELEASES_URL/$archive"
    curl -fsSL --retry 2 -o "$work/checksums.txt" "$CHECKSUMS_URL/pulumi-$PULUMI_RELEASE-checksums.txt"
    expected=$(awk -v f="$archive" '$2 == f || $2 == "*"f {print $1}' "$work/checksums.txt")
    actual=$(sha256sum "$work/$archive" | cut -d' ' -f1)
    if [[ -z "$expected" || "$expected" != "$actual" ]]; then
        rm -rf "$dest"
        say "checksum mismatch for $archive: published '${expected:-none}', downloaded $actual;" \
            "nothing was unpacked"
        exit 1
    fi
    tar -xzf "$work/$archive" -C "$work"
    mv "$work/pulumi" "$bin"
    rm -rf "$work"
    # Plugins into a PULUMI_HOME of the engine's own, then linked beside the CLI: the engine finds
    # plugins on PATH, so every PULUMI_HOME (the tests use throwaway ones) sees the same set.
    say "installing the kubernetes v$K8S_PLUGIN_VERSION and random v$RANDOM_PLUGIN_VERSION plugins"
    PULUMI_HOME="$dest/home" "$bin/pulumi" plugin install resource kubernetes "$K8S_PLUGIN_VERSION" >&2
    PULUMI_HOME="$dest/home" "$bin/pulumi" plugin install resource random "$RANDOM_PLUGIN_VERSION" >&2
    find "$dest/home/plugins" -type f -name 'pulumi-resource-*' -perm -u+x -exec ln -sf {} "$bin/" \;
    touch "$dest/.complete"
    record "$bin" "official release"
}

from_go_modules() {
    local bin
    if bin=$(bash scripts/toolchain/build-pulumi.sh --check 2>/dev/null | tail -n1); then
        record "$bin" "built from Go modules earlier"
    fi
    command -v go >/dev/null 2>&1 || { say "Go is needed to build the Pulumi engine offline"; exit 1; }
    say "building the Pulumi engine from Go modules: CLI (about 4 min), language host and random" \
        "(about 30 s), kubernetes provider (about 8 min); about 12 min in all on 2 cores, once"
    bin=$(bash scripts/toolchain/build-pulumi.sh | tail -n1)
    record "$bin" "built from Go modules"
}

from_path || from_release || from_go_modules
