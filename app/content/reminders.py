"""The periodic sweep that holds the brand to its review times, and marks missed slots.

Run by the job runner every few minutes (``register``), and callable directly with
a ``now`` (tests, ``brandkeep`` tooling). For each brand, in a session scoped to
that brand alone (row-level security sees nothing else):

1. **Missed slots**: a post not yet approved whose planned time has passed is
   marked ``missed_slot_at`` and the mark goes on the engagement's audit chain.
   Approval stays refused until a person chooses a new time (content/schedule.py).
2. **Overdue reviews**: a post in review past its due time reminds the people the
   open step still waits for, every ``review_reminder_hours``; after
   ``review_reminders_before_escalation`` reminders the brand's leads and owners
   are told instead, once per round.

Each reminder is claimed by a conditional update on the post (its count and
round as read), so two sweeps running at once (two workers, a slow one and the
next) send it once. The notification, the claim and the audit entry share one
transaction: a failure sends nothing and claims nothing.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from huey import Huey, crontab
from sqlmodel import Session

from app.accounts import repository as accounts_repository
from app.audit import service as audit
from app.config import Settings
from app.content import repository, schedule
from app.content import service as content
from app.content.models import Post
from app.content.schemas import PostCreate
from app.db import Database, utcnow
from app.engagements import service as engagements
from app.engagements.models import Channel, Engagement
from app.notifications.service import NotificationKind, notify
from app.tenancy import repository as tenancy_repository
from app.tenancy import sweeps
from app.tenancy.models import Role
from app.tenancy.service import Actor, actor_for

log = logging.getLogger("brandkeep.reminders")

SWEEP_TASK = "brandkeep.review_reminders"
# Who hears about a review the reviewers let slip.
ESCALATION_ROLES = (Role.lead, Role.owner)
SYSTEM_ACTOR = "Brandkeep"


@dataclass
class SweepReport:
    """What one sweep did (post ids), for logs and tests."""

    missed: list[uuid.UUID] = field(default_factory=list)
    reminded: list[uuid.UUID] = field(default_factory=list)
    escalated: list[uuid.UUID] = field(default_factory=list)


def register(huey: Huey, database: Database, settings: Settings) -> None:
    """Run the sweep on the job runner every five minutes (and once when it starts)."""

    def run() -> None:
        report = sweep(database, settings)
        if report.missed or report.reminded or report.escalated:
            log.info(
                "review sweep: %d missed slots, %d reminders, %d escalations",
                len(report.missed),
                len(report.reminded),
                len(report.escalated),
            )

    huey.periodic_task(crontab(minute="*/5"), name=SWEEP_TASK)(run)


def sweep(database: Database, settings: Settings, *, now: datetime | None = None) -> SweepReport:
    now = now or utcnow()
    report = SweepReport()
    sweeps.for_each_brand(
        database,
        lambda session, brand_id: _sweep_brand(session, settings, brand_id, now, report),
        what="the review sweep",
    )
    return report


def _sweep_brand(
    session: Session, settings: Settings, brand_id: uuid.UUID, now: datetime, report: SweepReport
) -> None:
    for post, engagement in repository.slots_passed_of_brand(
        session, brand_id, now, schedule.AWAITING_APPROVAL
    ):
        if repository.mark_missed(session, post, now):
            _audit(
                session,
                engagement,
                post,
                "post_slot_missed",
                {
                    "version": post.current_version,
                    "planned_at": post.planned_at.isoformat() if post.planned_at else None,
                    "status": str(post.status),
                },
            )
            report.missed.append(post.id)
    interval = timedelta(hours=settings.review_reminder_hours)
    limit = settings.review_reminders_before_escalation
    leads: list[uuid.UUID] | None = None
    for post, engagement in repository.overdue_of_brand(session, brand_id, now):
        if post.escalated_at is not None:
            continue  # the leads have it now; reminding the reviewers again is noise
        if post.last_reminder_at is not None and post.last_reminder_at + interval > now:
            continue
        escalate = post.reminders_sent >= limit
        if escalate:
            if leads is None:
                leads = _leads(session, brand_id)
            recipients = leads
        else:
            review = content.review_of(session, post)
            recipients = [person for person, _name in review.waiting_on] if review else []
        if not repository.claim_reminder(session, post, now, escalate=escalate):
            continue  # another sweep sent it
        due = post.review_due_at
        late = now - due if due is not None else timedelta(0)
        note = _late_note(late)
        notify(
            session,
            kind=NotificationKind.overdue,
            recipient_ids=recipients,
            post=post,
            actor_name=SYSTEM_ACTOR,
            settings=settings,
            note=note,
        )
        _audit(
            session,
            engagement,
            post,
            "review_escalated" if escalate else "review_reminder_sent",
            {
                "round": post.rounds,
                "step": post.review_step,
                "reminder": post.reminders_sent + (0 if escalate else 1),
                "review_due_at": due.isoformat() if due else None,
                "recipients": sorted(str(person) for person in recipients),
            },
        )
        (report.escalated if escalate else report.reminded).append(post.id)


def _late_note(late: timedelta) -> str:
    # Stored on the notification as plain text (it is shown to people of either
    # language), so it carries numbers only; the kind says what it is about.
    hours = int(late.total_seconds() // 3600)
    return f"+{hours // 24}d {hours % 24}h" if hours >= 24 else f"+{hours}h"


def _leads(session: Session, brand_id: uuid.UUID) -> list[uuid.UUID]:
    rows, _total = tenancy_repository.list_members(
        session, tenancy_repository.AccessibleOrganizationID(brand_id), limit=10000, offset=0
    )
    return [membership.user_id for membership, _user in rows if membership.role in ESCALATION_ROLES]


def _audit(
    session: Session, engagement: Engagement, post: Post, kind: str, data: dict[str, Any]
) -> None:
    """The sweep acts for nobody in particular: the entry names the system as its actor."""
    audit.append(
        session,
        organization_id=engagement.brand_id,
        engagement_id=engagement.id,
        actor_id=None,
        actor=SYSTEM_ACTOR,
        kind=kind,
        subject_type="post",
        subject_id=post.id,
        data=data,
    )


# --- demo data -----------------------------------------------------------------------

DEMO_ENGAGEMENT = "Social media 2026"
DEMO_CREATOR = "creator@northwind.example"
DEMO_OVERDUE = "Trail running playlist"
DEMO_MISSED = "Sunrise hike live"


def load_demo(session: Session, lead: Actor) -> None:
    """An overdue review and a missed slot among the demo's posts (``brandkeep demo``).

    The rows are moved back in time after submission, as if the brand had let them
    sit: the first sweep after the demo starts reminds the reviewers of the overdue
    one, and the missed one asks for a new time before it can be approved.
    """
    engagement = next(
        (
            summary.engagement
            for summary in engagements.list_engagements(session, lead, limit=200)[0]
            if summary.engagement.name == DEMO_ENGAGEMENT
        ),
        None,
    )
    creator_user = accounts_repository.get_user_by_email(session, DEMO_CREATOR)
    if engagement is None or creator_user is None:
        return
    creator = actor_for(session, creator_user)
    agency_side = engagements.access(session, creator, engagement.id)
    titles = {post.title for post in content.list_posts(session, agency_side)}
    now = utcnow().replace(microsecond=0)
    hours = schedule.review_hours(engagement)
    plans = (
        # (title, body, planned, submitted hours ago)
        (
            DEMO_OVERDUE,
            "Our team's 10 favourite songs for the long climb. What's on yours? #AcmeTrail",
            now + timedelta(days=6),
            hours + 30,
        ),
        (
            DEMO_MISSED,
            "Live from the ridge at 7:00: the sun comes up over the valley. Join us.",
            now - timedelta(hours=6),
            20,
        ),
    )
    for title, body, planned, submitted_ago in plans:
        if title in titles:
            continue
        post = content.create_post(
            session,
            agency_side,
            PostCreate(
                title=title,
                body=body,
                channels=[Channel.instagram],
                planned_at=planned,
                timezone="Europe/Madrid",
                campaign="Spring trail launch",
                content_category="community",
            ),
        )
        content.submit(session, content.access(session, creator, post.id))
        session.refresh(post)
        submitted = now - timedelta(hours=submitted_ago)
        post.submitted_at = post.first_submitted_at = submitted
        post.review_due_at = submitted + timedelta(hours=hours)
        session.add(post)
    session.flush()
