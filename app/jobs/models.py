"""The outbox: jobs written in the same transaction as the change that caused them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.db import created_at_field, id_field, timestamp_field


class OutboxJob(SQLModel, table=True):
    """A job to run after the transaction that wrote it commits.

    Nothing is sent from inside a request's transaction: the request writes this
    row, and the job runner picks it up once it is committed. A crash between the
    commit and the hand-over loses nothing: pending rows are swept up again.
    """

    __tablename__ = "outbox_job"
    __table_args__ = (sa.Index("ix_outbox_job_state_run_after", "state", "run_after"),)

    id: uuid.UUID = id_field()
    kind: str = Field(max_length=64, nullable=False)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON(), nullable=False)
    state: str = Field(default="pending", max_length=16, nullable=False)  # pending | done | failed
    attempts: int = Field(default=0, nullable=False)
    last_error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = created_at_field()
    run_after: datetime = created_at_field()
    done_at: datetime | None = timestamp_field(nullable=True, default=None)


class DevMail(SQLModel, table=True):
    """Mail delivered in development: shown on /dev/outbox instead of being sent."""

    __tablename__ = "dev_mail"

    id: uuid.UUID = id_field()
    to: str = Field(max_length=254, nullable=False)
    subject: str = Field(max_length=300, nullable=False)
    text: str = Field(sa_type=sa.Text(), nullable=False)
    html: str = Field(sa_type=sa.Text(), nullable=False)
    created_at: datetime = created_at_field()
