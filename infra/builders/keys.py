"""The token key pair: user-management signs with the Ed25519 seed, everyone verifies with its public key.

services/common/auth.py derives the same key for the services; infra imports no service code beyond the
catalog, so this is a second copy, held to that one by tests/infra/test_builders.py."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def public_key_pem(seed_base64: str) -> str:
    """Deterministic: the same seed always yields the same PEM, so previews show no diff."""
    private = Ed25519PrivateKey.from_private_bytes(base64.b64decode(seed_base64))
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
