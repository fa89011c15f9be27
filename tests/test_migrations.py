"""The migrations make exactly the schema the models describe, and can be undone.

Runs on the database the suite runs on (SQLite, or PostgreSQL with
``TEST_DATABASE_URL``); each test makes its own fresh database and drops it.
"""

from __future__ import annotations

import pprint
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from app import migrate
from app.config import PROJECT_ROOT
from app.db import make_engine
from app.models import metadata
from tests.conftest import make_fresh_database_url

VERSIONS = PROJECT_ROOT / "migrations" / "versions"
FILE_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}-\d{4}_[a-z0-9_]+\.py$")


@pytest.fixture
def fresh_url(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    url, drop = make_fresh_database_url(tmp_path, request.node.name[:20].lower())
    try:
        yield url
    finally:
        drop()  # type: ignore[operator]


def _schema(url: str) -> dict[str, dict[str, object]]:
    """Tables with their columns, indexes, unique constraints and foreign keys."""
    engine = make_engine(url, poolclass=sa.pool.NullPool)
    try:
        inspector = sa.inspect(engine)
        return {
            name: {
                "columns": sorted(
                    (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(name)
                ),
                "indexes": sorted(i["name"] or "" for i in inspector.get_indexes(name)),
                "unique": sorted(u["name"] or "" for u in inspector.get_unique_constraints(name)),
                "foreign_keys": sorted(f["name"] or "" for f in inspector.get_foreign_keys(name)),
                "primary_key": inspector.get_pk_constraint(name)["constrained_columns"],
            }
            for name in inspector.get_table_names()
        }
    finally:
        engine.dispose()


def test_models_and_migrations_agree(fresh_url: str) -> None:
    migrate.upgrade(fresh_url)
    engine = make_engine(fresh_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, metadata)
            revision = context.get_current_revision()
    finally:
        engine.dispose()
    assert revision == migrate.head_revision()
    assert not diff, (
        "the models and the migrations differ; make a migration with "
        "`alembic revision --autogenerate -m '...'`:\n" + pprint.pformat(diff)
    )


def test_upgrade_downgrade_upgrade(fresh_url: str) -> None:
    migrate.upgrade(fresh_url)
    first = _schema(fresh_url)
    assert set(metadata.tables) <= set(first), "upgrade head did not make every model's table"
    assert "alembic_version" in first

    migrate.downgrade(fresh_url, "base")
    left = set(_schema(fresh_url)) - {"alembic_version"}
    assert not left, f"downgrade base left tables behind: {sorted(left)}"

    migrate.upgrade(fresh_url)
    assert _schema(fresh_url) == first
    engine = make_engine(fresh_url, poolclass=sa.pool.NullPool)
    try:
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()


def test_migration_files_are_named_by_date() -> None:
    files = sorted(p.name for p in VERSIONS.glob("*.py") if p.name != "__init__.py")
    assert files, f"no migrations in {VERSIONS}"
    wrong = [name for name in files if not FILE_NAME.match(name)]
    assert not wrong, (
        f"migration files must be named YYYY-MM-DD-HHMM_what_it_does.py (alembic.ini's "
        f"file_template does this); rename: {wrong}"
    )


def test_revision_graph_has_a_single_head() -> None:
    scripts = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    heads = scripts.get_heads()
    assert len(heads) == 1, (
        f"the migrations have {len(heads)} heads {heads}; merge them with `alembic merge heads`"
    )
    assert heads[0] == migrate.head_revision()
    # Every file in versions/ is part of the graph that leads to that head.
    revisions = list(scripts.walk_revisions())
    files = {p.name for p in VERSIONS.glob("*.py") if p.name != "__init__.py"}
    assert {Path(r.path).name for r in revisions} == files
    assert [r for r in revisions if r.down_revision is None] == [revisions[-1]]
