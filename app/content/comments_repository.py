"""Scoped queries about comments: always through a post already loaded for the caller."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.content.comments_models import PostComment, Visibility
from app.content.models import Post


def comments_of(session: Session, post: Post, sides: Iterable[uuid.UUID]) -> Sequence[PostComment]:
    """The post's comments the caller may read: shared ones and their own side's internal ones."""
    return session.exec(
        select(PostComment)
        .where(
            PostComment.brand_id == post.brand_id,
            PostComment.post_id == post.id,
            sa.or_(
                col(PostComment.visibility) == Visibility.shared,
                col(PostComment.author_org_id).in_(list(sides)),
            ),
        )
        .order_by(col(PostComment.created_at), col(PostComment.id))
    ).all()
