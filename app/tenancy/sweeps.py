"""Every brand, for the periodic jobs that then work one brand's tenant scope at a time.

The review sweep (``content/reminders.py``), the deliverables planner
(``deliverables/tasks.py``) and the orphan blob collection (``storage/tasks.py``)
list the brands outside any tenant context, then open ``tenant_scope(org_ids=[brand])``
for each. The list needs no privileged read under PostgreSQL row-level security:
``organization`` has no policy (its rows are the tenants, not a tenant's data), so
the runtime role reads every brand's id; what belongs to a brand it reads only in
that brand's scope (tests/test_sweeps_under_row_level_security.py holds both).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlmodel import Session, select

from app.db import Database
from app.tenancy.models import Organization, OrgKind

log = logging.getLogger("brandkeep.sweeps")

T = TypeVar("T")


def brand_ids(session: Session) -> Sequence[uuid.UUID]:
    return session.exec(select(Organization.id).where(Organization.kind == OrgKind.brand)).all()


def for_each_brand(
    database: Database, work: Callable[[Session, uuid.UUID], T], *, what: str
) -> list[tuple[uuid.UUID, T]]:
    """Run ``work`` for every brand, each in its own tenant scope and transaction.

    One brand's failure is logged and leaves the others alone (its transaction rolls
    back; the next run retries it). Returns the brands that succeeded with their
    results. Not for work that must see every brand or none (the blob collection).
    """
    with database.session_scope() as session:
        brands = list(brand_ids(session))
    done: list[tuple[uuid.UUID, T]] = []
    for brand_id in brands:
        try:
            with database.tenant_scope(org_ids=[brand_id]) as session:
                result = work(session, brand_id)
        except Exception:
            log.exception("%s failed for brand %s; the next run retries it", what, brand_id)
            continue
        done.append((brand_id, result))
    return done
