"""Demo data: a brand, two agencies and their people. Loading it twice changes nothing.

Demo only: every account here shares the documented password ``brandkeep-demo``.
Later features add their part of the story below, each in its own function.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlmodel import Session, select

from app.accounts import repository as accounts_repository
from app.accounts import service as accounts
from app.accounts.models import User
from app.content import demo_comments, demo_review, media, reminders
from app.content import service as content
from app.content.models import DecisionKind
from app.content.schemas import DecisionIn, PostCreate, PostUpdate
from app.db import utcnow
from app.deliverables import demo as deliverables_demo
from app.engagements import service as engagements
from app.engagements.models import (
    Channel,
    Engagement,
    EngagementEvent,
    RouteKind,
    ScopeChange,
    Stage,
    StageChange,
    Status,
)
from app.engagements.schemas import (
    AttestationIn,
    CampaignIn,
    EngagementCreate,
    EngagementUpdate,
    FeeIn,
    KpiIn,
    ObjectiveIn,
    RouteIn,
    ScopeLineIn,
)
from app.engagements.service import EngagementAccess
from app.results import demo as results_demo
from app.scorecards import demo as scorecards_demo
from app.tenancy import repository as tenancy_repository
from app.tenancy import service as tenancy
from app.tenancy.models import Organization, OrgKind, Role
from app.tenancy.repository import AccessibleOrganizationID
from app.tenancy.service import Actor, actor_for

DEMO_PASSWORD = "brandkeep-demo"  # noqa: S105 - documented, demo-only


@dataclass(frozen=True)
class DemoAccount:
    email: str
    name: str
    org_slug: str
    role: Role


ORGANIZATIONS = (
    ("acme", "Acme Outdoor", OrgKind.brand),
    ("northwind", "Northwind Social", OrgKind.agency),
    ("bluepeak", "Bluepeak Media", OrgKind.agency),
)

ACCOUNTS = (
    DemoAccount("owner@acme.example", "Olivia Owens", "acme", Role.owner),
    DemoAccount("lead@acme.example", "Lucas Leal", "acme", Role.lead),
    DemoAccount("reviewer@acme.example", "Rosa Rivera", "acme", Role.reviewer),
    DemoAccount("manager@northwind.example", "Nina Navarro", "northwind", Role.manager),
    DemoAccount("creator@northwind.example", "Carlos Cruz", "northwind", Role.creator),
    DemoAccount("manager@bluepeak.example", "Ben Brooks", "bluepeak", Role.manager),
)


def load(session: Session) -> None:
    organizations = _organizations(session)
    _people(session, organizations)
    _engagements(session, organizations)
    deliverables_demo.load(session)  # deliverables and escalations over the months above
    results_demo.load(session)  # six months of results, imported from two platforms
    scorecards_demo.load(session)  # last: rolls up what the other parts wrote


def _organizations(session: Session) -> dict[str, Organization]:
    found: dict[str, Organization] = {}
    for slug, name, kind in ORGANIZATIONS:
        org = tenancy_repository.get_org_by_slug_unscoped(session, slug)
        if org is None:
            org = tenancy.create_organization(
                session, name=name, kind=kind, slug=slug, timezone="Europe/Madrid"
            )
        found[slug] = org
    return found


def _people(session: Session, organizations: dict[str, Organization]) -> None:
    for account in ACCOUNTS:
        user: User | None = accounts_repository.get_user_by_email(session, account.email)
        if user is None:
            user = accounts.create_user(
                session, email=account.email, name=account.name, password=DEMO_PASSWORD
            )
        org = organizations[account.org_slug]
        if (
            tenancy_repository.get_membership(session, AccessibleOrganizationID(org.id), user.id)
            is None
        ):
            tenancy.add_membership(session, organization=org, user=user, role=account.role)


# --- engagements -----------------------------------------------------------------


def _actor(session: Session, email: str) -> Actor:
    user = accounts_repository.get_user_by_email(session, email)
    assert user is not None
    return actor_for(session, user)


def _user_id(session: Session, email: str) -> uuid.UUID:
    user = accounts_repository.get_user_by_email(session, email)
    assert user is not None
    return user.id


def _backdate(session: Session, engagement: Engagement, days_ago: int) -> None:
    """Spread the demo's history over the months it pretends to cover."""
    when = utcnow() - timedelta(days=days_ago)
    models: tuple[Any, ...] = (StageChange, EngagementEvent, ScopeChange)
    for model in models:
        for row in session.exec(select(model).where(model.engagement_id == engagement.id)).all():
            if row.at > when:
                row.at = when
                session.add(row)


def _engagements(session: Session, organizations: dict[str, Organization]) -> None:
    lead = _actor(session, "lead@acme.example")
    existing = {
        summary.engagement.name
        for summary in engagements.list_engagements(session, lead, limit=200)[0]
    }
    today = utcnow().date()
    if "Social media 2026" not in existing:
        _northwind(session, lead, today)
    if "Community launch" not in existing:
        _bluepeak(session, lead, today)
    if "Holiday campaign 2025" not in existing:
        _ended(session, lead, today)
    _posts(session, lead)
    demo_review.load(session, lead)
    demo_comments.load(session)
    reminders.load_demo(session, lead)
    media.load_demo(session, lead)


def _open(
    session: Session, lead: Actor, *, name: str, agency: str, start: date, end: date | None,
    budget_minor: int, channels: list[Channel],
) -> EngagementAccess:  # fmt: skip
    engagement = engagements.open_engagement(
        session,
        lead,
        brand_slug="acme",
        data=EngagementCreate(
            name=name,
            agency=agency,
            start_date=start,
            end_date=end,
            budget_minor=budget_minor,
            currency="EUR",
            channels=channels,
        ),
    )
    return engagements.access(session, lead, engagement.id)


def _set_up(session: Session, granted: EngagementAccess, *, agency_email: str, full: bool) -> None:
    brand_reviewer = _user_id(session, "reviewer@acme.example")
    agency_manager = _user_id(session, agency_email)
    lead_id = granted.actor.user.id
    engagements.add_scope_line(
        session, granted, ScopeLineIn(kind="posts", quantity=12, cadence="monthly", due_day=0)
    )
    engagements.add_scope_line(
        session,
        granted,
        ScopeLineIn(kind="monthly_report", quantity=1, cadence="monthly", due_day=5),
    )
    engagements.add_scope_line(
        session,
        granted,
        ScopeLineIn(
            kind="community_hours",
            description="Replies and moderation",
            quantity=20,
            cadence="monthly",
        ),
    )
    engagements.add_fee(
        session, granted, FeeIn(kind="monthly", description="Retainer", amount_minor=350000)
    )
    engagements.add_fee(
        session,
        granted,
        FeeIn(
            kind="one_off",
            description="Set-up and strategy",
            amount_minor=500000,
            due_date=granted.engagement.start_date,
        ),
    )
    objective = engagements.add_objective(
        session, granted, ObjectiveIn(text="Sell more trail shoes online through social channels")
    )
    engagements.add_objective(
        session, granted, ObjectiveIn(text="Answer customers faster where they already talk")
    )
    revenue = engagements.add_kpi(
        session,
        granted,
        KpiIn(
            metric="revenue",
            target=Decimal(25000),
            baseline=Decimal(9000),
            owner_id=lead_id,
            objective_id=objective.id,
        ),
    )
    engagements.add_kpi(
        session,
        granted,
        KpiIn(
            metric="coupon_redemptions",
            target=Decimal(400),
            baseline=Decimal(120),
            owner_id=agency_manager,
            objective_id=objective.id,
        ),
    )
    engagements.add_kpi(
        session,
        granted,
        KpiIn(
            metric="engagement_rate_reach",
            target=Decimal("0.045"),
            baseline=Decimal("0.031"),
            owner_id=agency_manager,
        ),
    )
    if not full:
        # Bluepeak: two items missing — no business measure and no hand-off route.
        return
    engagement = granted.engagement
    engagements.update(
        session, granted, expected_version=engagement.version,
        data=EngagementUpdate(
            utm_source="social", utm_medium="organic", utm_campaign="acme-trail-2026",
            coupon_codes=["TRAIL10", "SUMMIT15"],
            content_calendar_url="https://calendar.acme.example/social-2026",
            brand_content_owner_id=brand_reviewer, agency_content_owner_id=agency_manager,
            usage_policy_url="https://intranet.acme.example/policies/social-media",
            listening_places=["Instagram @acmeoutdoor", "Facebook page Acme Outdoor",
                              "forum.trailrunners.example (gear threads)", "r/trailrunning"],
        ),
    )  # fmt: skip
    engagements.set_route(
        session,
        granted,
        RouteKind.escalation,
        RouteIn(
            team="Customer service",
            trigger="Complaints, defects, refund requests or anything negative",
            sla_hours=4,
            contact_name="Clara Soto",
            contact_email="care@acme.example",
        ),
    )
    engagements.set_route(
        session,
        granted,
        RouteKind.handoff,
        RouteIn(
            team="Sales",
            trigger="Bulk orders, retail partners, teams",
            sla_hours=24,
            contact_name="Diego Paredes",
            contact_email="sales@acme.example",
        ),
    )
    engagements.attest(
        session,
        granted,
        AttestationIn(item="usage_policy", note="Policy v3 signed by both teams in the kick-off."),
    )
    engagements.add_campaign(
        session,
        granted,
        CampaignIn(
            name="Spring trail launch",
            kpi_id=revenue.id,
            starts_on=engagement.start_date + timedelta(days=60),
        ),
    )


def _northwind(session: Session, lead: Actor, today: date) -> None:
    granted = _open(
        session, lead, name="Social media 2026", agency="northwind",
        start=today - timedelta(days=180), end=today + timedelta(days=185), budget_minor=4800000,
        channels=[Channel.instagram, Channel.facebook, Channel.tiktok, Channel.forums],
    )  # fmt: skip
    manager = _actor(session, "manager@northwind.example")
    engagements.respond(
        session, engagements.access(session, manager, granted.engagement.id), accept=True
    )
    granted = engagements.access(session, lead, granted.engagement.id)
    _set_up(session, granted, agency_email="manager@northwind.example", full=True)
    agency_side = engagements.access(session, manager, granted.engagement.id)
    engagements.attest(
        session,
        agency_side,
        AttestationIn(
            item="monitoring",
            note="Listening dashboard live since week 2; weekly digest to the brand.",
        ),
    )
    # Baseline results are not in Brandkeep yet, so moving on needed a written override.
    engagements.change_stage(
        session, engagements.access(session, lead, granted.engagement.id), to=Stage.development,
        reason="Baseline figures came from the agency's audit deck; we import them next month.",
    )  # fmt: skip
    engagements.attest(
        session,
        engagements.access(session, lead, granted.engagement.id),
        AttestationIn(
            item="advocates", note="32 advocates in the Trail Crew programme, rewarded quarterly."
        ),
    )
    _backdate(session, granted.engagement, 170)


def _bluepeak(session: Session, lead: Actor, today: date) -> None:
    granted = _open(
        session, lead, name="Community launch", agency="bluepeak",
        start=today - timedelta(days=20), end=None, budget_minor=1800000,
        channels=[Channel.instagram, Channel.linkedin, Channel.x],
    )  # fmt: skip
    manager = _actor(session, "manager@bluepeak.example")
    engagements.respond(
        session, engagements.access(session, manager, granted.engagement.id), accept=True
    )
    granted = engagements.access(session, lead, granted.engagement.id)
    # Only indicator KPIs for Bluepeak's proposal: the checklist says so.
    _set_up(session, granted, agency_email="manager@bluepeak.example", full=False)
    for kpi in engagements.kpis_of(session, granted):
        if kpi.metric != "engagement_rate_reach":
            engagements.delete_kpi(session, granted, kpi, expected_version=kpi.version)
    engagements.add_kpi(
        session,
        granted,
        KpiIn(
            metric="reach",
            target=Decimal(250000),
            baseline=Decimal(80000),
            owner_id=_user_id(session, "manager@bluepeak.example"),
        ),
    )
    engagement = granted.engagement
    engagements.update(
        session, granted, expected_version=engagement.version,
        data=EngagementUpdate(
            utm_source="social", utm_medium="organic", utm_campaign="acme-community",
            content_calendar_url="https://calendar.acme.example/community",
            brand_content_owner_id=_user_id(session, "reviewer@acme.example"),
            agency_content_owner_id=_user_id(session, "manager@bluepeak.example"),
            listening_places=["LinkedIn company page", "X @acmeoutdoor"],
        ),
    )  # fmt: skip
    engagements.set_route(
        session,
        granted,
        RouteKind.escalation,
        RouteIn(
            team="Call centre",
            trigger="Any complaint or safety concern",
            sla_hours=8,
            contact_name="Clara Soto",
            contact_email="care@acme.example",
        ),
    )
    engagements.attest(
        session,
        granted,
        AttestationIn(
            item="usage_policy", note="Shared the policy PDF; Bluepeak confirmed by e-mail."
        ),
    )
    _backdate(session, granted.engagement, 18)


def _ended(session: Session, lead: Actor, today: date) -> None:
    granted = _open(
        session, lead, name="Holiday campaign 2025", agency="northwind",
        start=today - timedelta(days=330), end=None, budget_minor=900000,
        channels=[Channel.instagram, Channel.facebook],
    )  # fmt: skip
    manager = _actor(session, "manager@northwind.example")
    engagements.respond(
        session, engagements.access(session, manager, granted.engagement.id), accept=True
    )
    granted = engagements.access(session, lead, granted.engagement.id)
    engagements.add_scope_line(
        session,
        granted,
        ScopeLineIn(kind="campaign", description="Holiday gift guide", quantity=1, cadence="once"),
    )
    engagements.add_fee(
        session,
        granted,
        FeeIn(
            kind="one_off",
            description="Campaign fee",
            amount_minor=900000,
            due_date=granted.engagement.start_date,
        ),
    )
    engagements.set_status(session, granted, Status.ended)
    # It ran last winter: its end is long past, so the agency's read-only grace is over too.
    ended = granted.engagement
    ended.end_date = today - timedelta(days=240)
    ended.ended_at = utcnow() - timedelta(days=240)
    session.add(ended)
    _backdate(session, ended, 330)


# --- posts -------------------------------------------------------------------------

POSTS = (
    # (title, body, what happens to it)
    ("Summit GTX teaser", "The Summit GTX lands on 3 March. #AcmeTrail", "draft"),
    ("Trail Crew spotlight", "Marta ran the Camino de Ronda in a day. #TrailCrew", "in_review"),
    ("Spring sale", "20 % off trail shoes this weekend with code TRAIL10.", "changes_requested"),
    ("Waterproofing guide", "Wet feet end good hikes. Three ways to keep boots dry.", "approved"),
    ("Rain jacket drop", "The Storm Shell is back in five colours. Which one is yours?", "voided"),
    ("Competitor comparison", "Why our boots beat Brand X: a side-by-side.", "rejected"),
    ("Black Friday countdown", "Three days to go. Set a reminder.", "withdrawn"),
    ("Trail running clinic", "Free clinic with our coaches on Saturday at 10:00.", "revised"),
    ("Storm Shell care video", "Wash and re-proof your shell in five minutes.", "revised"),
)  # fmt: skip
# How long Northwind took to send a new version after the brand asked for changes: slow.
REVISED_AFTER = {
    "Trail running clinic": timedelta(days=4),
    "Storm Shell care video": timedelta(days=3, hours=6),
}


def _posts(session: Session, lead: Actor) -> None:
    """Northwind's posts for Acme, one in every state the review can leave them in."""
    engagement = next(
        (s.engagement for s in engagements.list_engagements(session, lead, limit=200)[0]
         if s.engagement.name == "Social media 2026"),
        None,
    )  # fmt: skip
    if engagement is None:
        return
    creator = _actor(session, "creator@northwind.example")
    reviewer = _actor(session, "reviewer@acme.example")
    agency_side = engagements.access(session, creator, engagement.id)
    if content.list_posts(session, agency_side):
        return
    now = utcnow()
    planned = now.replace(hour=9, minute=0, second=0, microsecond=0)
    for index, (title, body, fate) in enumerate(POSTS):
        created = now - timedelta(days=60 - 6 * index)
        with demo_review.happened(session, engagement.id, created):
            post = content.create_post(
                session,
                agency_side,
                PostCreate(
                    title=title, body=body, channels=[Channel.instagram, Channel.facebook],
                    planned_at=planned + timedelta(days=3 + 2 * index), timezone="Europe/Madrid",
                    campaign="Spring trail launch", content_category="product",
                ),
            )  # fmt: skip
        if fate == "draft":
            continue
        # Still open: sent three days ago, so the brand's answer is overdue; or changes asked
        # five days ago and not answered yet. The others went in hours after they were written.
        submitted = {
            "in_review": now - timedelta(days=3),
            "changes_requested": now - timedelta(days=6),
        }.get(fate, created + timedelta(hours=4))
        with demo_review.happened(session, engagement.id, submitted):
            content.submit(session, content.access(session, creator, post.id))
        if fate == "in_review":
            continue
        if fate == "withdrawn":
            with demo_review.happened(session, engagement.id, submitted + timedelta(hours=6)):
                content.withdraw(session, content.access(session, creator, post.id))
            continue
        decided = submitted + timedelta(hours=18 + 7 * index)  # the brand's answer
        if fate == "revised":
            with demo_review.happened(session, engagement.id, decided):
                _judge(session, reviewer, post.id, DecisionKind.request_changes,
                       "Add the booking link and the number of places.")  # fmt: skip
            revised = decided + REVISED_AFTER[title]
            with demo_review.happened(session, engagement.id, revised):
                found = content.access(session, creator, post.id)
                content.edit_post(
                    session, found, expected_version=found.post.version,
                    data=PostUpdate(body=body + " Book at acme.example/clinic: 20 places."),
                )  # fmt: skip
            with demo_review.happened(session, engagement.id, revised + timedelta(hours=1)):
                content.submit(session, content.access(session, creator, post.id))
            decided = revised + timedelta(hours=20)
        verdicts = {
            "changes_requested": (DecisionKind.request_changes, "Say 20 % only on trail shoes."),
            "rejected": (DecisionKind.reject, "We never name competitors."),
        }
        kind, comment = verdicts.get(fate, (DecisionKind.approve, ""))
        with demo_review.happened(session, engagement.id, decided):
            _judge(session, reviewer, post.id, kind, comment)
        if fate == "voided":
            # The agency edits after approval: the approval no longer holds.
            with demo_review.happened(session, engagement.id, decided + timedelta(days=1)):
                edited = content.access(session, creator, post.id)
                content.edit_post(
                    session, edited, expected_version=edited.post.version,
                    data=PostUpdate(body=body + " Now with a lifetime repair promise."),
                )  # fmt: skip


def _judge(
    session: Session, reviewer: Actor, post_id: uuid.UUID, kind: DecisionKind, comment: str
) -> None:
    judged = content.access(session, reviewer, post_id)
    version_hash = content.hash_of(content.current_version(session, judged.post))
    content.decide(
        session, judged, DecisionIn(decision=kind, version_hash=version_hash, comment=comment)
    )
