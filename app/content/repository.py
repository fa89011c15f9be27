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

from app.content.models import Decision, DecisionKind, Post, PostStatus, PostVersion
from app.engagements.models import Engagement
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
