"""The demo's review stories beyond one step: Bluepeak's posts under a two-step policy
(marketing, then legal through a guest link still waiting), and an earned relaxation
on Northwind's engagement with one post Brandkeep approved by itself.

Run after the demo's engagements and Northwind's posts exist (``app.demo``); each
part adds nothing when its data is there already, so loading the demo twice changes
nothing. The guest link's mail goes through the outbox like any other: in
development the link can be opened from the development outbox (``/dev/outbox``).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlmodel import Session

from app.accounts import repository as accounts_repository
from app.config import get_settings
from app.content import guest, relaxation
from app.content import service as content
from app.content.models import DecisionKind, Post, PostStatus
from app.content.schemas import DecisionIn, PostCreate
from app.db import utcnow
from app.engagements import service as engagements
from app.engagements.models import Channel, Engagement
from app.engagements.schemas import PolicyIn, PolicyStepIn
from app.tenancy.service import Actor, actor_for

LEGAL_GUEST = "legal@acme.example"
RELAXED_CATEGORY = "trail tips"

# (title, body, what happens to it) under Bluepeak's two-step policy.
BLUEPEAK_POSTS = (
    ("Meet the community team", "Say hello to the people behind @acmeoutdoor.", "draft"),
    ("LinkedIn AMA", "Ask our gear designers anything, Thursday at 17:00 CET.", "in_review"),
    ("Ambassador programme", "Become an Acme ambassador: free gear, early trails, real say.",
     "legal_guest"),
    ("Member stories week", "Five members, five summits. Share yours with #AcmeSummits.",
     "changes_requested"),
    ("Founders' note", "Why we still test every boot on the Picos de Europa.", "approved"),
    ("Giveaway", "Win a full kit: like, share and tag two friends!", "rejected"),
    ("Live Q&A reminder", "Tomorrow: live Q&A on trail safety.", "withdrawn"),
)  # fmt: skip

TRAIL_TIPS = (
    ("Tip: lacing for descents", "Lock your heel before a long descent: the surgeon's knot."),
    ("Tip: drying boots", "Never by the fire. Newspaper, and patience."),
    ("Tip: blister kit", "Tape, needle, alcohol wipe: the 30-gram kit that saves a day."),
    ("Tip: reading contour lines", "Close lines, steep slope. Here is how to plan around it."),
    ("Tip: layering for spring", "Base, mid, shell: how to dress for a 15-degree swing."),
    ("Tip: trekking poles", "Shorter going up, longer coming down."),
    ("Tip: hydration", "Half a litre an hour, more in the sun."),
)  # fmt: skip


def load(session: Session, lead: Actor) -> None:
    by_name = {
        summary.engagement.name: summary.engagement
        for summary in engagements.list_engagements(session, lead, limit=200)[0]
    }
    if "Community launch" in by_name:
        _bluepeak(session, lead, by_name["Community launch"])
    if "Social media 2026" in by_name:
        _relaxed_category(session, lead, by_name["Social media 2026"])


def _actor(session: Session, email: str) -> Actor:
    user = accounts_repository.get_user_by_email(session, email)
    assert user is not None
    return actor_for(session, user)


def _decide(
    session: Session, who: Actor, post_id: uuid.UUID, kind: DecisionKind, comment: str = ""
) -> None:
    found = content.access(session, who, post_id)
    version_hash = content.current_version(session, found.post).content_hash
    content.decide(
        session, found, DecisionIn(decision=kind, version_hash=version_hash, comment=comment)
    )


def _bluepeak(session: Session, lead: Actor, engagement: Engagement) -> None:
    """Marketing (the brand's reviewers), then legal (the lead, who asks legal as a guest)."""
    manager = _actor(session, "manager@bluepeak.example")
    agency_side = engagements.access(session, manager, engagement.id)
    if content.list_posts(session, agency_side):
        return
    brand_side = engagements.access(session, lead, engagement.id)
    engagements.set_policy(
        session,
        brand_side,
        expected_version=brand_side.engagement.version,
        data=PolicyIn(
            steps=[
                PolicyStepIn(name="Marketing", roles=["reviewer"], quorum="any"),
                PolicyStepIn(name="Legal", roles=["lead"], quorum="any"),
            ]
        ),
    )
    reviewer = _actor(session, "reviewer@acme.example")
    planned = utcnow().replace(hour=10, minute=0, second=0, microsecond=0)
    for index, (title, body, fate) in enumerate(BLUEPEAK_POSTS):
        post = content.create_post(
            session,
            engagements.access(session, manager, engagement.id),
            PostCreate(
                title=title, body=body, channels=[Channel.linkedin, Channel.x],
                link="https://acme.example/community",
                planned_at=planned + timedelta(days=4 + index), timezone="Europe/Madrid",
                campaign="Community launch", content_category="community",
            ),
        )  # fmt: skip
        if fate == "draft":
            continue
        content.submit(session, content.access(session, manager, post.id))
        if fate == "in_review":
            continue
        if fate == "withdrawn":
            content.withdraw(session, content.access(session, manager, post.id))
            continue
        if fate == "changes_requested":
            _decide(
                session, reviewer, post.id, DecisionKind.request_changes,
                "Name the five members only once they have signed their release.",
            )  # fmt: skip
            continue
        _decide(session, reviewer, post.id, DecisionKind.approve)  # marketing: done
        if fate == "legal_guest":
            guest.send(
                session,
                get_settings(),
                content.access(session, lead, post.id),
                email=LEGAL_GUEST,
                note="Free gear counts as a benefit: please check the ambassador terms.",
                language="en",
            )
        elif fate == "rejected":
            _decide(
                session, lead, post.id, DecisionKind.reject,
                "Giveaways need published terms and conditions first.",
            )  # fmt: skip
        else:
            _decide(session, lead, post.id, DecisionKind.approve)


def _relaxed_category(session: Session, lead: Actor, engagement: Engagement) -> None:
    """Three tips approved first time earn the category; then Brandkeep approves one itself."""
    brand_side = engagements.access(session, lead, engagement.id)
    if relaxation.standing(session, engagement, RELAXED_CATEGORY).relaxation is not None:
        return
    creator = _actor(session, "creator@northwind.example")
    reviewer = _actor(session, "reviewer@acme.example")
    planned = utcnow().replace(hour=8, minute=30, second=0, microsecond=0)
    tips = iter(enumerate(TRAIL_TIPS))

    def submit_tip() -> Post:
        index, (title, body) = next(tips)
        post = content.create_post(
            session,
            engagements.access(session, creator, engagement.id),
            PostCreate(
                title=title, body=body, channels=[Channel.instagram],
                planned_at=planned + timedelta(days=5 + 3 * index), timezone="Europe/Madrid",
                campaign="Trail tips", content_category=RELAXED_CATEGORY,
            ),
        )  # fmt: skip
        return content.submit(session, content.access(session, creator, post.id))

    for _ in range(3):
        submitted = submit_tip()
        _decide(session, reviewer, submitted.id, DecisionKind.approve)
    relaxation.enable(
        session,
        engagements.access(session, lead, brand_side.engagement.id),
        category=RELAXED_CATEGORY,
        threshold=3,
        spot_check_rate=5,
    )
    # One in five is still spot-checked (and stays in review): submit until one is not.
    for _ in range(len(TRAIL_TIPS) - 3):
        submitted = submit_tip()
        if submitted.status == PostStatus.approved:
            break
