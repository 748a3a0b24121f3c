#!/usr/bin/env bash
# Sets up a fresh machine for the Venta repo: system packages the tests start for real
# (PostgreSQL, Redis, NATS), uv, the locked Python environment in .venv, and the Pulumi engine that
# `venta` runs (scripts/toolchain/engine.sh: a recent one on PATH, else the official release, else
# built from Go modules, about 12 minutes once).
# Safe to run again: each step is skipped when already done, and a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

# docker.io and mmdebstrap: the image tests (tests/images) build and run the services' images.
# rclone: the client the backup job's upload image runs (rclone/rclone:1.60.1, Debian's version).
# containerd, runc, the CNI plugins, iproute2, iptables, ipset and conntrack: the real node of the
# e2e control plane (tests/node) runs pods with them and enforces NetworkPolicies (kube-router).
apt_packages=(postgresql redis-server nats-server wrk docker.io mmdebstrap rclone)
apt_packages+=(containerd runc containernetworking-plugins iproute2 iptables ipset conntrack)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: please install ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

if ! command -v uv >/dev/null 2>&1; then
  echo "setup: installing uv"
  python3 -m pip install --quiet --disable-pip-version-check uv
fi
# Bytecode compiled once here (about 15 s on a fresh .venv, nothing on a synced one): a Python that
# may not write it (PYTHONDONTWRITEBYTECODE, set on these machines and by the e2e harness, or a
# read-only disk) otherwise compiles Pulumi's SDK and providers from source on every start, about
# 2 s of each `pulumi preview` on a busy machine (bench/engine_preview.py).
uv sync --frozen --quiet --compile-bytecode
echo "setup: .venv ready ($(.venv/bin/python --version))"

# checkov lives in its own environment (.venv-scan), pinned by tests/scan/requirements.txt: its
# dependencies clash with the project's lock.
scan_pins=tests/scan/requirements.txt
if ! cmp -s "$scan_pins" .venv-scan/.pins 2>/dev/null; then
  echo "setup: installing the scanners into .venv-scan"
  uv venv --quiet --allow-existing --python 3.11 .venv-scan
  uv pip sync --quiet --python .venv-scan/bin/python "$scan_pins"
  cp "$scan_pins" .venv-scan/.pins
fi

bash scripts/toolchain/engine.sh >/dev/null
