"""Rules of results: reporting rows, revisions, verifying and disputing, matching posts.

Every way in (the period form, the JSON API, a file import) goes through the same
``rules.Checker`` and the same set-wise writer (``bulk.Staging``), so the same row
sent twice changes nothing whichever way it came, and a changed value makes a new
revision with the old one kept. Each write lands on the engagement's audit chain.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from app.accounts.models import User
from app.audit import service as audit
from app.content.models import Post
from app.db import utcnow
from app.engagements import service as engagements
from app.engagements.models import Engagement
from app.engagements.service import EngagementAccess
from app.errors import N_, Conflict, FieldError, InvalidInput, NotFound
from app.results import repository
from app.results.bulk import Counts, Staging
from app.results.metrics import BY_KEY, Unit
from app.results.models import ResultImport, ResultRow, ResultStatus
from app.results.rules import Checker, IncomingRow, Problem, normalise_ref, post_index
from app.scorecards.rollups import refresh_rollups_for
from app.tenancy.service import Actor

NOT_FOUND = N_("No result row here, or it is not yours.")
MAX_API_ROWS = 10_000
# How many problems a refusal lists; the count says how many there were in all.
PROBLEMS_SHOWN = 100
STAGE_CHUNK = 5_000


class RowsRefused(InvalidInput):
    """Some rows broke the rules: nothing was written. ``problems`` says where."""

    def __init__(self, problems: list[Problem], total: int) -> None:
        super().__init__(
            N_("Nothing was saved: %(count)d problem(s) in the rows."), params={"count": total}
        )
        self.problems = problems
        self.total = total


@dataclass(frozen=True)
class ResultAccess:
    row: ResultRow
    granted: EngagementAccess


def access(session: Session, actor: Actor, row_id: uuid.UUID) -> ResultAccess:
    found = repository.get_row(session, row_id, actor.org_ids)
    row, granted = engagements.access_through(session, actor, found, NOT_FOUND)
    return ResultAccess(row, granted)


def _audit(
    session: Session,
    engagement: Engagement,
    actor: Actor | None,
    kind: str,
    subject_type: str,
    subject_id: Any,
    data: dict[str, Any],
) -> None:
    audit.append(
        session,
        organization_id=engagement.brand_id,
        engagement_id=engagement.id,
        actor_id=actor.user.id if actor else None,
        actor=f"{actor.user.name} <{actor.user.email}>" if actor else "Brandkeep",
        kind=kind,
        subject_type=subject_type,
        subject_id=subject_id,
        data=data,
    )


# --- writing ---------------------------------------------------------------------


def checker_for(session: Session, engagement: Engagement, source: str) -> Checker:
    posts = repository.posts_for_matching(session, engagement)
    return Checker(
        currency=engagement.currency,
        today=utcnow().date(),
        source=source,
        posts=post_index(posts),
        post_ids=frozenset(post_id for post_id, _permalink, _platform_id in posts),
    )


def lock_engagement_results(session: Session, engagement: Engagement) -> None:
    """One writer of an engagement's results at a time (PostgreSQL; SQLite has one anyway).

    Two imports of overlapping rows would otherwise both see "no current revision"
    and collide on the unique index; serialised, the second sees the first's rows.
    """
    if session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(
            hashlib.sha256(b"results:" + engagement.id.bytes).digest()[:8], "big", signed=True
        )
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def write_rows(
    session: Session,
    engagement: Engagement,
    rows: Iterable[tuple[Any, ...]],
    *,
    source: str,
    reported_by_id: uuid.UUID | None,
    import_id: uuid.UUID | None = None,
    chunk: int = STAGE_CHUNK,
) -> Counts:
    """Stage checked rows and merge them into ``result_row`` in the caller's transaction.

    Raises ``RowsRefused`` (the caller's transaction then rolls back) when the same
    key is given twice with different values.
    """
    lock_engagement_results(session, engagement)
    staging = Staging(session.connection())
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= chunk:
            staging.add(batch)
            batch = []
    staging.add(batch)
    problems, total = staging.duplicate_problems(PROBLEMS_SHOWN)
    if total:
        raise RowsRefused(problems, total)
    counts = staging.merge(
        brand_id=engagement.brand_id,
        engagement_id=engagement.id,
        source=source,
        reported_by_id=reported_by_id,
        import_id=import_id,
        now=utcnow(),
    )
    # The scorecard reads rollups: keep them in step in the same transaction.
    refresh_rollups_for(session, engagement.id, counts.keys)
    return counts


@dataclass
class ApiRow:
    """A row as the API and the period form give it (the parsers' ``ParsedRow`` shape)."""

    channel: str
    metric: str
    period_start: date
    period_end: date
    value: Decimal
    currency: str | None = None
    platform_metric: str = ""
    platform_metric_version: str = ""
    post_ref: str | None = None
    post_id: uuid.UUID | None = None


def check_all(
    checker: Checker, rows: Sequence[IncomingRow]
) -> tuple[list[tuple[Any, ...]], list[Problem], int]:
    checked: list[tuple[Any, ...]] = []
    problems: list[Problem] = []
    total = 0
    check = checker.check
    for line, row in enumerate(rows, start=1):
        outcome = check(row, line, getattr(row, "post_id", None))
        if isinstance(outcome, list):
            total += len(outcome)
            if len(problems) < PROBLEMS_SHOWN:
                problems.extend(outcome[: PROBLEMS_SHOWN - len(problems)])
        else:
            checked.append(outcome)
    return checked, problems, total


def report(
    session: Session,
    granted: EngagementAccess,
    rows: Sequence[IncomingRow],
    *,
    source: str,
) -> Counts:
    """Rows from the API or the period form: all checked first, then written together."""
    granted.require("result.report")
    if len(rows) > MAX_API_ROWS:
        raise InvalidInput(
            N_("Send at most %(max)d rows a call; split larger batches."),
            params={"max": MAX_API_ROWS},
        )
    if not rows:
        raise InvalidInput(N_("Send at least one row."))
    engagement = granted.engagement
    checker = checker_for(session, engagement, source)
    checked, problems, total = check_all(checker, rows)
    if total:
        raise RowsRefused(problems, total)
    counts = write_rows(
        session, engagement, checked, source=source, reported_by_id=granted.actor.user.id
    )
    if counts.written:
        _audit(
            session,
            engagement,
            granted.actor,
            "results.reported",
            "engagement",
            engagement.id,
            {
                "source": source,
                "created": counts.created,
                "revised": counts.revised,
                "unchanged": counts.unchanged,
            },
        )
    return counts


def audit_import(
    session: Session, engagement: Engagement, user_id: uuid.UUID | None, record: ResultImport
) -> None:
    """An import lands on the audit chain with the file's hash: the rows' provenance."""
    user = session.get(User, user_id) if user_id else None
    audit.append(
        session,
        organization_id=engagement.brand_id,
        engagement_id=engagement.id,
        actor_id=user.id if user else None,
        actor=f"{user.name} <{user.email}>" if user else "Brandkeep",
        kind="results.imported",
        subject_type="result_import",
        subject_id=record.id,
        data={
            "file": record.file_name,
            "sha256": record.sha256,
            "format": record.format,
            "rows": record.rows_total,
            "created": record.rows_created,
            "revised": record.rows_revised,
            "unchanged": record.rows_unchanged,
        },
    )


# --- verifying and disputing ---------------------------------------------------------


def set_status(
    session: Session, found: ResultAccess, status: ResultStatus, reason: str = ""
) -> ResultRow:
    """The brand verifies a row, or disputes it with a reason; a dispute is settled by
    verifying the row or by the agency reporting a corrected value (a new revision)."""
    found.granted.require("result.verify")
    reason = reason.strip()
    if status is ResultStatus.disputed and len(reason) < 3:
        raise InvalidInput(
            field_errors=[FieldError("reason", N_("Say why the number is disputed."))]
        )
    row = found.row
    if row.superseded_at is not None:
        raise Conflict(N_("A newer revision of this number exists: decide on that one."))
    now = utcnow()
    result = session.execute(
        sa.update(ResultRow)
        .where(
            col(ResultRow.brand_id) == row.brand_id,
            col(ResultRow.id) == row.id,
            col(ResultRow.superseded_at).is_(None),
        )
        .values(
            status=status,
            status_reason=reason[:1000],
            status_by_id=found.granted.actor.user.id,
            status_at=now,
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(N_("A newer revision of this number exists: decide on that one."))
    session.refresh(row)
    # A disputed row leaves the scores, a verified one counts as backed: re-aggregate.
    refresh_rollups_for(session, row.engagement_id, [row])
    _audit(
        session,
        found.granted.engagement,
        found.granted.actor,
        f"result.{status.value}",
        "result_row",
        row.id,
        {
            "metric": row.metric,
            "period": f"{row.period_start.isoformat()}/{row.period_end.isoformat()}",
            "value": str(row.value),
            "revision": row.revision,
            "reason": reason,
        },
    )
    return row


# --- posts ↔ results --------------------------------------------------------------------


def match(session: Session, granted: EngagementAccess, post_ref: str, post_id: uuid.UUID) -> int:
    """The agency names the post an export's reference stands for; the rows follow.

    The reference is also recorded on the post (as its permalink or platform id, if
    it has none yet), so that the next import matches it by itself.
    """
    granted.require("result.report")
    engagement = granted.engagement
    post = repository.get_post(session, engagement, post_id)
    if post is None:
        raise InvalidInput(field_errors=[FieldError("post_id", N_("Choose one of the posts."))])
    post_ref = post_ref.strip()
    count = repository.match_ref(session, engagement, post_ref, post.id)
    if count == 0:
        raise Conflict(N_("No unmatched rows carry this reference any more."))
    if "://" in post_ref:
        post.permalink = post.permalink or post_ref[:300]
    else:
        post.platform_post_id = post.platform_post_id or post_ref[:120]
    session.add(post)
    _audit(
        session, engagement, granted.actor, "results.matched", "post", post.id,
        {"post_ref": post_ref, "rows": count},
    )  # fmt: skip
    return count


def record_publication(
    session: Session,
    granted: EngagementAccess,
    post_id: uuid.UUID,
    permalink: str | None,
    platform_post_id: str | None,
) -> tuple[Post, int]:
    """Record where a post went out; rows already imported under that name are matched."""
    granted.require("result.report")
    engagement = granted.engagement
    post = repository.get_post(session, engagement, post_id)
    if post is None:
        raise InvalidInput(field_errors=[FieldError("post_id", N_("Choose one of the posts."))])
    permalink = (permalink or "").strip() or None
    platform_post_id = (platform_post_id or "").strip() or None
    errors = []
    if permalink and not permalink.lower().startswith(("https://", "http://")):
        errors.append(FieldError("permalink", N_("Enter the post's web address (https://…).")))
    if permalink and len(permalink) > 300:
        errors.append(FieldError("permalink", N_("This is too long.")))
    if platform_post_id and len(platform_post_id) > 120:
        errors.append(FieldError("platform_post_id", N_("This is too long.")))
    if errors:
        raise InvalidInput(field_errors=errors)
    post.permalink, post.platform_post_id = permalink, platform_post_id
    session.add(post)
    wanted = {normalise_ref(ref) for ref in (permalink, platform_post_id) if ref}
    refs, _total = repository.unmatched_refs(session, engagement, limit=10_000)
    names = [ref for ref, *_rest in refs if normalise_ref(ref) in wanted]
    matched = repository.match_new_refs(session, engagement, post, names)
    _audit(
        session, engagement, granted.actor, "post.publication_recorded", "post", post.id,
        {"permalink": permalink, "platform_post_id": platform_post_id, "rows_matched": matched},
    )  # fmt: skip
    return post, matched


# --- reading ----------------------------------------------------------------------------


def list_rows(
    session: Session,
    granted: EngagementAccess,
    *,
    metric: str | None = None,
    period_start: date | None = None,
    month: tuple[date, date] | None = None,
    status: ResultStatus | None = None,
    post_id: uuid.UUID | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[Sequence[ResultRow], int]:
    granted.require("engagement.read")
    if post_id is not None and repository.get_post(session, granted.engagement, post_id) is None:
        raise NotFound(N_("No post of this engagement has this id."))
    return repository.current_rows(
        session,
        granted.engagement,
        metric=metric,
        period_start=period_start,
        month=month,
        status=status,
        post_id=post_id,
        limit=limit,
        offset=offset,
    )


# Where the same number can come from several ways, the most trustworthy wins.
def _source_rank(source: str) -> int:
    if source.startswith("import:"):
        return 0
    return 1 if source == "api" else 2


@dataclass(frozen=True)
class Cell:
    """One metric over one period: the value counted, and how it is backed."""

    value: Decimal
    rows: int
    disputed: int
    verified: int
    source: str
    additive: bool


def _additive(metric: str) -> bool:
    definition = BY_KEY.get(metric)
    # Reach counts unique people: never summed across posts, days or platforms.
    return (
        definition is not None
        and definition.unit in (Unit.quantity, Unit.money)
        and metric not in ("reach", "cpm", "cpi", "cpa", "far_yield")
    )


def month_of(day: date) -> tuple[date, date]:
    start = day.replace(day=1)
    following = (start + timedelta(days=32)).replace(day=1)
    return start, following - timedelta(days=1)


def _without_overlaps(parts: list[Any]) -> list[Any]:
    """Longer periods first; a period overlapping one already kept (a month and one of
    its days, from the same source and level) is left out, so nothing counts twice."""
    kept: list[Any] = []
    periods: list[tuple[date, date]] = []
    for part in sorted(parts, key=lambda p: (p[3] - p[4], p[3])):
        start, end = part[3], part[4]
        if (start, end) not in periods:
            if any(start <= other_end and other_start <= end for other_start, other_end in periods):
                continue
            periods.append((start, end))
        kept.append(part)
    return kept


def table(session: Session, engagement: Engagement) -> dict[tuple[date, date], dict[str, Cell]]:
    """The results by calendar month (of each period's start) and metric, each number once.

    For one metric, channel and month: the best-backed source is used (an import over
    the API over the form), and engagement-wide rows over the sum of per-post rows;
    overlapping periods are counted once. Channels are then added up for additive
    metrics; a rate or a reach is shown only when a single row stands for the cell
    (otherwise the count of rows, to open). Disputed rows are counted apart, never in
    the value.
    """
    groups: dict[tuple[str, str, tuple[date, date]], list[Any]] = {}
    for metric, channel, start, end, source, level, status, total, count in repository.totals(
        session, engagement
    ):
        groups.setdefault((metric, channel, month_of(start)), []).append(
            (source, level, status, start, end, Decimal(total), count)
        )
    cells: dict[tuple[date, date], dict[str, Cell]] = {}
    for (metric, _channel, month), parts in groups.items():
        best = min((_source_rank(p[0]), p[1]) for p in parts)
        chosen = _without_overlaps([p for p in parts if (_source_rank(p[0]), p[1]) == best])
        counted = [p for p in chosen if p[2] != ResultStatus.disputed]
        value = sum((p[5] for p in counted), Decimal(0))
        rows = sum(p[6] for p in counted)
        disputed = sum(p[6] for p in parts if p[2] == ResultStatus.disputed)
        verified = sum(p[6] for p in chosen if p[2] == ResultStatus.verified)
        source = chosen[0][0]
        by_metric = cells.setdefault(month, {})
        previous = by_metric.get(metric)
        if previous is not None:
            value, rows = value + previous.value, rows + previous.rows
            disputed, verified = disputed + previous.disputed, verified + previous.verified
            source = source if previous.source == source else "mixed"
        by_metric[metric] = Cell(value, rows, disputed, verified, source, _additive(metric))
    return dict(sorted(cells.items(), key=lambda item: item[0], reverse=True))


HEADLINE_METRICS = ("impressions", "conversions", "coupon_redemptions", "revenue")


@dataclass(frozen=True)
class Headline:
    metric: str
    value: Decimal
    periods: int


def headline(session: Session, engagement: Engagement) -> list[Headline]:
    """Totals of the additive business numbers over the engagement, month by month."""
    cells = table(session, engagement)
    result = []
    for metric in HEADLINE_METRICS:
        months = [by[metric] for by in cells.values() if metric in by and by[metric].rows]
        if months:
            total = sum((cell.value for cell in months), Decimal(0))
            result.append(Headline(metric, total, len(months)))
    return result
