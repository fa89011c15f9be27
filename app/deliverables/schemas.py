"""Inputs and outputs of deliverables, shared by the pages and the API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, ValidationError, field_validator
from starlette.datastructures import FormData

from app.engagements.schemas import ScopeKind
from app.errors import N_, FieldError, InvalidInput
from app.schemas import InputRule, parse_input


def check_web_link(value: str) -> str:
    """An absolute http(s) address: evidence a person can open, nothing else."""
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputRule(N_("Give a full web address starting with https://."))
    return value


class EvidenceLink(BaseModel):
    url: str = Field(min_length=1, max_length=2000)
    label: str = Field(default="", max_length=200)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_web_link(value)


class DeliverIn(BaseModel):
    """A delivery: at least one link or one of the engagement's posts as evidence."""

    links: list[EvidenceLink] = Field(default_factory=list, max_length=50)
    post_ids: list[uuid.UUID] = Field(default_factory=list, max_length=100)
    note: str = Field(default="", max_length=2000)


def deliver_input(form: FormData) -> DeliverIn:
    """A delivery sent as a form (the board's, or the API's multipart one).

    ``links`` holds web addresses, one per line (a textarea) or one per field;
    ``post_ids`` one id per field; the files travel beside, in ``files``.
    """
    links = []
    lines = [
        line.strip()
        for value in form.getlist("links")
        if isinstance(value, str)
        for line in value.splitlines()
    ]
    for number, line in enumerate(lines, start=1):
        if not line:
            continue
        try:
            links.append(EvidenceLink(url=line))
        except ValidationError:
            raise InvalidInput(
                field_errors=[
                    FieldError(
                        "links",
                        N_("Line %(line)d is not a full web address starting with https://."),
                        {"line": number},
                    )
                ]
            ) from None
    post_ids = []
    for index, value in enumerate(form.getlist("post_ids")):
        try:
            post_ids.append(uuid.UUID(str(value)))
        except ValueError:
            raise InvalidInput(
                field_errors=[FieldError(f"post_ids.{index}", N_("This is not a valid id."))]
            ) from None
    note = form.get("note")
    return parse_input(
        DeliverIn,
        {
            "links": links,
            "post_ids": post_ids,
            "note": note.strip() if isinstance(note, str) else "",
        },
    )


class ReturnIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class DeliverableCreate(BaseModel):
    """An ad-hoc deliverable, outside the scope's plan."""

    title: str = Field(min_length=1, max_length=200)
    kind: ScopeKind = "custom"
    description: str = Field(default="", max_length=1000)
    quantity: int = Field(default=1, ge=1, le=100000)
    due_on: date


class DeliverableOut(BaseModel):
    id: uuid.UUID
    engagement_id: uuid.UUID
    scope_line_id: uuid.UUID | None
    ad_hoc: bool
    kind: str
    title: str
    description: str
    quantity: int
    period_start: date
    period_end: date
    due_on: date
    due_at: datetime
    status: str
    late: bool = Field(description="Computed: first delivered after due, or past due undelivered.")
    rounds: int
    evidence: list[dict[str, Any]]
    delivery_note: str
    first_delivered_at: datetime | None
    delivered_at: datetime | None
    delivered_by_name: str
    decided_at: datetime | None
    decided_by_name: str
    return_reason: str
    version: int
    created_at: datetime


class EvidenceFileOut(BaseModel):
    """A file handed over with one delivery round; ``url`` gives its bytes."""

    id: uuid.UUID
    round: int = Field(description="The delivery (1 = first) the file came with.")
    original_name: str
    content_type: str = Field(description="As recognised from the bytes, not as uploaded.")
    size: int
    sha256: str
    created_at: datetime
    url: str
