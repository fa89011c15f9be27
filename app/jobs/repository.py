"""Queries on the outbox. Jobs belong to no tenant: the handler scopes what it touches."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.jobs.models import OutboxJob

PENDING = "pending"
DONE = "done"
FAILED = "failed"


def get_job(session: Session, job_id: uuid.UUID) -> OutboxJob | None:
    return session.get(OutboxJob, job_id)


def claim(
    session: Session, job_id: uuid.UUID, *, now: datetime, lease_until: datetime
) -> OutboxJob | None:
    """Take a due job for one attempt: one conditional UPDATE, so two runners never both win.

    The claim counts the attempt and pushes ``run_after`` to the end of a lease: if the
    runner dies mid-job, the row is still pending and the sweep retries it once the
    lease is over. Nothing is held locked while the job itself runs.
    """
    result = session.execute(
        sa.update(OutboxJob)
        .where(
            col(OutboxJob.id) == job_id,
            col(OutboxJob.state) == PENDING,
            col(OutboxJob.run_after) <= now,
        )
        .values(attempts=OutboxJob.attempts + 1, run_after=lease_until)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return None
    return session.exec(
        select(OutboxJob).where(OutboxJob.id == job_id).execution_options(populate_existing=True)
    ).one()


def _settle(session: Session, job_id: uuid.UUID, attempt: int, values: dict[str, Any]) -> bool:
    """Record how an attempt ended, unless a later attempt has taken the job over since."""
    result = session.execute(
        sa.update(OutboxJob)
        .where(
            col(OutboxJob.id) == job_id,
            col(OutboxJob.state) == PENDING,
            col(OutboxJob.attempts) == attempt,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def mark_done(
    session: Session, job_id: uuid.UUID, *, attempt: int, now: datetime, payload: dict[str, Any]
) -> bool:
    values = {"state": DONE, "done_at": now, "last_error": None, "payload": payload}
    return _settle(session, job_id, attempt, values)


def mark_failed_attempt(
    session: Session,
    job_id: uuid.UUID,
    *,
    attempt: int,
    error: str,
    run_after: datetime,
    final: bool,
    payload: dict[str, Any],
) -> bool:
    values: dict[str, Any] = {"last_error": error[:2000], "run_after": run_after}
    if final:
        values.update(state=FAILED, payload=payload)
    return _settle(session, job_id, attempt, values)


def due_job_ids(session: Session, *, now: datetime, limit: int) -> Sequence[uuid.UUID]:
    return session.exec(
        select(OutboxJob.id)
        .where(col(OutboxJob.state) == PENDING, col(OutboxJob.run_after) <= now)
        .order_by(col(OutboxJob.run_after))
        .limit(limit)
    ).all()
