"""Pages: the deliverables board of an engagement, by period and state.

Deliver, accept and return post in place (HTMX) and get the page's
``deliverable_board`` block back; without JavaScript the same posts redirect back
to the board. Delivering is a multipart form (its evidence files ride along): its
declared size is checked before the CSRF check reads the body (``uploads``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlmodel import Session
from starlette.datastructures import FormData

from app import storage, web
from app.content import media
from app.content import service as content
from app.deliverables import evidence, service
from app.deliverables.deps import PageDeliverable
from app.deliverables.models import Deliverable, DeliverableStatus
from app.deliverables.schemas import DeliverableCreate, ReturnIn, deliver_input
from app.deliverables.service import DeliverableAccess
from app.deps import SessionDep, verify_csrf
from app.engagements.deps import PageEngagement
from app.engagements.service import EngagementAccess
from app.errors import (
    N_,
    BrandkeepError,
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    PreconditionFailed,
)
from app.schemas import parse_input

# What main.py includes: the pages behind the CSRF check, and the upload route, whose
# size check must run before the CSRF check reads the body (both are added below).
router = APIRouter(include_in_schema=False)
pages = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)
uploads = APIRouter(include_in_schema=False)

DELIVERABLE_STATUS_NAMES = {
    DeliverableStatus.planned: N_("Planned"),
    DeliverableStatus.delivered: N_("Delivered, waiting for the brand"),
    DeliverableStatus.accepted: N_("Accepted"),
    DeliverableStatus.returned: N_("Returned"),
}
web.register_labels("deliverable_status_names", DELIVERABLE_STATUS_NAMES)


async def form_data(request: Request) -> FormData:
    """The posted form (Starlette caches it; the CSRF check read it already)."""
    return await request.form()


FormDep = Annotated[FormData, Depends(form_data)]


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _version(form: FormData) -> int | None:
    value = _text(form, "version")
    return int(value) if value.isdigit() else None


def _periods(rows: Sequence[Deliverable]) -> list[tuple[date, date, list[Deliverable]]]:
    """Rows grouped by period, newest first (the repository already orders them)."""
    groups: dict[date, tuple[date, date, list[Deliverable]]] = {}
    for row in rows:
        groups.setdefault(row.period_start, (row.period_start, row.period_end, []))[2].append(row)
    return list(groups.values())


def _board_context(
    db: Session,
    granted: EngagementAccess,
    status: str | None,
    *,
    messages: dict[uuid.UUID, str] | None = None,
    form_message: str | None = None,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    every = service.list_deliverables(db, granted)
    chosen = DeliverableStatus(status) if status in DELIVERABLE_STATUS_NAMES else None
    shown = [row for row in every if chosen is None or row.status == chosen]
    late = {row.id for row in every if service.is_late(row)}
    counts = {state: sum(1 for row in every if row.status == state) for state in DeliverableStatus}
    may_deliver = granted.can("deliverable.deliver")
    posts = content.list_posts(db, granted) if may_deliver else []
    return {
        "evidence_files": evidence.files_of(db, granted.engagement),
        "accept_evidence": evidence.ACCEPT_ATTRIBUTE,
        "max_evidence_files": evidence.MAX_FILES,
        "user": granted.actor.user,
        "engagement": granted.engagement,
        "access": granted,
        "periods": _periods(shown),
        "late": late,
        "late_count": len(late & {row.id for row in every if row.status != "accepted"}),
        "counts": counts,
        "total": len(every),
        "status": chosen.value if chosen else None,
        "may_deliver": may_deliver,
        "may_decide": granted.on_brand_side and granted.can("deliverable.accept"),
        "may_add": granted.can("deliverable.deliver") or granted.can("engagement.edit"),
        "posts": posts,
        "messages": messages or {},
        "form_message": form_message,
        "values": values or {},
        "errors": errors or {},
    }


@pages.get("/engagements/{engagement_id}/deliverables", name="engagement_deliverables")
def board(
    request: Request, db: SessionDep, granted: PageEngagement, status: str | None = None
) -> Response:
    granted.require("engagement.read")
    return web.render(request, "deliverables/board.html", _board_context(db, granted, status))


def _message(request: Request, exc: BrandkeepError) -> str:
    errors = web.field_errors_map(request, exc.field_errors)
    return " ".join(errors.values()) or web.translate(request, exc.message, exc.params)


def _act(
    request: Request,
    db: SessionDep,
    found: DeliverableAccess,
    form: FormData,
    action: Callable[[], object],
) -> Response:
    """Run one transition; on a refusal, show the board again with the reason on the row."""
    try:
        with db.begin_nested():
            action()
    except (
        InvalidInput,
        Conflict,
        PreconditionFailed,
        Forbidden,
        media.PayloadTooLarge,
        media.UnsupportedMediaType,
    ) as exc:
        db.refresh(found.deliverable)
        context = _board_context(
            db,
            found.granted,
            _text(form, "status") or None,
            messages={found.deliverable.id: _message(request, exc)},
        )
        return web.render(request, "deliverables/board.html", context, status_code=exc.status_code)
    url = str(request.url_for("engagement_deliverables", engagement_id=found.granted.engagement.id))
    if not web.is_htmx(request):
        return web.redirect(request, f"{url}#deliverable-{found.deliverable.id}")
    db.refresh(found.deliverable)
    return web.render(
        request,
        "deliverables/board.html",
        _board_context(db, found.granted, _text(form, "status") or None),
    )


def refuse_oversized_delivery(request: Request) -> None:
    """Runs before the CSRF check parses the form: a body declared too large is not read."""
    evidence.refuse_oversized(request, web.settings_of(request))


@uploads.post(
    "/deliverables/{deliverable_id}/deliver",
    name="deliver_deliverable",
    dependencies=[Depends(refuse_oversized_delivery), Depends(verify_csrf)],
)
def deliver(request: Request, db: SessionDep, found: PageDeliverable, form: FormDep) -> Response:
    settings = web.settings_of(request)
    files = evidence.uploads_of(form)

    def action() -> object:
        return service.deliver(
            db,
            found,
            deliver_input(form),
            expected_version=_version(form),
            files=files,
            store=storage.store_for(settings),
            settings=settings,
        )

    try:
        return _act(request, db, found, form, action)
    finally:
        for upload in files:
            upload.file.close()  # the spooled upload goes now, stored or not


@pages.get("/deliverables/{deliverable_id}/evidence/{file_id}", name="deliverable_evidence_file")
def evidence_file(
    request: Request, db: SessionDep, found: PageDeliverable, file_id: uuid.UUID
) -> Response:
    row = service.evidence_file(db, found, file_id)
    return evidence.file_response(storage.store_for(web.settings_of(request)), row)


@pages.post("/deliverables/{deliverable_id}/accept", name="accept_deliverable")
def accept(request: Request, db: SessionDep, found: PageDeliverable, form: FormDep) -> Response:
    return _act(
        request,
        db,
        found,
        form,
        lambda: service.accept(db, found, expected_version=_version(form)),
    )


@pages.post("/deliverables/{deliverable_id}/return", name="return_deliverable")
def return_deliverable(
    request: Request, db: SessionDep, found: PageDeliverable, form: FormDep
) -> Response:
    def action() -> object:
        reason = _text(form, "reason")
        if not reason:
            raise InvalidInput(field_errors=[FieldError("reason", N_("Say what is missing."))])
        return service.return_(
            db, found, ReturnIn(reason=reason[:2000]), expected_version=_version(form)
        )

    return _act(request, db, found, form, action)


@pages.post("/engagements/{engagement_id}/deliverables", name="add_deliverable")
def add(request: Request, db: SessionDep, granted: PageEngagement, form: FormDep) -> Response:
    values = {name: _text(form, name) for name in ("title", "description", "quantity", "due_on")}
    try:
        with db.begin_nested():
            data = parse_input(
                DeliverableCreate,
                {
                    "title": values["title"],
                    "description": values["description"],
                    "quantity": values["quantity"] or "1",
                    "due_on": values["due_on"] or None,
                },
            )
            service.create_deliverable(db, granted, data)
    except (InvalidInput, Conflict, Forbidden) as exc:
        context = _board_context(
            db,
            granted,
            None,
            form_message=_message(request, exc) if not exc.field_errors else None,
            values=values,
            errors=web.field_errors_map(request, exc.field_errors),
        )
        return web.render(request, "deliverables/board.html", context, status_code=exc.status_code)
    url = str(request.url_for("engagement_deliverables", engagement_id=granted.engagement.id))
    if not web.is_htmx(request):
        return web.redirect(request, url)
    return web.render(request, "deliverables/board.html", _board_context(db, granted, None))


router.include_router(pages)
router.include_router(uploads)
