"""Data at scale for the benchmark, generated inside the database.

At ``--scale 1``: 1,000 brands, 5,000 engagements (with their agencies and members),
10,000,000 result rows and their daily rollups, plus a review queue of 60 posts
waiting for one reviewer (``reviewer@acme.example``). Run::

    python -m bench.generate --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
    python -m bench.generate --database-url sqlite:///bench.sqlite3 --scale 0.01

How:

1. the schema comes from the app's migrations, and the demo (``app.demo``) is loaded
   through the app's own services: its organizations, people, engagements and posts
   are real ones, and they are the templates for everything else;
2. every other row is cloned from a template row set-wise — ``INSERT … SELECT`` over
   ``generate_series`` on PostgreSQL, over a recursive CTE on SQLite — with only the
   columns that must differ (ids, names, slugs, e-mails, keys) overridden, so a column
   added to a table later is copied from its template rather than forgotten;
3. result rows are written ``INSERT … SELECT`` by blocks of engagements; on
   PostgreSQL, past a million rows, the table's secondary indexes and unique
   constraints are dropped first and rebuilt after (one sort each instead of ten
   million index insertions), and foreign-key triggers are skipped for the bulk
   insert (``session_replication_role = replica``: every id inserted comes from a
   row that exists);
4. the daily rollups are then built from the current rows in one ``INSERT … SELECT
   … GROUP BY``, as ``app.scorecards.rollups`` would have kept them.

It connects as the role that runs migrations (the table owner, which row-level
security does not restrict); the app's runtime role is not needed.
"""

# The SQL here is assembled from this module's constants and from column names read
# from the database itself; every value travels as a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from app.db import Database, utcnow

FULL_BRANDS = 1_000
FULL_ENGAGEMENTS = 5_000
FULL_RESULT_ROWS = 10_000_000
AGENCY_SHARE = 4  # one agency for this many brands
POSTS_PER_ENGAGEMENT = 4
QUEUE_POSTS = 60  # posts waiting for the reviewer, on top of the demo's
REVIEWER = "reviewer@acme.example"
BRAND_LEAD = "lead@acme.example"
AGENCY_MANAGER = "manager@northwind.example"
BLOCK_ENGAGEMENTS = 250  # engagements whose result rows one statement writes

# What each engagement reports, day after day (money in minor units of its currency).
METRICS = (
    "impressions",
    "engagements",
    "link_clicks",
    "sessions",
    "conversions",
    "revenue",
    "ad_spend",
    "reach",
)
MONEY = {"revenue", "ad_spend"}
CHANNELS = ("instagram", "facebook")


@dataclass(frozen=True)
class Plan:
    brands: int
    engagements: int
    result_rows: int

    @classmethod
    def at(cls, scale: float) -> Plan:
        return cls(
            brands=max(3, round(FULL_BRANDS * scale)),
            engagements=max(6, round(FULL_ENGAGEMENTS * scale)),
            result_rows=max(1_000, round(FULL_RESULT_ROWS * scale)),
        )

    @property
    def agencies(self) -> int:
        return max(2, self.brands // AGENCY_SHARE)


class Sql:
    """The few expressions that differ between PostgreSQL and SQLite."""

    def __init__(self, connection: sa.Connection) -> None:
        self.connection = connection
        self.postgresql = connection.dialect.name == "postgresql"

    def new_id(self) -> str:
        # Both are how each dialect stores a UUID (SQLite: 32 lower-case hex digits).
        return "gen_random_uuid()" if self.postgresql else "lower(hex(randomblob(16)))"

    def days_before(self, day_param: str, offset: str) -> str:
        if self.postgresql:
            return f"(CAST(:{day_param} AS date) - ({offset}))"
        return f"date(:{day_param}, '-' || ({offset}) || ' days')"

    def series(self, count: int, alias: str = "g") -> str:
        """A relation ``alias(n)`` of 1..count."""
        if self.postgresql:
            return f"generate_series(1, {int(count)}) AS {alias}(n)"
        return (
            f"(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s "
            f"WHERE n < {int(count)}) SELECT n FROM s) AS {alias}"
        )

    def quote(self, name: str) -> str:
        return self.connection.dialect.identifier_preparer.quote(name)

    def id_value(self, value: Any) -> Any:
        return value if self.postgresql else str(value).replace("-", "")

    def run(self, statement: str, params: Mapping[str, Any] | None = None) -> sa.CursorResult[Any]:
        return self.connection.execute(sa.text(statement), dict(params or {}))

    def map_table(self, name: str, count: int, extra_ids: Iterable[str] = ()) -> None:
        """A scratch table ``name(new_id, n, …)``: ``count`` numbered rows with fresh ids."""
        self.run(f"DROP TABLE IF EXISTS {name}")
        ids = "".join(f", {self.new_id()} AS {column}" for column in extra_ids)
        self.run(
            f"CREATE TEMP TABLE {name} AS SELECT {self.new_id()} AS new_id, g.n AS n{ids} "
            f"FROM {self.series(count)}"
        )
        self.run(f"CREATE INDEX ix_{name}_n ON {name} (n)")

    def clone(
        self,
        table: str,
        *,
        source: str,
        where: str,
        overrides: Mapping[str, str],
        params: Mapping[str, Any] | None = None,
    ) -> int:
        """Copy the template rows ``t`` of ``table`` matched by ``where``, once per row of
        ``source`` (a FROM-list fragment), with ``overrides`` (column → SQL expression)."""
        columns = [column["name"] for column in sa.inspect(self.connection).get_columns(table)]
        unknown = set(overrides) - set(columns)
        if unknown:
            raise RuntimeError(f"{table} has no column {sorted(unknown)}")
        select = ", ".join(overrides.get(column, f"t.{self.quote(column)}") for column in columns)
        names = ", ".join(self.quote(column) for column in columns)
        result = self.run(
            f"INSERT INTO {self.quote(table)} ({names}) SELECT {select} "
            f"FROM {self.quote(table)} AS t CROSS JOIN {source} WHERE {where}",
            params,
        )
        return int(result.rowcount or 0)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the steps -------------------------------------------------------------------------------


def prepare_schema(url: str, *, reset: bool) -> None:
    """The app's migrations, then the demo through the app's own services."""
    from app import demo, migrate

    database = Database(url)
    try:
        if reset:
            _reset(database.engine)
        migrate.upgrade(url)
        with database.engine.connect() as connection:
            organizations = connection.execute(sa.text("SELECT count(*) FROM organization"))
            if organizations.scalar_one():
                raise SystemExit(
                    "the database already holds data: generate into an empty one, or pass --reset"
                )
        with database.session_scope() as session:
            demo.load(session)
    finally:
        database.dispose()


def _reset(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("DROP SCHEMA public CASCADE")
            connection.exec_driver_sql("CREATE SCHEMA public")
            return
        tables = connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).scalars()
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        for table in list(tables):
            connection.exec_driver_sql(f'DROP TABLE IF EXISTS "{table}"')


def _one(sql: Sql, statement: str, **params: Any) -> Any:
    return sql.run(statement, params).scalar_one()


def organizations_and_people(sql: Sql, plan: Plan) -> None:
    """Brands with a lead each, agencies with a manager each: clones of the demo's."""
    existing_brands = _one(sql, "SELECT count(*) FROM organization WHERE kind = 'brand'")
    existing_agencies = _one(sql, "SELECT count(*) FROM organization WHERE kind = 'agency'")
    for kind, total, existing, template_email in (
        ("brand", plan.brands, existing_brands, BRAND_LEAD),
        ("agency", plan.agencies, existing_agencies, AGENCY_MANAGER),
    ):
        count = max(total - existing, 1)
        table = f"bench_{kind}"
        sql.map_table(table, count, extra_ids=["user_id"])
        template_user = _one(
            sql, 'SELECT id FROM "user" WHERE email = :email', email=template_email
        )
        template_org = _one(
            sql,
            "SELECT organization_id FROM membership WHERE user_id = :user",
            user=template_user,
        )
        params = {"org": template_org, "user": template_user}
        sql.clone(
            "organization",
            source=f"{table} AS m",
            where="t.id = :org",
            overrides={
                "id": "m.new_id",
                "name": f"'Bench {kind} ' || CAST(m.n AS TEXT)",
                "slug": f"'bench-{kind}-' || CAST(m.n AS TEXT)",
            },
            params=params,
        )
        sql.clone(
            "user",
            source=f"{table} AS m",
            where="t.id = :user",
            overrides={
                "id": "m.user_id",
                "email": f"'{kind}' || CAST(m.n AS TEXT) || '@bench.example'",
                "name": f"'Bench {kind} person ' || CAST(m.n AS TEXT)",
            },
            params=params,
        )
        sql.clone(
            "membership",
            source=f"{table} AS m",
            where="t.user_id = :user AND t.organization_id = :org",
            overrides={
                "id": sql.new_id(),
                "organization_id": "m.new_id",
                "user_id": "m.user_id",
            },
            params=params,
        )
        log(f"{count} {kind} organizations with a member each")


def engagements(sql: Sql, plan: Plan) -> None:
    """Engagements between the bench brands and agencies (two more for the demo brand, so
    its comparison has five agencies' engagements side by side)."""
    existing = _one(sql, "SELECT count(*) FROM engagement")
    count = max(plan.engagements - existing, 2)
    template = _one(
        sql,
        "SELECT e.id FROM engagement AS e JOIN organization AS a ON a.id = e.agency_id "
        "WHERE a.slug = 'northwind' AND e.status = 'active' ORDER BY e.created_at LIMIT 1",
    )
    acme = _one(sql, "SELECT id FROM organization WHERE slug = 'acme'")
    brands = _one(sql, "SELECT count(*) FROM bench_brand")
    agencies = _one(sql, "SELECT count(*) FROM bench_agency")
    sql.map_table("bench_engagement", count)
    today = utcnow().date()
    nobody = "NULL"
    sql.clone(
        "engagement",
        source="bench_engagement AS m",
        where="t.id = :template",
        overrides={
            "id": "m.new_id",
            "brand_id": (
                "CASE WHEN m.n <= 2 THEN :acme ELSE (SELECT b.new_id FROM bench_brand AS b "
                f"WHERE b.n = ((m.n - 3) % {brands}) + 1) END"
            ),
            "agency_id": (
                "(SELECT a.new_id FROM bench_agency AS a "
                f"WHERE a.n = ((m.n + (m.n / {brands}) * 7) % {agencies}) + 1)"
            ),
            "name": "'Bench engagement ' || CAST(m.n AS TEXT)",
            "start_date": ":start",
            "end_date": ":end",
            "brand_lead_id": nobody,
            "agency_manager_id": nobody,
            "brand_content_owner_id": nobody,
            "agency_content_owner_id": nobody,
            "created_by_id": nobody,
        },
        params={
            "template": template,
            "acme": acme,
            "start": today - timedelta(days=420),
            "end": today + timedelta(days=365),
        },
    )
    log(f"{count} engagements (template: the demo's Northwind engagement)")


def posts(sql: Sql, plan: Plan) -> None:
    """Approved posts in every bench engagement, and the reviewer's queue of posts in review."""
    approved = _one(
        sql,
        "SELECT p.id FROM post AS p JOIN organization AS a ON a.id = p.brand_id "
        "WHERE a.slug = 'acme' AND p.status = 'approved' ORDER BY p.created_at LIMIT 1",
    )
    in_review = _one(
        sql,
        "SELECT p.id FROM post AS p JOIN engagement AS e ON e.id = p.engagement_id "
        "JOIN organization AS a ON a.id = e.agency_id "
        "WHERE a.slug = 'northwind' AND p.status = 'in_review' ORDER BY p.created_at LIMIT 1",
    )
    sql.run("DROP TABLE IF EXISTS bench_post")
    sql.run(
        f"CREATE TEMP TABLE bench_post AS SELECT {sql.new_id()} AS new_id, "
        "e.id AS engagement_id, e.brand_id AS brand_id, "
        f"(m.n - 1) * {POSTS_PER_ENGAGEMENT} + g.n AS n, 'approved' AS kind "
        f"FROM bench_engagement AS m JOIN engagement AS e ON e.id = m.new_id "
        f"CROSS JOIN {sql.series(POSTS_PER_ENGAGEMENT)}"
    )
    sql.run(
        f"INSERT INTO bench_post SELECT {sql.new_id()}, p.engagement_id, p.brand_id, "
        f"1000000000 + g.n, 'queue' FROM post AS p CROSS JOIN {sql.series(QUEUE_POSTS)} "
        "WHERE p.id = :template",
        {"template": in_review},
    )
    for kind, template in (("approved", approved), ("queue", in_review)):
        params = {"template": template, "kind": kind}
        where = "t.id = :template AND m.kind = :kind"
        sql.clone(
            "post",
            source="bench_post AS m",
            where=where,
            overrides={
                "id": "m.new_id",
                "brand_id": "m.brand_id",
                "engagement_id": "m.engagement_id",
                "title": "'Bench post ' || CAST(m.n AS TEXT)",
            },
            params=params,
        )
        for child in ("post_version", "decision"):
            sql.clone(
                child,
                source="bench_post AS m",
                where="t.post_id = :template AND m.kind = :kind",
                overrides={
                    "id": sql.new_id(),
                    "brand_id": "m.brand_id",
                    "engagement_id": "m.engagement_id",
                    "post_id": "m.new_id",
                },
                params=params,
            )
    log(
        f"{_one(sql, 'SELECT count(*) FROM bench_post')} posts "
        f"({QUEUE_POSTS} waiting for {REVIEWER})"
    )


def _value(metric_case: str) -> str:
    # Deterministic, varied, plausible: counts in the hundreds to thousands, money in cents.
    base = "((e.k * 7919 + g.n * 104729) % 5000 + 100)"
    return (
        f"CASE WHEN {metric_case} IN ({', '.join(repr(m) for m in sorted(MONEY))}) "
        f"THEN {base} * 100 ELSE {base} END"
    )


def result_rows(sql: Sql, plan: Plan) -> int:
    """``plan.result_rows`` current rows, the same number per engagement: every metric on
    every channel, one row a day going back from yesterday."""
    engagements_total = _one(sql, "SELECT count(*) FROM engagement")
    per_engagement = max(plan.result_rows // engagements_total, len(METRICS) * len(CHANNELS))
    sql.run("DROP TABLE IF EXISTS bench_numbered")
    sql.run(
        "CREATE TEMP TABLE bench_numbered AS SELECT e.id AS id, e.brand_id AS brand_id, "
        "e.currency AS currency, ROW_NUMBER() OVER (ORDER BY e.created_at, e.id) AS k "
        "FROM engagement AS e"
    )
    sql.run("CREATE INDEX ix_bench_numbered_k ON bench_numbered (k)")
    width = len(METRICS) * len(CHANNELS)
    metric = "CASE ((g.n - 1) % {m}) {whens} END".format(
        m=len(METRICS),
        whens=" ".join(f"WHEN {i} THEN '{name}'" for i, name in enumerate(METRICS)),
    )
    channel = "CASE (((g.n - 1) / {m}) % {c}) {whens} END".format(
        m=len(METRICS),
        c=len(CHANNELS),
        whens=" ".join(f"WHEN {i} THEN '{name}'" for i, name in enumerate(CHANNELS)),
    )
    day = sql.days_before("yesterday", f"(g.n - 1) / {width}")
    metric_of_row = f"({metric})"
    statement = f"""
        INSERT INTO result_row (id, brand_id, engagement_id, row_key, channel, metric,
            period_start, period_end, value, currency, source, platform_metric,
            platform_metric_version, revision, status, status_reason, reported_at)
        SELECT {sql.new_id()}, e.brand_id, e.id,
            'bench:' || {metric_of_row} || ':' || ({channel}) || ':' || CAST(g.n AS TEXT),
            {channel}, {metric_of_row}, {day}, {day},
            {_value(metric_of_row)},
            CASE WHEN {metric_of_row} IN ('revenue', 'ad_spend') THEN e.currency END,
            CASE WHEN g.n % 3 = 0 THEN 'api' ELSE 'import:meta' END,
            '', '', 1,
            CASE WHEN g.n % 11 = 0 THEN 'verified' ELSE 'reported' END,
            '', :now
        FROM bench_numbered AS e CROSS JOIN {sql.series(per_engagement)}
        WHERE e.k BETWEEN :first AND :last
    """
    yesterday = utcnow().date() - timedelta(days=1)
    now = utcnow() if sql.postgresql else utcnow().replace(tzinfo=None)
    written = 0
    started = time.monotonic()
    with _bulk_result_rows(sql, big=plan.result_rows >= 1_000_000):
        for first in range(1, engagements_total + 1, BLOCK_ENGAGEMENTS):
            last = first + BLOCK_ENGAGEMENTS - 1
            params = {"first": first, "last": last, "yesterday": yesterday, "now": now}
            written += int(sql.run(statement, params).rowcount or 0)
            sql.connection.commit()
            log(f"  {written:,} result rows ({written / (time.monotonic() - started):,.0f}/s)")
    return written


class _bulk_result_rows:  # noqa: N801 - used as a context manager, reads as one
    """On PostgreSQL, for a big load: secondary indexes and unique constraints of
    ``result_row`` dropped before and rebuilt after; foreign-key triggers skipped."""

    def __init__(self, sql: Sql, *, big: bool) -> None:
        self.sql = sql
        self.active = big and sql.postgresql
        self.constraints: list[tuple[str, str]] = []
        self.indexes: list[tuple[str, str]] = []

    def __enter__(self) -> None:
        if not self.active:
            return
        sql = self.sql
        self.constraints = [
            (str(row["name"]), str(row["definition"]))
            for row in sql.run(
                "SELECT conname AS name, pg_get_constraintdef(oid) AS definition "
                "FROM pg_constraint WHERE conrelid = 'result_row'::regclass AND contype = 'u'"
            ).mappings()
        ]
        for name, _definition in self.constraints:
            sql.run(f"ALTER TABLE result_row DROP CONSTRAINT {sql.quote(name)}")
        self.indexes = [
            (str(row["name"]), str(row["definition"]))
            for row in sql.run(
                "SELECT indexname AS name, indexdef AS definition FROM pg_indexes "
                "WHERE schemaname = current_schema() "
                "AND tablename = 'result_row' AND indexname <> 'pk_result_row'"
            ).mappings()
        ]
        for name, _definition in self.indexes:
            sql.run(f"DROP INDEX {sql.quote(name)}")
        sql.run("SET session_replication_role = replica")
        sql.connection.commit()
        log(f"  dropped {len(self.constraints)} constraints and {len(self.indexes)} indexes")

    def __exit__(self, *exc: object) -> None:
        if not self.active:
            return
        sql = self.sql
        sql.connection.rollback()
        sql.run("SET session_replication_role = DEFAULT")
        sql.run("SET maintenance_work_mem = '512MB'")
        started = time.monotonic()
        for _name, definition in self.indexes:
            sql.run(definition)
        for name, definition in self.constraints:
            sql.run(f"ALTER TABLE result_row ADD CONSTRAINT {sql.quote(name)} {definition}")
        sql.connection.commit()
        log(f"  rebuilt indexes and constraints in {time.monotonic() - started:.0f} s")


def rollups(sql: Sql) -> int:
    """Every daily rollup from the current rows, in one statement (as the app keeps them)."""
    from app.scorecards import rollups as app_rollups

    sql.run("DELETE FROM metric_rollup")
    now = utcnow() if sql.postgresql else utcnow().replace(tzinfo=None)
    backed = app_rollups._BACKED  # the app's own definition of a backed row
    written = sql.run(
        f"""
        INSERT INTO metric_rollup (id, brand_id, engagement_id, metric, channel, day, total,
                                   row_count, backed_rows, disputed_rows, updated_at)
        SELECT {sql.new_id()}, r.brand_id, r.engagement_id, r.metric, r.channel, r.period_start,
               COALESCE(SUM(CASE WHEN r.status <> 'disputed' THEN r.value ELSE 0 END), 0),
               COUNT(*),
               SUM(CASE WHEN {backed} THEN 1 ELSE 0 END),
               SUM(CASE WHEN r.status = 'disputed' THEN 1 ELSE 0 END),
               :now
        FROM result_row AS r
        WHERE r.superseded_at IS NULL
        GROUP BY r.brand_id, r.engagement_id, r.metric, r.channel, r.period_start
        """,
        {"now": now},
    ).rowcount
    return int(written or 0)


def generate(url: str, scale: float, *, reset: bool = False) -> dict[str, int]:
    """Build the data set; returns what each table holds at the end."""
    plan = Plan.at(scale)
    started = time.monotonic()
    log(
        f"scale {scale}: {plan.brands:,} brands, {plan.agencies:,} agencies, "
        f"{plan.engagements:,} engagements, {plan.result_rows:,} result rows"
    )
    os.environ.setdefault("BRANDKEEP_DATA_DIR", tempfile.mkdtemp(prefix="brandkeep-bench-"))
    prepare_schema(url, reset=reset)
    log("schema migrated, demo loaded")
    database = Database(url)
    try:
        with database.engine.connect() as connection:
            sql = Sql(connection)
            organizations_and_people(sql, plan)
            engagements(sql, plan)
            posts(sql, plan)
            connection.commit()
            rows = result_rows(sql, plan)
            log(f"{rows:,} result rows")
            step = time.monotonic()
            log(f"{rollups(sql):,} daily rollups in {time.monotonic() - step:.0f} s")
            connection.commit()
            if sql.postgresql:
                connection.execute(sa.text("ANALYZE"))
                connection.commit()
            counts = {
                table: int(_one(sql, f"SELECT count(*) FROM {sql.quote(table)}"))
                for table in (
                    "organization", "user", "membership", "engagement", "post",
                    "result_row", "metric_rollup",
                )
            }  # fmt: skip
    finally:
        database.dispose()
    log(f"done in {time.monotonic() - started:.0f} s: {counts}")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BRANDKEEP_DATABASE_URL", ""),
        help="SQLAlchemy URL (default: $BRANDKEEP_DATABASE_URL)",
    )
    parser.add_argument("--scale", type=float, default=1.0, help="1 = 10 M result rows")
    parser.add_argument(
        "--reset", action="store_true", help="drop everything in the database first"
    )
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url (or BRANDKEEP_DATABASE_URL) is required")
    if not 0 < args.scale <= 10:
        parser.error("--scale must be in (0, 10]")
    generate(args.database_url, args.scale, reset=args.reset)
    return 0


if __name__ == "__main__":
    sys.exit(main())
