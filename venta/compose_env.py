"""`venta compose-env`: fresh secrets for `docker compose`, written to a git-ignored `.env`.

docker-compose.yml refuses to start without them, so no password or key ever sits in the repo.
"""

import base64
import secrets
from pathlib import Path

from services.common.auth import public_pem_from_seed

PASSWORDS = ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "NATS_PASSWORD")


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
