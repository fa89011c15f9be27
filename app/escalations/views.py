"""Pages: the brand's inbox and the agency's outbox, an engagement's escalations, one escalation.

The brand's internal notes appear on the escalation page for the brand's side
only; the agency's page is rendered without them (not hidden: never loaded).
Actions on the escalation page post in place (HTMX) and get the page's
``escalation_main`` block back; without JavaScript they redirect back to it.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlmodel import Session
from starlette.datastructures import FormData

from app import web
from app.deps import PageActor, SessionDep, SettingsDep, verify_csrf
from app.engagements import service as engagements
from app.engagements.deps import PageEngagement
from app.engagements.models import RouteKind
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
from app.escalations import measures, repository, service
from app.escalations.deps import PageEscalation
from app.escalations.models import EscalationKind, EscalationStatus, Outcome
from app.escalations.schemas import AcknowledgeIn, EscalationCreate, NoteIn, ResolveIn
from app.escalations.service import EscalationAccess
from app.schemas import parse_input

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

ESCALATION_KIND_NAMES = {
    EscalationKind.complaint: N_("Complaint → customer service"),
    EscalationKind.crisis: N_("Crisis → brand lead"),
    EscalationKind.sales_lead: N_("Sales lead → sales"),
}
ESCALATION_STATUS_NAMES = {
    EscalationStatus.open: N_("Opened"),
    EscalationStatus.acknowledged: N_("Acknowledged"),
    EscalationStatus.resolved: N_("Resolved"),
}
OUTCOME_NAMES = {
    Outcome.resolved: N_("Resolved"),
    Outcome.unresolved: N_("Closed unresolved"),
    Outcome.won: N_("Won"),
    Outcome.lost: N_("Lost"),
}
SLA_NAMES = {
    measures.SlaState.pending: N_("Within SLA so far"),
    measures.SlaState.met: N_("Taken up within SLA"),
    measures.SlaState.breached: N_("SLA breached"),
}
for name, labels in (
    ("escalation_kind_names", ESCALATION_KIND_NAMES),
    ("escalation_status_names", ESCALATION_STATUS_NAMES),
    ("outcome_names", OUTCOME_NAMES),
    ("sla_names", SLA_NAMES),
):
    web.register_labels(name, labels)


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


def _message(request: Request, exc: BrandkeepError) -> str:
    errors = web.field_errors_map(request, exc.field_errors)
    return " ".join(errors.values()) or web.translate(request, exc.message, exc.params)


# --- inbox and outbox ------------------------------------------------------------


@router.get("/escalations", name="escalations")
def boxes_page(
    request: Request, db: SessionDep, actor: PageActor, status: str | None = None
) -> Response:
    chosen = EscalationStatus(status) if status in ESCALATION_STATUS_NAMES else None
    found = service.boxes(db, actor, chosen)
    return web.render(
        request,
        "escalations/boxes.html",
        {
            "user": actor.user,
            "boxes": found,
            "status": chosen.value if chosen else None,
            "sla": measures.sla_state,
        },
    )


# --- an engagement's escalations -----------------------------------------------------


def _engagement_context(db: Session, granted: EngagementAccess) -> dict[str, Any]:
    engagement = granted.engagement
    routes = {
        kind: repository.route_of(db, engagement, kind)
        for kind in (RouteKind.escalation, RouteKind.handoff)
    }
    return {
        "user": granted.actor.user,
        "engagement": engagement,
        "escalations": service.list_escalations(db, granted),
        "may_open": granted.can("escalation.open"),
        "routes": routes,
        "sla": measures.sla_state,
        "counts": measures.count(service.list_escalations(db, granted)),
        "kinds": list(EscalationKind),
        "channels": engagement.channels,
        "form_message": None,
    }


@router.get("/engagements/{engagement_id}/escalations", name="engagement_escalations")
def engagement_page(request: Request, db: SessionDep, granted: PageEngagement) -> Response:
    granted.require("engagement.read")
    return web.render(request, "escalations/engagement.html", _engagement_context(db, granted))


@router.post("/engagements/{engagement_id}/escalations", name="open_escalation")
def open_escalation(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    granted: PageEngagement,
    form: FormDep,
) -> Response:
    values = {
        name: _text(form, name)
        for name in ("kind", "conversation_url", "summary", "channel", "customer")
    }
    try:
        with db.begin_nested():
            data = parse_input(
                EscalationCreate,
                {key: value for key, value in values.items() if value or key == "summary"},
            )
            escalation = service.open_escalation(db, settings, granted, data)
    except (InvalidInput, Conflict, Forbidden) as exc:
        context = _engagement_context(db, granted)
        context.update(
            values=values,
            errors=web.field_errors_map(request, exc.field_errors),
            form_message=_message(request, exc),
        )
        return web.render(
            request, "escalations/engagement.html", context, status_code=exc.status_code
        )
    return web.redirect(request, str(request.url_for("escalation", escalation_id=escalation.id)))


# --- one escalation ------------------------------------------------------------------


def _detail_context(db: Session, found: EscalationAccess) -> dict[str, Any]:
    granted = found.granted
    brand_side = service.may_read_notes(granted)
    return {
        "user": granted.actor.user,
        "escalation": found.escalation,
        "engagement": granted.engagement,
        "sla_state": measures.sla_state(found.escalation),
        "brand_side": brand_side,
        "may_handle": brand_side and granted.can("escalation.handle"),
        # Loaded for the brand's side only: the agency's page never holds them.
        "notes": service.notes(db, found) if brand_side else [],
        "outcomes": service.OUTCOMES_OF_KIND[EscalationKind(found.escalation.kind)],
        "form_message": None,
    }


@router.get("/escalations/{escalation_id}", name="escalation")
def detail_page(request: Request, db: SessionDep, found: PageEscalation) -> Response:
    found.granted.require("engagement.read")
    return web.render(request, "escalations/escalation.html", _detail_context(db, found))


def _act(
    request: Request,
    db: SessionDep,
    found: EscalationAccess,
    form: FormData,
    action: Callable[[], object],
) -> Response:
    try:
        with db.begin_nested():
            action()
    except (InvalidInput, Conflict, PreconditionFailed, Forbidden) as exc:
        db.refresh(found.escalation)
        context = _detail_context(db, found)
        context.update(
            form_message=_message(request, exc),
            values={name: _text(form, name) for name in ("outcome", "revenue", "note", "body")},
        )
        return web.render(
            request, "escalations/escalation.html", context, status_code=exc.status_code
        )
    if not web.is_htmx(request):
        return web.redirect(
            request, str(request.url_for("escalation", escalation_id=found.escalation.id))
        )
    db.refresh(found.escalation)
    return web.render(request, "escalations/escalation.html", _detail_context(db, found))


@router.post("/escalations/{escalation_id}/acknowledge", name="acknowledge_escalation")
def acknowledge(request: Request, db: SessionDep, found: PageEscalation, form: FormDep) -> Response:
    return _act(
        request,
        db,
        found,
        form,
        lambda: service.acknowledge(
            db,
            found,
            AcknowledgeIn(note=_text(form, "note")[:4000]),
            expected_version=_version(form),
        ),
    )


def _revenue_minor(form: FormData, currency: str) -> int | None:
    raw = _text(form, "revenue").replace(",", ".")
    if not raw:
        return None
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        raise InvalidInput(
            field_errors=[FieldError("revenue_minor", N_("Enter an amount, such as 1250.00."))]
        ) from None
    if amount < 0 or not amount.is_finite():
        raise InvalidInput(
            field_errors=[FieldError("revenue_minor", N_("Enter an amount, such as 1250.00."))]
        )
    return engagements.minor_units(amount, currency)


@router.post("/escalations/{escalation_id}/resolve", name="resolve_escalation")
def resolve(request: Request, db: SessionDep, found: PageEscalation, form: FormDep) -> Response:
    def action() -> object:
        data = parse_input(
            ResolveIn,
            {
                "outcome": _text(form, "outcome") or None,
                "revenue_minor": _revenue_minor(form, found.granted.engagement.currency),
                "note": _text(form, "note")[:4000],
            },
        )
        return service.resolve(db, found, data, expected_version=_version(form))

    return _act(request, db, found, form, action)


@router.post("/escalations/{escalation_id}/notes", name="add_escalation_note")
def add_note(request: Request, db: SessionDep, found: PageEscalation, form: FormDep) -> Response:
    def action() -> object:
        body = _text(form, "body")
        if not body:
            raise InvalidInput(field_errors=[FieldError("body", N_("Write the note."))])
        service.add_note(db, found, NoteIn(body=body[:4000]))
        return None

    return _act(request, db, found, form, action)
