"""Engagements arranged through the real services (as app/demo.py does), then committed.

``Parties`` is one brand and one agency with the people an engagement involves;
``open_engagement`` / ``accepted_engagement`` / ``set_up_fully`` build on it.
Only people created with ``signs_in=True`` can sign in.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlmodel import Session

from app.accounts import service as accounts
from app.accounts.models import User
from app.accounts.passwords import hash_password
from app.db import utcnow
from app.engagements import service
from app.engagements.models import Channel, Engagement, Kpi, RouteKind, Stage
from app.engagements.schemas import (
    AttestationIn,
    CampaignIn,
    EngagementCreate,
    EngagementUpdate,
    KpiIn,
    ObjectiveIn,
    RouteIn,
)
from app.engagements.service import Checklist, EngagementAccess
from app.tenancy.models import Organization, OrgKind, Role
from app.tenancy.service import actor_for
from tests.factories import PASSWORD, add_member, create_org


@lru_cache(maxsize=1)
def _password_hash() -> str:
    return hash_password(PASSWORD)


def person(
    db: Session, org: Organization, role: Role | str, *, label: str, signs_in: bool = False
) -> User:
    """A member of ``org``; with ``signs_in`` they sign in with ``tests.factories.PASSWORD``."""
    tag = secrets.token_hex(3)
    user = accounts.create_user(
        db,
        email=f"{label.lower().replace(' ', '.')}.{tag}@example.com",
        name=f"{label} {tag}",
        password=None,
    )
    if signs_in:
        # One hash for everybody: hashing is deliberately slow, and each test makes many people.
        user.password_hash = _password_hash()
        db.add(user)
    db.commit()
    add_member(db, org, user, role)
    return user


@dataclass(frozen=True)
class Parties:
    """A brand (lead, reviewer) and an agency (manager, creator)."""

    brand: Organization
    agency: Organization
    lead: User
    reviewer: User
    manager: User
    creator: User


def make_parties(
    db: Session,
    *,
    brand: Organization | None = None,
    agency: Organization | None = None,
    signs_in: bool = False,
    with_reviewer: bool = True,
) -> Parties:
    brand = brand or create_org(db, kind=OrgKind.brand, name=f"Brand {secrets.token_hex(3)}")
    agency = agency or create_org(db, kind=OrgKind.agency, name=f"Agency {secrets.token_hex(3)}")
    lead = person(db, brand, Role.lead, label="Brand Lead", signs_in=signs_in)
    reviewer = (
        person(db, brand, Role.reviewer, label="Brand Reviewer", signs_in=signs_in)
        if with_reviewer
        else lead
    )
    manager = person(db, agency, Role.manager, label="Agency Manager", signs_in=signs_in)
    creator = person(db, agency, Role.creator, label="Agency Creator", signs_in=signs_in)
    return Parties(brand, agency, lead, reviewer, manager, creator)


def grant(db: Session, user: User, engagement_id: uuid.UUID) -> EngagementAccess:
    """The engagement as ``user`` sees it, loaded fresh through the scoped layer."""
    db.expire_all()
    return service.access(db, actor_for(db, user), engagement_id)


def open_engagement(db: Session, parties: Parties, **overrides: Any) -> Engagement:
    today = utcnow().date()
    values: dict[str, Any] = {
        "name": f"Social media {secrets.token_hex(2)}",
        "agency": parties.agency.slug,
        "start_date": today - timedelta(days=10),
        "end_date": today + timedelta(days=355),
        "budget_minor": 4_800_000,
        "currency": "EUR",
        "channels": [Channel.instagram, Channel.forums],
    }
    values.update(overrides)
    engagement = service.open_engagement(
        db,
        actor_for(db, parties.lead),
        brand_slug=parties.brand.slug,
        data=EngagementCreate(**values),
    )
    db.commit()
    return engagement


def accept(db: Session, parties: Parties, engagement_id: uuid.UUID) -> None:
    service.respond(db, grant(db, parties.manager, engagement_id), accept=True)
    db.commit()


def accepted_engagement(db: Session, parties: Parties, **overrides: Any) -> Engagement:
    engagement = open_engagement(db, parties, **overrides)
    accept(db, parties, engagement.id)
    return grant(db, parties.lead, engagement.id).engagement


def update(db: Session, parties: Parties, engagement_id: uuid.UUID, **changes: Any) -> Engagement:
    granted = grant(db, parties.lead, engagement_id)
    engagement = service.update(
        db,
        granted,
        expected_version=granted.engagement.version,
        data=EngagementUpdate(**changes),
    )
    db.commit()
    return engagement


ESCALATION = RouteIn(
    team="Customer service",
    trigger="Complaints, defects, refund requests",
    sla_hours=4,
    contact_name="Clara Soto",
    contact_email="care@brand.example",
)
HANDOFF = RouteIn(
    team="Sales",
    trigger="Bulk orders and retail partners",
    sla_hours=24,
    contact_name="Diego Paredes",
    contact_email="sales@brand.example",
)


def add_kpi(db: Session, parties: Parties, engagement_id: uuid.UUID, **overrides: Any) -> Kpi:
    values: dict[str, Any] = {
        "metric": "revenue",
        "target": Decimal(25000),
        "baseline": Decimal(9000),
        "owner_id": parties.lead.id,
    }
    values.update(overrides)
    kpi = service.add_kpi(db, grant(db, parties.lead, engagement_id), KpiIn(**values))
    db.commit()
    return kpi


def set_up_fully(db: Session, parties: Parties, engagement_id: uuid.UUID) -> None:
    """Everything the setup checklist can see: only the results it cannot see stay unmet."""
    lead = grant(db, parties.lead, engagement_id)
    objective = service.add_objective(db, lead, ObjectiveIn(text="Sell more online"))
    revenue = service.add_kpi(
        db,
        lead,
        KpiIn(
            metric="revenue",
            target=Decimal(25000),
            baseline=Decimal(9000),
            owner_id=parties.lead.id,
            objective_id=objective.id,
        ),
    )
    service.add_campaign(db, lead, CampaignIn(name="Spring launch", kpi_id=revenue.id))
    service.set_route(db, lead, RouteKind.escalation, ESCALATION)
    service.set_route(db, lead, RouteKind.handoff, HANDOFF)
    db.commit()
    update(
        db,
        parties,
        engagement_id,
        utm_campaign="spring-2026",
        coupon_codes=["SPRING10"],
        content_calendar_url="https://calendar.brand.example/social",
        brand_content_owner_id=parties.reviewer.id,
        agency_content_owner_id=parties.manager.id,
        usage_policy_url="https://intranet.brand.example/social-policy",
        listening_places=["Instagram @brand", "forum.runners.example"],
    )
    service.attest(
        db, grant(db, parties.lead, engagement_id), AttestationIn(item="usage_policy", note="v3")
    )
    service.attest(
        db,
        grant(db, parties.manager, engagement_id),
        AttestationIn(item="monitoring", note="Listening dashboard live"),
    )
    db.commit()


def checklist_of(
    db: Session, user: User, engagement_id: uuid.UUID, stage: Stage | None = None
) -> Checklist:
    return service.stage_checklist(db, grant(db, user, engagement_id), stage)


def statuses(result: Checklist) -> dict[str, str]:
    return {state.item.key: state.outcome.status.value for state in result.items}


def days_ago(days: int) -> date:
    return utcnow().date() - timedelta(days=days)
