"""`venta compose-env`: fresh secrets for `docker compose`, written to a git-ignored `.env`.

docker-compose.yml refuses to start without them, so no password or key ever sits in the repo.
"""

import base64
import secrets
from pathlib import Path

from services.catalog import SERVICES
from services.common.auth import public_pem_from_seed


def nats_password_variable(service: str) -> str:
    """`NATS_PASSWORD_WEBHOOKS`: each service's NATS user has its own password (compose/nats.conf)."""
    return f"NATS_PASSWORD_{SERVICES[service].env_suffix}"


PASSWORDS = (
    "POSTGRES_PASSWORD",
    "REDIS_PASSWORD",
    "REDIS_CACHE_PASSWORD",
    *(nats_password_variable(name) for name, entry in SERVICES.items() if entry.nats),
)


_NATS_CONF_HEADER = """\
# NATS users of docker-compose.yml: one per service, each held to its subjects as on a cluster
# (infra/builders/nats_permissions.py). Passwords come from the environment (.env, `venta compose-env`).
# Written by venta.compose_env.compose_nats_conf(); tests/delivery/test_compose.py holds it to that.
"""


def compose_nats_conf() -> str:
    """compose/nats.conf: the cluster's users and permissions, passwords as environment references."""
    from infra.builders.nats_permissions import users_block  # brings Pulumi along: only when asked

    users = {name: "" for name, entry in SERVICES.items() if entry.nats}
    block = users_block(users, SERVICES.values(), lambda user, _: "$" + nats_password_variable(user))
    return _NATS_CONF_HEADER + block + "\n"


def _quoted(value: str) -> str:
    """A double-quoted .env value; Compose turns the `\\n` escapes back into newlines."""
    return '"' + value.strip().replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def compose_env() -> str:
    """The `.env` text: random passwords and an Ed25519 token key pair."""
    seed = base64.b64encode(secrets.token_bytes(32)).decode()
    lines = [f"{name}={secrets.token_urlsafe(24)}" for name in PASSWORDS]
    lines += [f"JWT_SIGNING_SEED={seed}", f"JWT_PUBLIC_KEY={_quoted(public_pem_from_seed(seed))}"]
    return "\n".join(lines) + "\n"


def write_compose_env(path: Path, *, force: bool) -> str:
    """Write `path` (mode 0600) unless it exists; returns what was done, for the user."""
    if path.exists() and not force:
        return f"{path} exists; kept it (--force writes new secrets, and the data volumes then need new ones)"
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(compose_env())
    return f"wrote {path}: passwords and a token key pair for docker compose"
