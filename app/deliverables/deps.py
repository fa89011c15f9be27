"""Dependencies that load a deliverable through the scoped layer.

They run before the request body is validated: a deliverable that is not the
caller's answers 404 whatever else is wrong with the request.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from app.deliverables import service
from app.deliverables.service import DeliverableAccess
from app.deps import ApiActor, PageActor, SessionDep


def api_deliverable(
    db: SessionDep, actor: ApiActor, deliverable_id: uuid.UUID
) -> DeliverableAccess:
    return service.access(db, actor, deliverable_id)


def page_deliverable(
    db: SessionDep, actor: PageActor, deliverable_id: uuid.UUID
) -> DeliverableAccess:
    return service.access(db, actor, deliverable_id)


ApiDeliverable = Annotated[DeliverableAccess, Depends(api_deliverable)]
PageDeliverable = Annotated[DeliverableAccess, Depends(page_deliverable)]
