"""Pages: an engagement's earned relaxations, per content category.

Everyone on the engagement sees which categories are relaxed and the agency's
record in each (the agency sees what it has earned); only the brand's owners and
leads switch one on or revoke it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlmodel import Session

from app import web
from app.content import relaxation
from app.deps import SessionDep, verify_csrf
from app.engagements.deps import PageEngagement
from app.engagements.service import EngagementAccess
from app.errors import Conflict, InvalidInput, NotFound

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)


def _context(db: Session, granted: EngagementAccess, **extra: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "user": granted.actor.user,
        "engagement": granted.engagement,
        "standings": relaxation.standings(db, granted),
        "stage_allows": relaxation.stage_allows(granted.engagement),
        "may_change": granted.on_brand_side and granted.can("engagement.edit"),
        "form_message": None,
        "form_category": None,
        "errors": {},
        "values": {},
    }
    context.update(extra)
    return context


def _page(request: Request, db: Session, granted: EngagementAccess, **extra: Any) -> Response:
    status_code = extra.pop("status_code", 200)
    return web.render(
        request, "content/relaxation.html", _context(db, granted, **extra), status_code=status_code
    )


@router.get("/engagements/{engagement_id}/relaxations", name="engagement_relaxations")
def relaxations_page(request: Request, db: SessionDep, granted: PageEngagement) -> Response:
    granted.require("engagement.read")
    return _page(request, db, granted)


@router.post("/engagements/{engagement_id}/relaxations", name="enable_relaxation")
def enable(
    request: Request,
    db: SessionDep,
    granted: PageEngagement,
    category: Annotated[str, Form(max_length=80)] = "",
    threshold: Annotated[int, Form(ge=0, le=1000)] = relaxation.DEFAULT_THRESHOLD,
    spot_check_rate: Annotated[int, Form(ge=0, le=1000)] = relaxation.DEFAULT_SPOT_CHECK_RATE,
) -> Response:
    try:
        with db.begin_nested():
            relaxation.enable(
                db,
                granted,
                category=category,
                threshold=threshold,
                spot_check_rate=spot_check_rate,
            )
    except (InvalidInput, Conflict) as exc:
        errors = web.field_errors_map(request, exc.field_errors)
        return _page(
            request,
            db,
            granted,
            form_message=" ".join(errors.values())
            or web.translate(request, exc.message, exc.params),
            form_category=category.strip(),
            values={"threshold": threshold, "spot_check_rate": spot_check_rate},
            errors=errors,
            status_code=exc.status_code,
        )
    return web.redirect(request, f"/engagements/{granted.engagement.id}/relaxations")


@router.post("/engagements/{engagement_id}/relaxations/revoke", name="revoke_relaxation")
def revoke(
    request: Request,
    db: SessionDep,
    granted: PageEngagement,
    category: Annotated[str, Form(max_length=80)] = "",
) -> Response:
    try:
        with db.begin_nested():
            relaxation.revoke(db, granted, category=category)
    except (NotFound, Conflict) as exc:
        return _page(
            request,
            db,
            granted,
            form_message=web.translate(request, exc.message, exc.params),
            form_category=category.strip(),
            status_code=exc.status_code,
        )
    return web.redirect(request, f"/engagements/{granted.engagement.id}/relaxations")
