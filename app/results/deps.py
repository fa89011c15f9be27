"""Dependencies that load a result row through the scoped layer.

They run before the request body is validated: a row that is not the caller's
answers 404 whatever else is wrong with the request.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from app.deps import ApiActor, PageActor, SessionDep
from app.results import service
from app.results.service import ResultAccess


def api_result(db: SessionDep, actor: ApiActor, result_id: uuid.UUID) -> ResultAccess:
    return service.access(db, actor, result_id)


def page_result(db: SessionDep, actor: PageActor, result_id: uuid.UUID) -> ResultAccess:
    return service.access(db, actor, result_id)


ApiResult = Annotated[ResultAccess, Depends(api_result)]
PageResult = Annotated[ResultAccess, Depends(page_result)]
