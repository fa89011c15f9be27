"""Dependencies that load an engagement (or one of its KPIs) through the scoped layer.

They run before the request body is validated: an engagement that is not the
caller's answers 404 whatever else is wrong with the request.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from app.deps import ApiActor, PageActor, SessionDep
from app.engagements import service
from app.engagements.models import Kpi
from app.engagements.service import EngagementAccess


def api_engagement(db: SessionDep, actor: ApiActor, engagement_id: uuid.UUID) -> EngagementAccess:
    return service.access(db, actor, engagement_id)


def page_engagement(db: SessionDep, actor: PageActor, engagement_id: uuid.UUID) -> EngagementAccess:
    return service.access(db, actor, engagement_id)


ApiEngagement = Annotated[EngagementAccess, Depends(api_engagement)]
PageEngagement = Annotated[EngagementAccess, Depends(page_engagement)]


def api_kpi(db: SessionDep, actor: ApiActor, kpi_id: uuid.UUID) -> tuple[Kpi, EngagementAccess]:
    return service.kpi_access(db, actor, kpi_id)


ApiKpi = Annotated[tuple[Kpi, EngagementAccess], Depends(api_kpi)]
