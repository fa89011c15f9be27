"""Writing many result rows at once: a staging table, then set-wise statements.

Never an ORM object per row, and never a lookup per row. The checked rows (tuples
in ``rules.STAGE_COLUMNS`` order) go into a temporary ``result_stage`` table — with
``COPY`` on PostgreSQL, ``executemany`` on SQLite — and four statements do the rest
in the caller's transaction, each a join of the whole stage against the current rows
of the engagement on the row key:

1. each staged row is paired with its key's current revision, if any (its id, its
   revision number, and whether it holds the same value and currency);
2. rows re-sent unchanged are dropped from the stage;
3. the current revisions of the rows left that had one are superseded;
4. the rows left are inserted, numbered one past the revision they supersede (1 for
   a new key).

So re-sending the same rows changes nothing, and a changed value leaves the old
revision in place with ``superseded_at`` set. Result rows are never deleted one by
one and a revision keeps its key, so a key that has rows always has exactly one
current revision: its number is the key's highest. The caller holds the engagement's
write lock (``service.lock_engagement_results``), so nothing changes between the
statements.
"""

# SQL here is built only from this module's constants (table and column names); every
# value travels as a bound parameter or through COPY.
# ruff: noqa: S608

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from app.db import UTCDateTime
from app.errors import N_
from app.results.rules import STAGE_COLUMNS, Problem

STAGE = "result_stage"
_COLUMNS_SQL = """
    row_key VARCHAR(32) NOT NULL,
    post_id {uuid},
    post_ref VARCHAR(300),
    channel VARCHAR(32) NOT NULL,
    metric VARCHAR(48) NOT NULL,
    period_start DATE NOT NULL,
    period_end DATE NOT NULL,
    value NUMERIC(24, 6) NOT NULL,
    currency VARCHAR(3),
    platform_metric VARCHAR(80) NOT NULL,
    platform_metric_version VARCHAR(40) NOT NULL,
    line INTEGER NOT NULL,
    current_id {uuid},
    current_revision INTEGER,
    same_value {boolean}
"""
_COLUMN_LIST = ", ".join(STAGE_COLUMNS)


@dataclass(frozen=True)
class Counts:
    created: int
    revised: int
    unchanged: int
    # The (metric, first day) pairs the batch touched: the rollups to bring up to date.
    keys: frozenset[tuple[str, date]] = frozenset()

    @property
    def written(self) -> int:
        return self.created + self.revised


class Staging:
    """The staging table of one transaction; ``merge`` moves it into ``result_row``."""

    def __init__(self, connection: sa.Connection) -> None:
        self.connection = connection
        self.postgresql = connection.dialect.name == "postgresql"
        self.staged = 0
        if self.postgresql:
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS pg_temp.{STAGE}")
            connection.exec_driver_sql(
                f"CREATE TEMP TABLE {STAGE} (id UUID NOT NULL DEFAULT gen_random_uuid(), "
                + _COLUMNS_SQL.format(uuid="UUID", boolean="BOOLEAN")
                + ") ON COMMIT DROP"
            )
        else:
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{STAGE}")
            connection.exec_driver_sql(
                f"CREATE TEMP TABLE {STAGE} (id CHAR(32) NOT NULL, "
                + _COLUMNS_SQL.format(uuid="CHAR(32)", boolean="INTEGER")
                + ")"
            )

    def add(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        self.staged += len(rows)
        if self.postgresql:
            raw = self.connection.connection.driver_connection
            sql = f"COPY {STAGE} ({_COLUMN_LIST}) FROM STDIN"
            with raw.cursor() as cursor, cursor.copy(sql) as copy:  # type: ignore[union-attr]
                for row in rows:
                    copy.write_row(row)
            return
        # SQLite stores UUIDs as 32 hex digits and dates as ISO text (SQLAlchemy's way).
        prepared = [
            (
                uuid.uuid4().hex,
                row[0],
                row[1].hex if row[1] is not None else None,
                row[2],
                row[3],
                row[4],
                row[5].isoformat(),
                row[6].isoformat(),
                str(row[7]),
                row[8],
                row[9],
                row[10],
                row[11],
            )
            for row in rows
        ]
        self.connection.exec_driver_sql(
            f"INSERT INTO {STAGE} (id, {_COLUMN_LIST}) VALUES ({', '.join('?' * 13)})",
            prepared,
        )

    def duplicate_problems(self, limit: int) -> tuple[list[Problem], int]:
        """Keys given twice with different values: ambiguous, so refused.

        A key repeated with the same value is harmless: the copies are dropped.
        """
        distinct = self.connection.exec_driver_sql(
            f"SELECT count(DISTINCT row_key) FROM {STAGE}"
        ).scalar_one()
        if distinct == self.staged:
            return [], 0
        self.connection.exec_driver_sql(
            f"CREATE INDEX ix_{STAGE}_row_key_line ON {STAGE} (row_key, line)"
        )
        clash = (
            f"FROM {STAGE} GROUP BY row_key "
            "HAVING count(DISTINCT value) > 1 OR count(DISTINCT coalesce(currency, '')) > 1"
        )
        total = self.connection.exec_driver_sql(
            f"SELECT count(*) FROM (SELECT row_key {clash}) AS clashes"
        ).scalar_one()
        problems = [
            Problem(
                last,
                None,
                N_(
                    "Line %(line)d gives another value for the same post, channel, metric and "
                    "period as line %(first)d."
                ),
                {"line": last, "first": first},
            )
            for first, last in self.connection.exec_driver_sql(
                f"SELECT min(line), max(line) {clash} ORDER BY min(line) LIMIT {int(limit)}"
            )
        ]
        if total == 0:
            self.connection.exec_driver_sql(
                f"DELETE FROM {STAGE} WHERE EXISTS (SELECT 1 FROM {STAGE} AS later "
                f"WHERE later.row_key = {STAGE}.row_key AND later.line > {STAGE}.line)"
            )
            self.staged = distinct
        return problems, total

    def merge(
        self,
        *,
        brand_id: uuid.UUID,
        engagement_id: uuid.UUID,
        source: str,
        reported_by_id: uuid.UUID | None,
        import_id: uuid.UUID | None,
        now: datetime,
    ) -> Counts:
        params = {
            "b": brand_id,
            "e": engagement_id,
            "source": source,
            "user": reported_by_id,
            "import": import_id,
            "now": now,
        }
        types: list[sa.BindParameter[Any]] = [
            sa.bindparam("b", type_=sa.Uuid()),
            sa.bindparam("e", type_=sa.Uuid()),
            sa.bindparam("user", type_=sa.Uuid()),
            sa.bindparam("import", type_=sa.Uuid()),
            sa.bindparam("now", type_=UTCDateTime()),
        ]
        same = "r.value = s.value AND coalesce(r.currency, '') = coalesce(s.currency, '')"
        if not self.postgresql:
            same = f"CASE WHEN {same} THEN 1 ELSE 0 END"
        pair = sa.text(
            f"UPDATE {STAGE} AS s SET current_id = r.id, current_revision = r.revision, "
            f"same_value = {same} FROM result_row AS r "
            "WHERE r.brand_id = :b AND r.engagement_id = :e AND r.superseded_at IS NULL "
            "AND r.row_key = s.row_key"
        ).bindparams(*types[:2])
        self.connection.execute(pair, {"b": brand_id, "e": engagement_id})
        true = "true" if self.postgresql else "1"
        unchanged = self.connection.exec_driver_sql(
            f"DELETE FROM {STAGE} WHERE same_value = {true}"
        ).rowcount
        supersede = sa.text(
            "UPDATE result_row SET superseded_at = :now "
            "WHERE brand_id = :b AND engagement_id = :e AND superseded_at IS NULL "
            f"AND id IN (SELECT current_id FROM {STAGE} WHERE current_id IS NOT NULL)"
        ).bindparams(*types[:2], types[4])
        revised = self.connection.execute(
            supersede, {"b": brand_id, "e": engagement_id, "now": now}
        ).rowcount
        line = "s.line" if import_id is not None else "NULL"
        insert = sa.text(
            "INSERT INTO result_row (id, brand_id, engagement_id, post_id, row_key, channel, "
            "metric, period_start, period_end, value, currency, source, platform_metric, "
            "platform_metric_version, revision, status, status_reason, reported_by_id, "
            "reported_at, import_id, import_line, post_ref) "
            "SELECT s.id, :b, :e, s.post_id, s.row_key, s.channel, s.metric, s.period_start, "
            "s.period_end, s.value, s.currency, :source, s.platform_metric, "
            "s.platform_metric_version, coalesce(s.current_revision, 0) + 1, "
            f"'reported', '', :user, :now, :import, {line}, s.post_ref "
            f"FROM {STAGE} AS s"
        ).bindparams(*types)
        written = self.connection.execute(insert, params).rowcount
        keys: frozenset[tuple[str, date]] = frozenset()
        if written:
            # A revision keeps its key, so the written rows name every rollup that changed.
            keys = frozenset(
                (metric, start if isinstance(start, date) else date.fromisoformat(start))
                for metric, start in self.connection.exec_driver_sql(
                    f"SELECT DISTINCT metric, period_start FROM {STAGE}"
                )
            )
        self.connection.exec_driver_sql(f"DROP TABLE IF EXISTS {self._qualified}")
        return Counts(created=written - revised, revised=revised, unchanged=unchanged, keys=keys)

    @property
    def _qualified(self) -> str:
        return f"pg_temp.{STAGE}" if self.postgresql else f"temp.{STAGE}"
