"""Rotating the token signing key with both keys live: no service rejects another's tokens on the way.

The runbook's three steps (docs/runbooks.md, "Rotate the token signing key"), each with real
services: user-management signing, the gateway and file-management verifying, one database of
accounts throughout.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from services.api_gateway.app import create_app as create_gateway
from services.common.auth import (
    AUDIENCE,
    ISSUER,
    InvalidToken,
    TokenVerifier,
    generate_seed,
    key_id,
    load_public_keys,
    private_key_from_seed,
    public_pem_from_seed,
)
from services.common.settings import JwtSigningSettings, SettingsError, load_settings
from services.file_management.app import create_app as create_files
from services.file_management.settings import Settings as FileSettings
from services.user_management.app import create_app as create_users
from services.user_management.settings import Settings as UserSettings
from tests.services.marketplace import FAST_HASH, Servers, bearer

Serve = Callable[[Any], Awaitable[str]]


class Platform:
    """Services started with a given key set; they share the accounts and files databases."""

    def __init__(self, servers: Servers, serve: Serve, tmp_path: Path) -> None:
        self.servers, self.serve, self.tmp_path = servers, serve, tmp_path
        self.users_db = self.files_db = ""

    async def databases(self) -> None:
        self.users_db = await self.servers.new_database()
        self.files_db = await self.servers.new_database()

    async def start(self, seed: str, keys: str) -> httpx.AsyncClient:
        """user-management signing with ``seed``; it, the gateway and file-management accept ``keys``."""
        users = UserSettings(
            service_name="user-management",
            database_url=self.users_db,
            jwt_public_key=keys,
            jwt_signing_seed=seed,
            **FAST_HASH,
        )
        files = FileSettings(database_url=self.files_db, jwt_public_key=keys, storage_dir=self.tmp_path)
        upstreams = {
            "user-management": await self.serve(create_users(users)),
            "file-management": await self.serve(create_files(files)),
        }
        gateway = self.servers.gateway_settings(upstreams, jwt_public_key=keys)
        return httpx.AsyncClient(base_url=await self.serve(create_gateway(gateway)), timeout=10)


async def accepted(gw: httpx.AsyncClient, token: str) -> bool:
    """Whether the gateway and both services behind it take the token (all of them, or none)."""
    codes = {
        (await gw.get("/api/users/me", headers=bearer(token))).status_code,
        (await gw.get("/api/files", headers=bearer(token))).status_code,
    }
    assert codes in ({200}, {401}), codes
    return codes == {200}


async def test_a_key_rotation_with_both_keys_live(servers: Servers, serve: Serve, tmp_path: Path) -> None:
    old_seed, new_seed = servers.signing_seed, generate_seed()
    old_pem, new_pem = public_pem_from_seed(old_seed), public_pem_from_seed(new_seed)
    [old_kid], [new_kid] = load_public_keys(old_pem), load_public_keys(new_pem)
    platform = Platform(servers, serve, tmp_path)
    await platform.databases()

    before = await platform.start(old_seed, old_pem)
    body = {"email": "rot@example.com", "password": "correct horse"}
    assert (await before.post("/api/users/register", json=body)).status_code == 201
    old_pair = (await before.post("/api/users/login", json=body)).json()
    assert jwt.get_unverified_header(old_pair["access_token"])["kid"] == old_kid

    # 1. Every verifier accepts both keys; user-management still signs with the old one.
    both = old_pem + new_pem
    step1 = await platform.start(old_seed, both)
    assert await accepted(step1, old_pair["access_token"])
    still_old = (await step1.post("/api/users/login", json=body)).json()["access_token"]
    assert jwt.get_unverified_header(still_old)["kid"] == old_kid

    # 2. user-management signs with the new key: new tokens name it, old ones still verify everywhere.
    step2 = await platform.start(new_seed, both)
    new_pair = (await step2.post("/api/users/login", json=body)).json()
    assert jwt.get_unverified_header(new_pair["access_token"])["kid"] == new_kid != old_kid
    assert await accepted(step2, old_pair["access_token"])
    assert await accepted(step2, new_pair["access_token"])
    assert await accepted(step1, new_pair["access_token"])  # a pod still on step 1 takes new tokens too
    # A pod that never took step 1 would refuse them: why the verifiers go first.
    assert not await accepted(before, new_pair["access_token"])
    # Refresh tokens are opaque rows, not signed: one from before the rotation yields a new-key token.
    refresh = {"refresh_token": old_pair["refresh_token"]}
    refreshed = (await step2.post("/api/users/refresh", json=refresh)).json()
    assert jwt.get_unverified_header(refreshed["access_token"])["kid"] == new_kid

    # 3. One token lifetime later the old key goes: its tokens are refused, the new ones are not.
    step3 = await platform.start(new_seed, new_pem)
    assert not await accepted(step3, old_pair["access_token"])
    assert await accepted(step3, new_pair["access_token"])
    refused = await step3.get("/api/files", headers=bearer(old_pair["access_token"]))
    assert refused.json()["detail"] == "token signed by a key that is not accepted"
    # Logging out needs no access token (it may have expired): the refresh token is the proof.
    out = await step3.post("/api/users/logout", json={"refresh_token": refreshed["refresh_token"]})
    assert out.status_code == 204
    for client in (before, step1, step2, step3):
        await client.aclose()


def test_kids_are_thumbprints_and_a_token_without_one_is_tried_against_each_key() -> None:
    seeds = [generate_seed(), generate_seed()]
    both = "".join(public_pem_from_seed(seed) for seed in seeds)
    keys = load_public_keys(both)
    assert len(keys) == 2
    for kid, key in keys.items():
        assert key_id(key) == kid and len(kid) == 43  # base64url of a SHA-256, unpadded
    # Issued before tokens carried a kid (a release earlier): still accepted by any key that signed it.
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u1", "role": "customer", "iat": 1, "exp": 2**40}
    legacy = jwt.encode(claims, private_key_from_seed(seeds[1]), algorithm="EdDSA")
    assert "kid" not in jwt.get_unverified_header(legacy)
    assert TokenVerifier(both).verify(legacy).user_id == "u1"
    with pytest.raises(InvalidToken, match="token invalid"):
        TokenVerifier(public_pem_from_seed(seeds[0])).verify(legacy)
    # The signing settings refuse a seed whose public key is not among the accepted ones.
    other = public_pem_from_seed(generate_seed())
    with pytest.raises(
        SettingsError, match="JWT_PUBLIC_KEY does not include the public key of JWT_SIGNING_SEED"
    ):
        load_settings(JwtSigningSettings, service_name="x", jwt_signing_seed=seeds[0], jwt_public_key=other)
    settings = load_settings(
        JwtSigningSettings, service_name="x", jwt_signing_seed=seeds[0], jwt_public_key=both
    )
    assert settings.jwt_public_key == both
