"""Inputs and outputs of a post's comments."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from app.content.comments_models import BODY_LENGTH, Visibility


class CommentIn(BaseModel):
    body: str = Field(min_length=1, max_length=BODY_LENGTH)
    visibility: Visibility = Visibility.shared
    # The version the comment is about; the post's current version if left out.
    version: int | None = Field(default=None, ge=1)
    # People to tell: e-mail addresses or user ids of people on the engagement (for an
    # internal comment, of the author's side only). "@name@example.com" in the body
    # mentions that address too.
    mentions: list[str] = Field(default_factory=list, max_length=20)


class MentionOut(BaseModel):
    id: uuid.UUID
    name: str
    email: str


class CommentOut(BaseModel):
    id: uuid.UUID
    post_id: uuid.UUID
    version: int
    visibility: Visibility
    side: str  # "brand" or "agency": whose side the author spoke for
    author_id: uuid.UUID | None
    author_name: str
    body: str
    mentions: list[MentionOut]
    created_at: datetime
