"""checkov skip annotations: each names the check and the one-line reason it does not apply here."""

from __future__ import annotations

from collections.abc import Sequence

PULL_POLICY = "CKV_K8S_15"
SECRET_ENV = "CKV_K8S_35"
DIGEST = "CKV_K8S_43"

REASONS = {
    PULL_POLICY: "IfNotPresent so local clusters can run images loaded into them; prod pulls Always",
    SECRET_ENV: "the services read credentials from environment variables, as docs/contracts.md fixes",
    DIGEST: "referenced by tag in this stack; the policy pack requires digests where the stack demands them",
}


def checkov_skips(images: Sequence[str], pull_policy: str, secret_env: bool = False) -> dict[str, str]:
    """Only the skips that apply: a digest-pinned, Always-pulled data store gets none."""
    checks = []
    if pull_policy != "Always":
        checks.append(PULL_POLICY)
    if secret_env:
        checks.append(SECRET_ENV)
    if any("@sha256:" not in image for image in images):
        checks.append(DIGEST)
    return {f"checkov.io/skip{n}": f"{check}={REASONS[check]}" for n, check in enumerate(checks, 1)}
