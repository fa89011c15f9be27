"""Demo history of deliverables and escalations (called once from ``app.demo.load``).

Acme × Northwind gets six months of deliverables (late more and more often lately,
some returned and delivered again, the current month waiting on the brand) and
escalations in every state; Acme × Bluepeak, a few weeks old, gets a little, all of
it on time. The
work goes through the real services, so the audit record and the e-mails are real;
then its timestamps are moved back to when the story says it happened. Loading
twice changes nothing: an engagement that already has a delivery or an
escalation is left alone.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta

from sqlmodel import Session, select
from starlette.datastructures import UploadFile

from app.accounts import repository as accounts_repository
from app.config import get_settings
from app.content import service as content
from app.db import utcnow
from app.deliverables import repository, service
from app.deliverables.models import Deliverable
from app.deliverables.schemas import DeliverIn, EvidenceLink, ReturnIn
from app.engagements import service as engagements
from app.engagements.models import Engagement
from app.errors import Conflict
from app.escalations import repository as escalation_repository
from app.escalations import service as escalations
from app.escalations.models import Escalation, EscalationKind, Outcome
from app.escalations.schemas import AcknowledgeIn, EscalationCreate, NoteIn, ResolveIn
from app.storage import store_for
from app.tenancy.service import Actor, actor_for

# Which past deliverables the story makes late (counted back from the latest one due:
# days after due), and which it returns once (counted from the oldest).
LATE_DAYS = {0: 2, 2: 3, 3: 1, 5: 4, 7: 2, 12: 2, 15: 3}
RETURNED = {
    2: "The report misses the coupon redemptions by channel.",
    6: "Three posts use last season's photos.",
}
RETURN_REASON_NOW = "Please add the forum threads you answered, not only Instagram."


def load(session: Session) -> None:
    lead = _actor(session, "lead@acme.example")
    found = {
        summary.engagement.name: summary.engagement
        for summary in engagements.list_engagements(session, lead, limit=200)[0]
    }
    northwind = found.get("Social media 2026")
    bluepeak = found.get("Community launch")
    if northwind is not None:
        _deliverables(session, northwind, "manager@northwind.example", thin=False)
        _northwind_escalations(session, northwind)
    if bluepeak is not None:
        _deliverables(session, bluepeak, "manager@bluepeak.example", thin=True)
        _bluepeak_escalations(session, bluepeak)


def _actor(session: Session, email: str) -> Actor:
    user = accounts_repository.get_user_by_email(session, email)
    assert user is not None
    return actor_for(session, user)


# --- deliverables ---------------------------------------------------------------------


def _evidence(session: Session, manager: Actor, row: Deliverable) -> DeliverIn:
    month = row.period_start.strftime("%Y-%m")
    drive = f"https://drive.{manager.user.email.partition('@')[2]}/acme/{month}"
    links = [EvidenceLink(url=f"{drive}/{row.kind}")]
    post_ids = []
    if row.kind == "posts":
        granted = engagements.access(session, manager, row.engagement_id)
        post_ids = [post.id for post in content.list_posts(session, granted)[:3]]
    if row.kind == "monthly_report":
        links = [
            EvidenceLink(
                url=f"{drive}/report.pdf",
                label=f"Report {month}",
            )
        ]
    return DeliverIn(links=links, post_ids=post_ids, note="")


def _move(row: Deliverable, **moments: datetime) -> None:
    for name, value in moments.items():
        setattr(row, name, value)


def _deliverables(
    session: Session, engagement: Engagement, manager_email: str, *, thin: bool
) -> None:
    rows = list(reversed(repository.deliverables_of(session, engagement)))  # oldest first
    if not rows or any(row.rounds for row in rows):
        return
    manager = _actor(session, manager_email)
    reviewer = _actor(session, "reviewer@acme.example")
    now = utcnow()
    due = [row for row in rows if row.due_at <= now]
    upcoming = [row for row in rows if row.due_at > now]
    if thin:
        # A few weeks in, everything went in the eve of its due date; the brand accepted
        # it within a day, except the latest, which waits for its answer.
        for index, row in enumerate(due):
            delivered_at = min(row.due_at - timedelta(hours=20), now - timedelta(hours=2))
            _deliver(session, manager, row, at=delivered_at)
            if index < len(due) - 1:
                _accept(session, reviewer, row, at=min(row.due_at + timedelta(hours=20), now))
        return
    for index, row in enumerate(due):
        late = LATE_DAYS.get(len(due) - 1 - index)
        delivered_at = row.due_at + (timedelta(days=late) if late else -timedelta(days=1))
        delivered_at = min(delivered_at, now - timedelta(hours=2))
        _deliver(session, manager, row, at=delivered_at)
        if index == len(due) - 1:
            # The latest one came back this week and waits for the agency.
            _return(
                session,
                reviewer,
                row,
                RETURN_REASON_NOW,
                at=min(delivered_at + timedelta(days=1), now),
            )
            continue
        reason = RETURNED.get(index)
        decided_at = min(delivered_at + timedelta(days=2), now - timedelta(hours=1))
        if reason:
            _return(session, reviewer, row, reason, at=decided_at)
            redelivered = min(decided_at + timedelta(days=2), now - timedelta(minutes=30))
            _deliver(session, manager, row, at=redelivered, first=False)
            decided_at = min(redelivered + timedelta(days=1), now - timedelta(minutes=10))
        if index < len(due) - 3:
            _accept(session, reviewer, row, at=decided_at)
        # The last few stay delivered: they wait for the brand's answer.
    # The current month's report went in early and waits for the brand.
    report = next((row for row in upcoming if row.kind == "monthly_report"), None)
    if report is not None:
        _deliver(session, manager, report, at=now - timedelta(hours=5))


def _report_file(row: Deliverable) -> UploadFile:
    """The monthly report as the agency's spreadsheet export: a small CSV, made up."""
    month = row.period_start.strftime("%Y-%m")
    lines = [
        "metric,value,target",
        *(
            f"{name},{value},{target}"
            for name, value, target in (
                ("posts published", 12, 12),
                ("engagement rate", "4.1%", "3.5%"),
                ("link clicks", 1840 + 37 * row.period_start.month, 1800),
                ("leads handed over", 6 + row.period_start.month % 4, 5),
            )
        ),
    ]
    body = ("\n".join(lines) + "\n").encode()
    return UploadFile(io.BytesIO(body), size=len(body), filename=f"report-{month}.csv")


def _deliver(
    session: Session, manager: Actor, row: Deliverable, *, at: datetime, first: bool = True
) -> None:
    found = service.access(session, manager, row.id)
    if row.kind == "monthly_report":
        settings = get_settings()
        service.deliver(
            session,
            found,
            _evidence(session, manager, row),
            files=[_report_file(row)],
            store=store_for(settings),
            settings=settings,
        )
    else:
        service.deliver(session, found, _evidence(session, manager, row))
    session.refresh(row)
    if first:
        _move(row, first_delivered_at=at, delivered_at=at, updated_at=at)
    else:
        _move(row, delivered_at=at, updated_at=at)
    session.add(row)
    session.flush()


def _accept(session: Session, reviewer: Actor, row: Deliverable, *, at: datetime) -> None:
    service.accept(session, service.access(session, reviewer, row.id))
    session.refresh(row)
    _move(row, decided_at=at, updated_at=at)
    session.add(row)
    session.flush()


def _return(
    session: Session, reviewer: Actor, row: Deliverable, reason: str, *, at: datetime
) -> None:
    service.return_(session, service.access(session, reviewer, row.id), ReturnIn(reason=reason))
    session.refresh(row)
    _move(row, decided_at=at, updated_at=at)
    session.add(row)
    session.flush()


# --- escalations ---------------------------------------------------------------------------

# (kind, days ago opened, hours to acknowledge or None, resolution or None, summary, customer,
# the brand's internal note)
Story = tuple[
    tuple[EscalationKind, float, float | None, tuple[Outcome, int | None] | None, str, str, str],
    ...,
]
NORTHWIND_ESCALATIONS: Story = (
    (EscalationKind.complaint, 150, 1.5, (Outcome.resolved, None),
     "Summit GTX sole peeled off after three weeks; customer posted photos and wants a refund.",
     "@marta.trails", "Refund approved and a replacement pair sent by courier."),
    (EscalationKind.sales_lead, 120, 3, (Outcome.won, 412_000),
     "Running club in Valencia asks for 60 pairs with their logo for the spring race.",
     "Club Runners Valencia", "Quote accepted; invoice 2026-118."),
    (EscalationKind.complaint, 95, 9, (Outcome.resolved, None),
     "Order #48213 delayed two weeks; customer angry in the comments of the launch post.",
     "@josep_bcn", "Carrier problem; voucher sent."),
    (EscalationKind.crisis, 70, 0.5, (Outcome.resolved, None),
     "A forum thread claims the Storm Shell dye is toxic; 40 replies in two hours.",
     "forum.trailrunners.example", "Lab certificate published; thread calmed down."),
    (EscalationKind.sales_lead, 45, 20, (Outcome.lost, None),
     "Outdoor shop chain asks about wholesale terms for the autumn catalogue.",
     "Montaña Sports", "They signed with a competitor on price."),
    (EscalationKind.sales_lead, 20, 30, (Outcome.won, 189_500),
     "Hiking guide company wants jackets for 25 guides.",
     "Pirineo Guides", "Paid; delivery next week."),
    (EscalationKind.complaint, 6, 2, None,
     "Customer says the size chart on Instagram differs from the web shop.",
     "@ana.sube", "Checking with e-commerce which chart is right."),
    (EscalationKind.complaint, 0.3, None, None,
     "Broken zip on a new backpack; customer tagged us in a story with 3k views.",
     "@pau.outdoors", ""),
    (EscalationKind.sales_lead, 0.05, None, None,
     "School asks for a quote for 120 rain jackets for a trekking trip.",
     "IES Sierra Nevada", ""),
)  # fmt: skip


def _northwind_escalations(session: Session, engagement: Engagement) -> None:
    _escalations(session, engagement, "manager@northwind.example", NORTHWIND_ESCALATIONS)


def _bluepeak_escalations(session: Session, engagement: Engagement) -> None:
    _escalations(
        session,
        engagement,
        "manager@bluepeak.example",
        (
            (
                EscalationKind.complaint,
                9,
                5,
                (Outcome.resolved, None),
                "LinkedIn comment: a retailer says its last order arrived incomplete.",
                "Deportes Norte (LinkedIn)",
                "Missing items shipped.",
            ),
            (
                EscalationKind.complaint,
                2,
                3,
                None,
                "X user reports a rude reply from a store employee.",
                "@lucia_runs",
                "Store manager informed.",
            ),
        ),
    )


def _escalations(
    session: Session,
    engagement: Engagement,
    manager_email: str,
    story: Story,
) -> None:
    existing = session.exec(
        select(Escalation).where(Escalation.engagement_id == engagement.id)
    ).first()
    if existing is not None:
        return
    manager = _actor(session, manager_email)
    reviewer = _actor(session, "reviewer@acme.example")
    settings = get_settings()
    now = utcnow()
    for index, (kind, days_ago, ack_hours, resolution, summary, customer, note) in enumerate(story):
        agency_side = engagements.access(session, manager, engagement.id)
        try:
            escalation = escalations.open_escalation(
                session,
                settings,
                agency_side,
                EscalationCreate(
                    kind=kind,
                    conversation_url=(
                        f"https://social.example/acme/{engagement.id.hex[:8]}/conversations/{index}"
                    ),
                    summary=summary,
                    customer=customer,
                ),
            )
        except Conflict:
            continue  # this engagement has no route for the kind: the story skips it
        opened = now - timedelta(days=days_ago)
        escalation.opened_at = opened
        escalation.sla_due_at = opened + timedelta(hours=escalation.sla_hours)
        session.add(escalation)
        session.flush()
        found = escalations.access(session, reviewer, escalation.id)
        if ack_hours is not None:
            escalations.acknowledge(session, found, AcknowledgeIn())
            session.refresh(escalation)
            escalation.acknowledged_at = min(opened + timedelta(hours=ack_hours), now)
        if note:
            escalations.add_note(session, found, NoteIn(body=note))
        if resolution is not None:
            outcome, revenue = resolution
            escalations.resolve(session, found, ResolveIn(outcome=outcome, revenue_minor=revenue))
            session.refresh(escalation)
            escalation.acknowledged_at = min(opened + timedelta(hours=ack_hours or 1), now)
            escalation.resolved_at = min(opened + timedelta(days=2), now - timedelta(hours=1))
        escalation.updated_at = escalation.resolved_at or escalation.acknowledged_at or opened
        for row in escalation_repository.notes_of(session, escalation):
            row.created_at = escalation.acknowledged_at or opened + timedelta(hours=1)
            session.add(row)
        session.add(escalation)
        session.flush()
