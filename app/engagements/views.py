"""Pages: the engagement list, opening one, and the engagement page with its forms.

Every form on the engagement page posts in place (HTMX) and gets the page's
``engagement_main`` block back, so the checklist always reflects the change;
without JavaScript the same posts redirect back to the page.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from app import web
from app.content import queue as content_queue
from app.db import utcnow
from app.deps import PageActor, SessionDep, verify_csrf
from app.engagements import service
from app.engagements.checklist import ITEMS, ItemStatus
from app.engagements.deps import PageEngagement
from app.engagements.models import STAGE_ORDER, Channel, RouteKind, Stage, Status
from app.engagements.schemas import (
    AttestationIn,
    CampaignIn,
    EngagementCreate,
    EngagementUpdate,
    FeeIn,
    KpiIn,
    KpiUpdate,
    ObjectiveIn,
    PolicyIn,
    RouteIn,
    ScopeLineIn,
)
from app.engagements.service import EngagementAccess
from app.errors import N_, Conflict, FieldError, InvalidInput, NotFound, PreconditionFailed
from app.results import repository as results_repository
from app.results import service as results
from app.results.metrics import METRICS, Unit, get_metric
from app.schemas import parse_input
from app.tenancy import labels as _labels  # noqa: F401 - registers the role labels

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

STAGE_NAMES = {
    Stage.setup: N_("Setup"),
    Stage.development: N_("Development"),
    Stage.maturity: N_("Maturity"),
}
STATUS_NAMES = {
    Status.proposed: N_("Proposed"),
    Status.active: N_("Active"),
    Status.paused: N_("Paused"),
    Status.ended: N_("Ended"),
    Status.declined: N_("Declined"),
}
CHANNEL_NAMES = {
    Channel.facebook: "Facebook",
    Channel.instagram: "Instagram",
    Channel.x: "X",
    Channel.linkedin: "LinkedIn",
    Channel.tiktok: "TikTok",
    Channel.youtube: "YouTube",
    Channel.blog: N_("Blog"),
    Channel.forums: N_("Forums and communities"),
    Channel.other: N_("Other"),
}
SCOPE_KINDS = {
    "posts": N_("Posts"),
    "monthly_report": N_("Monthly report"),
    "campaign": N_("Campaign"),
    "community_hours": N_("Community management hours"),
    "monitoring_report": N_("Monitoring report"),
    "custom": N_("Custom"),
}
CADENCES = {
    "monthly": N_("per month"),
    "weekly": N_("per week"),
    "quarterly": N_("per quarter"),
    "once": N_("once"),
}
KPI_PERIODS = {
    "monthly": N_("Monthly"),
    "quarterly": N_("Quarterly"),
    "engagement": N_("Whole engagement"),
}
ITEM_STATUS_NAMES = {
    ItemStatus.holds: N_("Holds"),
    ItemStatus.missing: N_("Missing"),
    ItemStatus.not_measurable: N_("Not yet measurable"),
}
EVENT_NAMES = {
    "proposed": N_("Proposed to the agency"),
    "accepted": N_("Accepted by the agency"),
    "declined": N_("Declined by the agency"),
    "paused": N_("Paused"),
    "active": N_("Resumed"),
    "ended": N_("Ended"),
    "attested": N_("Attested"),
    "attestation_withdrawn": N_("Attestation withdrawn"),
    "policy_changed": N_("Approval policy changed"),
    "kpi_added": N_("KPI added"),
    "kpi_changed": N_("KPI changed"),
    "kpi_removed": N_("KPI removed"),
    "escalation_route_set": N_("Escalation route set"),
    "handoff_route_set": N_("Hand-off route set"),
    "stage_changed": N_("Stage changed"),
    "engagement_changed": N_("Engagement changed"),
    "scope_line_added": N_("Deliverable added to the scope"),
    "scope_line_changed": N_("Deliverable changed in the scope"),
    "scope_line_removed": N_("Deliverable removed from the scope"),
    "fee_added": N_("Fee added"),
    "fee_removed": N_("Fee removed"),
}
for name, labels in (
    ("stage_names", STAGE_NAMES),
    ("status_names", STATUS_NAMES),
    ("channel_names", CHANNEL_NAMES),
    ("scope_kinds", SCOPE_KINDS),
    ("cadences", CADENCES),
    ("kpi_periods", KPI_PERIODS),
    ("item_status_names", ITEM_STATUS_NAMES),
    ("event_names", EVENT_NAMES),
):
    web.register_labels(name, labels)


async def form_data(request: Request) -> FormData:
    """The posted form (Starlette caches it; the CSRF check read it already)."""
    return await request.form()


FormDep = Annotated[FormData, Depends(form_data)]


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def _lines(form: FormData, name: str) -> list[str]:
    return [line.strip() for line in (_text(form, name) or "").splitlines() if line.strip()]


def _version(form: FormData) -> int:
    try:
        return int(_text(form, "version") or "0")
    except ValueError:
        return 0


def _money(form: FormData, name: str, currency: str) -> int | str | None:
    """An amount typed in major units (1200.50) as minor units; the raw text if it is no number."""
    text = _text(form, name)
    if text is None:
        return None
    try:
        amount = Decimal(text.replace(" ", "").replace(",", "."))
    except InvalidOperation:
        return text
    if currency.upper() not in service.CURRENCIES:
        return text
    return service.minor_units(amount, currency)


def _number(form: FormData, name: str, unit: Unit | None) -> str | None:
    """KPI values: percentages are typed as percentages and kept as fractions."""
    text = _text(form, name)
    if text is None:
        return None
    text = text.replace(",", ".").rstrip("%").strip()
    if unit is Unit.percent:
        try:
            return str(Decimal(text) / 100)
        except InvalidOperation:
            return text
    return text


# --- list and new --------------------------------------------------------------


@router.get("/engagements", name="engagements")
def engagements_page(request: Request, db: SessionDep, actor: PageActor) -> Response:
    summaries, total = service.list_engagements(db, actor, limit=200, offset=0)
    brand_orgs = service.brands_that_can_open(db, actor)
    by_side: dict[str, list[service.EngagementSummary]] = {"brand": [], "agency": []}
    for summary in summaries:
        side = "brand" if summary.engagement.brand_id in actor.org_ids else "agency"
        by_side[side].append(summary)
    return web.render(
        request,
        "engagements/list.html",
        {"user": actor.user, "by_side": by_side, "total": total, "can_open": bool(brand_orgs)},
    )


def _new_context(db: SessionDep, actor: PageActor) -> dict[str, Any]:
    brands = service.brands_that_can_open(db, actor)
    return {
        "user": actor.user,
        "brands": brands,
        "channels": list(Channel),
        "values": {"currency": "EUR", "channels": []},
    }


@router.get("/engagements/new", name="new_engagement")
def new_engagement_page(request: Request, db: SessionDep, actor: PageActor) -> Response:
    return web.render(request, "engagements/new.html", _new_context(db, actor))


@router.post("/engagements", name="open_engagement")
def open_engagement(request: Request, db: SessionDep, actor: PageActor, form: FormDep) -> Response:
    currency = (_text(form, "currency") or "").upper()
    data = {
        "name": _text(form, "name") or "",
        "agency": _text(form, "agency") or "",
        "start_date": _text(form, "start_date"),
        "end_date": _text(form, "end_date"),
        "budget_minor": _money(form, "budget", currency) or 0,
        "currency": currency,
        "channels": form.getlist("channels"),
    }
    try:
        with db.begin_nested():
            created = parse_input(EngagementCreate, data)
            engagement = service.open_engagement(
                db, actor, brand_slug=_text(form, "brand") or "", data=created
            )
    except InvalidInput as exc:
        context = _new_context(db, actor)
        values: dict[str, Any] = dict(form.items())
        values["channels"] = form.getlist("channels")
        context.update(
            values=values,
            errors=_rename(
                web.field_errors_map(request, exc.field_errors), {"budget_minor": "budget"}
            ),
        )
        return web.render(request, "engagements/new.html", context, status_code=422)
    return web.redirect(request, f"/engagements/{engagement.id}")


def _rename(errors: dict[str, str], names: dict[str, str]) -> dict[str, str]:
    return {names.get(key, key): value for key, value in errors.items()}


# --- the engagement page -------------------------------------------------------


def _page_context(db: SessionDep, granted: EngagementAccess) -> dict[str, Any]:
    data = service.page(db, granted)
    metric_choices = sorted(METRICS, key=lambda metric: (metric.kind.value, metric.key))
    return {
        "user": granted.actor.user,
        "p": data,
        "e": granted.engagement,
        "access": granted,
        "stages": STAGE_ORDER,
        "stage_index": STAGE_ORDER.index(Stage(granted.engagement.stage)),
        "metrics": metric_choices,
        "get_metric": get_metric,
        "channels": list(Channel),
        "items": ITEMS,
        "items_by_key": {item.key: item for item in ITEMS},
        "route_kinds": RouteKind,
        "has_business_measure": any(
            (m := get_metric(kpi.metric)) is not None and m.is_business_measure for kpi in data.kpis
        ),
        "form": None,
        "form_message": None,
        "overdue_reviews": content_queue.overdue_reviews(db, granted, utcnow()),
        "results_headline": results.headline(db, granted.engagement),
        "results_summary": results_repository.summarise(db, granted.engagement),
    }


@router.get("/engagements/{engagement_id}", name="engagement")
def engagement_page(request: Request, db: SessionDep, granted: PageEngagement) -> Response:
    return web.render(request, "engagements/engagement.html", _page_context(db, granted))


def _act(
    request: Request,
    db: SessionDep,
    granted: EngagementAccess,
    *,
    form_name: str,
    form: FormData,
    action: Callable[[], object],
    anchor: str = "",
    notice_fields: tuple[str, ...] = (),
) -> Response:
    """Run one change in a savepoint; answer with the page (in place) or its errors.

    Errors on ``notice_fields`` (hidden inputs, which have no place to show an
    error beside them) are shown as the form's notice instead.
    """
    try:
        with db.begin_nested():
            action()
    except (InvalidInput, Conflict, PreconditionFailed) as exc:
        db.refresh(granted.engagement)
        context = _page_context(db, granted)
        errors = web.field_errors_map(request, exc.field_errors)
        notices = [errors[name] for name in notice_fields if name in errors]
        if not exc.field_errors:
            notices = [web.translate(request, exc.message, exc.params)]
        context.update(
            form=form_name,
            errors=errors,
            values=dict(form.items()),
            form_message=" ".join(notices) or None,
        )
        return web.render(
            request, "engagements/engagement.html", context, status_code=exc.status_code
        )
    if not web.is_htmx(request):
        return web.redirect(request, f"/engagements/{granted.engagement.id}#{anchor or form_name}")
    db.refresh(granted.engagement)
    return web.render(request, "engagements/engagement.html", _page_context(db, granted))


@router.post("/engagements/{engagement_id}/accept", name="accept_engagement")
def accept(request: Request, db: SessionDep, granted: PageEngagement, form: FormDep) -> Response:
    return _act(
        request, db, granted, form_name="respond", form=form,
        action=lambda: service.respond(db, granted, accept=True),
    )  # fmt: skip


@router.post("/engagements/{engagement_id}/decline", name="decline_engagement")
def decline(request: Request, db: SessionDep, granted: PageEngagement, form: FormDep) -> Response:
    return _act(
        request, db, granted, form_name="respond", form=form,
        action=lambda: service.respond(db, granted, accept=False),
    )  # fmt: skip


@router.post("/engagements/{engagement_id}/status", name="engagement_status")
def change_status(
    request: Request, db: SessionDep, granted: PageEngagement, form: FormDep
) -> Response:
    def action() -> object:
        try:
            status = Status(_text(form, "status") or "")
        except ValueError:
            raise InvalidInput(
                field_errors=[FieldError("status", N_("Choose one of the options."))]
            ) from None
        return service.set_status(db, granted, status)

    return _act(request, db, granted, form_name="status", form=form, action=action)


def _update(
    request: Request,
    db: SessionDep,
    granted: EngagementAccess,
    form: FormData,
    form_name: str,
    data: dict[str, Any],
) -> Response:
    def action() -> object:
        update = parse_input(EngagementUpdate, data)
        return service.update(db, granted, expected_version=_version(form), data=update)

    return _act(request, db, granted, form_name=form_name, form=form, action=action)


@router.post("/engagements/{engagement_id}/basics", name="engagement_basics")
def update_basics(
    request: Request, db: SessionDep, granted: PageEngagement, form: FormDep
) -> Response:
    currency = (_text(form, "currency") or granted.engagement.currency).upper()
    data = {
        "name": _text(form, "name") or "",
        "start_date": _text(form, "start_date"),
        "end_date": _text(form, "end_date"),
        "budget_minor": _money(form, "budget", currency) or 0,
        "currency": currency,
        "channels": form.getlist("channels"),
        "brand_lead_id": _text(form, "brand_lead_id"),
        "agency_manager_id": _text(form, "agency_manager_id"),
    }
    return _update(request, db, granted, form, "basics", data)


@router.post("/engagements/{engagement_id}/tracking", name="engagement_tracking")
def update_tracking(
    request: Request, db: SessionDep, granted: PageEngagement, form: FormDep
) -> Response:
    data = {
        "utm_source": _text(form, "utm_source") or "",
        "utm_medium": _text(form, "utm_medium") or "",
        "utm_campaign": _text(form, "utm_campaign") or "",
        "coupon_codes": _lines(form, "coupon_codes"),
    }
    return _update(request, db, granted, form, "tracking", data)


@router.post("/engagements/{engagement_id}/content-plan", name="engagement_content_plan")
def update_content_plan(
    request: Request, db: SessionDep, granted: PageEngagement, form: FormDep
) -> Response:
    data = {
        "content_calendar_url": _text(form, "content_calendar_url") or "",
        "brand_content_owner_id": _text(form, "brand_content_owner_id"),
        "agency_content_owner_id": _text(form, "agency_content_owner_id"),
    }
    return _update(request, db, granted, form, "content-plan", data)


@router.post("/engagements/{engagement_id}/usage-policy", name="engagement_usage_policy")
def update_usage_policy(
    request: Request, db: SessionDep, granted: PageEngagement, form: FormDep
) -> Response:
    data = {"usage_policy_url": _text(form, "usage_policy_url") or ""}
    return _update(request, db, granted, form, "usage-policy", data)


@router.post("/engagements/{engagement_id}/listening", name="engagement_listening")
def update_listening(
    request: Request, db: SessionDep, granted: PageEngagement, form: FormDep
) -> Response:
    data = {"listening_places": _lines(form, "listening_places")}
    return _update(request, db, granted, form, "listening", data)


@router.post("/engagements/{engagement_id}/scope-lines", name="add_scope_line")
def add_scope_line(
    request: Request, db: SessionDep, granted: PageEngagement, form: FormDep
) -> Response:
    def action() -> object:
        data = parse_input(
            ScopeLineIn,
            {
                "kind": _text(form, "kind"),
                "description": _text(form, "description") or "",
                "quantity": _text(form, "quantity"),
                "cadence": _text(form, "cadence") or "monthly",
                "due_day": _text(form, "due_day") or 0,
            },
        )
        return service.add_scope_line(db, granted, data)

    return _act(request, db, granted, form_name="scope", form=form, action=action)


@router.post("/engagements/{engagement_id}/scope-lines/{line_id}/remove", name="remove_scope_line")
def remove_scope_line(
    request: Request, db: SessionDep, granted: PageEngagement, line_id: uuid.UUID, form: FormDep
) -> Response:
    return _act(
        request, db, granted, form_name="scope", form=form,
        action=lambda: service.remove_scope_line(db, granted, line_id),
    )  # fmt: skip


@router.post("/engagements/{engagement_id}/fees", name="add_fee")
def add_fee(request: Request, db: SessionDep, granted: PageEngagement, form: FormDep) -> Response:
    def action() -> object:
        data = parse_input(
            FeeIn,
            {
                "kind": _text(form, "kind"),
                "description": _text(form, "description") or "",
                "amount_minor": _money(form, "amount", granted.engagement.currency),
                "due_date": _text(form, "due_date"),
            },
        )
        return service.add_fee(db, granted, data)

    return _act(request, db, granted, form_name="fees", form=form, action=action, anchor="scope")


@router.post("/engagements/{engagement_id}/fees/{fee_id}/remove", name="remove_fee")
def remove_fee(
    request: Request, db: SessionDep, granted: PageEngagement, fee_id: uuid.UUID, form: FormDep
) -> Response:
    return _act(
        request, db, granted, form_name="fees", form=form, anchor="scope",
        action=lambda: service.remove_fee(db, granted, fee_id),
    )  # fmt: skip


@router.post("/engagements/{engagement_id}/objectives", name="add_objective")
def add_objective(
    request: Request, db: SessionDep, granted: PageEngagement, form: FormDep
) -> Response:
    def action() -> object:
        data = parse_input(ObjectiveIn, {"text": _text(form, "text") or ""})
        return service.add_objective(db, granted, data)

    return _act(request, db, granted, form_name="objectives", form=form, action=action)


@router.post(
    "/engagements/{engagement_id}/objectives/{objective_id}/remove", name="remove_objective"
)
def remove_objective(
    request: Request,
    db: SessionDep,
    granted: PageEngagement,
    objective_id: uuid.UUID,
    form: FormDep,
) -> Response:
    return _act(
        request, db, granted, form_name="objectives", form=form,
        action=lambda: service.remove_objective(db, granted, objective_id),
    )  # fmt: skip


@router.post("/engagements/{engagement_id}/kpis", name="add_kpi")
def add_kpi(request: Request, db: SessionDep, granted: PageEngagement, form: FormDep) -> Response:
    def action() -> object:
        metric = get_metric(_text(form, "metric") or "")
        unit = metric.unit if metric else None
        data = parse_input(
            KpiIn,
            {
                "metric": _text(form, "metric") or "",
                "target": _number(form, "target", unit),
                "baseline": _number(form, "baseline", unit),
                "period": _text(form, "period") or "monthly",
                "owner_id": _text(form, "owner_id"),
                "objective_id": _text(form, "objective_id"),
            },
        )
        return service.add_kpi(db, granted, data)

    return _act(
        request, db, granted, form_name="kpis", form=form, action=action, anchor="objectives"
    )


def _kpi(db: SessionDep, granted: EngagementAccess, kpi_id: uuid.UUID) -> Any:
    kpi, _ = service.kpi_access(db, granted.actor, kpi_id)
    if kpi.engagement_id != granted.engagement.id:
        raise NotFound(N_("Not found in this engagement."))
    return kpi


@router.post("/engagements/{engagement_id}/kpis/{kpi_id}/remove", name="remove_kpi")
def remove_kpi(
    request: Request, db: SessionDep, granted: PageEngagement, kpi_id: uuid.UUID, form: FormDep
) -> Response:
    kpi = _kpi(db, granted, kpi_id)
    return _act(
        request, db, granted, form_name="kpis", form=form, anchor="objectives",
        action=lambda: service.delete_kpi(db, granted, kpi, expected_version=_version(form)),
    )  # fmt: skip


@router.post("/engagements/{engagement_id}/kpis/{kpi_id}/review", name="review_kpi")
def review_kpi(
    request: Request, db: SessionDep, granted: PageEngagement, kpi_id: uuid.UUID, form: FormDep
) -> Response:
    kpi = _kpi(db, granted, kpi_id)
    return _act(
        request, db, granted, form_name="kpis", form=form, anchor="objectives",
        action=lambda: service.update_kpi(
            db, granted, kpi, expected_version=_version(form), data=KpiUpdate(reviewed=True)
        ),
    )  # fmt: skip


@router.post("/engagements/{engagement_id}/campaigns", name="add_campaign")
def add_campaign(
    request: Request, db: SessionDep, granted: PageEngagement, form: FormDep
) -> Response:
    def action() -> object:
        data = parse_input(
            CampaignIn,
            {
                "name": _text(form, "name") or "",
                "kpi_id": _text(form, "kpi_id"),
                "starts_on": _text(form, "starts_on"),
            },
        )
        return service.add_campaign(db, granted, data)

    return _act(request, db, granted, form_name="campaigns", form=form, action=action)


@router.post("/engagements/{engagement_id}/campaigns/{campaign_id}/kpi", name="set_campaign_kpi")
def set_campaign_kpi(
    request: Request,
    db: SessionDep,
    granted: PageEngagement,
    campaign_id: uuid.UUID,
    form: FormDep,
) -> Response:
    def action() -> object:
        raw = _text(form, "kpi_id")
        try:
            kpi_id = uuid.UUID(raw) if raw else None
        except ValueError:
            raise InvalidInput(
                field_errors=[FieldError("kpi_id", N_("Choose a KPI of this engagement."))]
            ) from None
        return service.set_campaign_kpi(db, granted, campaign_id, kpi_id)

    return _act(request, db, granted, form_name="campaigns", form=form, action=action)


@router.post("/engagements/{engagement_id}/routes/{route_kind}", name="set_route")
def set_route(
    request: Request,
    db: SessionDep,
    granted: PageEngagement,
    route_kind: RouteKind,
    form: FormDep,
) -> Response:
    def action() -> object:
        data = parse_input(
            RouteIn,
            {
                "team": _text(form, "team") or "",
                "trigger": _text(form, "trigger") or "",
                "sla_hours": _text(form, "sla_hours"),
                "contact_name": _text(form, "contact_name") or "",
                "contact_email": _text(form, "contact_email") or "",
            },
        )
        return service.set_route(db, granted, route_kind, data)

    return _act(
        request, db, granted, form_name=f"route-{route_kind.value}", form=form, action=action,
        anchor="routes",
    )  # fmt: skip


@router.post("/engagements/{engagement_id}/attestations", name="attest")
def attest(request: Request, db: SessionDep, granted: PageEngagement, form: FormDep) -> Response:
    item = _text(form, "item") or ""

    def action() -> object:
        data = parse_input(AttestationIn, {"item": item, "note": _text(form, "note") or ""})
        return service.attest(db, granted, data)

    return _act(
        request, db, granted, form_name=f"attest-{item}", form=form, action=action,
        anchor="checklist",
    )  # fmt: skip


@router.post(
    "/engagements/{engagement_id}/attestations/{attestation_id}/withdraw",
    name="withdraw_attestation",
)
def withdraw_attestation(
    request: Request,
    db: SessionDep,
    granted: PageEngagement,
    attestation_id: uuid.UUID,
    form: FormDep,
) -> Response:
    return _act(
        request, db, granted, form_name="checklist", form=form,
        action=lambda: service.withdraw_attestation(db, granted, attestation_id),
    )  # fmt: skip


@router.post("/engagements/{engagement_id}/policy", name="engagement_policy")
def update_policy(
    request: Request, db: SessionDep, granted: PageEngagement, form: FormDep
) -> Response:
    def action() -> object:
        names = form.getlist("step_name")
        steps = []
        for index, name in enumerate(names):
            if not str(name).strip():
                continue
            steps.append(
                {
                    "name": name,
                    "roles": form.getlist(f"step_{index}_roles"),
                    "people": form.getlist(f"step_{index}_people"),
                    "quorum": _text(form, f"step_{index}_quorum") or "any",
                }
            )
        data = parse_input(
            PolicyIn,
            {
                "steps": steps,
                "review_hours": _text(form, "review_hours") or 48,
                "enforce_channel_limits": _text(form, "enforce_channel_limits") == "on",
            },
        )
        return service.set_policy(db, granted, expected_version=_version(form), data=data)

    return _act(request, db, granted, form_name="policy", form=form, action=action)


@router.post("/engagements/{engagement_id}/stage", name="engagement_stage")
def change_stage(
    request: Request, db: SessionDep, granted: PageEngagement, form: FormDep
) -> Response:
    return _act(
        request, db, granted, form_name="stage", form=form, anchor="stage", notice_fields=("to",),
        action=lambda: service.change_stage(
            db, granted, to=_text(form, "to") or "", reason=_text(form, "reason") or ""
        ),
    )  # fmt: skip


@router.get("/engagements/{engagement_id}/archive", name="engagement_archive")
def download_archive(db: SessionDep, granted: PageEngagement) -> Response:
    filename, content = service.archive(db, granted)
    return Response(
        content,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/engagements/{engagement_id}/audit", name="engagement_audit")
def audit_page(request: Request, db: SessionDep, granted: PageEngagement) -> Response:
    record = service.audit_record(db, granted)
    brand, agency = service.parties(db, granted.engagement)
    return web.render(
        request,
        "engagements/audit.html",
        {
            "user": granted.actor.user,
            "e": granted.engagement,
            "access": granted,
            "brand": brand,
            "agency": agency,
            "record": record,
        },
    )


@router.get("/engagements/{engagement_id}/audit/checkpoint", name="engagement_audit_checkpoint")
def audit_checkpoint(db: SessionDep, granted: PageEngagement) -> Response:
    content = json.dumps(service.audit_checkpoint(db, granted), indent=2)
    return Response(
        content,
        media_type="application/json",
        headers={
            "Content-Disposition": (
                f'attachment; filename="audit-checkpoint-{granted.engagement.id}.json"'
            )
        },
    )
