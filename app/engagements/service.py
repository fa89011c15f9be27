"""Rules of engagements: opening, accepting, setting up, stages, ending."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from babel.numbers import get_currency_precision, list_currencies
from sqlmodel import Session, SQLModel

from app.audit import service as audit
from app.config import get_settings
from app.db import utcnow
from app.deliverables import planning
from app.engagements import checklist, repository
from app.engagements.checklist import Facts, ItemState, Transition
from app.engagements.models import (
    STAGE_ORDER,
    Attestation,
    Campaign,
    Engagement,
    EngagementEvent,
    Fee,
    HandoverRoute,
    Kpi,
    Objective,
    RouteKind,
    ScopeChange,
    ScopeLine,
    Stage,
    StageChange,
    Status,
)
from app.engagements.policy import default_policy, policy_for_stage, validate_steps
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
from app.errors import (
    N_,
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
)
from app.escalations import repository as escalation_repository
from app.exports import to_csv
from app.results import repository as results_repository
from app.results.metrics import Unit, get_metric
from app.tenancy import repository as tenancy_repository
from app.tenancy.capabilities import can, refusal_reason
from app.tenancy.models import Organization, OrgKind, Role
from app.tenancy.service import Actor, org_access

# Currencies Brandkeep accepts: ISO 4217 codes Babel knows, less the testing/no-currency codes.
CURRENCIES = frozenset(code for code in list_currencies() if code not in {"XXX", "XTS"})
READ_ONLY_CAPABILITIES = frozenset({"engagement.read", "org.read", "members.read"})
NOT_FOUND = N_("No engagement here, or it is not yours.")


# --- access ------------------------------------------------------------------


@dataclass(frozen=True)
class EngagementAccess:
    """An engagement loaded through the scoped layer, with the actor's roles on each side."""

    engagement: Engagement
    actor: Actor
    brand_role: Role | None
    agency_role: Role | None
    agency_read_only: bool

    @property
    def sides(self) -> tuple[str, ...]:
        return tuple(
            side
            for side, role in (("brand", self.brand_role), ("agency", self.agency_role))
            if role is not None
        )

    @property
    def on_brand_side(self) -> bool:
        return self.brand_role is not None

    def can(self, capability: str) -> bool:
        if self.brand_role is not None and can(OrgKind.brand, self.brand_role, capability):
            return True
        if self.agency_role is not None and can(OrgKind.agency, self.agency_role, capability):
            return not self.agency_read_only or capability in READ_ONLY_CAPABILITIES
        return False

    def require(self, capability: str) -> None:
        if not self.can(capability):
            if self.agency_read_only and self.brand_role is None:
                raise Forbidden(
                    N_("This engagement has ended: the agency can still read it, not change it.")
                )
            raise Forbidden(refusal_reason(capability))


def ended_on(engagement: Engagement, today: date) -> date | None:
    """The day the engagement ended: when the brand ended it, or its end date once past."""
    if engagement.status == Status.ended and engagement.ended_at is not None:
        return engagement.ended_at.date()
    if engagement.end_date is not None and engagement.end_date < today:
        return engagement.end_date
    return None


def effective_status(engagement: Engagement, today: date | None = None) -> Status:
    today = today or utcnow().date()
    if engagement.status in (Status.active, Status.paused) and ended_on(engagement, today):
        return Status.ended
    return Status(engagement.status)


def _role_in(session: Session, actor: Actor, org_id: uuid.UUID) -> Role | None:
    if org_id not in actor.org_ids:
        return None
    membership = tenancy_repository.get_membership(
        session, tenancy_repository.AccessibleOrganizationID(org_id), actor.user.id
    )
    return Role(membership.role) if membership else None


def access(session: Session, actor: Actor, engagement_id: uuid.UUID) -> EngagementAccess:
    """Load an engagement for this actor: 404 if it is not theirs (or no longer theirs)."""
    engagement = repository.get_engagement(session, engagement_id, actor.org_ids)
    if engagement is None:
        raise NotFound(NOT_FOUND)
    return _access_to(session, actor, engagement)


Child = TypeVar("Child")


def access_through(
    session: Session, actor: Actor, found: tuple[Child, Engagement] | None, not_found: str
) -> tuple[Child, EngagementAccess]:
    """An object of an engagement (a post, a deliverable…) loaded through the scoped layer,
    with the caller's access to that engagement: 404 with ``not_found`` if either is not
    theirs, so a foreign object and a missing one look the same."""
    if found is None:
        raise NotFound(not_found)
    child, engagement = found
    try:
        granted = access(session, actor, engagement.id)
    except NotFound:
        raise NotFound(not_found) from None
    return child, granted


def _access_to(session: Session, actor: Actor, engagement: Engagement) -> EngagementAccess:
    brand_role = _role_in(session, actor, engagement.brand_id)
    agency_role = _role_in(session, actor, engagement.agency_id)
    read_only = False
    if agency_role is not None and brand_role is None:
        today = utcnow().date()
        ended = ended_on(engagement, today)
        if ended is not None:
            grace = timedelta(days=get_settings().engagement_grace_days)
            if today > ended + grace:
                # The agency's access ends with the grace period: to it, the engagement is gone.
                raise NotFound(NOT_FOUND)
            read_only = True
        if engagement.status == Status.declined:
            read_only = True
    if brand_role is None and agency_role is None:
        raise NotFound(NOT_FOUND)
    return EngagementAccess(engagement, actor, brand_role, agency_role, read_only)


# --- listing -------------------------------------------------------------------


@dataclass(frozen=True)
class EngagementSummary:
    engagement: Engagement
    brand: Organization
    agency: Organization
    status: Status
    flags: list[str]


def list_engagements(
    session: Session, actor: Actor, *, limit: int = 50, offset: int = 0
) -> tuple[list[EngagementSummary], int]:
    rows, total = repository.list_engagements(session, actor.org_ids, limit=limit, offset=offset)
    orgs = repository.organizations_by_id(
        session, {e.brand_id for e in rows} | {e.agency_id for e in rows}
    )
    today = utcnow().date()
    grace = timedelta(days=get_settings().engagement_grace_days)
    summaries = []
    for engagement in rows:
        status = effective_status(engagement, today)
        ended = ended_on(engagement, today)
        if engagement.brand_id not in actor.org_ids and ended is not None and today > ended + grace:
            continue  # the agency's access has ended
        summaries.append(
            EngagementSummary(
                engagement=engagement,
                brand=orgs[engagement.brand_id],
                agency=orgs[engagement.agency_id],
                status=status,
                flags=_health_flags(engagement, status, today),
            )
        )
    return summaries, total


def _health_flags(engagement: Engagement, status: Status, today: date) -> list[str]:
    flags = []
    if status == Status.proposed:
        flags.append(N_("Waiting for the agency to accept"))
    if engagement.end_date and status == Status.active and (engagement.end_date - today).days <= 30:
        flags.append(N_("Ends within 30 days"))
    if not engagement.approval_policy.get("steps"):
        flags.append(N_("No approval policy"))
    return flags


def brands_that_can_open(session: Session, actor: Actor) -> list[Organization]:
    """The brands in which this person may open engagements (owners and account leads)."""
    found = []
    for membership, org in tenancy_repository.list_user_organizations(session, actor.user.id):
        if (
            org.id in actor.org_ids
            and org.kind == OrgKind.brand
            and can(OrgKind.brand, membership.role, "engagement.open")
        ):
            found.append(org)
    return found


# --- opening and responding --------------------------------------------------


def _check_period_and_money(
    start: date | None, end: date | None, currency: str | None, errors: list[FieldError]
) -> None:
    if start is not None and end is not None and end < start:
        errors.append(FieldError("end_date", N_("The end date is before the start date.")))
    if currency is not None and currency.upper() not in CURRENCIES:
        errors.append(
            FieldError("currency", N_("Use an ISO 4217 currency code, such as EUR or USD."))
        )


def open_engagement(
    session: Session, actor: Actor, *, brand_slug: str, data: EngagementCreate
) -> Engagement:
    brand_access = org_access(session, actor, brand_slug)
    if brand_access.organization.kind != OrgKind.brand:
        raise Forbidden(N_("Only a brand opens engagements; agencies accept them."))
    brand_access.require("engagement.open")
    errors: list[FieldError] = []
    _check_period_and_money(data.start_date, data.end_date, data.currency, errors)
    agency = repository.get_agency_by_slug(session, data.agency.strip().lower())
    if agency is None:
        errors.append(FieldError("agency", N_("No agency on Brandkeep has this short name.")))
    elif agency.kind != OrgKind.agency:
        errors.append(FieldError("agency", N_("This organization is a brand, not an agency.")))
    if errors:
        raise InvalidInput(field_errors=errors)
    assert agency is not None
    engagement = Engagement(
        brand_id=brand_access.organization.id,
        agency_id=agency.id,
        name=data.name.strip(),
        start_date=data.start_date,
        end_date=data.end_date,
        budget_minor=data.budget_minor,
        currency=data.currency.upper(),
        channels=[channel.value for channel in data.channels],
        brand_lead_id=actor.user.id,
        created_by_id=actor.user.id,
        approval_policy=default_policy(Stage.setup),
    )
    session.add(engagement)
    session.flush()
    _event(session, engagement, actor, "proposed", {"agency": agency.name})
    session.add(
        StageChange(
            brand_id=engagement.brand_id,
            engagement_id=engagement.id,
            actor_id=actor.user.id,
            actor_name=actor.user.name,
            from_stage=None,
            to_stage=Stage.setup,
            reason="",
        )
    )
    session.flush()
    return engagement


def respond(session: Session, granted: EngagementAccess, *, accept: bool) -> Engagement:
    granted.require("engagement.respond")
    engagement = granted.engagement
    if engagement.status != Status.proposed:
        raise Conflict(N_("This engagement is no longer waiting for an answer."))
    now = utcnow()
    values: dict[str, Any] = {"status": Status.active if accept else Status.declined}
    if accept:
        values["accepted_at"] = now
        if engagement.agency_manager_id is None:
            values["agency_manager_id"] = granted.actor.user.id
    _bump(session, engagement, engagement.version, **values)
    _event(session, engagement, granted.actor, "accepted" if accept else "declined", {})
    return engagement


def set_status(session: Session, granted: EngagementAccess, status: Status) -> Engagement:
    """Pause, resume or end, by the brand."""
    granted.require("engagement.edit")
    engagement = granted.engagement
    current = effective_status(engagement)
    allowed = {
        Status.paused: {Status.active},
        Status.active: {Status.paused},
        Status.ended: {Status.active, Status.paused},
    }
    if status not in allowed or current not in allowed[status]:
        raise Conflict(
            N_("This change of status is not possible from the engagement's current status.")
        )
    values: dict[str, Any] = {"status": status}
    if status == Status.ended:
        values["ended_at"] = utcnow()
    _bump(session, engagement, engagement.version, **values)
    _event(session, engagement, granted.actor, status.value, {})
    return engagement


# --- editing -------------------------------------------------------------------


def _require_open(granted: EngagementAccess) -> None:
    if effective_status(granted.engagement) in (Status.ended, Status.declined):
        raise Conflict(N_("This engagement has ended; it can be read and archived, not changed."))


def _member_ids(session: Session, org_id: uuid.UUID) -> dict[uuid.UUID, str]:
    rows, _ = tenancy_repository.list_members(
        session, tenancy_repository.AccessibleOrganizationID(org_id), limit=10000, offset=0
    )
    return {membership.user_id: membership.role for membership, _user in rows}


def update(
    session: Session, granted: EngagementAccess, *, expected_version: int, data: EngagementUpdate
) -> Engagement:
    granted.require("engagement.edit")
    _require_open(granted)
    engagement = granted.engagement
    if engagement.version != expected_version:
        raise PreconditionFailed()
    changes = data.model_dump(exclude_unset=True)
    errors: list[FieldError] = []
    for required in ("name", "start_date", "currency", "budget_minor", "channels"):
        if required in changes and changes[required] is None:
            errors.append(FieldError(required, N_("This field is required.")))
    _check_period_and_money(
        changes.get("start_date", engagement.start_date),
        changes.get("end_date", engagement.end_date),
        changes.get("currency"),
        errors,
    )
    brand_members = _member_ids(session, engagement.brand_id)
    agency_members = _member_ids(session, engagement.agency_id)
    for field, members in (
        ("brand_lead_id", brand_members),
        ("brand_content_owner_id", brand_members),
        ("agency_manager_id", agency_members),
        ("agency_content_owner_id", agency_members),
    ):
        if changes.get(field) is not None and changes[field] not in members:
            errors.append(FieldError(field, N_("Choose a member of that side of the engagement.")))
    if errors:
        raise InvalidInput(field_errors=errors)
    if "currency" in changes:
        changes["currency"] = changes["currency"].upper()
    if "channels" in changes:
        changes["channels"] = [str(channel) for channel in changes["channels"]]
    for list_field in ("coupon_codes", "listening_places"):
        if list_field in changes:
            cleaned = [item.strip() for item in changes[list_field] or [] if item.strip()]
            changes[list_field] = list(dict.fromkeys(cleaned))
    for text_field in (
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "content_calendar_url",
        "usage_policy_url",
    ):
        if text_field in changes and changes[text_field] is not None:
            changes[text_field] = changes[text_field].strip() or None
    before = {key: _jsonable(getattr(engagement, key)) for key in changes}
    after = {key: _jsonable(value) for key, value in changes.items()}
    changed = {key: value for key, value in after.items() if before[key] != value}
    _bump(session, engagement, expected_version, **changes)
    if changed:
        session.add(
            ScopeChange(
                brand_id=engagement.brand_id,
                engagement_id=engagement.id,
                actor_id=granted.actor.user.id,
                subject="engagement",
                action="changed",
                before={key: before[key] for key in changed},
                after=changed,
            )
        )
        _audit(
            session,
            engagement,
            granted.actor,
            "engagement_changed",
            "engagement",
            engagement.id,
            {"before": {key: before[key] for key in changed}, "after": changed},
        )
    return engagement


def _bump(session: Session, engagement: Engagement, expected_version: int, **values: Any) -> None:
    if not repository.bump_version(session, engagement.id, expected_version, **values):
        raise PreconditionFailed()
    session.refresh(engagement)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, Decimal)):
        return str(value)
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    return value


def _row_dict(row: SQLModel) -> dict[str, Any]:
    return {key: _jsonable(value) for key, value in row.model_dump(warnings=False).items()}


def _event(
    session: Session, engagement: Engagement, actor: Actor, kind: str, detail: dict[str, Any]
) -> None:
    session.add(
        EngagementEvent(
            brand_id=engagement.brand_id,
            engagement_id=engagement.id,
            actor_id=actor.user.id,
            actor_name=actor.user.name,
            kind=kind,
            detail=detail,
        )
    )
    _audit(session, engagement, actor, kind, "engagement", engagement.id, detail)


def _audit(
    session: Session,
    engagement: Engagement,
    actor: Actor,
    kind: str,
    subject_type: str,
    subject_id: Any,
    data: dict[str, Any],
) -> None:
    """Every state change lands on the engagement's hash-chained audit record too."""
    audit.append(
        session,
        organization_id=engagement.brand_id,
        engagement_id=engagement.id,
        actor_id=actor.user.id,
        actor=f"{actor.user.name} <{actor.user.email}>",
        kind=kind,
        subject_type=subject_type,
        subject_id=subject_id,
        data=data,
    )


# --- scope of work -------------------------------------------------------------


def _scope_change(
    session: Session,
    granted: EngagementAccess,
    subject: str,
    action: str,
    before: SQLModel | None,
    after: SQLModel | None,
) -> None:
    engagement = granted.engagement
    change = ScopeChange(
        brand_id=engagement.brand_id,
        engagement_id=engagement.id,
        actor_id=granted.actor.user.id,
        subject=subject,
        action=action,
        before=_row_dict(before) if before else None,
        after=_row_dict(after) if after else None,
    )
    session.add(change)
    _audit(
        session,
        engagement,
        granted.actor,
        f"{subject}_{action}",
        subject,
        (after or before).id if (after or before) is not None else None,  # type: ignore[union-attr]
        {"before": change.before, "after": change.after},
    )


def add_scope_line(session: Session, granted: EngagementAccess, data: ScopeLineIn) -> ScopeLine:
    granted.require("engagement.edit")
    _require_open(granted)
    line = ScopeLine(
        brand_id=granted.engagement.brand_id,
        engagement_id=granted.engagement.id,
        **data.model_dump(),
    )
    session.add(line)
    session.flush()
    _scope_change(session, granted, "scope_line", "added", None, line)
    planning.scope_line_saved(session, granted.engagement, granted.actor.user, line.id)
    return line


def update_scope_line(
    session: Session, granted: EngagementAccess, line_id: uuid.UUID, data: ScopeLineIn
) -> ScopeLine:
    granted.require("engagement.edit")
    _require_open(granted)
    line = _owned(session, ScopeLine, granted, line_id)
    before = ScopeLine.model_validate(line.model_dump(warnings=False))
    for key, value in data.model_dump().items():
        setattr(line, key, value)
    session.add(line)
    session.flush()
    _scope_change(session, granted, "scope_line", "changed", before, line)
    planning.scope_line_saved(session, granted.engagement, granted.actor.user, line.id)
    return line


def remove_scope_line(session: Session, granted: EngagementAccess, line_id: uuid.UUID) -> None:
    granted.require("engagement.edit")
    _require_open(granted)
    line = _owned(session, ScopeLine, granted, line_id)
    _scope_change(session, granted, "scope_line", "removed", line, None)
    planning.scope_line_removed(session, granted.engagement, granted.actor.user, line.id)
    session.delete(line)
    session.flush()


def add_fee(session: Session, granted: EngagementAccess, data: FeeIn) -> Fee:
    granted.require("engagement.edit")
    _require_open(granted)
    if data.kind == "one_off" and data.due_date is None:
        raise InvalidInput(field_errors=[FieldError("due_date", N_("A one-off fee needs a date."))])
    fee = Fee(
        brand_id=granted.engagement.brand_id,
        engagement_id=granted.engagement.id,
        **data.model_dump(),
    )
    session.add(fee)
    session.flush()
    _scope_change(session, granted, "fee", "added", None, fee)
    return fee


def remove_fee(session: Session, granted: EngagementAccess, fee_id: uuid.UUID) -> None:
    granted.require("engagement.edit")
    _require_open(granted)
    fee = _owned(session, Fee, granted, fee_id)
    _scope_change(session, granted, "fee", "removed", fee, None)
    session.delete(fee)
    session.flush()


def _owned(session: Session, model: Any, granted: EngagementAccess, row_id: uuid.UUID) -> Any:
    row = repository.get_row(session, model, granted.engagement, row_id)
    if row is None:
        raise NotFound(N_("Not found in this engagement."))
    return row


# --- objectives, KPIs, campaigns -----------------------------------------------


def add_objective(session: Session, granted: EngagementAccess, data: ObjectiveIn) -> Objective:
    granted.require("engagement.edit")
    _require_open(granted)
    objective = Objective(
        brand_id=granted.engagement.brand_id,
        engagement_id=granted.engagement.id,
        text=data.text.strip(),
    )
    session.add(objective)
    session.flush()
    return objective


def remove_objective(session: Session, granted: EngagementAccess, objective_id: uuid.UUID) -> None:
    granted.require("engagement.edit")
    _require_open(granted)
    session.delete(_owned(session, Objective, granted, objective_id))
    session.flush()


def _check_kpi(
    session: Session,
    granted: EngagementAccess,
    *,
    metric_key: str,
    target: Decimal | None,
    baseline: Decimal | None,
    owner_id: uuid.UUID | None,
    objective_id: uuid.UUID | None,
) -> None:
    errors: list[FieldError] = []
    metric = get_metric(metric_key)
    if metric is None:
        errors.append(FieldError("metric", N_("Choose a metric from the dictionary.")))
    for field, value in (("target", target), ("baseline", baseline)):
        if value is None or metric is None:
            continue
        if metric.unit is Unit.score:
            if not Decimal(-100) <= value <= Decimal(100):
                errors.append(FieldError(field, N_("NPS runs from -100 to 100.")))
        elif value < 0:
            errors.append(FieldError(field, N_("This cannot be negative.")))
        elif metric.unit is Unit.percent and metric.key != "roi" and value > 1:
            errors.append(
                FieldError(field, N_("A rate cannot be over 100 %%; enter it as a percentage."))
            )
    engagement = granted.engagement
    if owner_id is not None:
        members = _member_ids(session, engagement.brand_id) | _member_ids(
            session, engagement.agency_id
        )
        if owner_id not in members:
            errors.append(
                FieldError("owner_id", N_("The owner must be a member of the brand or the agency."))
            )
    if (
        objective_id is not None
        and repository.get_row(session, Objective, engagement, objective_id) is None
    ):
        errors.append(FieldError("objective_id", N_("Choose an objective of this engagement.")))
    if errors:
        raise InvalidInput(field_errors=errors)


def add_kpi(session: Session, granted: EngagementAccess, data: KpiIn) -> Kpi:
    granted.require("engagement.edit")
    _require_open(granted)
    _check_kpi(
        session,
        granted,
        metric_key=data.metric,
        target=data.target,
        baseline=data.baseline,
        owner_id=data.owner_id,
        objective_id=data.objective_id,
    )
    kpi = Kpi(
        brand_id=granted.engagement.brand_id,
        engagement_id=granted.engagement.id,
        **data.model_dump(),
    )
    session.add(kpi)
    session.flush()
    _event(session, granted.engagement, granted.actor, "kpi_added", {"metric": kpi.metric})
    return kpi


def update_kpi(
    session: Session, granted: EngagementAccess, kpi: Kpi, *, expected_version: int, data: KpiUpdate
) -> Kpi:
    granted.require("engagement.edit")
    _require_open(granted)
    if kpi.version != expected_version:
        raise PreconditionFailed()
    changes = data.model_dump(exclude_unset=True)
    reviewed = changes.pop("reviewed", None)
    _check_kpi(
        session,
        granted,
        metric_key=changes.get("metric", kpi.metric),
        target=changes.get("target", kpi.target),
        baseline=changes.get("baseline", kpi.baseline),
        owner_id=changes.get("owner_id", kpi.owner_id),
        objective_id=changes.get("objective_id", kpi.objective_id),
    )
    if changes.get("metric", kpi.metric) is None:
        raise InvalidInput(field_errors=[FieldError("metric", N_("This field is required."))])
    if reviewed:
        changes["reviewed_at"] = utcnow()
    if not repository.bump_kpi_version(session, kpi.id, expected_version, **changes):
        raise PreconditionFailed()
    session.refresh(kpi)
    _event(session, granted.engagement, granted.actor, "kpi_changed", {"metric": kpi.metric})
    return kpi


def delete_kpi(
    session: Session, granted: EngagementAccess, kpi: Kpi, *, expected_version: int
) -> None:
    granted.require("engagement.edit")
    _require_open(granted)
    if kpi.version != expected_version:
        raise PreconditionFailed()
    _event(session, granted.engagement, granted.actor, "kpi_removed", {"metric": kpi.metric})
    session.delete(kpi)
    session.flush()


def kpi_access(session: Session, actor: Actor, kpi_id: uuid.UUID) -> tuple[Kpi, EngagementAccess]:
    found = repository.kpi_by_id(session, kpi_id, actor.org_ids)
    if found is None:
        raise NotFound(N_("No KPI here, or it is not yours."))
    kpi, engagement = found
    return kpi, _access_to(session, actor, engagement)


def add_campaign(session: Session, granted: EngagementAccess, data: CampaignIn) -> Campaign:
    granted.require("engagement.edit")
    _require_open(granted)
    if (
        data.kpi_id is not None
        and repository.get_row(session, Kpi, granted.engagement, data.kpi_id) is None
    ):
        raise InvalidInput(
            field_errors=[FieldError("kpi_id", N_("Choose a KPI of this engagement."))]
        )
    campaign = Campaign(
        brand_id=granted.engagement.brand_id,
        engagement_id=granted.engagement.id,
        name=data.name.strip(),
        kpi_id=data.kpi_id,
        starts_on=data.starts_on,
    )
    session.add(campaign)
    session.flush()
    return campaign


def set_campaign_kpi(
    session: Session, granted: EngagementAccess, campaign_id: uuid.UUID, kpi_id: uuid.UUID | None
) -> Campaign:
    granted.require("engagement.edit")
    _require_open(granted)
    campaign = _owned(session, Campaign, granted, campaign_id)
    if kpi_id is not None and repository.get_row(session, Kpi, granted.engagement, kpi_id) is None:
        raise InvalidInput(
            field_errors=[FieldError("kpi_id", N_("Choose a KPI of this engagement."))]
        )
    campaign.kpi_id = kpi_id
    session.add(campaign)
    session.flush()
    return campaign


# --- routes, attestations, policy ----------------------------------------------


def set_route(
    session: Session, granted: EngagementAccess, kind: RouteKind, data: RouteIn
) -> HandoverRoute:
    granted.require("engagement.edit")
    _require_open(granted)
    engagement = granted.engagement
    route = next(
        (r for r in repository.rows_of(session, HandoverRoute, engagement) if r.kind == kind), None
    )
    if route is None:
        route = HandoverRoute(
            brand_id=engagement.brand_id,
            engagement_id=engagement.id,
            kind=kind,
            **data.model_dump(mode="json"),
        )
    else:
        for key, value in data.model_dump(mode="json").items():
            setattr(route, key, value)
        route.updated_at = utcnow()
    session.add(route)
    session.flush()
    _event(
        session,
        engagement,
        granted.actor,
        f"{kind.value}_route_set",
        {"team": route.team, "sla_hours": route.sla_hours},
    )
    return route


def attest(session: Session, granted: EngagementAccess, data: AttestationIn) -> Attestation:
    granted.require("engagement.attest")
    _require_open(granted)
    item = checklist.BY_KEY.get(data.item)
    if item is None or item.key not in checklist.ATTESTABLE:
        raise InvalidInput(
            field_errors=[FieldError("item", N_("This item is not attested by a person."))]
        )
    if not set(item.attested_by) & set(granted.sides):
        raise Forbidden(N_("The other side of the engagement attests this item."))
    engagement = granted.engagement
    for existing in repository.live_attestations(session, engagement):
        if existing.item == item.key:
            existing.withdrawn_at = utcnow()
            session.add(existing)
    attestation = Attestation(
        brand_id=engagement.brand_id,
        engagement_id=engagement.id,
        item=item.key,
        attested_by_id=granted.actor.user.id,
        attested_by_name=granted.actor.user.name,
        note=data.note.strip(),
    )
    session.add(attestation)
    session.flush()
    _event(
        session, engagement, granted.actor, "attested", {"item": item.key, "note": attestation.note}
    )
    return attestation


def withdraw_attestation(
    session: Session, granted: EngagementAccess, attestation_id: uuid.UUID
) -> None:
    granted.require("engagement.attest")
    attestation = _owned(session, Attestation, granted, attestation_id)
    if attestation.withdrawn_at is None:
        attestation.withdrawn_at = utcnow()
        session.add(attestation)
        _event(
            session,
            granted.engagement,
            granted.actor,
            "attestation_withdrawn",
            {"item": attestation.item},
        )


def set_policy(
    session: Session, granted: EngagementAccess, *, expected_version: int, data: PolicyIn
) -> Engagement:
    granted.require("engagement.edit")
    _require_open(granted)
    engagement = granted.engagement
    steps = validate_steps(
        [step.model_dump() for step in data.steps],
        brand_member_ids=set(_member_ids(session, engagement.brand_id)),
    )
    policy = dict(engagement.approval_policy or default_policy(engagement.stage))
    policy.update(
        steps=steps,
        review_hours=data.review_hours,
        enforce_channel_limits=data.enforce_channel_limits,
    )
    _bump(session, engagement, expected_version, approval_policy=policy)
    _event(
        session,
        engagement,
        granted.actor,
        "policy_changed",
        {"steps": [s["name"] for s in steps], "review_hours": data.review_hours},
    )
    return engagement


# --- stages --------------------------------------------------------------------


def facts(session: Session, engagement: Engagement) -> Facts:
    last = repository.last_stage_change(session, engagement)
    now = utcnow()
    return Facts(
        engagement=engagement,
        objectives=repository.rows_of(session, Objective, engagement),
        kpis=repository.rows_of(session, Kpi, engagement),
        campaigns=repository.rows_of(session, Campaign, engagement),
        routes=repository.rows_of(session, HandoverRoute, engagement),
        attestations=repository.live_attestations(session, engagement),
        brand_member_roles=_member_ids(session, engagement.brand_id),
        entered_stage_at=last.at if last else None,
        recent_escalations=escalation_repository.opened_between(
            session, engagement, now - checklist.SLA_WINDOW, now
        ),
        checked_at=now,
        results=results_repository.summarise(session, engagement),
    )


@dataclass(frozen=True)
class Checklist:
    stage: Stage
    transition: Transition
    next_stage: Stage | None
    items: list[ItemState]

    @property
    def holds(self) -> bool:
        return all(state.holds for state in self.items)

    @property
    def unmet(self) -> list[ItemState]:
        return [state for state in self.items if not state.holds]


def stage_checklist(
    session: Session, granted: EngagementAccess, stage: Stage | None = None
) -> Checklist:
    granted.require("engagement.read")
    engagement = granted.engagement
    stage = Stage(stage or engagement.stage)
    index = STAGE_ORDER.index(stage)
    next_stage = STAGE_ORDER[index + 1] if index + 1 < len(STAGE_ORDER) else None
    transition = checklist.GATE[stage]
    return Checklist(
        stage, transition, next_stage, checklist.evaluate(facts(session, engagement), transition)
    )


def change_stage(
    session: Session, granted: EngagementAccess, *, to: Stage | str, reason: str
) -> StageChange:
    """Advance when the checklist holds, or with a written override; move back with a reason."""
    granted.require("engagement.stage")
    engagement = granted.engagement
    if effective_status(engagement) != Status.active:
        raise Conflict(N_("Only an active engagement changes stage."))
    try:
        target = Stage(to)
    except ValueError:
        raise InvalidInput(
            field_errors=[FieldError("to", N_("Choose setup, development or maturity."))]
        ) from None
    current = Stage(engagement.stage)
    step = STAGE_ORDER.index(target) - STAGE_ORDER.index(current)
    reason = reason.strip()
    if step == 0:
        raise InvalidInput(
            field_errors=[FieldError("to", N_("The engagement is already in this stage."))]
        )
    if abs(step) > 1:
        raise InvalidInput(
            field_errors=[
                FieldError("to", N_("Stages change one at a time: setup, development, maturity."))
            ]
        )
    gate = stage_checklist(session, granted, current)
    overridden = False
    if step > 0 and not gate.holds:
        if not reason:
            raise Conflict(
                N_(
                    "The checklist does not hold yet (unmet items: %(count)d). "
                    "Fix them, or override with a written reason."
                ),
                params={"count": len(gate.unmet)},
                extra={"unmet": [state.snapshot() for state in gate.unmet]},
            )
        overridden = True
    if step < 0 and not reason:
        raise InvalidInput(
            field_errors=[FieldError("reason", N_("Say why the engagement moves back."))]
        )
    _bump(
        session,
        engagement,
        engagement.version,
        stage=target,
        approval_policy=policy_for_stage(engagement.approval_policy, target),
    )
    change = StageChange(
        brand_id=engagement.brand_id,
        engagement_id=engagement.id,
        actor_id=granted.actor.user.id,
        actor_name=granted.actor.user.name,
        from_stage=current,
        to_stage=target,
        overridden=overridden,
        reason=reason,
        checklist=[state.snapshot() for state in gate.items],
    )
    session.add(change)
    session.flush()
    _audit(
        session,
        engagement,
        granted.actor,
        "stage_changed",
        "stage",
        change.id,
        {
            "from": current.value,
            "to": target.value,
            "overridden": overridden,
            "reason": reason,
            "checklist": change.checklist,
        },
    )
    return change


# --- reading ---------------------------------------------------------------------


def parties(session: Session, engagement: Engagement) -> tuple[Organization, Organization]:
    """The brand and the agency of an engagement the caller already sees."""
    orgs = repository.organizations_by_id(session, {engagement.brand_id, engagement.agency_id})
    return orgs[engagement.brand_id], orgs[engagement.agency_id]


def kpis_of(session: Session, granted: EngagementAccess) -> Sequence[Kpi]:
    granted.require("engagement.read")
    return repository.rows_of(session, Kpi, granted.engagement)


def stage_timeline(session: Session, granted: EngagementAccess) -> Sequence[StageChange]:
    granted.require("engagement.read")
    return repository.timeline(session, granted.engagement)[0]


def audit_record(session: Session, granted: EngagementAccess) -> audit.Record:
    """The engagement's hash-chained record, re-verified as it is read."""
    granted.require("engagement.read")
    return audit.record_of(session, granted.engagement.id)


def audit_checkpoint(session: Session, granted: EngagementAccess) -> dict[str, Any]:
    """A signed checkpoint the brand keeps, to prove later that no entry was removed."""
    if not granted.on_brand_side:
        raise Forbidden(N_("The checkpoint is the brand's: ask the brand for it."))
    record = audit_record(session, granted)
    return audit.checkpoint(record.verification, get_settings().secret_key)


# --- the page, and the archive -------------------------------------------------


@dataclass(frozen=True)
class EngagementPage:
    access: EngagementAccess
    brand: Organization
    agency: Organization
    status: Status
    checklist: Checklist
    scope_lines: Sequence[ScopeLine]
    fees: Sequence[Fee]
    objectives: Sequence[Objective]
    kpis: Sequence[Kpi]
    campaigns: Sequence[Campaign]
    routes: dict[str, HandoverRoute]
    attestations: Sequence[Attestation]
    stage_changes: Sequence[StageChange]
    events: Sequence[EngagementEvent]
    scope_changes: Sequence[ScopeChange]
    people: dict[uuid.UUID, str]
    brand_members: list[tuple[uuid.UUID, str]]
    agency_members: list[tuple[uuid.UUID, str]]


def page(session: Session, granted: EngagementAccess) -> EngagementPage:
    granted.require("engagement.read")
    engagement = granted.engagement
    orgs = repository.organizations_by_id(session, {engagement.brand_id, engagement.agency_id})
    stage_changes, events, scope_changes = repository.timeline(session, engagement)
    brand_rows, _ = tenancy_repository.list_members(
        session,
        tenancy_repository.AccessibleOrganizationID(engagement.brand_id),
        limit=10000,
        offset=0,
    )
    agency_rows, _ = tenancy_repository.list_members(
        session,
        tenancy_repository.AccessibleOrganizationID(engagement.agency_id),
        limit=10000,
        offset=0,
    )
    people = {user.id: user.name for _m, user in [*brand_rows, *agency_rows]}
    return EngagementPage(
        access=granted,
        brand=orgs[engagement.brand_id],
        agency=orgs[engagement.agency_id],
        status=effective_status(engagement),
        checklist=stage_checklist(session, granted),
        scope_lines=repository.rows_of(session, ScopeLine, engagement),
        fees=repository.rows_of(session, Fee, engagement),
        objectives=repository.rows_of(session, Objective, engagement),
        kpis=repository.rows_of(session, Kpi, engagement),
        campaigns=repository.rows_of(session, Campaign, engagement),
        routes={
            route.kind: route for route in repository.rows_of(session, HandoverRoute, engagement)
        },
        attestations=repository.live_attestations(session, engagement),
        stage_changes=stage_changes,
        events=events,
        scope_changes=scope_changes,
        people=people,
        brand_members=[(user.id, user.name) for _m, user in brand_rows],
        agency_members=[(user.id, user.name) for _m, user in agency_rows],
    )


ARCHIVED_TABLES: tuple[tuple[str, type[SQLModel]], ...] = (
    ("scope_lines", ScopeLine),
    ("fees", Fee),
    ("scope_changes", ScopeChange),
    ("objectives", Objective),
    ("kpis", Kpi),
    ("campaigns", Campaign),
    ("handover_routes", HandoverRoute),
    ("attestations", Attestation),
    ("stage_changes", StageChange),
    ("events", EngagementEvent),
)


def archive(session: Session, granted: EngagementAccess) -> tuple[str, bytes]:
    """Everything the engagement holds, as JSON and CSV in one zip: the brand takes it along."""
    if not granted.on_brand_side:
        raise Forbidden(N_("The archive is the brand's: ask the brand for it."))
    engagement = granted.engagement
    content: dict[str, Any] = {
        "engagement": _row_dict(engagement),
        "exported_at": utcnow().isoformat(),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive_file:
        for name, model in ARCHIVED_TABLES:
            rows = [_row_dict(row) for row in repository.rows_of(session, model, engagement)]
            content[name] = rows
            header = list(model.model_fields)
            archive_file.writestr(
                f"{name}.csv",
                to_csv(header, ([_csv_cell(row.get(key)) for key in header] for row in rows)),
            )
        archive_file.writestr(
            "engagement.csv",
            to_csv(
                list(content["engagement"]),
                [[_csv_cell(v) for v in content["engagement"].values()]],
            ),
        )
        entries = audit.entries_of_chain(session, engagement.id)
        content["audit"] = [
            dict(zip(audit.AUDIT_COLUMNS, row, strict=True))
            for row in audit.rows_for_export(entries)
        ]
        archive_file.writestr(
            "audit.csv", to_csv(list(audit.AUDIT_COLUMNS), audit.rows_for_export(entries))
        )
        archive_file.writestr("engagement.json", json.dumps(content, indent=2, ensure_ascii=False))
    filename = f"brandkeep-engagement-{engagement.id}.zip"
    return filename, buffer.getvalue()


def _csv_cell(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value


def minor_units(amount: Decimal, currency: str) -> int:
    """A money amount typed in major units (12.50 EUR) as integer minor units (1250)."""
    precision = get_currency_precision(currency)
    return int((amount * (10**precision)).to_integral_value())
