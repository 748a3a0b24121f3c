#!/usr/bin/env bash
# Prints the one-entry digests file an image job uploads: {"<service>": "sha256:<64 hex>"}.
# `venta deploy --digests <folder>` merges every such file and checks each digest again.
# Usage: digest-file.sh <service> <digest>
set -euo pipefail
service="$1" digest="$2"
if [[ ! "$service" =~ ^[a-z][a-z0-9-]*$ || ! "$digest" =~ ^sha256:[0-9a-f]{64}$ ]]; then
  echo "digest-file: expected a service name and sha256:<64 hex>, got '$service' '$digest'" >&2
  exit 1
fi
printf '{"%s": "%s"}\n' "$service" "$digest"
