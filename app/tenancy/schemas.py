"""What the API says about organizations and members."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, EmailStr, Field


class MemberOut(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    email: str
    name: str
    role: str
    version: int
    created_at: datetime


class MemberCreate(BaseModel):
    email: EmailStr
    role: str = Field(min_length=1, max_length=16)


class MemberUpdate(BaseModel):
    role: str = Field(min_length=1, max_length=16)
