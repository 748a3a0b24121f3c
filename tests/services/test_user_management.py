"""user-management against real PostgreSQL: register, login, refresh, profile, and every bad input."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest

from services.common.auth import TokenIssuer, generate_seed
from services.user_management.app import create_app
from tests.services.marketplace import Servers, bearer


@pytest.fixture
async def users(servers: Servers, serve: Any) -> AsyncIterator[httpx.AsyncClient]:
    url = await serve(create_app(await servers.user_settings()))
    async with httpx.AsyncClient(base_url=url) as client:
        yield client


async def test_register_login_refresh_and_profile(users: httpx.AsyncClient, servers: Servers) -> None:
    created = await users.post(
        "/users/register", json={"email": "Ann@Example.com", "password": "correct horse", "role": "vendor"}
    )
    assert created.status_code == 201
    user = created.json()
    assert user["email"] == "ann@example.com" and user["role"] == "vendor" and user["display_name"] == "ann"
    assert "password" not in created.text and "hash" not in created.text

    login = await users.post("/users/login", json={"email": "ANN@example.com", "password": "correct horse"})
    assert login.status_code == 200
    pair = login.json()
    claims = jwt.decode(pair["access_token"], options={"verify_signature": False})
    assert claims["sub"] == user["id"] and claims["role"] == "vendor"
    assert claims["iss"] == "venta-user-management" and claims["aud"] == "venta"
    assert jwt.get_unverified_header(pair["access_token"])["alg"] == "EdDSA"

    me = await users.get("/users/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200 and me.json() == user

    renamed = await users.patch(
        "/users/me", json={"display_name": "Ann's Stall"}, headers=bearer(pair["access_token"])
    )
    assert renamed.status_code == 200 and renamed.json()["display_name"] == "Ann's Stall"

    refreshed = await users.post("/users/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 200
    new_pair = refreshed.json()
    assert new_pair["refresh_token"] != pair["refresh_token"]
    assert (await users.get("/users/me", headers=bearer(new_pair["access_token"]))).status_code == 200
    # A refresh token is spent by its use: its successor works once, then is spent in turn.
    third = await users.post("/users/refresh", json={"refresh_token": new_pair["refresh_token"]})
    assert third.status_code == 200
    spent = await users.post("/users/refresh", json={"refresh_token": new_pair["refresh_token"]})
    assert spent.status_code == 401 and "already used" in spent.json()["detail"]


async def refresh(users: httpx.AsyncClient, token: str) -> httpx.Response:
    return await users.post("/users/refresh", json={"refresh_token": token})


async def login(users: httpx.AsyncClient, email: str) -> str:
    resp = await users.post("/users/login", json={"email": email, "password": "correct horse"})
    assert resp.status_code == 200, resp.text
    token: str = resp.json()["refresh_token"]
    return token


async def test_reusing_a_rotated_refresh_token_revokes_its_whole_family(users: httpx.AsyncClient) -> None:
    await users.post("/users/register", json={"email": "fay@example.com", "password": "correct horse"})
    stolen = await login(users, "fay@example.com")
    other_device = await login(users, "fay@example.com")
    successor = (await refresh(users, stolen)).json()["refresh_token"]  # the thief (or the user) rotates
    latest = (await refresh(users, successor)).json()["refresh_token"]
    replayed = await refresh(users, stolen)  # the other holder of the stolen token comes back with it
    assert replayed.status_code == 401
    assert "every token of that login is revoked" in replayed.json()["detail"]
    # The whole family is gone: the newest token of that login no longer works either.
    assert (await refresh(users, latest)).status_code == 401
    # Another login of the same user is another family: untouched.
    assert (await refresh(users, other_device)).status_code == 200


async def test_logout_revokes_the_login_and_only_that_login(users: httpx.AsyncClient) -> None:
    await users.post("/users/register", json={"email": "gil@example.com", "password": "correct horse"})
    first = await login(users, "gil@example.com")
    second = await login(users, "gil@example.com")
    current = (await refresh(users, first)).json()["refresh_token"]
    out = await users.post("/users/logout", json={"refresh_token": current})
    assert out.status_code == 204
    assert (await refresh(users, current)).status_code == 401
    assert (await refresh(users, first)).status_code == 401
    assert (await refresh(users, second)).status_code == 200
    unknown = await users.post("/users/logout", json={"refresh_token": "made-up"})
    assert unknown.status_code == 401 and unknown.json()["detail"] == "refresh token is unknown"
    assert (await users.post("/users/logout", json={})).status_code == 422


async def test_duplicate_email_is_409_whatever_the_case(users: httpx.AsyncClient) -> None:
    body = {"email": "bob@example.com", "password": "long enough"}
    assert (await users.post("/users/register", json=body)).status_code == 201
    again = await users.post("/users/register", json={**body, "email": "BOB@example.com"})
    assert again.status_code == 409
    assert again.json() == {
        "error": "conflict",
        "detail": "an account with this e-mail already exists",
        "request_id": again.headers["x-request-id"],
    }


async def test_bad_credentials_do_not_say_which_part_was_wrong(users: httpx.AsyncClient) -> None:
    await users.post("/users/register", json={"email": "cy@example.com", "password": "right password"})
    wrong_password = await users.post(
        "/users/login", json={"email": "cy@example.com", "password": "wrong password"}
    )
    unknown_email = await users.post(
        "/users/login", json={"email": "nobody@example.com", "password": "right password"}
    )
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json()["detail"] == unknown_email.json()["detail"] == "e-mail or password is wrong"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "password": "long enough"}, "email"),
        ({"email": "d@example.com", "password": "short"}, "password"),
        ({"email": "d@example.com", "password": "long enough", "role": "admin"}, "role"),
        ({"email": "d@example.com", "password": "long enough", "is_admin": True}, "is_admin"),
        ({"password": "long enough"}, "email"),
    ],
)
async def test_register_rejects_bad_input_with_a_reason(
    users: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await users.post("/users/register", json=body)
    assert response.status_code == 422
    assert [f["field"] for f in response.json()["fields"]] == [field]


async def test_malformed_bodies_and_tokens(users: httpx.AsyncClient, servers: Servers) -> None:
    not_json = await users.post(
        "/users/login", content=b"{oops", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 422
    assert (await users.post("/users/refresh", json={"refresh_token": "made-up"})).status_code == 401
    assert (await users.post("/users/refresh", json={})).status_code == 422
    no_token = await users.get("/users/me")
    assert no_token.status_code == 401 and no_token.headers["www-authenticate"] == "Bearer"
    assert (await users.get("/users/me", headers={"Authorization": "Basic abc"})).status_code == 401
    forged = TokenIssuer(generate_seed(), 900).issue("00000000-0000-0000-0000-000000000001", "vendor")
    assert (await users.get("/users/me", headers=bearer(forged))).status_code == 401
    expired = jwt.encode(
        {
            "iss": "venta-user-management",
            "aud": "venta",
            "sub": "x",
            "role": "customer",
            "iat": int(time.time()) - 100,
            "exp": int(time.time()) - 10,
        },
        TokenIssuer(servers.signing_seed, 1)._key,
        algorithm="EdDSA",
    )
    response = await users.get("/users/me", headers=bearer(expired))
    assert response.status_code == 401 and response.json()["detail"] == "token expired"
    token = servers.issuer().issue("00000000-0000-0000-0000-00000000abcd", "customer")
    gone = await users.get("/users/me", headers=bearer(token))
    assert gone.status_code == 404
    login = await users.post("/users/register", json={"email": "e@example.com", "password": "long enough"})
    assert login.status_code == 201
    empty = await users.patch("/users/me", json={}, headers=bearer(token))
    assert empty.status_code == 422
