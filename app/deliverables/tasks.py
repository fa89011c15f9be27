"""The periodic planner: each engagement's deliverables up to the period after today's.

Scope changes plan at once (``planning.scope_line_saved``); this job plans the new
period as time passes. It works one brand at a time inside that brand's tenant
scope, so under PostgreSQL row-level security it reads and writes that brand's
rows only. Planning is idempotent, so a run that overlaps another, or a run
repeated after a crash, writes nothing twice.
"""

from __future__ import annotations

import logging

from huey import Huey, crontab

from app.db import Database
from app.deliverables import planning, repository

log = logging.getLogger("brandkeep.deliverables")


def plan_every_engagement(database: Database) -> int:
    """Plan every engagement of every brand; return how many deliverables were written."""
    with database.session_scope() as session:
        brands = list(repository.brand_ids(session))
    written = 0
    for brand_id in brands:
        try:
            with database.tenant_scope(org_ids=[brand_id]) as session:
                for engagement in repository.engagements_of_brand(session, brand_id):
                    written += planning.plan(session, engagement)
        except Exception:
            # One brand's failure must not stop the others; the next run retries it.
            log.exception("planning the deliverables of brand %s failed", brand_id)
    return written


PLAN_TASK = "brandkeep.plan_deliverables"


def register(huey: Huey, database: Database) -> None:
    """Plan every hour, on the hour: a new period's deliverables show up on time."""

    def run() -> None:
        written = plan_every_engagement(database)
        if written:
            log.info("deliverables planned: %d", written)

    huey.periodic_task(crontab(minute="0"), name=PLAN_TASK)(run)
