"""Rules of escalations: the agency hands a conversation to the brand, on a clock.

A complaint goes to the engagement's escalation route (customer service), a sales
lead to its hand-off route (sales), a crisis to the brand's lead on the engagement
(by the escalation route's SLA; to the route's contact if no lead is named). The
route is copied onto the escalation and its contact is e-mailed in the same
transaction. The brand acknowledges, then resolves with an outcome; a won sales
lead carries revenue in the engagement's currency, which counts as attributed.

The customer relationship is the brand's: once handed over, the agency sees the
status and outcome, never the brand's internal notes (``notes`` refuses it, the
API and pages leave them out, and row-level security backs it up).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlmodel import Session

from app import transitions
from app.audit import service as audit
from app.config import Settings
from app.db import utcnow
from app.engagements import service as engagements
from app.engagements.models import Engagement, RouteKind, Status
from app.engagements.service import EngagementAccess
from app.errors import (
    N_,
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
)
from app.escalations import repository
from app.escalations.models import (
    Escalation,
    EscalationKind,
    EscalationNote,
    EscalationStatus,
    Outcome,
)
from app.escalations.schemas import AcknowledgeIn, EscalationCreate, NoteIn, ResolveIn
from app.i18n import LANGUAGES
from app.mail import service as mail
from app.tenancy import service as tenancy
from app.tenancy.models import OrgKind
from app.tenancy.repository import AccessibleOrganizationID
from app.tenancy.service import Actor

NOT_FOUND = N_("No escalation here, or it is not yours.")
MAIL_TEMPLATE = "escalation"
ROUTE_OF_KIND = {
    EscalationKind.complaint: RouteKind.escalation,
    EscalationKind.crisis: RouteKind.escalation,
    EscalationKind.sales_lead: RouteKind.handoff,
}
OUTCOMES_OF_KIND = {
    EscalationKind.complaint: (Outcome.resolved, Outcome.unresolved),
    EscalationKind.crisis: (Outcome.resolved, Outcome.unresolved),
    EscalationKind.sales_lead: (Outcome.won, Outcome.lost),
}


@dataclass(frozen=True)
class EscalationAccess:
    """An escalation loaded through the scoped layer, with the caller's access to its engagement."""

    escalation: Escalation
    granted: EngagementAccess


def access(session: Session, actor: Actor, escalation_id: uuid.UUID) -> EscalationAccess:
    """Load an escalation for this actor: 404 if its engagement is not theirs."""
    found = repository.get_escalation(session, escalation_id, actor.org_ids)
    escalation, granted = engagements.access_through(session, actor, found, NOT_FOUND)
    return EscalationAccess(escalation, granted)


# --- reading -------------------------------------------------------------------


def list_escalations(
    session: Session, granted: EngagementAccess, status: EscalationStatus | None = None
) -> Sequence[Escalation]:
    granted.require("engagement.read")
    return repository.escalations_of(session, granted.engagement, status)


@dataclass(frozen=True)
class Boxes:
    """The brand's inbox and the agency's outbox, for someone who may be on either side."""

    inbox: list[tuple[Escalation, Engagement]]
    outbox: list[tuple[Escalation, Engagement]]
    on_brand_side: bool
    on_agency_side: bool


def boxes(session: Session, actor: Actor, status: EscalationStatus | None = None) -> Boxes:
    orgs = [org for _membership, org in tenancy.organizations_of(session, actor.user)]
    brands = [AccessibleOrganizationID(o.id) for o in orgs if o.kind == OrgKind.brand]
    agencies = [AccessibleOrganizationID(o.id) for o in orgs if o.kind == OrgKind.agency]
    inbox = list(repository.for_organizations(session, brand_ids=brands, status=status))
    outbox = list(repository.for_organizations(session, agency_ids=agencies, status=status))
    # An agency whose read-only grace has ended no longer sees the engagement at all.
    visible: dict[uuid.UUID, bool] = {}

    def sees(engagement: Engagement) -> bool:
        if engagement.id not in visible:
            try:
                engagements.access(session, actor, engagement.id)
                visible[engagement.id] = True
            except NotFound:
                visible[engagement.id] = False
        return visible[engagement.id]

    return Boxes(
        inbox=[row for row in inbox if sees(row[1])],
        outbox=[row for row in outbox if sees(row[1])],
        on_brand_side=bool(brands),
        on_agency_side=bool(agencies),
    )


def may_read_notes(granted: EngagementAccess) -> bool:
    return granted.on_brand_side


def notes(session: Session, found: EscalationAccess) -> Sequence[EscalationNote]:
    """The brand's internal notes: the agency is refused, whatever its role."""
    if not may_read_notes(found.granted):
        raise Forbidden(
            N_("Notes on an escalation are the brand's own; the agency sees the status.")
        )
    return repository.notes_of(session, found.escalation)


# --- changing ------------------------------------------------------------------


def _audit(
    session: Session,
    granted: EngagementAccess,
    kind: str,
    escalation: Escalation,
    data: dict[str, Any],
) -> None:
    """Every state change lands on the engagement's hash-chained record (never a note's text)."""
    user = granted.actor.user
    audit.append(
        session,
        organization_id=granted.engagement.brand_id,
        engagement_id=granted.engagement.id,
        actor_id=user.id,
        actor=f"{user.name} <{user.email}>",
        kind=kind,
        subject_type="escalation",
        subject_id=escalation.id,
        data=data,
    )


def _route_for(
    session: Session, engagement: Engagement, kind: EscalationKind
) -> tuple[str, str, str, int]:
    """(team, contact name, contact e-mail, SLA hours) for this kind, or 409 if none is set."""
    route = repository.route_of(session, engagement, ROUTE_OF_KIND[kind])
    if route is None:
        if kind == EscalationKind.sales_lead:
            raise Conflict(
                N_(
                    "This engagement has no hand-off route for sales leads yet: the brand "
                    "defines it on the engagement page."
                )
            )
        raise Conflict(
            N_(
                "This engagement has no escalation route yet: the brand defines it on the "
                "engagement page."
            )
        )
    team, name, email = route.team, route.contact_name, route.contact_email
    if kind == EscalationKind.crisis and engagement.brand_lead_id is not None:
        lead = repository.user_by_id(session, engagement.brand_lead_id)
        if lead is not None:
            team, name, email = N_("Brand lead"), lead.name, lead.email
    return team, name, email, route.sla_hours


def open_escalation(
    session: Session, settings: Settings, granted: EngagementAccess, data: EscalationCreate
) -> Escalation:
    granted.require("escalation.open")
    engagement = granted.engagement
    if engagements.effective_status(engagement) not in (Status.active, Status.paused):
        raise Conflict(N_("Only an active engagement takes escalations."))
    team, contact_name, contact_email, sla_hours = _route_for(session, engagement, data.kind)
    user = granted.actor.user
    now = utcnow()
    escalation = Escalation(
        brand_id=engagement.brand_id,
        engagement_id=engagement.id,
        kind=data.kind,
        conversation_url=data.conversation_url,
        channel=str(data.channel) if data.channel else "",
        customer=data.customer.strip(),
        summary=data.summary.strip(),
        route_team=team,
        route_contact_name=contact_name,
        route_contact_email=contact_email,
        sla_hours=sla_hours,
        opened_at=now,
        sla_due_at=now + timedelta(hours=sla_hours),
        opened_by_id=user.id,
        opened_by_name=user.name,
        updated_at=now,
    )
    session.add(escalation)
    session.flush()
    _audit(
        session,
        granted,
        "escalation_opened",
        escalation,
        {
            "kind": escalation.kind.value,
            "to": contact_email,
            "team": team,
            "sla_hours": sla_hours,
            "conversation_url": escalation.conversation_url,
        },
    )
    _mail_route(session, settings, engagement, escalation)
    return escalation


def _mail_route(
    session: Session, settings: Settings, engagement: Engagement, escalation: Escalation
) -> None:
    """Tell the route's contact at once, in the brand's language, with a link to act on it."""
    brand, agency = engagements.parties(session, engagement)
    language = brand.language if brand.language in LANGUAGES else settings.default_language
    mail.queue_mail(
        session,
        to=escalation.route_contact_email,
        template=MAIL_TEMPLATE,
        context={
            "escalation": escalation,
            "kind": escalation.kind.value,
            "engagement_name": engagement.name,
            "brand_name": brand.name,
            "agency_name": agency.name,
            "link": f"{settings.base_url.rstrip('/')}/escalations/{escalation.id}",
        },
        language=language,
    )


def _require_brand(granted: EngagementAccess) -> None:
    if not granted.on_brand_side:
        raise Forbidden(
            N_(
                "The brand handles an escalation once it is handed over; "
                "the agency sees its status."
            )
        )
    granted.require("escalation.handle")


def _add_note(
    session: Session, granted: EngagementAccess, escalation: Escalation, body: str
) -> None:
    body = body.strip()
    if not body:
        return
    user = granted.actor.user
    note = EscalationNote(
        brand_id=escalation.brand_id,
        engagement_id=escalation.engagement_id,
        escalation_id=escalation.id,
        author_id=user.id,
        author_name=user.name,
        body=body,
    )
    session.add(note)
    session.flush()
    # The record proves the note existed and was not changed, without showing its words.
    _audit(
        session,
        granted,
        "escalation_note_added",
        escalation,
        {"note_id": str(note.id), "sha256": hashlib.sha256(body.encode()).hexdigest()},
    )


def add_note(session: Session, found: EscalationAccess, data: NoteIn) -> None:
    _require_brand(found.granted)
    _add_note(session, found.granted, found.escalation, data.body)


def acknowledge(
    session: Session,
    found: EscalationAccess,
    data: AcknowledgeIn,
    *,
    expected_version: int | None = None,
) -> Escalation:
    granted, escalation = found.granted, found.escalation
    _require_brand(granted)
    transitions.check_version(escalation, expected_version)
    if escalation.status != EscalationStatus.open:
        raise Conflict(
            N_("Only an open escalation is acknowledged; this one is %(status)s."),
            params={"status": str(escalation.status)},
        )
    now = utcnow()
    user = granted.actor.user
    transitions.transition(
        session,
        escalation,
        expected_statuses=(EscalationStatus.open,),
        conflict=N_("The escalation changed while you were acknowledging it: reload it."),
        status=EscalationStatus.acknowledged,
        acknowledged_at=now,
        acknowledged_by_id=user.id,
        acknowledged_by_name=user.name,
        updated_at=now,
    )
    _audit(
        session,
        granted,
        "escalation_acknowledged",
        escalation,
        {"within_sla": now <= escalation.sla_due_at},
    )
    _add_note(session, granted, escalation, data.note)
    return escalation


def resolve(
    session: Session,
    found: EscalationAccess,
    data: ResolveIn,
    *,
    expected_version: int | None = None,
) -> Escalation:
    granted, escalation = found.granted, found.escalation
    _require_brand(granted)
    transitions.check_version(escalation, expected_version)
    kind = EscalationKind(escalation.kind)
    if data.outcome not in OUTCOMES_OF_KIND[kind]:
        message = (
            N_("A sales lead ends won or lost.")
            if kind == EscalationKind.sales_lead
            else N_("A complaint or crisis ends resolved or unresolved.")
        )
        raise InvalidInput(field_errors=[FieldError("outcome", message)])
    if data.outcome == Outcome.won and data.revenue_minor is None:
        raise InvalidInput(
            field_errors=[FieldError("revenue_minor", N_("Give the sale's revenue."))]
        )
    if data.outcome != Outcome.won and data.revenue_minor is not None:
        raise InvalidInput(
            field_errors=[FieldError("revenue_minor", N_("Only a won sales lead has revenue."))]
        )
    if escalation.status == EscalationStatus.resolved:
        raise Conflict(N_("This escalation is already resolved."))
    previous = EscalationStatus(escalation.status)
    now = utcnow()
    user = granted.actor.user
    won = data.outcome == Outcome.won
    transitions.transition(
        session,
        escalation,
        expected_statuses=(previous,),
        conflict=N_("The escalation changed while you were resolving it: reload it."),
        status=EscalationStatus.resolved,
        resolved_at=now,
        resolved_by_id=user.id,
        resolved_by_name=user.name,
        outcome=data.outcome,
        revenue_minor=data.revenue_minor if won else None,
        currency=granted.engagement.currency if won else None,
        updated_at=now,
    )
    _audit(
        session,
        granted,
        "escalation_resolved",
        escalation,
        {
            "outcome": data.outcome.value,
            "revenue_minor": escalation.revenue_minor,
            "currency": escalation.currency,
            "acknowledged_first": previous == EscalationStatus.acknowledged,
        },
    )
    _add_note(session, granted, escalation, data.note)
    return escalation
