"""Queries about result rows and imports, always within one engagement the caller sees."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from app.accounts.models import User
from app.content.models import Post
from app.engagements.models import Engagement
from app.results.models import ImportState, ResultImport, ResultRow, ResultStatus
from app.tenancy.repository import AccessibleOrganizationID


def _visible(accessible: frozenset[AccessibleOrganizationID]) -> Any:
    ids = list(accessible)
    return sa.or_(col(Engagement.brand_id).in_(ids), col(Engagement.agency_id).in_(ids))


def get_row(
    session: Session, row_id: uuid.UUID, accessible: frozenset[AccessibleOrganizationID]
) -> tuple[ResultRow, Engagement] | None:
    if not accessible:
        return None
    found = session.exec(
        select(ResultRow, Engagement)
        .join(Engagement, col(Engagement.id) == col(ResultRow.engagement_id))
        .where(ResultRow.id == row_id, col(Engagement.brand_id) == col(ResultRow.brand_id))
        .where(_visible(accessible))
    ).first()
    return (found[0], found[1]) if found else None


def get_import(
    session: Session, engagement: Engagement, import_id: uuid.UUID
) -> ResultImport | None:
    return session.exec(
        select(ResultImport).where(
            ResultImport.brand_id == engagement.brand_id,
            ResultImport.engagement_id == engagement.id,
            ResultImport.id == import_id,
        )
    ).first()


def imports_of(session: Session, engagement: Engagement, limit: int = 20) -> Sequence[ResultImport]:
    return session.exec(
        select(ResultImport)
        .where(
            ResultImport.brand_id == engagement.brand_id,
            ResultImport.engagement_id == engagement.id,
        )
        .order_by(col(ResultImport.created_at).desc())
        .limit(limit)
    ).all()


def done_import_with_hash(
    session: Session, engagement: Engagement, sha256: str
) -> ResultImport | None:
    return session.exec(
        select(ResultImport).where(
            ResultImport.brand_id == engagement.brand_id,
            ResultImport.engagement_id == engagement.id,
            ResultImport.sha256 == sha256,
            ResultImport.state == "done",
        )
    ).first()


def _current(engagement: Engagement) -> list[Any]:
    return [
        ResultRow.brand_id == engagement.brand_id,
        ResultRow.engagement_id == engagement.id,
        col(ResultRow.superseded_at).is_(None),
    ]


def current_rows(
    session: Session,
    engagement: Engagement,
    *,
    metric: str | None = None,
    period_start: date | None = None,
    month: tuple[date, date] | None = None,
    status: ResultStatus | None = None,
    post_id: uuid.UUID | None = None,
    limit: int,
    offset: int,
) -> tuple[Sequence[ResultRow], int]:
    conditions = _current(engagement)
    if month:
        conditions.append(col(ResultRow.period_start).between(*month))
    if metric:
        conditions.append(ResultRow.metric == metric)
    if period_start:
        conditions.append(ResultRow.period_start == period_start)
    if status:
        conditions.append(ResultRow.status == status)
    if post_id:
        conditions.append(ResultRow.post_id == post_id)
    total = session.exec(select(func.count()).select_from(ResultRow).where(*conditions)).one()
    rows = session.exec(
        select(ResultRow)
        .where(*conditions)
        .order_by(
            col(ResultRow.period_start).desc(),
            col(ResultRow.metric),
            col(ResultRow.channel),
            col(ResultRow.post_ref),
            col(ResultRow.id),
        )
        .limit(limit)
        .offset(offset)
    ).all()
    return rows, total


def revisions_of(session: Session, row: ResultRow) -> Sequence[ResultRow]:
    return session.exec(
        select(ResultRow)
        .where(
            ResultRow.brand_id == row.brand_id,
            ResultRow.engagement_id == row.engagement_id,
            ResultRow.row_key == row.row_key,
        )
        .order_by(col(ResultRow.revision).desc())
    ).all()


def totals(session: Session, engagement: Engagement) -> Sequence[Any]:
    """Current rows summed by (metric, channel, period, source, level, status).

    The level says whether rows are engagement-wide (no post named) or per post, so
    that the caller can avoid counting the same impressions twice.
    """
    level = sa.case(
        (col(ResultRow.post_ref).is_(None) & col(ResultRow.post_id).is_(None), 0), else_=1
    )
    return session.exec(
        select(  # type: ignore[call-overload]
            ResultRow.metric,
            ResultRow.channel,
            ResultRow.period_start,
            ResultRow.period_end,
            ResultRow.source,
            level.label("level"),
            ResultRow.status,
            func.sum(ResultRow.value),
            func.count(),
        )
        .where(*_current(engagement))
        .group_by(
            ResultRow.metric,
            ResultRow.channel,
            ResultRow.period_start,
            ResultRow.period_end,
            ResultRow.source,
            level,
            ResultRow.status,
        )
    ).all()


def unmatched_refs(
    session: Session, engagement: Engagement, limit: int = 50
) -> tuple[Sequence[Any], int]:
    """Post references in current rows that name none of the engagement's posts."""
    conditions = [
        *_current(engagement),
        col(ResultRow.post_id).is_(None),
        col(ResultRow.post_ref).is_not(None),
    ]
    total = session.exec(
        select(func.count(sa.distinct(col(ResultRow.post_ref)))).where(*conditions)
    ).one()
    rows = session.exec(
        select(
            ResultRow.post_ref,
            func.min(ResultRow.channel),
            func.count(),
            func.min(ResultRow.platform_metric),
        )
        .where(*conditions)
        .group_by(ResultRow.post_ref)
        .order_by(func.count().desc(), col(ResultRow.post_ref))
        .limit(limit)
    ).all()
    return rows, total


def posts_for_matching(session: Session, engagement: Engagement) -> Sequence[Any]:
    return session.exec(
        select(Post.id, Post.permalink, Post.platform_post_id).where(
            Post.brand_id == engagement.brand_id, Post.engagement_id == engagement.id
        )
    ).all()


def posts_of(session: Session, engagement: Engagement) -> Sequence[Post]:
    return session.exec(
        select(Post)
        .where(Post.brand_id == engagement.brand_id, Post.engagement_id == engagement.id)
        .order_by(col(Post.planned_at).desc(), col(Post.created_at).desc())
    ).all()


def get_post(session: Session, engagement: Engagement, post_id: uuid.UUID) -> Post | None:
    return session.exec(
        select(Post).where(
            Post.brand_id == engagement.brand_id,
            Post.engagement_id == engagement.id,
            Post.id == post_id,
        )
    ).first()


def match_ref(session: Session, engagement: Engagement, post_ref: str, post_id: uuid.UUID) -> int:
    """Name the post of every row (all revisions) carrying this reference; the count."""
    result = session.execute(
        sa.update(ResultRow)
        .where(
            col(ResultRow.brand_id) == engagement.brand_id,
            col(ResultRow.engagement_id) == engagement.id,
            col(ResultRow.post_ref) == post_ref,
            col(ResultRow.post_id).is_(None),
        )
        .values(post_id=post_id)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def match_new_refs(
    session: Session, engagement: Engagement, post: Post, refs: Sequence[str]
) -> int:
    """After a post's permalink or id is recorded: rows naming it exactly are matched."""
    if not refs:
        return 0
    result = session.execute(
        sa.update(ResultRow)
        .where(
            col(ResultRow.brand_id) == engagement.brand_id,
            col(ResultRow.engagement_id) == engagement.id,
            col(ResultRow.post_ref).in_(list(refs)),
            col(ResultRow.post_id).is_(None),
        )
        .values(post_id=post.id)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def export_periods(session: Session, engagement: Engagement) -> Sequence[Any]:
    """Distinct (period start, end) of current, undisputed rows that came from files."""
    return session.exec(
        select(ResultRow.period_start, ResultRow.period_end)  # type: ignore[call-overload]
        .where(
            *_current(engagement),
            col(ResultRow.source).startswith("import:"),
            ResultRow.status != ResultStatus.disputed,
        )
        .distinct()
    ).all()


def metrics_present(session: Session, engagement: Engagement) -> set[str]:
    return set(
        session.exec(
            select(ResultRow.metric)
            .where(*_current(engagement), ResultRow.status != ResultStatus.disputed)
            .distinct()
        ).all()
    )


def has_rows(session: Session, engagement: Engagement) -> bool:
    return (
        session.exec(select(ResultRow.id).where(*_current(engagement)).limit(1)).first() is not None
    )


def people_named(session: Session, ids: set[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    """Names of the people who reported or decided on rows the caller already sees."""
    wanted = [user_id for user_id in ids if user_id is not None]
    if not wanted:
        return {}
    return {
        user.id: user.name
        for user in session.exec(select(User).where(col(User.id).in_(wanted))).all()
    }


def all_current_rows(session: Session, engagement: Engagement) -> Sequence[ResultRow]:
    return session.exec(
        select(ResultRow)
        .where(*_current(engagement))
        .order_by(
            col(ResultRow.period_start),
            col(ResultRow.metric),
            col(ResultRow.channel),
            col(ResultRow.post_ref),
        )
    ).all()


@dataclass(frozen=True)
class Summary:
    """What the stage checklist reads about an engagement's results (disputed rows left out)."""

    rows: int
    export_months: int  # calendar months with rows imported from platform exports
    metrics: frozenset[str]


def summarise(session: Session, engagement: Engagement) -> Summary:
    counted = [*_current(engagement), ResultRow.status != ResultStatus.disputed]
    rows = session.exec(select(func.count()).select_from(ResultRow).where(*counted)).one()
    months = {(start.year, start.month) for start, _end in export_periods(session, engagement)}
    return Summary(
        rows=rows,
        export_months=len(months),
        metrics=frozenset(metrics_present(session, engagement)),
    )


def stale_uploads(
    session: Session, brand_id: uuid.UUID, before: datetime
) -> Sequence[ResultImport]:
    """A brand's uploads never confirmed, or failed and never retried, since ``before``."""
    return session.exec(
        select(ResultImport).where(
            ResultImport.brand_id == brand_id,
            col(ResultImport.state).in_([ImportState.uploaded, ImportState.failed]),
            col(ResultImport.stored_path).is_not(None),
            col(ResultImport.created_at) < before,
        )
    ).all()


def delete_upload(session: Session, record: ResultImport, state: ImportState) -> bool:
    """Delete an import record if it is still in ``state``; whether it was."""
    result = session.execute(
        sa.delete(ResultImport).where(
            col(ResultImport.brand_id) == record.brand_id,
            col(ResultImport.id) == record.id,
            col(ResultImport.state) == state,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def forget_upload_file(session: Session, record: ResultImport, state: ImportState) -> bool:
    """Clear an import's stored file name if it is still in ``state``; whether it was."""
    result = session.execute(
        sa.update(ResultImport)
        .where(
            col(ResultImport.brand_id) == record.brand_id,
            col(ResultImport.id) == record.id,
            col(ResultImport.state) == state,
        )
        .values(stored_path=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
