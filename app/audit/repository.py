"""Queries over the audit chains."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlmodel import Session, col, select

from app.audit.models import AuditEntry


def last_entry(
    session: Session, organization_id: uuid.UUID, chain_id: uuid.UUID
) -> AuditEntry | None:
    return session.exec(
        select(AuditEntry)
        .where(AuditEntry.organization_id == organization_id, AuditEntry.chain_id == chain_id)
        .order_by(col(AuditEntry.seq).desc())
        .limit(1)
    ).first()


def chain(session: Session, chain_id: uuid.UUID) -> Sequence[AuditEntry]:
    return session.exec(
        select(AuditEntry).where(AuditEntry.chain_id == chain_id).order_by(col(AuditEntry.seq))
    ).all()


def chain_ids(session: Session) -> Sequence[uuid.UUID]:
    return session.exec(select(AuditEntry.chain_id).distinct()).all()
