"""Requirements the rules hold the stacks to, kept here so that no rule borrows them from infra/."""

from __future__ import annotations

import re
from typing import Any

# The prod scaling table the platform was specified with: replicas and the HPA utilisation targets (%).
# None means only the minimum is fixed (the gateway and the other services run at least 2).
PROD_SCALING_TABLE: dict[str, dict[str, Any]] = {
    "user-management": {"min": 2, "max": 5, "cpu": 70, "memory": 80},
    "vendor-management": {"min": 2, "max": 5, "cpu": 70, "memory": 80},
    "geolocation": {"min": 3, "max": 10, "cpu": 60, "memory": 70},
    "real-time": {"min": 2, "max": 8, "cpu": 50, "memory": 60},
    "api-gateway": {"min": 2},
    "search-discovery": {"min": 2},
    "webhooks": {"min": 2},
    "file-management": {"min": 2},
}

# Labels every object carries (Kubernetes' recommended set); workloads and pod templates also carry
# the component and version.
RECOMMENDED_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
)
WORKLOAD_LABELS = (*RECOMMENDED_LABELS, "app.kubernetes.io/component", "app.kubernetes.io/version")

# Services that may be NodePort/LoadBalancer: only the gateway's exposure.
EXPOSED_SERVICES = ("api-gateway",)

# A workload that really needs the Kubernetes API says so (with the reason) in this annotation;
# only then may it mount a service-account token.
API_ACCESS_ANNOTATION = "policy.venta.io/kubernetes-api"

# The container port a service serves its probes, metrics and docs on (docs/contracts.md): where a
# container declares it, every probe must target it; the public `http` port answers 404 for /health/*.
PROBE_PORT_NAME = "internal"

MIN_PROD_REPLICAS = 2
HOSTNAME_TOPOLOGY_KEY = "kubernetes.io/hostname"

# Names that hold a secret: PASSWORD, DB_PASS, API_TOKEN, JWT_SIGNING_SEED, PRIVATE_KEY, ...
# A public key is not a secret (JWT_PUBLIC_KEY is published to every service by design).
SECRET_NAME = re.compile(
    r"(PASSW(OR)?D|(^|_)PASS($|_)|SECRET|TOKEN|PRIVATE_?KEY|API_?KEY|ACCESS_?KEY|CREDENTIAL|SEED|AUTH)",
    re.IGNORECASE,
)
NOT_SECRET_NAME = re.compile(r"PUBLIC_?KEY|_(FILE|PATH|DIR)$|TOKEN_(TTL|EXPIRY|LIFETIME)", re.IGNORECASE)
# Values that hold a secret whatever their name: URLs with a password, private keys, key=value pairs.
SECRET_VALUE = (
    re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.IGNORECASE),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"(password|passwd|pwd|secret|token)\s*[=:]\s*\S+", re.IGNORECASE),
)
