"""Keeping the daily metric rollups up to date, incrementally, on write and import.

``refresh_rollups_for`` is called by the results service after it writes, revises,
verifies or disputes rows (one call per batch or import, in the same transaction).
It re-aggregates only the (metric, day) keys those rows touch, straight from the
current result rows, and upserts them with ``INSERT … SELECT … ON CONFLICT DO
UPDATE``: one statement, whatever the batch size, and never a full refresh.

Re-aggregating the touched keys (rather than adding the new rows' values to the
old totals) keeps the rollup right when a row is superseded by a new revision or
its status changes: the old revision simply stops being current.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import Session

from app.db import utcnow


class RowKey(Protocol):
    """Anything with these attributes: a ``ResultRow``, a parsed row, a small tuple type."""

    metric: str
    period_start: date


KeyLike = RowKey | tuple[str, date]

# A row counts as backed when a platform export (not the generic typed-in CSV) or the
# brand's verification stands behind it.
_BACKED = "(r.status = 'verified' OR (r.source LIKE 'import:%' AND r.source <> 'import:generic'))"

_SELECT = f"""
SELECT {{new_id}}, r.brand_id, r.engagement_id, r.metric, r.channel, r.period_start,
       COALESCE(SUM(CASE WHEN r.status <> 'disputed' THEN r.value ELSE 0 END), 0),
       COUNT(*),
       SUM(CASE WHEN {_BACKED} THEN 1 ELSE 0 END),
       SUM(CASE WHEN r.status = 'disputed' THEN 1 ELSE 0 END),
       :now
FROM result_row AS r
{{keys_join}}
WHERE r.brand_id = :brand_id AND r.engagement_id = :engagement_id
  AND r.superseded_at IS NULL
  AND r.period_start BETWEEN :first_day AND :last_day
  AND r.metric IN :metrics
  {{keys_filter}}
GROUP BY r.brand_id, r.engagement_id, r.metric, r.channel, r.period_start
"""  # noqa: S608 - no input is formatted into it: only this module's fragments

_UPSERT = """
INSERT INTO metric_rollup (id, brand_id, engagement_id, metric, channel, day, total,
                           row_count, backed_rows, disputed_rows, updated_at)
{select}
ON CONFLICT (brand_id, engagement_id, metric, channel, day) DO UPDATE SET
    total = excluded.total,
    row_count = excluded.row_count,
    backed_rows = excluded.backed_rows,
    disputed_rows = excluded.disputed_rows,
    updated_at = excluded.updated_at
"""

# Keys whose rows are all gone. The upsert just rewrote (with ``updated_at = :now``) every
# key of the refresh that still has current rows, so only the keys it did not reach can be
# empty: the NOT EXISTS is checked for those few alone, never once per rollup row (which,
# on a table the planner has no statistics for yet, meant a scan of result_row per row).
_PRUNE = """
DELETE FROM metric_rollup
{keys_using}
WHERE metric_rollup.brand_id = :brand_id AND metric_rollup.engagement_id = :engagement_id
  AND metric_rollup.day BETWEEN :first_day AND :last_day AND metric_rollup.metric IN :metrics
  {keys_filter}
  AND metric_rollup.updated_at <> :now
  AND NOT EXISTS (
    SELECT 1 FROM result_row AS r
    WHERE r.brand_id = metric_rollup.brand_id AND r.engagement_id = metric_rollup.engagement_id
      AND r.metric = metric_rollup.metric AND r.channel = metric_rollup.channel
      AND r.period_start = metric_rollup.day AND r.superseded_at IS NULL
  )
"""


def _new_id(dialect: str) -> str:
    # The id is only used when the key is new; both forms match how each dialect stores a UUID.
    if dialect == "postgresql":
        return "gen_random_uuid()"
    return "lower(hex(randomblob(16)))"


# Named (metric, day) keys restrict the refresh to exactly the touched keys (a few edits far
# apart in time re-aggregate only themselves). On PostgreSQL the keys travel as two arrays
# joined through ``unnest`` (one hash or merge join, whatever their number): a row-valued IN
# list would be checked as a chain of ORs against every row scanned, which made a 2,000-key
# refresh ten times slower than re-aggregating its whole range (bench/README.md, cause 5).
# SQLite has no arrays: there up to ``MAX_NAMED_KEYS`` keys go in an IN list, and past it
# the range of days and the metrics bound the work instead.
MAX_NAMED_KEYS = 64

_PG_KEYS = "unnest(CAST(:key_metrics AS text[]), CAST(:key_days AS date[])) AS k(metric, day)"
_PG_JOIN = f"JOIN {_PG_KEYS} ON k.metric = r.metric AND k.day = r.period_start"
_PG_USING = f"USING {_PG_KEYS}"
_PG_PRUNE_FILTER = "AND metric_rollup.metric = k.metric AND metric_rollup.day = k.day"


def _keys(rows_or_keys: Iterable[KeyLike]) -> set[tuple[str, date]]:
    keys: set[tuple[str, date]] = set()
    for item in rows_or_keys:
        if isinstance(item, tuple):
            keys.add(item)
        else:
            keys.add((item.metric, item.period_start))
    return keys


def refresh_rollups_for(
    session: Session, engagement_id: uuid.UUID, rows_or_keys: Iterable[KeyLike]
) -> int:
    """Bring the rollups of the days and metrics these rows touch up to date; returns keys written.

    ``rows_or_keys`` are result rows (anything with ``metric`` and ``period_start``) or
    ``(metric, period_start)`` pairs, of this engagement. Call it after the rows are
    flushed, in the same transaction.
    """
    keys = _keys(rows_or_keys)
    if not keys:
        return 0
    metrics = {metric for metric, _ in keys}
    first = min(day for _, day in keys)
    last = max(day for _, day in keys)
    brand_id = session.execute(
        sa.text("SELECT brand_id FROM engagement WHERE id = :id"),
        {"id": _bind_uuid(session, engagement_id)},
    ).scalar_one()
    dialect = session.get_bind().dialect.name
    params: dict[str, Any] = {
        "brand_id": _bind_uuid(session, brand_id),
        "engagement_id": _bind_uuid(session, engagement_id),
        "first_day": first,
        "last_day": last,
        "metrics": sorted(metrics),
        "now": utcnow() if dialect == "postgresql" else utcnow().replace(tzinfo=None),
    }
    expanding: list[sa.BindParameter[Any]] = [sa.bindparam("metrics", expanding=True)]
    keys_join = keys_filter = prune_using = prune_filter = ""
    # Keys filling most of their grid of metrics × days (an import of a few months) are
    # bounded by the range alone: re-aggregating the odd key nobody touched is harmless
    # (the same totals again) and cheaper than joining every row read to the keys.
    sparse = 2 * len(keys) < len(metrics) * ((last - first).days + 1)
    if sparse and dialect == "postgresql":
        ordered = sorted(keys)
        params["key_metrics"] = [metric for metric, _ in ordered]
        params["key_days"] = [day for _, day in ordered]
        keys_join, prune_using, prune_filter = _PG_JOIN, _PG_USING, _PG_PRUNE_FILTER
    elif sparse and len(keys) <= MAX_NAMED_KEYS:
        params["keys"] = sorted(keys)
        expanding.append(sa.bindparam("keys", expanding=True))
        keys_filter = "AND (r.metric, r.period_start) IN :keys"
        prune_filter = "AND (metric_rollup.metric, metric_rollup.day) IN :keys"
    select = _SELECT.format(new_id=_new_id(dialect), keys_join=keys_join, keys_filter=keys_filter)
    upsert = sa.text(_UPSERT.format(select=select)).bindparams(*expanding)
    written = session.execute(upsert, params)
    prune = sa.text(_PRUNE.format(keys_using=prune_using, keys_filter=prune_filter)).bindparams(
        *expanding
    )
    session.execute(prune, params)
    return int(getattr(written, "rowcount", 0) or 0)


def _bind_uuid(session: Session, value: Any) -> Any:
    """Raw SQL gets ids as each dialect stores them (SQLite: 32 hex digits)."""
    as_uuid = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    if session.get_bind().dialect.name == "postgresql":
        return as_uuid
    return as_uuid.hex
