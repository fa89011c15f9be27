"""``Idempotency-Key`` for creating requests: a retry returns the first answer.

The key is reserved in the same transaction as the change it guards, so the
stored answer exists exactly when the change committed. While the first request
is still running, PostgreSQL's transaction-scoped advisory lock makes a retry
fail fast with 409; SQLite serialises writers, so there a retry simply waits and
then replays.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel import Field, Session, SQLModel, select

from app.db import created_at_field, id_field
from app.errors import N_, Conflict, FieldError, InvalidInput

MAX_KEY_LENGTH = 255

# The header every creating API endpoint accepts.
IdempotencyKey = Annotated[
    str | None,
    Header(
        description="Retries with the same key return the first answer instead of acting twice."
    ),
]


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_record"
    __table_args__ = (sa.UniqueConstraint("user_id", "key"),)

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="user.id", nullable=False, ondelete="CASCADE")
    key: str = Field(max_length=MAX_KEY_LENGTH, nullable=False)
    request_fingerprint: str = Field(max_length=64, nullable=False)
    status_code: int = Field(nullable=False)
    response_body: str = Field(sa_type=sa.Text(), nullable=False)
    created_at: datetime = created_at_field()


def fingerprint(method: str, path: str, payload: BaseModel | dict[str, Any] | None) -> str:
    body = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _lock_key(user_id: uuid.UUID, key: str) -> int:
    digest = hashlib.sha256(f"{user_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def replay(
    session: Session, *, user_id: uuid.UUID, key: str, request_fingerprint: str
) -> JSONResponse | None:
    """The stored answer for this key, or None when the request should run now."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(
            field_errors=[FieldError("Idempotency-Key", N_("Use a key of 1 to 255 characters."))]
        )
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        locked = session.execute(
            sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _lock_key(user_id, key)}
        ).scalar_one()
        if not locked:
            raise Conflict(
                N_("A request with this Idempotency-Key is still running; retry shortly.")
            )
    record = session.exec(
        select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key
        )
    ).first()
    if record is None:
        return None
    if record.request_fingerprint != request_fingerprint:
        raise InvalidInput(
            field_errors=[
                FieldError(
                    "Idempotency-Key",
                    N_("This key was already used for a different request; use a new key."),
                )
            ]
        )
    return JSONResponse(
        json.loads(record.response_body),
        status_code=record.status_code,
        headers={"Idempotent-Replayed": "true"},
    )


def remember(
    session: Session,
    *,
    user_id: uuid.UUID,
    key: str,
    request_fingerprint: str,
    status_code: int,
    body: Any,
) -> None:
    session.add(
        IdempotencyRecord(
            user_id=user_id,
            key=key,
            request_fingerprint=request_fingerprint,
            status_code=status_code,
            response_body=json.dumps(body, separators=(",", ":")),
        )
    )
    session.flush()


def create_once(
    session: Session,
    *,
    user_id: uuid.UUID,
    key: str | None,
    method: str,
    path: str,
    payload: BaseModel | dict[str, Any] | None,
    create: Callable[[], tuple[int, Any, dict[str, str]]],
) -> JSONResponse:
    """Run ``create`` at most once per key: the answer is stored with the change it made."""
    request_fingerprint = fingerprint(method, path, payload)
    if key is not None:
        replayed = replay(
            session, user_id=user_id, key=key, request_fingerprint=request_fingerprint
        )
        if replayed is not None:
            return replayed
    status_code, body, headers = create()
    if key is not None:
        remember(
            session,
            user_id=user_id,
            key=key,
            request_fingerprint=request_fingerprint,
            status_code=status_code,
            body=body,
        )
    return JSONResponse(body, status_code=status_code, headers=headers)
