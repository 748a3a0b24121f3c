"""Ed25519 (EdDSA) access tokens: issued by user-management, verified by every service and the gateway.

Claims (docs/contracts.md): ``iss=venta-user-management``, ``aud=venta``, ``sub`` = user id,
``role`` in {customer, vendor}, ``iat``/``exp``, ``jti``. No service trusts an identity header: each
verifies the bearer token itself with ``JWT_PUBLIC_KEY``.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ISSUER = "venta-user-management"
AUDIENCE = "venta"
ALGORITHM = "EdDSA"
Role = Literal["customer", "vendor"]
ROLES: tuple[Role, ...] = ("customer", "vendor")


class InvalidToken(Exception):
    """The token is missing, malformed, expired, or not signed by our key."""


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    role: Role
    expires_at: float


def generate_seed() -> str:
    """A fresh signing seed, base64 of 32 random bytes (the format of ``JWT_SIGNING_SEED``)."""
    raw = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw).decode()


def private_key_from_seed(seed_b64: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(seed_b64))


def public_pem_from_seed(seed_b64: str) -> str:
    public = private_key_from_seed(seed_b64).public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public_key(pem: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except ValueError:
        raise ValueError("is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("is not an Ed25519 public key")
    return key


class TokenIssuer:
    def __init__(self, seed_b64: str, ttl_seconds: int) -> None:
        self._key = private_key_from_seed(seed_b64)
        self.ttl_seconds = ttl_seconds

    def issue(self, user_id: str, role: Role) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": user_id,
            "role": role,
            "iat": now,
            "exp": now + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)


class TokenVerifier:
    """Verifies tokens; remembers verified ones briefly so a hot client costs one dict lookup.

    The cache holds at most ``cache_size`` tokens and never past a token's own expiry, so caching
    cannot extend a token's life; ``cache_seconds=0`` disables it.
    """

    def __init__(self, public_pem: str, *, cache_seconds: float = 0.0, cache_size: int = 10_000) -> None:
        self._key = load_public_key(public_pem)
        self._cache_seconds = cache_seconds
        self._cache_size = cache_size
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def verify(self, token: str) -> Principal:
        now = time.time()
        if self._cache_seconds > 0:
            hit = self._cache.get(token)
            if hit is not None and hit[1] > now:
                return hit[0]
        principal = self._decode(token)
        if self._cache_seconds > 0:
            self._cache[token] = (principal, min(now + self._cache_seconds, principal.expires_at))
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return principal

    def _decode(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token expired") from None
        except jwt.PyJWTError:
            raise InvalidToken("token invalid") from None
        role = claims.get("role")
        if role not in ROLES:
            raise InvalidToken("token has no valid role")
        return Principal(user_id=str(claims["sub"]), role=role, expires_at=float(claims["exp"]))


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or ``InvalidToken``."""
    if not authorization:
        raise InvalidToken("missing bearer token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("authorization header is not a bearer token")
    return token.strip()
