"""Scanner skip annotations (checkov, kube-score): each names the check and the one-line reason it does
not apply here."""

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


# kube-score reads only the check ids (`kube-score/ignore`); the reasons sit beside them, one annotation
# per check, in checkov's `<check>=<reason>` form.
KUBE_SCORE_PULL_POLICY = "container-image-pull-policy"
KUBE_SCORE_HPA_REPLICAS = "deployment-targeted-by-hpa-does-not-have-replicas-configured"
KUBE_SCORE_IGNORE = "kube-score/ignore"
KUBE_SCORE_REASON = "venta.io/kube-score-skip"
KUBE_SCORE_REASONS = {
    KUBE_SCORE_PULL_POLICY: REASONS[PULL_POLICY],
    KUBE_SCORE_HPA_REPLICAS: (
        "replicas is the HPA minimum at creation only; ignoreChanges then leaves it to the HPA"
    ),
}


def kube_score_skips(pull_policy: str, autoscaled: bool = False) -> dict[str, str]:
    """Only the skips that apply: a workload pulling Always, with no HPA, gets none."""
    checks = [KUBE_SCORE_PULL_POLICY] if pull_policy != "Always" else []
    if autoscaled:
        checks.append(KUBE_SCORE_HPA_REPLICAS)
    if not checks:
        return {}
    reasons = {f"{KUBE_SCORE_REASON}{n}": f"{c}={KUBE_SCORE_REASONS[c]}" for n, c in enumerate(checks, 1)}
    return {KUBE_SCORE_IGNORE: ",".join(checks), **reasons}


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
