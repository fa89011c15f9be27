"""Optimistic transitions: a row moves on only from the state its reader saw.

Deliverables and escalations are state machines whose rows carry a ``version``
(the ETag) and a ``status``. A transition is one conditional update
``… WHERE id = :id AND brand_id = :brand AND version = :read AND status IN
(:expected)``: of two people acting at once, the second changes nothing and is told
to reload (409), never silently overwriting the first. A stale ``If-Match`` is
answered before that (412).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlmodel import Session

from app.errors import Conflict, PreconditionFailed


class Versioned(Protocol):
    id: uuid.UUID
    brand_id: uuid.UUID
    version: int


Row = TypeVar("Row", bound=Versioned)


def check_version(row: Versioned, expected_version: int | None) -> None:
    """412 when the caller's copy (its ``If-Match``) is not the row's current version."""
    if expected_version is not None and row.version != expected_version:
        raise PreconditionFailed()


def transition(
    session: Session,
    row: Row,
    *,
    expected_statuses: Iterable[enum.StrEnum],
    conflict: str,
    **values: Any,
) -> Row:
    """Apply ``values`` (and bump the version) if the row is still as it was read.

    Otherwise raise ``Conflict(conflict)`` and change nothing. On success the row is
    refreshed, so the caller sees the stored values (and the new version).
    """
    model: Any = type(row)
    result = session.execute(
        sa.update(model)
        .where(
            model.id == row.id,
            # The tenant key too: the update stays on the row's own tenant (and shard).
            model.brand_id == row.brand_id,
            model.version == row.version,
            model.status.in_([str(status) for status in expected_statuses]),
        )
        .values(version=model.version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise Conflict(conflict)
    session.refresh(row)
    return row
