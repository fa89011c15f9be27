"""The demo's review stories beyond one step: Bluepeak's posts under a two-step policy
(marketing, then legal through a guest link still waiting), and an earned relaxation
on Northwind's engagement with one post Brandkeep approved by itself.

Run after the demo's engagements and Northwind's posts exist (``app.demo``); each
part adds nothing when its data is there already, so loading the demo twice changes
nothing. The guest link's mail goes through the outbox like any other: in
development the link can be opened from the development outbox (``/dev/outbox``).

The services stamp everything with the present; the story spreads over weeks. Each
step runs inside ``happened(...)``, which moves the posts' own timestamps back to the
moment the story gives it (``app.demo`` uses it for Northwind's posts too). The audit
chain keeps the moment each entry was really written: its hash covers it, so the chain
still verifies.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from app.accounts import repository as accounts_repository
from app.config import get_settings
from app.content import guest, relaxation
from app.content import service as content
from app.content.models import Decision, DecisionKind, Post, PostStatus, PostVersion
from app.content.schemas import DecisionIn, PostCreate, PostUpdate
from app.db import utcnow
from app.engagements import service as engagements
from app.engagements.models import Channel, Engagement
from app.engagements.schemas import PolicyIn, PolicyStepIn
from app.tenancy.service import Actor, actor_for

LEGAL_GUEST = "legal@acme.example"
RELAXED_CATEGORY = "trail tips"
# The spot-check draws of the demo come from this seed, so every load tells the same
# story: the first tip after the relaxation is approved by Brandkeep (first draw 3 of 0-4).
SPOT_CHECK_SEED = 0

# (title, body, what happens to it) under Bluepeak's two-step policy.
BLUEPEAK_POSTS = (
    ("Meet the community team", "Say hello to the people behind @acmeoutdoor.", "draft"),
    ("LinkedIn AMA", "Ask our gear designers anything, Thursday at 17:00 CET.", "in_review"),
    ("Ambassador programme", "Become an Acme ambassador: free gear, early trails, real say.",
     "legal_guest"),
    ("Member stories week", "Five members, five summits. Share yours with #AcmeSummits.",
     "changes_requested"),
    ("Trail clean-up day", "Join us on 12 April to clean the Montseny trails. Bags on us.",
     "revised"),
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


# --- the story's clock ----------------------------------------------------------------

POST_STAMPS = ("created_at", "updated_at", "submitted_at", "first_submitted_at", "decided_at",
               "voided_at")  # fmt: skip


@contextmanager
def happened(session: Session, engagement_id: uuid.UUID, at: datetime) -> Iterator[None]:
    """Move what the block writes on the engagement's posts back to ``at``.

    Versions and decisions written in the block, and the posts' columns it stamped, take
    the moment ``at``; a review clock it opened runs from ``at``. Steps of one post must
    be told in time order, each in its own block.
    """
    mark = utcnow()
    assert at <= mark, "the demo's history is in the past"
    posts = session.exec(select(Post).where(Post.engagement_id == engagement_id)).all()
    due_before = {post.id: post.review_due_at for post in posts}
    yield
    session.flush()
    session.expire_all()  # the services update posts with conditional UPDATEs
    for model in (PostVersion, Decision):
        written = select(model).where(
            model.engagement_id == engagement_id, col(model.created_at) >= mark
        )
        for row in session.exec(written).all():
            row.created_at = at
            session.add(row)
    for post in session.exec(select(Post).where(Post.engagement_id == engagement_id)).all():
        for name in POST_STAMPS:
            value = getattr(post, name)
            if value is not None and value >= mark:
                setattr(post, name, at)
        due = post.review_due_at
        if due is not None and due != due_before.get(post.id):
            post.review_due_at = due - (mark - at)
        session.add(post)
    session.flush()


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
    now = utcnow()
    planned = now.replace(hour=10, minute=0, second=0, microsecond=0)
    for index, (title, body, fate) in enumerate(BLUEPEAK_POSTS):
        created = now - timedelta(days=17 - 2 * index)
        with happened(session, engagement.id, created):
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
        # The ones still open were sent lately; the others a few hours after they were written.
        submitted = {
            "in_review": now - timedelta(hours=20),
            "changes_requested": now - timedelta(hours=30),
            "legal_guest": now - timedelta(hours=40),
        }.get(fate, created + timedelta(hours=3))
        with happened(session, engagement.id, submitted):
            content.submit(session, content.access(session, manager, post.id))
        if fate == "in_review":
            continue
        if fate == "withdrawn":
            with happened(session, engagement.id, submitted + timedelta(hours=2)):
                content.withdraw(session, content.access(session, manager, post.id))
            continue
        if fate == "changes_requested":
            # Asked this morning: Bluepeak's answer is not due yet.
            with happened(session, engagement.id, now - timedelta(hours=10)):
                _decide(
                    session, reviewer, post.id, DecisionKind.request_changes,
                    "Name the five members only once they have signed their release.",
                )  # fmt: skip
            continue
        decided = submitted + timedelta(hours=8 + 5 * index)  # marketing's answer
        if fate == "revised":
            with happened(session, engagement.id, decided):
                _decide(
                    session, reviewer, post.id, DecisionKind.request_changes,
                    "Say where to meet and at what time.",
                )  # fmt: skip
            # Bluepeak answers change requests within hours.
            revised = decided + timedelta(hours=3)
            with happened(session, engagement.id, revised):
                found = content.access(session, manager, post.id)
                content.edit_post(
                    session, found, expected_version=found.post.version,
                    data=PostUpdate(body=body + " Meeting point: Sant Marçal car park, 9:00."),
                )  # fmt: skip
            with happened(session, engagement.id, revised + timedelta(minutes=20)):
                content.submit(session, content.access(session, manager, post.id))
            decided = revised + timedelta(hours=9)
        with happened(session, engagement.id, decided):
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
            continue
        with happened(session, engagement.id, decided + timedelta(hours=5)):
            if fate == "rejected":
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

    now = utcnow()
    for earlier in range(3):
        sent = now - timedelta(days=30 - 8 * earlier)
        with happened(session, engagement.id, sent):
            submitted = submit_tip()
        with happened(session, engagement.id, sent + timedelta(hours=14 + 5 * earlier)):
            _decide(session, reviewer, submitted.id, DecisionKind.approve)
    relaxation.enable(
        session,
        engagements.access(session, lead, brand_side.engagement.id),
        category=RELAXED_CATEGORY,
        threshold=3,
        spot_check_rate=5,
    )
    # One in five is still spot-checked (and stays in review): submit until one is not.
    # The draws are seeded here, so the demo tells the same story on every load.
    draws = random.Random(SPOT_CHECK_SEED)  # noqa: S311 - a replayable demo, not a secret
    with relaxation.drawing(draws.randrange):
        for _ in range(len(TRAIL_TIPS) - 3):
            submitted = submit_tip()
            if submitted.status == PostStatus.approved:
                break
