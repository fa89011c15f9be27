"""Dependencies that load an escalation through the scoped layer.

They run before the request body is validated: an escalation that is not the
caller's answers 404 whatever else is wrong with the request.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from app.deps import ApiActor, PageActor, SessionDep
from app.escalations import service
from app.escalations.service import EscalationAccess


def api_escalation(db: SessionDep, actor: ApiActor, escalation_id: uuid.UUID) -> EscalationAccess:
    return service.access(db, actor, escalation_id)


def page_escalation(db: SessionDep, actor: PageActor, escalation_id: uuid.UUID) -> EscalationAccess:
    return service.access(db, actor, escalation_id)


ApiEscalation = Annotated[EscalationAccess, Depends(api_escalation)]
PageEscalation = Annotated[EscalationAccess, Depends(page_escalation)]
