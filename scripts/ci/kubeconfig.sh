#!/usr/bin/env bash
# Writes the kubeconfig a deploy, preview or drift job was given (KUBECONFIG_DATA, from the
# repository's secrets) to a private file and points the job's later steps at it.
set -euo pipefail
: "${KUBECONFIG_DATA:?KUBECONFIG_DATA must hold the kubeconfig (a repository secret)}"
path="${RUNNER_TEMP:-$(mktemp -d)}/kubeconfig"
(umask 077 && printf '%s' "$KUBECONFIG_DATA" > "$path")
echo "KUBECONFIG=$path" >> "${GITHUB_ENV:-/dev/null}"
echo "kubeconfig: written to $path"
