"""Dependencies that load a post through the scoped layer.

They run before the request body is validated: a post that is not the caller's
answers 404 whatever else is wrong with the request.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from app.content import service
from app.content.service import PostAccess
from app.deps import ApiActor, PageActor, SessionDep


def api_post(db: SessionDep, actor: ApiActor, post_id: uuid.UUID) -> PostAccess:
    return service.access(db, actor, post_id)


def page_post(db: SessionDep, actor: PageActor, post_id: uuid.UUID) -> PostAccess:
    return service.access(db, actor, post_id)


ApiPost = Annotated[PostAccess, Depends(api_post)]
PagePost = Annotated[PostAccess, Depends(page_post)]
