"""The periodic planner: each engagement's deliverables up to the period after today's.

Scope changes plan at once (``planning.scope_line_saved``); this job plans the new
period as time passes. It works one brand at a time inside that brand's tenant
scope, so under PostgreSQL row-level security it reads and writes that brand's
rows only. Planning is idempotent, so a run that overlaps another, or a run
repeated after a crash, writes nothing twice.
"""

from __future__ import annotations

import logging
import uuid

from huey import Huey, crontab
from sqlmodel import Session

from app.db import Database
from app.deliverables import planning, repository
from app.tenancy import sweeps

log = logging.getLogger("brandkeep.deliverables")


def plan_every_engagement(database: Database) -> int:
    """Plan every engagement of every brand; return how many deliverables were written."""

    def plan_brand(session: Session, brand_id: uuid.UUID) -> int:
        return sum(
            planning.plan(session, engagement)
            for engagement in repository.engagements_of_brand(session, brand_id)
        )

    planned = sweeps.for_each_brand(database, plan_brand, what="planning the deliverables")
    return sum(written for _brand_id, written in planned)


PLAN_TASK = "brandkeep.plan_deliverables"


def register(huey: Huey, database: Database) -> None:
    """Plan every hour, on the hour: a new period's deliverables show up on time."""

    def run() -> None:
        written = plan_every_engagement(database)
        if written:
            log.info("deliverables planned: %d", written)

    huey.periodic_task(crontab(minute="0"), name=PLAN_TASK)(run)
