"""Ed25519 (EdDSA) access tokens: issued by user-management, verified by every service and the gateway.

Claims (docs/contracts.md): ``iss=venta-user-management``, ``aud=venta``, ``sub`` = user id,
``role`` in {customer, vendor}, ``iat``/``exp``, ``jti``. No service trusts an identity header: each
verifies the bearer token itself with ``JWT_PUBLIC_KEY``.

Key rotation: ``JWT_PUBLIC_KEY`` holds one or more PEM public keys, every one accepted. A token names
its key in the ``kid`` header (the key's RFC 7638 thumbprint, so nobody assigns ids by hand), and the
verifier checks it with that key only; tokens from before kids were issued are tried against each key.
docs/runbooks.md describes a rotation in which old and new keys are both accepted for a token lifetime.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

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


_PEM_BLOCK = re.compile(r"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def key_id(key: Ed25519PublicKey) -> str:
    """The key's RFC 7638 JWK thumbprint: the same key always gets the same ``kid``, everywhere."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}, separators=(",", ":"))
    return _b64url(hashlib.sha256(jwk.encode()).digest())


def load_public_keys(pems: str) -> dict[str, Ed25519PublicKey]:
    """Every PEM public key in ``pems`` (one or more blocks, one after the other), keyed by ``kid``."""
    blocks = _PEM_BLOCK.findall(pems)
    if not blocks:
        raise ValueError("is not a PEM public key")
    keys = [load_public_key(block) for block in blocks]
    return {key_id(key): key for key in keys}


class TokenIssuer:
    def __init__(self, seed_b64: str, ttl_seconds: int) -> None:
        self._key = private_key_from_seed(seed_b64)
        self.kid = key_id(self._key.public_key())
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
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.kid})


class TokenVerifier:
    """Verifies tokens; remembers verified ones briefly so a hot client costs one dict lookup.

    The cache holds at most ``cache_size`` tokens and never past a token's own expiry, so caching
    cannot extend a token's life; ``cache_seconds=0`` disables it.
    """

    def __init__(self, public_pem: str, *, cache_seconds: float = 0.0, cache_size: int = 10_000) -> None:
        self._keys = load_public_keys(public_pem)
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

    def _keys_for(self, token: str) -> list[Ed25519PublicKey]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise InvalidToken("token invalid") from None
        if kid is None:  # issued before tokens carried a kid: any accepted key may have signed it
            return list(self._keys.values())
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidToken("token signed by a key that is not accepted")
        return [key]

    def _decode(self, token: str) -> Principal:
        claims: dict[str, Any] | None = None
        for key in self._keys_for(token):
            try:
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=[ALGORITHM],
                    audience=AUDIENCE,
                    issuer=ISSUER,
                    options={"require": ["exp", "iat", "sub", "iss", "aud"]},
                )
                break
            except jwt.ExpiredSignatureError:
                raise InvalidToken("token expired") from None
            except jwt.PyJWTError:
                continue
        if claims is None:
            raise InvalidToken("token invalid")
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
