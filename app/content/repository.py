"""Queries about posts, always through an engagement the caller may see.

State changes of a post are conditional updates (``… WHERE id = :id AND version = :v
AND status = :expected``): whoever loses a race changes nothing and is told so.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, or_, select

from app.content.models import Decision, DecisionKind, Post, PostMedia, PostStatus, PostVersion
from app.engagements.models import Engagement
from app.tenancy.models import Organization, OrgKind
from app.tenancy.repository import AccessibleOrganizationID


def get_post(
    session: Session, post_id: uuid.UUID, accessible: frozenset[AccessibleOrganizationID]
) -> tuple[Post, Engagement] | None:
    if not accessible:
        return None
    ids = list(accessible)
    row = session.exec(
        select(Post, Engagement)
        .join(
            Engagement,
            sa.and_(
                col(Engagement.id) == Post.engagement_id, col(Engagement.brand_id) == Post.brand_id
            ),
        )
        .where(
            Post.id == post_id,
            or_(col(Engagement.brand_id).in_(ids), col(Engagement.agency_id).in_(ids)),
        )
    ).first()
    return (row[0], row[1]) if row else None


def posts_of(
    session: Session, engagement: Engagement, status: PostStatus | None = None
) -> Sequence[Post]:
    query = select(Post).where(
        Post.brand_id == engagement.brand_id, Post.engagement_id == engagement.id
    )
    if status is not None:
        query = query.where(Post.status == status)
    return session.exec(query.order_by(col(Post.created_at).desc())).all()


def in_review_for_brands(
    session: Session, brand_ids: Sequence[AccessibleOrganizationID]
) -> Sequence[tuple[Post, Engagement]]:
    """Posts waiting for the brands' decisions, oldest submission first."""
    if not brand_ids:
        return []
    rows = session.exec(
        select(Post, Engagement)
        .join(
            Engagement,
            sa.and_(
                col(Engagement.id) == Post.engagement_id, col(Engagement.brand_id) == Post.brand_id
            ),
        )
        .where(col(Post.brand_id).in_(list(brand_ids)), Post.status == PostStatus.in_review)
        .order_by(col(Post.submitted_at), col(Post.id))
    ).all()
    return [(post, engagement) for post, engagement in rows]


def live_decisions_by(
    session: Session, posts: Sequence[Post], decider_id: uuid.UUID
) -> set[tuple[uuid.UUID, int, int]]:
    """(post, round, step) where this person has a decision that holds, for many posts in
    one query (the review queue would otherwise ask once per post)."""
    if not posts:
        return set()
    rows = session.exec(
        select(Decision.post_id, Decision.round, Decision.step).where(
            col(Decision.brand_id).in_({post.brand_id for post in posts}),
            col(Decision.post_id).in_([post.id for post in posts]),
            Decision.decider_id == decider_id,
            col(Decision.voided_at).is_(None),
        )
    ).all()
    return {(post_id, round_, step) for post_id, round_, step in rows}


def current_hashes(session: Session, posts: Sequence[Post]) -> dict[uuid.UUID, str]:
    """Each post's current version's content hash, in one query."""
    if not posts:
        return {}
    rows = session.exec(
        select(PostVersion.post_id, PostVersion.content_hash)
        .join(
            Post,
            sa.and_(
                col(Post.brand_id) == PostVersion.brand_id,
                col(Post.id) == PostVersion.post_id,
                col(Post.current_version) == PostVersion.number,
            ),
        )
        .where(
            col(PostVersion.brand_id).in_({post.brand_id for post in posts}),
            col(PostVersion.post_id).in_([post.id for post in posts]),
        )
    ).all()
    return dict(rows)


def versions_of(session: Session, post: Post) -> Sequence[PostVersion]:
    return session.exec(
        select(PostVersion)
        .where(PostVersion.brand_id == post.brand_id, PostVersion.post_id == post.id)
        .order_by(col(PostVersion.number))
    ).all()


def get_version(session: Session, post: Post, number: int) -> PostVersion | None:
    return session.exec(
        select(PostVersion).where(
            PostVersion.brand_id == post.brand_id,
            PostVersion.post_id == post.id,
            PostVersion.number == number,
        )
    ).first()


def decisions_of(session: Session, post: Post) -> Sequence[Decision]:
    return session.exec(
        select(Decision)
        .where(Decision.brand_id == post.brand_id, Decision.post_id == post.id)
        .order_by(col(Decision.created_at), col(Decision.id))
    ).all()


def deciders_at(session: Session, post: Post, *, round: int, step: int) -> set[uuid.UUID]:
    """Who has decided (and was not voided) at this step of this round."""
    rows = session.exec(
        select(Decision.decider_id).where(
            Decision.brand_id == post.brand_id,
            Decision.post_id == post.id,
            Decision.round == round,
            Decision.step == step,
            col(Decision.voided_at).is_(None),
        )
    ).all()
    return {row for row in rows if row is not None}


def votes_at(
    session: Session, post: Post, *, round: int, step: int
) -> Sequence[tuple[uuid.UUID | None, str]]:
    """(decider, decision) of the decisions that hold at this step of this round: who
    has decided and how many approved, in one query."""
    rows = session.exec(
        select(Decision.decider_id, Decision.decision).where(
            Decision.brand_id == post.brand_id,
            Decision.post_id == post.id,
            Decision.round == round,
            Decision.step == step,
            col(Decision.voided_at).is_(None),
        )
    ).all()
    return [(decider, str(kind)) for decider, kind in rows]


def open_votes(
    session: Session, posts: Sequence[Post]
) -> dict[uuid.UUID, list[tuple[uuid.UUID | None, str]]]:
    """``votes_at`` for many posts at once, each at its own open round and step."""
    if not posts:
        return {}
    at = {post.id: (post.rounds, post.review_step) for post in posts}
    rows = session.execute(
        sa.select(
            col(Decision.post_id),
            col(Decision.round),
            col(Decision.step),
            col(Decision.decider_id),
            col(Decision.decision),
        ).where(
            col(Decision.brand_id).in_({post.brand_id for post in posts}),
            col(Decision.post_id).in_(list(at)),
            col(Decision.voided_at).is_(None),
        )
    ).all()
    votes: dict[uuid.UUID, list[tuple[uuid.UUID | None, str]]] = {}
    for post_id, round_, step, decider, kind in rows:
        if at[post_id] == (round_, step):
            votes.setdefault(post_id, []).append((decider, str(kind)))
    return votes


def count_approvals(session: Session, post: Post, *, round: int, step: int) -> int:
    return session.exec(
        select(func.count())
        .select_from(Decision)
        .where(
            Decision.brand_id == post.brand_id,
            Decision.post_id == post.id,
            Decision.round == round,
            Decision.step == step,
            Decision.decision == DecisionKind.approve,
            col(Decision.voided_at).is_(None),
        )
    ).one()


def transition(
    session: Session,
    post_id: uuid.UUID,
    *,
    expected_version: int,
    expected_status: PostStatus,
    **values: Any,
) -> bool:
    """Conditional update: applies only if nobody changed the post since it was read."""
    result = session.execute(
        sa.update(Post)
        .where(
            col(Post.id) == post_id,
            col(Post.version) == expected_version,
            col(Post.status) == expected_status,
        )
        .values(version=Post.version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def claim_for_decision(
    session: Session, post_id: uuid.UUID, *, round: int, step: int, number: int, at: datetime
) -> bool:
    """Lock the post for one decision, if it is still at this round, step and version.

    The row lock (held to the end of the transaction) queues deciders on the same
    post, so each counts the others' committed decisions; a waiter whose post was
    edited or moved on meanwhile matches no row and is told to reload.
    """
    result = session.execute(
        sa.update(Post)
        .where(
            col(Post.id) == post_id,
            col(Post.status) == PostStatus.in_review,
            col(Post.rounds) == round,
            col(Post.review_step) == step,
            col(Post.current_version) == number,
        )
        .values(decided_at=at)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def void_decisions(session: Session, post: Post, at: datetime) -> int:
    result = session.execute(
        sa.update(Decision)
        .where(
            col(Decision.brand_id) == post.brand_id,
            col(Decision.post_id) == post.id,
            col(Decision.voided_at).is_(None),
        )
        .values(voided_at=at)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# --- due times, reminders, missed slots, the calendar (content/schedule.py) -------


def _with_engagement() -> Any:
    return select(Post, Engagement).join(
        Engagement,
        sa.and_(
            col(Engagement.id) == Post.engagement_id, col(Engagement.brand_id) == Post.brand_id
        ),
    )


def in_review_of(
    session: Session, accessible: Sequence[AccessibleOrganizationID]
) -> Sequence[tuple[Post, Engagement]]:
    """Posts in review on the organizations' engagements (either side), soonest due first."""
    if not accessible:
        return []
    ids = list(accessible)
    rows = session.exec(
        _with_engagement()
        .where(
            or_(col(Engagement.brand_id).in_(ids), col(Engagement.agency_id).in_(ids)),
            Post.status == PostStatus.in_review,
        )
        .order_by(col(Post.review_due_at), col(Post.submitted_at), col(Post.id))
    ).all()
    return [(post, engagement) for post, engagement in rows]


def planned_between(
    session: Session,
    accessible: Sequence[AccessibleOrganizationID],
    start: datetime,
    end: datetime,
    statuses: Sequence[PostStatus],
    engagement_id: uuid.UUID | None = None,
) -> Sequence[tuple[Post, Engagement]]:
    """Posts planned in [start, end) of the engagements the organizations take part in."""
    if not accessible:
        return []
    ids = list(accessible)
    query = _with_engagement().where(
        or_(col(Engagement.brand_id).in_(ids), col(Engagement.agency_id).in_(ids)),
        col(Post.planned_at) >= start,
        col(Post.planned_at) < end,
        col(Post.status).in_(list(statuses)),
    )
    if engagement_id is not None:
        query = query.where(Post.engagement_id == engagement_id)
    rows = session.exec(query.order_by(col(Post.planned_at), col(Post.id))).all()
    return [(post, engagement) for post, engagement in rows]


def count_overdue(session: Session, engagement: Engagement, now: datetime) -> int:
    return session.exec(
        select(func.count())
        .select_from(Post)
        .where(
            Post.brand_id == engagement.brand_id,
            Post.engagement_id == engagement.id,
            Post.status == PostStatus.in_review,
            col(Post.review_due_at) <= now,
        )
    ).one()


def brand_ids(session: Session) -> Sequence[uuid.UUID]:
    """Every brand: the sweep works through them one tenant at a time."""
    return session.exec(select(Organization.id).where(Organization.kind == OrgKind.brand)).all()


def overdue_of_brand(
    session: Session, brand_id: uuid.UUID, now: datetime
) -> Sequence[tuple[Post, Engagement]]:
    rows = session.exec(
        _with_engagement()
        .where(
            Post.brand_id == brand_id,
            Post.status == PostStatus.in_review,
            col(Post.review_due_at) <= now,
        )
        .order_by(col(Post.review_due_at), col(Post.id))
    ).all()
    return [(post, engagement) for post, engagement in rows]


def slots_passed_of_brand(
    session: Session, brand_id: uuid.UUID, now: datetime, statuses: Sequence[PostStatus]
) -> Sequence[tuple[Post, Engagement]]:
    """Posts not yet approved whose planned time has passed and is not yet marked missed."""
    rows = session.exec(
        _with_engagement()
        .where(
            Post.brand_id == brand_id,
            col(Post.status).in_(list(statuses)),
            col(Post.planned_at) <= now,
            col(Post.missed_slot_at).is_(None),
        )
        .order_by(col(Post.planned_at), col(Post.id))
    ).all()
    return [(post, engagement) for post, engagement in rows]


def mark_missed(session: Session, post: Post, now: datetime) -> bool:
    """Record the missed slot once, and only if the planned time was not changed meanwhile.

    Bookkeeping, not an edit: the post's ``version`` (its ETag) stays, so nobody's
    save is refused because the sweep passed by.
    """
    result = session.execute(
        sa.update(Post)
        .where(
            col(Post.id) == post.id,
            col(Post.brand_id) == post.brand_id,
            col(Post.current_version) == post.current_version,
            col(Post.missed_slot_at).is_(None),
        )
        .values(missed_slot_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def claim_reminder(session: Session, post: Post, now: datetime, *, escalate: bool) -> bool:
    """Take the next reminder (or the escalation) of this round, if no other sweep took it.

    Conditional on the count and the round as read, so two sweeps running at once
    send it once: the loser matches no row.
    """
    values: dict[str, Any] = (
        {"escalated_at": now} if escalate else {"reminders_sent": post.reminders_sent + 1}
    )
    result = session.execute(
        sa.update(Post)
        .where(
            col(Post.id) == post.id,
            col(Post.brand_id) == post.brand_id,
            col(Post.status) == PostStatus.in_review,
            col(Post.rounds) == post.rounds,
            col(Post.reminders_sent) == post.reminders_sent,
            col(Post.escalated_at).is_(None),
        )
        .values(last_reminder_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def media_of(session: Session, post: Post) -> Sequence[PostMedia]:
    """Every file ever uploaded to the post (earlier versions may still name them)."""
    return session.exec(
        select(PostMedia)
        .where(PostMedia.brand_id == post.brand_id, PostMedia.post_id == post.id)
        .order_by(col(PostMedia.created_at), col(PostMedia.id))
    ).all()


def get_media(session: Session, post: Post, sha256: str) -> PostMedia | None:
    return session.exec(
        select(PostMedia).where(
            PostMedia.brand_id == post.brand_id,
            PostMedia.post_id == post.id,
            PostMedia.sha256 == sha256,
        )
    ).first()
