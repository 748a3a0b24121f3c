from __future__ import annotations

import re
import uuid
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.common.auth import Role

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


def _email(value: str) -> str:
    value = value.strip().lower()
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValueError("is not an e-mail address")
    return value


Email = Annotated[str, AfterValidator(_email)]
Password = Annotated[str, Field(min_length=8, max_length=128)]
DisplayName = Annotated[str, Field(min_length=1, max_length=100)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(Strict):
    email: Email
    password: Password
    role: Role = "customer"
    display_name: DisplayName | None = None


class LoginRequest(Strict):
    email: Email
    password: Annotated[str, Field(min_length=1, max_length=128)]


class RefreshRequest(Strict):
    refresh_token: Annotated[str, Field(min_length=1, max_length=256)]


class ProfileUpdate(Strict):
    display_name: DisplayName


class User(BaseModel):
    id: uuid.UUID
    email: str
    role: Role
    display_name: str


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int
