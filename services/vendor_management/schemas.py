from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

Name = Annotated[str, Field(min_length=1, max_length=120)]
Category = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$", description="lower-case slug")]
Description = Annotated[str, Field(max_length=2000)]


class VendorCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    category: Category
    description: Description = ""
    active: bool = True


class VendorUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    category: Category | None = None
    description: Description | None = None
    active: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> VendorUpdate:
        if not self.changes():
            raise ValueError("give at least one of name, category, description, active")
        return self

    def changes(self) -> dict[str, object]:
        return {key: value for key, value in self.model_dump(exclude_unset=True).items() if value is not None}


class Vendor(BaseModel):
    id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    category: str
    description: str
    active: bool
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime


class VendorPage(BaseModel):
    items: list[Vendor]
    total: int
    limit: int
    offset: int
